//! IC3Net's predator-prey: spaces, the observation's vocabulary, moves, the rewards of each
//! mode, who is terminated when, parameters, and no allocation per step. (Parity with the
//! reference itself: `parity::every_predator_prey_trace_replays_exactly`.)

use marl_envs::grid::predator_prey::PredatorPreyEnv;
use marl_envs::{make, ActionSpace, MultiAgentEnv, StepBuffers, StepOut, WorldState};

const UP: f32 = 0.0;
const RIGHT: f32 = 1.0;
const DOWN: f32 = 2.0;
const LEFT: f32 = 3.0;
const STAY: f32 = 4.0;

fn env(id: &str, params: &str) -> Box<dyn MultiAgentEnv> {
    let table: toml::Table = toml::from_str(params).expect("toml");
    make(id, &table).unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn error(id: &str, params: &str) -> String {
    let table: toml::Table = toml::from_str(params).expect("toml");
    make(id, &table).err().expect("must fail").to_string()
}

/// `env` loaded with predators at `predators` and the prey at `prey`.
fn placed(env: &mut dyn MultiAgentEnv, predators: &[(usize, usize)], prey: (usize, usize)) {
    let mut obs = vec![0.0; env.spec().obs_len()];
    env.reset(Some(0), &mut obs);
    let mut ws = WorldState::default();
    ws.insert(
        "predator_pos",
        predators
            .iter()
            .flat_map(|&(r, c)| [r as f64, c as f64])
            .collect(),
    );
    ws.insert("prey_pos", vec![prey.0 as f64, prey.1 as f64]);
    env.set_state(&ws).expect("set_state");
}

fn cells(env: &dyn MultiAgentEnv) -> Vec<f64> {
    env.get_state().fields["predator_pos"].clone()
}

#[test]
fn the_paper_settings_have_the_reference_spaces() {
    // (id, predators, obs: (2v+1)^2 * (D^2 + 4), state: (N + 1) * D^2, max_steps)
    for (id, n, obs, state, steps) in [
        ("ic3net/predator_prey-5x5-3p-v0", 3, 29, 100, 20),
        ("ic3net/predator_prey-10x10-5p-v0", 5, 9 * 104, 600, 40),
        ("ic3net/predator_prey-20x20-10p-v0", 10, 9 * 404, 4400, 80),
        ("ic3net/predator_prey_v0", 3, 29, 100, 20),
    ] {
        let e = env(id, "");
        let spec = e.spec();
        assert_eq!(spec.id, id);
        assert_eq!(spec.num_agents(), n, "{id}");
        assert_eq!(spec.max_steps, steps, "{id}");
        assert_eq!(spec.state_dim, state, "{id}");
        for (i, a) in spec.agents.iter().enumerate() {
            assert_eq!(a.name, format!("predator_{i}"));
            assert_eq!(a.obs_dim, obs, "{id}");
            assert_eq!(a.action_space, ActionSpace::Discrete(5), "{id}");
        }
    }
    let e = env(
        "ic3net/predator_prey-5x5-3p-v0",
        "no_stay = true\nvision = 2",
    );
    assert_eq!(e.spec().agents[0].action_space, ActionSpace::Discrete(4));
    assert_eq!(e.spec().agents[0].obs_dim, 25 * 29);
}

#[test]
fn the_observation_is_the_one_hot_vocabulary_of_each_window_cell() {
    // 4x4, vision 1: vocabulary 20 = 16 cells + unused + outside + prey + predators.
    let mut e = env(
        "ic3net/predator_prey_v0",
        "dim = 4\nnpredator = 3\nvision = 1",
    );
    placed(e.as_mut(), &[(0, 0), (1, 1), (1, 1)], (0, 1));
    let mut obs = vec![0.0; e.spec().obs_len()];
    e.observe(&mut obs);
    let vocab = 20;
    let (outside, prey, predators) = (17, 18, 19);
    let me = &obs[..9 * vocab];
    let hot = |k: usize| -> Vec<(usize, f32)> {
        let cell = &me[k * vocab..(k + 1) * vocab];
        (0..vocab)
            .filter(|&j| cell[j] != 0.0)
            .map(|j| (j, cell[j]))
            .collect()
    };
    // Window row 0 and column 0 are outside the grid for the predator at (0, 0).
    for k in [0, 1, 2, 3, 6] {
        assert_eq!(hot(k), vec![(outside, 1.0)], "window cell {k}");
    }
    assert_eq!(hot(4), vec![(0, 1.0), (predators, 1.0)], "its own cell");
    assert_eq!(
        hot(5),
        vec![(1, 1.0), (prey, 1.0)],
        "the prey's cell (0, 1)"
    );
    assert_eq!(hot(7), vec![(4, 1.0)], "cell (1, 0)");
    assert_eq!(
        hot(8),
        vec![(5, 1.0), (predators, 2.0)],
        "two predators on (1, 1)"
    );
    // Index 16 (the reference's unused slot) is never set.
    assert!(obs.chunks_exact(vocab).all(|c| c[16] == 0.0));
    // The state: each predator's cell one-hot, then the prey's.
    let mut state = vec![0.0; e.spec().state_dim];
    e.state(&mut state);
    let ones: Vec<usize> = (0..state.len()).filter(|&j| state[j] == 1.0).collect();
    assert_eq!(ones, vec![0, 16 + 5, 32 + 5, 48 + 1]);
}

#[test]
fn moves_off_the_grid_stay_and_predators_may_share_a_cell() {
    let mut e = env("ic3net/predator_prey_v0", "dim = 5\nnpredator = 3");
    placed(e.as_mut(), &[(0, 0), (4, 4), (2, 3)], (2, 1));
    let mut out = StepBuffers::new(e.spec());
    out.step(e.as_mut(), &[UP, DOWN, LEFT]).expect("step");
    assert_eq!(cells(e.as_ref()), vec![0.0, 0.0, 4.0, 4.0, 2.0, 2.0]);
    out.step(e.as_mut(), &[LEFT, RIGHT, STAY]).expect("step");
    assert_eq!(cells(e.as_ref()), vec![0.0, 0.0, 4.0, 4.0, 2.0, 2.0]);
    out.step(e.as_mut(), &[DOWN, UP, UP]).expect("step");
    assert_eq!(cells(e.as_ref()), vec![1.0, 0.0, 3.0, 4.0, 1.0, 2.0]);
    out.step(e.as_mut(), &[RIGHT, UP, LEFT]).expect("step");
    assert_eq!(cells(e.as_ref()), vec![1.0, 1.0, 2.0, 4.0, 1.0, 1.0]);
    assert_eq!(out.rewards, vec![-0.05; 3]);
    let err = out
        .step(e.as_mut(), &[5.0, 0.0, 0.0])
        .expect_err("action 5");
    assert!(err.to_string().contains("Discrete(5)"), "{err}");
}

#[test]
fn in_mixed_mode_a_predator_on_the_prey_is_frozen_paid_nothing_and_terminated() {
    let mut e = env("ic3net/predator_prey-5x5-3p-v0", "");
    placed(e.as_mut(), &[(2, 1), (0, 0), (4, 4)], (2, 2));
    let mut out = StepBuffers::new(e.spec());
    out.step(e.as_mut(), &[RIGHT, STAY, STAY]).expect("step");
    assert_eq!(out.rewards, vec![0.0, -0.05, -0.05]);
    assert_eq!(out.terminated, vec![true, false, false]);
    assert!(!out.ended());
    // Its actions are ignored from now on, and it keeps being paid 0.
    out.step(e.as_mut(), &[LEFT, RIGHT, UP]).expect("step");
    assert_eq!(cells(e.as_ref())[..2], [2.0, 2.0]);
    assert_eq!(out.rewards, vec![0.0, -0.05, -0.05]);
    assert_eq!(out.terminated, vec![true, false, false]);
    let mut metrics = [0.0; 2];
    e.metrics(&mut metrics);
    assert_eq!(metrics, [0.0, 1.0 / 3.0]);
    // The others reach it: the episode ends, every predator terminated, nobody truncated.
    placed(e.as_mut(), &[(2, 2), (2, 1), (2, 3)], (2, 2));
    out.step(e.as_mut(), &[STAY, RIGHT, LEFT]).expect("step");
    assert_eq!(out.rewards, vec![0.0; 3]);
    assert_eq!(out.terminated, vec![true; 3]);
    assert_eq!(out.truncated, vec![false; 3]);
    e.metrics(&mut metrics);
    assert_eq!(metrics, [1.0, 1.0]);
    assert!(
        out.step(e.as_mut(), &[STAY; 3]).is_err(),
        "stepped a finished episode"
    );
}

#[test]
fn in_cooperative_and_competitive_modes_predators_on_the_prey_stay_alive_until_the_limit() {
    for (mode, paid) in [("cooperative", 0.05 * 2.0), ("competitive", 0.05 / 2.0)] {
        let mut e = env(
            "ic3net/predator_prey-5x5-3p-v0",
            &format!("mode = \"{mode}\"\nmax_steps = 3"),
        );
        placed(e.as_mut(), &[(2, 1), (2, 3), (0, 0)], (2, 2));
        let mut out = StepBuffers::new(e.spec());
        out.step(e.as_mut(), &[RIGHT, LEFT, STAY]).expect("step");
        assert_eq!(out.rewards, vec![paid, paid, -0.05], "{mode}");
        assert_eq!(out.terminated, vec![false; 3], "{mode}");
        out.step(e.as_mut(), &[DOWN, UP, STAY]).expect("step");
        assert_eq!(
            out.rewards,
            vec![paid, paid, -0.05],
            "{mode}: frozen on the prey"
        );
        assert!(!out.ended(), "{mode}");
        out.step(e.as_mut(), &[STAY; 3]).expect("step");
        assert_eq!(out.terminated, vec![false; 3], "{mode}");
        assert_eq!(
            out.truncated,
            vec![true; 3],
            "{mode}: the time limit truncates"
        );
    }
    // All on the prey does not end a cooperative episode: the reference keeps paying.
    let mut e = env("ic3net/predator_prey-5x5-3p-v0", "mode = \"cooperative\"");
    placed(e.as_mut(), &[(2, 1), (2, 3), (1, 2)], (2, 2));
    let mut out = StepBuffers::new(e.spec());
    out.step(e.as_mut(), &[RIGHT, LEFT, DOWN]).expect("step");
    assert_eq!(out.rewards, vec![0.05 * 3.0; 3]);
    assert!(!out.ended());
    let mut metrics = [0.0; 2];
    e.metrics(&mut metrics);
    assert_eq!(metrics, [1.0, 1.0]);
}

#[test]
fn a_mixed_episode_cut_by_the_limit_truncates_only_the_predators_still_hunting() {
    let mut e = env("ic3net/predator_prey-5x5-3p-v0", "max_steps = 2");
    placed(e.as_mut(), &[(2, 1), (0, 0), (4, 4)], (2, 2));
    let mut out = StepBuffers::new(e.spec());
    out.step(e.as_mut(), &[RIGHT, STAY, STAY]).expect("step");
    out.step(e.as_mut(), &[STAY; 3]).expect("step");
    assert_eq!(out.terminated, vec![true, false, false]);
    assert_eq!(out.truncated, vec![false, true, true]);
    assert!(out.ended());
}

#[test]
fn reset_puts_predators_and_prey_on_distinct_cells_drawn_from_the_seed() {
    let mut e = env("ic3net/predator_prey-5x5-3p-v0", "");
    let mut obs = vec![0.0; e.spec().obs_len()];
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        e.reset(Some(seed), &mut obs);
        let s = e.get_state();
        let mut all: Vec<(u64, u64)> = s.fields["predator_pos"]
            .chunks_exact(2)
            .chain(s.fields["prey_pos"].chunks_exact(2))
            .map(|p| (p[0] as u64, p[1] as u64))
            .collect();
        assert!(all.iter().all(|&(r, c)| r < 5 && c < 5));
        seen.insert(all[3]);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 4, "seed {seed}: cells shared at reset");
        assert_eq!(s.fields["reached"], vec![0.0; 3]);
    }
    assert_eq!(seen.len(), 25, "the prey reaches every cell");
}

