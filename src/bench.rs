//! `marl bench update`: one PPO minibatch update of MAPPO-sized networks on random data, the
//! same workloads as `shared/bench/torch_ppo_update.py`, printing the same line format so that
//! `scripts/bench-update.sh` can compare the two.
//!
//! - `plain`: actor 18-64-64-5 and critic 54-64-64-1, tanh, no LayerNorm, 0.5 x MSE value
//!   loss, one Adam (lr 2.5e-4) over both, global-norm clip 0.5 (JaxMARL / CleanRL).
//! - `mappo`: input LayerNorm, each hidden layer Linear -> tanh -> LayerNorm, clipped Huber(10)
//!   value loss, separate Adams (lr 7e-4) clipped at 10 each (on-policy).

use std::time::Instant;

use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::algo::ppo;
use crate::config::{Activation, ValueLoss};
use crate::nn::{dist, init::normal, mlp::Mlp};
use crate::optim::{clip_grad_norm, Adam};

/// A random minibatch of the benchmark's shapes (observations 18, critic inputs 54, 5 actions).
struct Data {
    obs: Vec<f32>,
    cobs: Vec<f32>,
    act: Vec<f32>,
    old_logp: Vec<f32>,
    adv: Vec<f32>,
    ret: Vec<f32>,
    old_v: Vec<f32>,
}

impl Data {
    fn new(b: usize, rng: &mut ChaCha8Rng) -> Self {
        let mut uni =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
        let (obs, cobs) = (uni(b * 18), uni(b * 54));
        let act = (0..b).map(|_| rng.random_range(0..5u32) as f32).collect();
        let old_logp = (0..b).map(|_| -1.6 + 0.1 * rng.random::<f32>()).collect();
        let mut gauss = || -> Vec<f32> { (0..b).map(|_| normal(rng) as f32).collect() };
        let (adv, ret, old_v) = (gauss(), gauss(), gauss());
        Self {
            obs,
            cobs,
            act,
            old_logp,
            adv,
            ret,
            old_v,
        }
    }
}

/// Median and minimum milliseconds per update of the hand-written CPU path
/// ([`crate::nn::cpu_mlp`], [`crate::algo::ppo_cpu`]) on the same workloads and arithmetic as
/// [`update`], on buffers kept between updates.
pub fn update_manual(arch: &str, batch: usize, reps: usize) -> Result<(f64, f64)> {
    use crate::algo::ppo_cpu::{policy_grad, value_grad, PolicyInputs};
    use crate::nn::cpu_mlp::{clip_global_norm, CpuMlp, FlatAdam};
    let ln = match arch {
        "plain" => false,
        "mappo" => true,
        other => anyhow::bail!("--arch {other}: expected plain or mappo"),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let net = |dims: &[usize], rng: &mut ChaCha8Rng| {
        let mut n = CpuMlp::new(dims, false, ln);
        for p in n.params.iter_mut() {
            *p = (normal(rng) * 0.15) as f32;
        }
        n
    };
    let mut actor = net(&[18, 64, 64, 5], &mut rng);
    let mut critic = net(&[54, 64, 64, 1], &mut rng);
    let b = batch;
    let Data {
        obs,
        cobs,
        act,
        old_logp,
        adv,
        ret,
        old_v,
    } = Data::new(b, &mut rng);
    let active = vec![1.0f32; b];
    let loss_cfg = ppo::LossConfig {
        clip_epsilon: 0.2,
        clip_value_loss: ln,
        value_loss: if ln { ValueLoss::Huber } else { ValueLoss::Mse },
        huber_delta: 10.0,
    };
    let (lr, vcoef, clip) = if ln {
        (7e-4, 1.0, 10.0)
    } else {
        (2.5e-4, 0.5, 0.5)
    };
    let mut opt_a = FlatAdam::new(actor.params.len(), lr, 1e-5);
    let mut opt_c = FlatAdam::new(critic.params.len(), lr, 1e-5);
    let mut d_logits = vec![0.0f32; b * 5];
    let mut d_v = vec![0.0f32; b];
    // One thread, as the reference: the learner also runs the critic's pass on the second
    // core, which this figure leaves out.
    let mut step = || {
        let logits = actor.forward(&obs, b);
        let inp = PolicyInputs {
            logits,
            mask_bias: None,
            n: 5,
            actions: &act,
            old_logp: &old_logp,
            advantages: &adv,
            active: &active,
        };
        policy_grad(&inp, 0.2, 0.01, &mut d_logits);
        actor.backward(&obs, &d_logits);
        let v = critic.forward(&cobs, b);
        value_grad(v, &old_v, &ret, &active, &loss_cfg, vcoef, &mut d_v);
        critic.backward(&cobs, &d_v);
        if ln {
            // on-policy: each network clipped on its own.
            clip_global_norm(&mut [&mut actor.grads], clip);
            clip_global_norm(&mut [&mut critic.grads], clip);
        } else {
            clip_global_norm(&mut [&mut actor.grads, &mut critic.grads], clip);
        }
        opt_a.step(&mut actor.params, &actor.grads);
        opt_c.step(&mut critic.params, &critic.grads);
    };
    time_it(batch, reps, &mut step)
}

/// Warms up, then times `reps` rounds of a batch-dependent number of calls; median and
/// minimum milliseconds per call.
fn time_it(batch: usize, reps: usize, step: &mut dyn FnMut()) -> Result<(f64, f64)> {
    let iters = (60_000 / batch).max(5);
    for _ in 0..iters {
        step();
    }
    let mut per = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..iters {
            step();
        }
        per.push(t.elapsed().as_secs_f64() * 1e3 / iters as f64);
    }
    per.sort_by(|a, b| a.total_cmp(b));
    Ok((per[per.len() / 2], per[0]))
}

