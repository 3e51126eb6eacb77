//! Level-Based Foraging behaviour beyond replaying traces: the cooperative tasks are solvable
//! by a scripted group policy and not by random play, the team variant is zero-sum, and bad
//! parameters are refused.

use marl_envs::grid::{heuristic, ForagingEnv};
use marl_envs::testing::{play_episode, random_actions};
use marl_envs::{registry, MultiAgentEnv};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Mean team return (sum over agents) over `seeds` episodes.
fn team_return(env: &mut ForagingEnv, seeds: std::ops::Range<u64>, scripted: bool) -> f64 {
    let count = seeds.end - seeds.start;
    let mut total = 0.0;
    for seed in seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let mut policy = heuristic::GroupPolicy::default();
        let act = |env: &ForagingEnv, actions: &mut [f32]| {
            if scripted {
                policy.act(&env.grid, &mut rng, actions);
            } else {
                random_actions(env, &mut rng, actions);
            }
        };
        total += play_episode(env, Some(seed), act, |_| {})
            .iter()
            .sum::<f64>();
    }
    total / count as f64
}

fn task(id: &str) -> ForagingEnv {
    marl_envs::grid::make_task(id, &toml::Table::new()).expect("task")
}

#[test]
fn the_group_policy_solves_the_coop_task_and_random_play_does_not() {
    let mut env = task("Foraging-8x8-2p-2f-coop-v3");
    let scripted = team_return(&mut env, 0..100, true);
    eprintln!("8x8-2p-2f-coop team return over 100 seeds: group policy {scripted:.3}");
    assert!(
        scripted > 0.9,
        "group policy team return {scripted:.3} on 8x8-2p-2f-coop"
    );
    // Random play with action masks (invalid actions never drawn) still scores about 0.
    let random = team_return(&mut env, 0..100, false);
    eprintln!("8x8-2p-2f-coop team return over 100 seeds: random {random:.4}");
    assert!(random < 0.05, "random team return {random:.3}");
}

#[test]
fn the_group_policy_solves_the_partially_observed_and_larger_coop_tasks() {
    let mut env = task("Foraging-2s-8x8-2p-2f-coop-v3");
    let r = team_return(&mut env, 0..50, true);
    assert!(r > 0.9, "2s-8x8-2p-2f-coop: {r:.3}");
    let mut env = task("Foraging-10x10-3p-3f-coop-v3");
    let r = team_return(&mut env, 0..50, true);
    eprintln!("10x10-3p-3f-coop team return over 50 seeds: group policy {r:.3}");
    assert!(r > 0.8, "10x10-3p-3f-coop: {r:.3}");
}

#[test]
fn team_foraging_is_zero_sum_and_grouped_by_team() {
    let mut env = registry::make("grid/team_foraging_v1", &toml::Table::new()).expect("make");
    let spec = env.spec().clone();
    assert_eq!(spec.agent_types(), vec!["team_a", "team_b"]);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut nonzero = 0;
    for seed in 0..30 {
        play_episode(
            env.as_mut(),
            Some(seed),
            |e, a| random_actions(e, &mut rng, a),
            |r| {
                let sum: f64 = r.iter().sum();
                assert!(sum.abs() < 1e-12, "rewards {r:?} do not sum to zero");
                nonzero += r.iter().filter(|&&x| x != 0.0).count();
            },
        );
    }
    assert!(nonzero > 0, "no food was ever loaded in 30 random episodes");
    // Own team is flagged +1, the other -1, self first.
    let mut obs = vec![0.0; spec.obs_len()];
    env.reset(Some(0), &mut obs);
    let d = spec.agents[0].obs_dim;
    let slots = &obs[3 * 4..d];
    assert_eq!(slots[3], 1.0, "self slot must carry the own-team flag");
    assert!(
        slots.chunks(4).any(|s| s[3] == -1.0),
        "the other team must be visible with full sight"
    );
}

#[test]
fn every_lbforaging_task_id_is_understood_and_bad_params_are_refused() {
    let env = registry::make("Foraging-2s-12x12-5p-4f-coop-v3", &toml::Table::new()).expect("make");
    assert_eq!(env.spec().num_agents(), 5);
    assert_eq!(env.spec().agents[0].obs_dim, 3 * 4 + 3 * 5);
    let params: toml::Table = toml::from_str("sight = 3\npenalty = 0.1").expect("toml");
    assert!(registry::make("Foraging-8x8-2p-2f-coop-v3", &params).is_ok());

    let bad: toml::Table = toml::from_str("players = 2\nsigth = 3").expect("toml");
    let msg = registry::make("grid/foraging_v3", &bad)
        .err()
        .expect("must fail")
        .to_string();
    assert!(msg.contains("sigth") && msg.contains("sight"), "{msg}");
    let grid: toml::Table = toml::from_str("grid_observation = true").expect("toml");
    let msg = registry::make("grid/foraging_v3", &grid)
        .err()
        .expect("must fail")
        .to_string();
    assert!(msg.contains("grid_observation"), "{msg}");
    let tiny: toml::Table = toml::from_str("field_size = [2, 8]").expect("toml");
    assert!(registry::make("grid/foraging_v3", &tiny).is_err());
}

#[test]
fn masks_follow_the_rules() {
    let mut env = task("Foraging-8x8-2p-2f-coop-v3");
    let mut obs = vec![0.0; env.spec().obs_len()];
    env.reset(Some(5), &mut obs);
    let mut mask = vec![false; env.spec().mask_len()];
    env.avail_actions(&mut mask);
    for i in 0..2 {
        let (r, c) = env.grid.pos[i];
        let m = &mask[6 * i..6 * i + 6];
        assert!(m[0], "NONE is always valid");
        assert_eq!(m[1], r > 0 && env.grid.food(r - 1, c) == 0);
        assert_eq!(m[3], c > 0 && env.grid.food(r, c - 1) == 0);
    }
}