#[test]
fn bad_parameters_are_named() {
    let id = "ic3net/predator_prey_v0";
    let msg = error(id, "mode = \"team\"");
    assert!(
        msg.contains("unknown variant `team`") && msg.contains("cooperative"),
        "{msg}"
    );
    let msg = error(id, "dim = 5\nvision = 5");
    assert!(msg.contains("`vision` must be below `dim`"), "{msg}");
    let msg = error(id, "dim = 2\nnpredator = 4");
    assert!(msg.contains("`npredator` must be in 1..=3"), "{msg}");
    let msg = error(id, "max_steps = 0");
    assert!(msg.contains("`max_steps`"), "{msg}");
    let msg = error(id, "nagents = 3");
    assert!(
        msg.contains("nagents") && msg.contains("npredator"),
        "{msg}"
    );
    let msg = error("ic3net/predator_prey-10x10-5p-v0", "dim = \"ten\"");
    assert!(msg.contains("invalid type"), "{msg}");
    // Overrides on a task id keep the rest of the task.
    let e = env("ic3net/predator_prey-10x10-5p-v0", "mode = \"competitive\"");
    assert_eq!(e.spec().num_agents(), 5);
    assert_eq!(e.spec().max_steps, 40);
}

#[test]
fn set_state_rejects_cells_off_the_grid_and_false_reached_flags() {
    let mut e = env("ic3net/predator_prey-5x5-3p-v0", "");
    let mut ws = WorldState::default();
    ws.insert("predator_pos", vec![0.0, 0.0, 1.0, 5.0, 2.0, 2.0]);
    ws.insert("prey_pos", vec![3.0, 3.0]);
    let msg = e.set_state(&ws).expect_err("col 5").to_string();
    assert!(msg.contains("predator_pos") && msg.contains('5'), "{msg}");
    ws.insert("predator_pos", vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
    ws.insert("reached", vec![1.0, 0.0, 0.0]);
    let msg = e.set_state(&ws).expect_err("not on the prey").to_string();
    assert!(msg.contains("predator 0"), "{msg}");
    ws.insert("reached", vec![0.0, 0.0, 0.0]);
    e.set_state(&ws).expect("a valid state");
}

#[test]
fn stepping_and_resetting_allocate_nothing() {
    for id in [
        "ic3net/predator_prey-5x5-3p-v0",
        "ic3net/predator_prey-10x10-5p-v0",
    ] {
        let mut e = env(id, "");
        let spec = e.spec().clone();
        let n = spec.num_agents();
        let mut obs = vec![0.0; spec.obs_len()];
        let mut state = vec![0.0; spec.state_dim];
        let (mut r, mut te, mut tr) = (vec![0.0; n], vec![false; n], vec![false; n]);
        let mut metrics = [0.0; 2];
        let actions: Vec<f32> = (0..2000 * n)
            .map(|k| ((k * 7 + k / 3) % 5) as f32)
            .collect();
        e.reset(Some(1), &mut obs);
        let allocations = super::warehouse::counting_allocations(|| {
            for a in actions.chunks_exact(n) {
                let out = StepOut {
                    obs: &mut obs,
                    rewards: &mut r,
                    terminated: &mut te,
                    truncated: &mut tr,
                };
                e.step(a, out).expect("step");
                e.state(&mut state);
                e.metrics(&mut metrics);
                if marl_envs::all_ended(&te, &tr) {
                    e.reset(None, &mut obs);
                }
            }
        });
        assert_eq!(allocations, 0, "{id} allocated");
    }
}

#[test]
fn accessors_show_the_world() {
    let mut e = PredatorPreyEnv::new(
        "ic3net/predator_prey_v0",
        &marl_envs::grid::PredatorPreyParams::default(),
    )
    .expect("defaults");
    placed(&mut e, &[(0, 0), (0, 0), (4, 4)], (4, 4));
    assert_eq!(e.predators(), &[(0, 0), (0, 0), (4, 4)]);
    assert_eq!(e.prey(), (4, 4));
    assert_eq!(e.reached(), &[false; 3]);
    assert_eq!(
        e.render_ascii(),
        "step 0\n+....\n.....\n.....\n.....\n....*\n"
    );
}
