//! Plays one episode of an LBF task with the scripted group policy and prints ASCII frames.
//!
//! `cargo run -p marl-envs --example lbf_episode -- Foraging-10x10-3p-3f-coop-v3 7`

use marl_envs::grid::heuristic;
use marl_envs::{MultiAgentEnv, StepOut};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let id = args
        .next()
        .unwrap_or_else(|| "Foraging-8x8-2p-2f-coop-v3".into());
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let mut env = marl_envs::grid::make_task(&id, &toml::Table::new())?;
    let n = env.spec().num_agents();
    let mut obs = vec![0.0; env.spec().obs_len()];
    let (mut r, mut te, mut tr) = (vec![0.0; n], vec![false; n], vec![false; n]);
    let mut actions = vec![0.0; n];
    let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
    let mut policy = heuristic::GroupPolicy::default();
    env.reset(Some(seed), &mut obs);
    let mut total = 0.0;
    loop {
        println!("{}", env.render_ascii());
        policy.act(&env.grid, &mut rng, &mut actions);
        println!("actions {actions:?}");
        let out = StepOut {
            obs: &mut obs,
            rewards: &mut r,
            terminated: &mut te,
            truncated: &mut tr,
        };
        env.step(&actions, out)?;
        total += r.iter().sum::<f64>();
        if te[0] || tr[0] {
            break;
        }
    }
    println!("{}team return {total:.3}", env.render_ascii());
    Ok(())
}
