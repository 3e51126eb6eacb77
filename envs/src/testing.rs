//! The conformance suite: what every registered environment must satisfy.
//!
//! [`check_env`] runs an environment with seeded random actions and checks shapes, finite values,
//! determinism under the same seed, that `reset` clears everything (a used environment reset
//! with a seed replays the episode of a fresh one), that snapshot and restore continue exactly,
//! and that `VecEnv`'s auto-reset neither leaks state across episodes nor loses the final
//! observation.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::api::{ActionSpace, MultiAgentEnv, StepBuffers};
use crate::registry::EnvEntry;
use crate::vec_env::VecEnv;

/// Every step of one finished episode, for comparisons (two runs that should be the same
/// episode must give equal logs).
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeLog {
    /// Observations after reset and after every step.
    pub obs: Vec<Vec<f32>>,
    /// Rewards of every step.
    pub rewards: Vec<Vec<f64>>,
    /// Global states after reset and after every step.
    pub states: Vec<Vec<f32>>,
}

/// Draws a random joint action that respects the action masks.
pub fn random_actions(env: &dyn MultiAgentEnv, rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let spec = env.spec();
    let mut mask = vec![true; spec.mask_len()];
    env.avail_actions(&mut mask);
    for (i, a) in spec.agents.iter().enumerate() {
        let dst = &mut out[spec.action_range(i)];
        match a.action_space {
            ActionSpace::Discrete(n) => {
                let m = &mask[spec.mask_range(i)];
                let allowed: Vec<usize> = (0..n).filter(|&k| m[k]).collect();
                dst[0] = allowed[rng.random_range(0..allowed.len())] as f32;
            }
            ActionSpace::Box { low, high, .. } => {
                for d in dst.iter_mut() {
                    *d = low + (high - low) * rng.random::<f32>();
                }
            }
        }
    }
}

/// Runs one episode (at most `max_steps` steps) with random actions from `action_seed`,
/// starting with `reset(seed)`.
pub fn run_episode(env: &mut dyn MultiAgentEnv, seed: Option<u64>, action_seed: u64) -> EpisodeLog {
    let spec = env.spec().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(action_seed);
    let mut out = StepBuffers::new(&spec);
    let mut state = vec![0.0; spec.state_dim];
    env.reset(seed, &mut out.obs);
    env.state(&mut state);
    let mut ep = EpisodeLog {
        obs: vec![out.obs.clone()],
        rewards: vec![],
        states: vec![state.clone()],
    };
    let mut actions = vec![0.0; spec.action_len()];
    for _ in 0..spec.max_steps {
        random_actions(env, &mut rng, &mut actions);
        out.step(env, &actions).expect("a valid action must step");
        env.state(&mut state);
        ep.obs.push(out.obs.clone());
        ep.rewards.push(out.rewards.clone());
        ep.states.push(state.clone());
        if out.ended() {
            break;
        }
    }
    ep
}

/// Plays one episode from `reset(seed)`: `act` writes each joint action, `on_step` sees each
/// step's rewards. Returns every agent's return.
pub fn play_episode<E: MultiAgentEnv + ?Sized>(
    env: &mut E,
    seed: Option<u64>,
    mut act: impl FnMut(&E, &mut [f32]),
    mut on_step: impl FnMut(&[f64]),
) -> Vec<f64> {
    let mut actions = vec![0.0; env.spec().action_len()];
    let mut ep = crate::episode::LiveEpisode::start(env, seed);
    loop {
        act(env, &mut actions);
        let ended = ep.step(env, &actions).expect("a valid action must step");
        on_step(&ep.rewards);
        if ended {
            return ep.returns;
        }
    }
}