/// Median and minimum milliseconds per update.
pub fn update(arch: &str, batch: usize, reps: usize) -> Result<(f64, f64)> {
    let dev = Device::Cpu;
    let ln = match arch {
        "plain" => false,
        "mappo" => true,
        other => anyhow::bail!("--arch {other}: expected plain or mappo"),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let actor = Mlp::new(18, &[64, 64], 5, Activation::Tanh, ln, 0.01, &mut rng, &dev)?;
    let critic = Mlp::new(54, &[64, 64], 1, Activation::Tanh, ln, 1.0, &mut rng, &dev)?;
    let (mut opts, clip) = if ln {
        (
            vec![
                Adam::new(actor.vars(), 7e-4, 1e-5)?,
                Adam::new(critic.vars(), 7e-4, 1e-5)?,
            ],
            10.0,
        )
    } else {
        let mut all = actor.vars();
        all.extend(critic.vars());
        (vec![Adam::new(all, 2.5e-4, 1e-5)?], 0.5)
    };
    let b = batch;
    let d = Data::new(b, &mut rng);
    let obs = Tensor::from_vec(d.obs, (b, 18), &dev)?;
    let cobs = Tensor::from_vec(d.cobs, (b, 54), &dev)?;
    let act = Tensor::from_vec(d.act.iter().map(|&a| a as u32).collect::<Vec<_>>(), b, &dev)?;
    let old_logp = Tensor::from_vec(d.old_logp, b, &dev)?;
    let adv = Tensor::from_vec(d.adv, b, &dev)?;
    let ret = Tensor::from_vec(d.ret, b, &dev)?;
    let old_v = Tensor::from_vec(d.old_v, b, &dev)?;
    let active = Tensor::ones(b, candle_core::DType::F32, &dev)?;
    let cfg = ppo::LossConfig {
        clip_epsilon: 0.2,
        clip_value_loss: ln,
        value_loss: if ln { ValueLoss::Huber } else { ValueLoss::Mse },
        huber_delta: 10.0,
    };
    let mut step = || -> Result<()> {
        let (logp, entropy) = dist::categorical(&actor.forward(&obs)?, None, &act)?;
        let v = critic.forward(&cobs)?.squeeze(1)?;
        let inp = ppo::LossInputs {
            logp: &logp,
            old_logp: &old_logp,
            advantages: &adv,
            entropy: &entropy,
            values: &v,
            old_values: &old_v,
            targets: &ret,
            active: &active,
        };
        let t = ppo::loss(&inp, &cfg)?;
        let vcoef = if ln { 1.0 } else { 0.5 };
        let loss = ((&t.policy_loss - (&t.entropy * 0.01)?)? + (&t.value_loss * vcoef)?)?;
        let mut grads = loss.backward()?;
        for o in opts.iter_mut() {
            clip_grad_norm(&mut grads, o.vars(), clip)?;
        }
        for o in opts.iter_mut() {
            o.step(&grads)?;
        }
        Ok(())
    };
    let mut err = None;
    let mut run = || {
        if err.is_none() {
            err = step().err();
        }
    };
    let r = time_it(b, reps, &mut run)?;
    match err {
        Some(e) => Err(e),
        None => Ok(r),
    }
}
