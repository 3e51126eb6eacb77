//! Environment throughput on one core: `simple_spread_v3` (N = 3) stepped alone and in a
//! `VecEnv`, Level-Based Foraging (8x8-2p-2f-coop, 15x15-4p-5f) alone, and the multi-robot
//! warehouse (rware-tiny-2ag, rware-small-4ag, rware-tiny-8ag) and IC3Net's predator-prey (the
//! paper's easy and medium settings) alone with uniform actions, as rware's speed is quoted (`scripts/bench_rware_reference.py` times rware itself). Actions are drawn up
//! front (uniform; invalid LBF actions become NONE as in the reference) so only the
//! environment is measured; episodes reset when they end.
//! Criterion prints the throughput in env-steps/s ("elem/s").
//!
//! `cargo bench -p marl-envs --bench step`

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput,
};
use marl_envs::particle::{self, spread::SpreadParams};
use marl_envs::{MultiAgentEnv, StepBuffers, VecEnv, VecStep};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const STEPS: usize = 1000;

/// `n` uniform action indices `0..choices`, drawn from `seed`.
fn actions(n: usize, choices: u32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| rng.random_range(0..choices) as f32)
        .collect()
}

/// Times `STEPS` steps of `env` under `name`, with uniform actions `0..choices` drawn up front
/// from `seed` and a reset whenever an episode ends: every single-environment benchmark.
fn bench_steps<E: MultiAgentEnv>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut env: E,
    choices: u32,
    seed: u64,
) {
    let n = env.spec().num_agents();
    let acts = actions(STEPS * n, choices, seed);
    let mut out = StepBuffers::new(env.spec());
    env.reset(Some(0), &mut out.obs);
    group.bench_function(name, |b| {
        b.iter(|| {
            for a in acts.chunks_exact(n) {
                out.step(&mut env, black_box(a)).expect("step");
                if out.ended() {
                    env.reset(None, &mut out.obs);
                }
            }
            black_box(&out.obs);
        })
    });
}

fn single_env(c: &mut Criterion) {
    let mut group = c.benchmark_group("spread_n3");
    group.throughput(Throughput::Elements(STEPS as u64));
    let env = particle::spread(&SpreadParams::default()).expect("spread");
    bench_steps(&mut group, "single_env_step", env, 5, 1);
    group.finish();
}

fn vec_env(c: &mut Criterion) {
    let mut group = c.benchmark_group("spread_n3_vec_env");
    for n_envs in [16usize, 128] {
        // About STEPS env-steps per iteration whatever the number of environments.
        let iters = (STEPS / n_envs).max(1);
        group.throughput(Throughput::Elements((iters * n_envs) as u64));
        let mut venv = VecEnv::from_fn(n_envs, 0, || {
            Ok(Box::new(particle::spread(&SpreadParams::default())?) as Box<dyn MultiAgentEnv>)
        })
        .expect("VecEnv");
        // Only what the environments produce: empty states and masks are not written.
        let mut out = VecStep {
            states: Vec::new(),
            masks: Vec::new(),
            ..venv.new_step()
        };
        venv.reset(0, &mut out, 0);
        let acts = actions(n_envs * 3 * iters, 5, 2);
        group.bench_function(format!("{n_envs}_envs"), |b| {
            b.iter(|| {
                for a in acts.chunks_exact(n_envs * 3) {
                    venv.step(black_box(a), &mut out, 0).expect("step");
                }
                black_box(&out.obs);
            })
        });
    }
    group.finish();
}

fn foraging(c: &mut Criterion) {
    let mut group = c.benchmark_group("foraging");
    group.throughput(Throughput::Elements(STEPS as u64));
    for id in ["Foraging-8x8-2p-2f-coop-v3", "Foraging-15x15-4p-5f-v3"] {
        let env = marl_envs::grid::make_task(id, &toml::Table::new()).expect("task");
        bench_steps(&mut group, id, env, 6, 3);
    }
    group.finish();
}

fn warehouse(c: &mut Criterion) {
    let mut group = c.benchmark_group("rware");
    group.throughput(Throughput::Elements(STEPS as u64));
    for id in [
        "rware-tiny-2ag-v2",
        "rware-small-4ag-v2",
        "rware-tiny-8ag-v2",
    ] {
        let env = marl_envs::grid::warehouse::make_task(id, &toml::Table::new()).expect("task");
        bench_steps(&mut group, id, env, 5, 4);
    }
    group.finish();
}

fn predator_prey(c: &mut Criterion) {
    let mut group = c.benchmark_group("predator_prey");
    group.throughput(Throughput::Elements(STEPS as u64));
    for id in ["predator_prey-5x5-3p-v0", "predator_prey-10x10-5p-v0"] {
        let env = marl_envs::grid::predator_prey::make_task(id, &toml::Table::new()).expect("task");
        bench_steps(&mut group, id, env, 5, 5);
    }
    group.finish();
}

criterion_group!(
    benches,
    single_env,
    vec_env,
    foraging,
    warehouse,
    predator_prey
);
criterion_main!(benches);