/// Runs the whole suite on one registry entry with its default parameters; panics with a
/// message naming the environment and the property on the first failure.
pub fn check_env(entry: &EnvEntry) {
    let make = || (entry.make)(&toml::Table::new()).expect("default parameters must build");
    let id = entry.id;
    let mut env = make();
    let spec = env.spec().clone();
    assert_eq!(spec.id, id, "{id}: spec id");
    assert!(spec.num_agents() > 0, "{id}: no agents");
    assert!(spec.max_steps > 0, "{id}: max_steps is 0");
    assert_eq!(
        spec.obs_len(),
        spec.agents.iter().map(|a| a.obs_dim).sum::<usize>(),
        "{id}"
    );

    // Shapes and finite values over a few episodes.
    for seed in 0..3 {
        let ep = run_episode(env.as_mut(), Some(seed), 100 + seed);
        assert!(
            ep.rewards.len() <= spec.max_steps,
            "{id}: episode longer than max_steps"
        );
        for o in ep.obs.iter().chain(&ep.states) {
            assert!(
                o.iter().all(|v| v.is_finite()),
                "{id}: non-finite observation or state"
            );
        }
        for r in &ep.rewards {
            assert!(r.iter().all(|v| v.is_finite()), "{id}: non-finite reward");
        }
    }

    // Stepping a finished episode is refused.
    let ep = run_episode(env.as_mut(), Some(7), 7);
    if ep.rewards.len() == spec.max_steps {
        let mut actions = vec![0.0; spec.action_len()];
        random_actions(
            env.as_ref(),
            &mut ChaCha8Rng::seed_from_u64(0),
            &mut actions,
        );
        assert!(
            StepBuffers::new(&spec)
                .step(env.as_mut(), &actions)
                .is_err(),
            "{id}: stepped past the end of an episode"
        );
    }

    // Same seed, same episode; and a used env reset with a seed forgets its past.
    let fresh = run_episode(make().as_mut(), Some(42), 5);
    let used = run_episode(env.as_mut(), Some(42), 5);
    assert_eq!(
        fresh, used,
        "{id}: reset(seed) on a used environment differs from a fresh one"
    );
    let other = run_episode(make().as_mut(), Some(43), 5);
    assert_ne!(
        fresh.obs[0], other.obs[0],
        "{id}: different seeds gave the same initial state"
    );

    // Snapshot mid-episode and restore into another instance: the rest is identical.
    check_snapshot(id, &make);

    // VecEnv: the same episodes as single environments, final observations kept, no leaking.
    check_vec_env(id, &make);
}

fn check_snapshot(id: &str, make: &dyn Fn() -> Box<dyn MultiAgentEnv>) {
    let mut a = make();
    let spec = a.spec().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut out = StepBuffers::new(&spec);
    a.reset(Some(3), &mut out.obs);
    let mut actions = vec![0.0; spec.action_len()];
    let half = spec.max_steps / 2;
    for _ in 0..half {
        random_actions(a.as_ref(), &mut rng, &mut actions);
        out.step(a.as_mut(), &actions).expect("step");
        if out.ended() {
            return;
        }
    }
    let snap = a.snapshot();
    let mut b = make();
    let mut obs_b = vec![0.0; spec.obs_len()];
    b.reset(Some(12345), &mut obs_b);
    b.restore(&snap).expect("restore of own snapshot");
    b.observe(&mut obs_b);
    assert_eq!(out.obs, obs_b, "{id}: restored observation differs");
    // Continue both for the rest of the episode and one more (which exercises the restored RNG).
    let mut rng_b = rng.clone();
    let ea = continue_episodes(a.as_mut(), &mut rng, 2);
    let eb = continue_episodes(b.as_mut(), &mut rng_b, 2);
    assert_eq!(ea, eb, "{id}: a restored snapshot continues differently");
    assert!(b.restore(b"garbage").is_err(), "{id}: restored garbage");
}

/// Steps through the end of the current episode and `extra` more episodes (reset with the
/// environment's own generator), recording observations and rewards.
fn continue_episodes(
    env: &mut dyn MultiAgentEnv,
    rng: &mut ChaCha8Rng,
    extra: usize,
) -> Vec<Vec<f32>> {
    let spec = env.spec().clone();
    let mut out = StepBuffers::new(&spec);
    let mut actions = vec![0.0; spec.action_len()];
    let mut out_log = Vec::new();
    let mut episodes = 0;
    while episodes <= extra {
        random_actions(env, rng, &mut actions);
        out.step(env, &actions).expect("step");
        out_log.push(out.obs.clone());
        out_log.push(out.rewards.iter().map(|&x| x as f32).collect());
        if out.ended() {
            episodes += 1;
            env.reset(None, &mut out.obs);
            out_log.push(out.obs.clone());
        }
    }
    out_log
}

