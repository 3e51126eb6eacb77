//! `marl bench update`: one PPO minibatch update (loss, gradient, clip, Adam) of MAPPO-sized
//! networks on random data, through the same [`Backend`] calls the trainer makes, on the same
//! workloads as the PyTorch reference `bench/torch_ppo_update.py`, printing its line format so
//! that `scripts/bench-update.sh` can compare the two.
//!
//! | arch | networks | loss and optimizer |
//! |---|---|---|
//! | `plain` | actor 18-64-64-5, critic 54-64-64-1, tanh | 0.5 x MSE value loss (coefficient 0.5), one Adam (lr 2.5e-4) over both, global-norm clip 0.5 (JaxMARL, CleanRL) |
//! | `mappo` | the same with an input LayerNorm and one after each hidden layer | clipped Huber(10) value loss, separate Adams (lr 7e-4) clipped at 10 each (on-policy) |
//! | `rnn` | actor 18 -> Dense 128 ReLU -> GRU 128 -> Dense 128 ReLU -> 5, critic 54 -> the same -> 1, on sequences of `--seq` steps from stored states (JaxMARL's MAPPO-RNN) | clipped 0.5 x MSE value loss, separate Adams (lr 2e-3) clipped at 0.5 each |

use std::time::Instant;

use anyhow::{bail, Result};
use candle_core::Device;
use marl_envs::ActionSpace;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::algo::ppo::LossConfig;
use crate::backend::{
    self, BackendKind, CriticRows, GroupShape, LossCoefs, Minibatch, NetShape, OptimShape,
    Precision, Recurrence, Run, SeqBatch, SideShape,
};
use crate::config::{OptimizerKind, ValueLoss};
use crate::nn::init::normal;

/// The benchmark's group: one agent, observations 18, critic inputs 54, 5 actions.
fn workload(arch: &str) -> Result<(GroupShape, LossCoefs)> {
    let (ln, rnn) = match arch {
        "plain" => (false, false),
        "mappo" => (true, false),
        "rnn" => (false, true),
        other => bail!("--arch {other}: expected plain, mappo or rnn"),
    };
    let net = |in_dim, out_dim, head_gain| NetShape {
        in_dim,
        hidden: if rnn { vec![128] } else { vec![64, 64] },
        out_dim,
        relu: rnn,
        layer_norm: ln,
        head_gain,
        recurrent: rnn.then(|| Recurrence {
            width: 128,
            after: vec![128],
        }),
    };
    let side = |kind: &str, net| SideShape {
        prefix: format!("bench.{kind}"),
        n_nets: 1,
        net,
        embedding: None,
        log_std: None,
        comm: None,
    };
    let (kind, lr, clip, value_loss, value_coef, clip_value_loss) = match (ln, rnn) {
        (true, _) => (
            OptimizerKind::Separate,
            7e-4,
            10.0,
            ValueLoss::Huber,
            1.0,
            true,
        ),
        (_, true) => (
            OptimizerKind::Separate,
            2e-3,
            0.5,
            ValueLoss::Mse,
            1.0,
            true,
        ),
        _ => (
            OptimizerKind::Joint,
            2.5e-4,
            0.5,
            ValueLoss::Mse,
            0.5,
            false,
        ),
    };
    let shape = GroupShape {
        name: "bench".into(),
        n_agents: 1,
        action_space: ActionSpace::Discrete(5),
        actor: side("actor", net(18, 5, 0.01)),
        critic: side("critic", net(54, 1, 1.0)),
        log_std_init: -0.5,
        optim: OptimShape {
            kind,
            learning_rate: lr,
            critic_learning_rate: lr,
            adam_eps: 1e-5,
            max_grad_norm: clip,
        },
        precision: Precision::F32,
    };
    let coefs = LossCoefs {
        loss: LossConfig {
            clip_epsilon: 0.2,
            clip_value_loss,
            value_loss,
            huber_delta: 10.0,
        },
        entropy_coef: 0.01,
        value_coef,
    };
    Ok((shape, coefs))
}

