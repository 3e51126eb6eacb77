//! Steps a warehouse task with uniform random actions (drawn up front, resets included), for
//! profiling (`perf record`) and for timing by CPU time with `perf stat` on a busy machine.
//!
//! `cargo run -p marl-envs --release --example rware_steps -- rware-small-4ag-v2 5000000`

use marl_envs::StepOut;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let id = args.next().unwrap_or_else(|| "rware-tiny-2ag-v2".into());
    let steps: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let mut env = marl_envs::make(&id, &toml::Table::new())?;
    let n = env.spec().num_agents();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let acts: Vec<f32> = (0..100_000 * n)
        .map(|_| rng.random_range(0..5) as f32)
        .collect();
    let mut obs = vec![0.0; env.spec().obs_len()];
    let (mut r, mut te, mut tr) = (vec![0.0; n], vec![false; n], vec![false; n]);
    env.reset(Some(0), &mut obs);
    let start = std::time::Instant::now();
    for a in acts.chunks_exact(n).cycle().take(steps) {
        let out = StepOut {
            obs: &mut obs,
            rewards: &mut r,
            terminated: &mut te,
            truncated: &mut tr,
        };
        env.step(a, out)?;
        if tr[0] {
            env.reset(None, &mut obs);
        }
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "{id}: {steps} steps in {s:.3} s, {:.0} env-steps/s",
        steps as f64 / s
    );
    Ok(())
}