fn check_vec_env(id: &str, make: &dyn Fn() -> Box<dyn MultiAgentEnv>) {
    let n = 3;
    let mut venv = VecEnv::from_fn(n, 10, || Ok(make())).expect("VecEnv");
    let spec = venv.spec().clone();
    let mut vout = venv.new_step();
    let (obs_len, na, act_len) = (spec.obs_len(), spec.num_agents(), spec.action_len());
    // Reference: the same environments stepped by hand, reset with the VecEnv's seeds.
    let mut singles: Vec<_> = (0..n).map(|_| make()).collect();
    let mut single_out: Vec<_> = (0..n).map(|_| StepBuffers::new(&spec)).collect();
    venv.reset(77, &mut vout, 0);
    for (i, e) in singles.iter_mut().enumerate() {
        e.reset(
            Some(crate::api::derive_seed(77, 10 + i as u64)),
            &mut single_out[i].obs,
        );
    }
    let single_obs: Vec<f32> = single_out.iter().flat_map(|o| o.obs.clone()).collect();
    assert_eq!(vout.obs, single_obs, "{id}: VecEnv reset differs");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut actions = vec![0.0; n * act_len];
    let mut finished = 0;
    for _ in 0..(2 * spec.max_steps + 3) {
        for i in 0..n {
            random_actions(
                singles[i].as_ref(),
                &mut rng,
                &mut actions[i * act_len..(i + 1) * act_len],
            );
        }
        venv.step(&actions, &mut vout, 0).expect("VecEnv step");
        for (i, e) in singles.iter_mut().enumerate() {
            let out = &mut single_out[i];
            out.step(e.as_mut(), &actions[i * act_len..(i + 1) * act_len])
                .expect("step");
            assert_eq!(
                &vout.rewards[i * na..(i + 1) * na],
                out.rewards.as_slice(),
                "{id}: VecEnv rewards"
            );
            let done = out.ended();
            assert_eq!(vout.done[i], done, "{id}: VecEnv done flag");
            if done {
                finished += 1;
                assert_eq!(
                    &vout.final_obs[i * obs_len..(i + 1) * obs_len],
                    out.obs.as_slice(),
                    "{id}: VecEnv lost the final observation"
                );
                let mut st = vec![0.0; spec.state_dim];
                e.state(&mut st);
                let d = spec.state_dim;
                assert_eq!(
                    &vout.final_states[i * d..(i + 1) * d],
                    st.as_slice(),
                    "{id}: final state"
                );
                e.reset(None, &mut out.obs);
            }
            assert_eq!(
                &vout.obs[i * obs_len..(i + 1) * obs_len],
                out.obs.as_slice(),
                "{id}: VecEnv observation differs (state leaked across an auto-reset?)"
            );
        }
    }
    assert!(finished >= n, "{id}: no episode finished in 2 x max_steps");

    // VecEnv snapshot round trip.
    let snap = venv.snapshot();
    let mut other = VecEnv::from_fn(n, 10, || Ok(make())).expect("VecEnv");
    let mut other_out = other.new_step();
    other.reset(999, &mut other_out, 0);
    other
        .restore(&snap, &mut other_out, 0)
        .expect("VecEnv restore");
    assert_eq!(vout.obs, other_out.obs, "{id}: VecEnv restore");
    for _ in 0..spec.max_steps {
        for i in 0..n {
            random_actions(
                singles[i].as_ref(),
                &mut rng,
                &mut actions[i * act_len..(i + 1) * act_len],
            );
        }
        venv.step(&actions, &mut vout, 0).expect("step");
        other.step(&actions, &mut other_out, 0).expect("step");
        assert_eq!(
            vout.obs, other_out.obs,
            "{id}: restored VecEnv continues differently"
        );
        assert_eq!(vout.done, other_out.done, "{id}: done flags after restore");
        for i in (0..n).filter(|&i| vout.done[i]) {
            let (a, b) = (
                &vout.final_return[i * na..(i + 1) * na],
                &other_out.final_return[i * na..(i + 1) * na],
            );
            assert_eq!(a, b, "{id}: episode returns after restore");
        }
    }
}