/// Median and minimum milliseconds per minibatch update of `arch` at `batch` rows on the
/// backend `kind` on `dev` in `precision`, one thread (the trainer also runs the critic's pass
/// on a second core, which this figure leaves out, as the reference does). On CUDA each update
/// ends with the device synchronized, as the trainer's reading of the losses does.
pub fn update(
    kind: BackendKind,
    arch: &str,
    batch: usize,
    seq: usize,
    reps: usize,
    dev: &Device,
    precision: Precision,
) -> Result<(f64, f64)> {
    let (mut shape, coefs) = workload(arch)?;
    shape.precision = precision;
    if kind == BackendKind::Cpu && !dev.is_cpu() {
        bail!("--impl manual is the CPU's backend; on CUDA use --impl candle");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let init = shape.init(&mut rng);
    let mut b = backend::build(kind, &shape, &init, dev, 1)?;
    let mut uni =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
    let (x_actor, x_critic) = (uni(batch * 18), uni(batch * 54));
    let actions: Vec<f32> = (0..batch)
        .map(|_| rng.random_range(0..5u32) as f32)
        .collect();
    let old_logp: Vec<f32> = (0..batch)
        .map(|_| -1.6 + 0.1 * rng.random::<f32>())
        .collect();
    let mut gauss = || -> Vec<f32> { (0..batch).map(|_| normal(&mut rng) as f32).collect() };
    let (advantages, targets, old_values) = (gauss(), gauss(), gauss());
    let active = vec![1.0f32; batch];
    let agents = vec![0u32; batch];
    let runs = [Run {
        agent: 0,
        start: 0,
        len: batch,
    }];
    // Recurrent: `batch / seq` sequences from stored states, no episode start inside.
    let recurrent = shape.actor.state_width().is_some();
    if recurrent && (seq == 0 || !batch.is_multiple_of(seq)) {
        bail!("--batch {batch} must be a multiple of --seq {seq}");
    }
    let n_seq = if recurrent { batch / seq } else { 0 };
    let starts = vec![0.0f32; if recurrent { batch } else { 0 }];
    let h0 = |w: Option<usize>, rng: &mut ChaCha8Rng| -> Vec<f32> {
        (0..n_seq * w.unwrap_or(0))
            .map(|_| (0.1 * normal(rng)) as f32)
            .collect()
    };
    let (h0_actor, h0_critic) = (
        h0(shape.actor.state_width(), &mut rng),
        h0(shape.critic.state_width(), &mut rng),
    );
    let mb = Minibatch {
        rows: batch,
        x_actor: &x_actor,
        x_critic: CriticRows::whole(&x_critic),
        actions: &actions,
        mask_bias: None,
        old_logp: &old_logp,
        old_values: &old_values,
        active: &active,
        advantages: &advantages,
        targets: &targets,
        agents: &agents,
        runs: &runs,
        seq: recurrent.then_some(SeqBatch {
            len: seq,
            starts: &starts,
            h0_actor: &h0_actor,
            h0_critic: &h0_critic,
        }),
        channels: None,
    };
    let mut step = || -> Result<()> {
        b.accumulate(&mb, &coefs, None)?;
        b.step(1)?;
        Ok(dev.synchronize()?)
    };
    time_it(batch, reps, &mut step)
}

/// Warms up, then times `reps` rounds of a batch-dependent number of calls; median and
/// minimum milliseconds per call.
fn time_it(batch: usize, reps: usize, step: &mut dyn FnMut() -> Result<()>) -> Result<(f64, f64)> {
    let iters = (60_000 / batch).max(5);
    for _ in 0..iters {
        step()?;
    }
    let mut per = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..iters {
            step()?;
        }
        per.push(t.elapsed().as_secs_f64() * 1e3 / iters as f64);
    }
    per.sort_by(|a, b| a.total_cmp(b));
    Ok((per[per.len() / 2], per[0]))
}

/// The backend a `--impl` names.
pub fn kind_of(implementation: &str) -> Result<BackendKind> {
    Ok(match implementation {
        "manual" | "cpu" => BackendKind::Cpu,
        "candle" => BackendKind::Candle,
        other => bail!("--impl {other}: expected manual (the hand-written CPU backend) or candle"),
    })
}
