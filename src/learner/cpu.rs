//! The PPO update of one group by hand on the CPU: `nn::cpu_mlp` forward and backward,
//! `algo::ppo_cpu` loss gradients, flat Adam, all on buffers kept between updates (nothing is
//! allocated per minibatch once the first update has sized them). 2 to 2.7x faster than candle's
//! autograd on the same arithmetic (`marl bench update --impl manual`, README Performance).
//!
//! It serves the groups it fits ([`fits`]): CPU, discrete actions, one shared actor and one
//! shared critic (with or without LayerNorms), no learned agent embedding, no gradient
//! accumulation, no per-agent loss logging. Everything else takes the candle path. The candle
//! variables and Adam moments stay the source of truth between updates: the update reads them
//! in and writes them back (a few tens of thousands of floats), so acting, checkpoints, resume
//! and evaluation are unchanged.

use anyhow::{bail, Result};
use candle_core::{Device, Tensor, Var};
use rand::seq::SliceRandom;

use super::{explained_variance_of, normalize_masked, GroupStats, Learner};
use crate::algo::ppo::LossConfig;
use crate::algo::ppo_cpu::{policy_grad, value_grad, PolicyInputs};
use crate::config::{AdvantageNorm, OptimizerKind, PpoConfig};
use crate::nn::cpu_mlp::{clip_global_norm, fold, unfold, CpuMlp, FlatAdam};
use crate::optim::Adam;
use crate::policy::GroupPolicy;
use marl_envs::ActionSpace;

/// Whether group `pol` can be updated by hand (see the module docs).
pub fn fits(pol: &GroupPolicy, p: &PpoConfig, log_agent_metrics: bool, dev: &Device) -> bool {
    matches!(dev, Device::Cpu)
        && matches!(pol.group.action_space, ActionSpace::Discrete(_))
        && pol.actors.len() == 1
        && pol.critics.len() == 1
        && pol.log_std.is_empty()
        && !pol.actors[0].has_embedding()
        && !pol.critics[0].has_embedding()
        && p.grad_accum_steps == 1
        && !log_agent_metrics
}

/// A group's hand-written learner: networks, optimizers and minibatch buffers.
pub struct CpuGroup {
    actor: CpuMlp,
    critic: CpuMlp,
    actor_adam: FlatAdam,
    critic_adam: FlatAdam,
    x_actor: Vec<f32>,
    x_critic: Vec<f32>,
    actions: Vec<f32>,
    mask_bias: Vec<f32>,
    old_logp: Vec<f32>,
    old_values: Vec<f32>,
    active: Vec<f32>,
    advantages: Vec<f32>,
    targets: Vec<f32>,
    d_logits: Vec<f32>,
    d_values: Vec<f32>,
    idx: Vec<usize>,
    /// The batch's advantages (normalized over the batch when so configured).
    batch_advantages: Vec<f32>,
}

/// Loads a network's parameters and its slice of an optimizer's moments.
fn pull(
    net: &mut CpuMlp,
    adam: &mut FlatAdam,
    vars: &[Var],
    opt: &Adam,
    first: usize,
) -> Result<()> {
    let tensors: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
    unfold(&tensors, &mut net.params)?;
    anyhow::ensure!(
        net.params.len() == net.grads.len(),
        "CPU network and candle network differ in size"
    );
    let m: Vec<&Tensor> = (0..vars.len()).map(|k| opt.moments(first + k).0).collect();
    let v: Vec<&Tensor> = (0..vars.len()).map(|k| opt.moments(first + k).1).collect();
    let (fm, fv) = adam.moments_mut();
    unfold(&m, fm)?;
    unfold(&v, fv)?;
    adam.t = opt.t;
    adam.lr = opt.lr;
    Ok(())
}

/// Writes a network's parameters and moments back.
fn push(net: &CpuMlp, adam: &FlatAdam, vars: &[Var], opt: &mut Adam, first: usize) -> Result<()> {
    let dev = vars[0].device().clone();
    let like: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
    let params = fold(&like, &net.params, &dev)?;
    let (fm, fv) = adam.moments();
    let ms = fold(&like, fm, &dev)?;
    let vs = fold(&like, fv, &dev)?;
    for (var, t) in vars.iter().zip(params) {
        var.set(&t)?;
    }
    for (k, (m, v)) in ms.into_iter().zip(vs).enumerate() {
        opt.set_moments(first + k, m, v)?;
    }
    opt.t = adam.t;
    Ok(())
}

impl CpuGroup {
    /// The hand-written twin of a group's networks (weights are read at each update).
    pub fn new(pol: &GroupPolicy, p: &PpoConfig) -> Option<Self> {
        let (ad, arelu, aln) = pol.actors[0].mlp().cpu_shape();
        let (cd, crelu, cln) = pol.critics[0].mlp().cpu_shape();
        let actor = CpuMlp::new(&ad, arelu, aln);
        let critic = CpuMlp::new(&cd, crelu, cln);
        Some(Self {
            actor_adam: FlatAdam::new(actor.params.len(), p.learning_rate, p.adam_eps),
            critic_adam: FlatAdam::new(critic.params.len(), p.critic_learning_rate, p.adam_eps),
            actor,
            critic,
            x_actor: Vec::new(),
            x_critic: Vec::new(),
            actions: Vec::new(),
            mask_bias: Vec::new(),
            old_logp: Vec::new(),
            old_values: Vec::new(),
            active: Vec::new(),
            advantages: Vec::new(),
            targets: Vec::new(),
            d_logits: Vec::new(),
            d_values: Vec::new(),
            idx: Vec::new(),
            batch_advantages: Vec::new(),
        })
    }

    fn pull(&mut self, pol: &GroupPolicy) -> Result<()> {
        let avars = pol.actors[0].mlp().vars();
        let cvars = pol.critics[0].mlp().vars();
        pull(
            &mut self.actor,
            &mut self.actor_adam,
            &avars,
            &pol.actor_opt,
            0,
        )?;
        match &pol.critic_opt {
            Some(c) => pull(&mut self.critic, &mut self.critic_adam, &cvars, c, 0),
            None => pull(
                &mut self.critic,
                &mut self.critic_adam,
                &cvars,
                &pol.actor_opt,
                avars.len(),
            ),
        }
    }

    /// Loads the networks' current weights (not the optimizer): before acting, since a
    /// checkpoint may have been loaded into the candle variables since the last update.
    pub fn pull_params(&mut self, pol: &GroupPolicy) -> Result<()> {
        for (net, mlp) in [
            (&mut self.actor, pol.actors[0].mlp()),
            (&mut self.critic, pol.critics[0].mlp()),
        ] {
            let vars = mlp.vars();
            let tensors: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
            unfold(&tensors, &mut net.params)?;
        }
        Ok(())
    }

    /// The actor's logits for `x` (`[rows, actor_in]`).
    pub fn actor_forward(&mut self, x: &[f32], rows: usize) -> &[f32] {
        self.actor.forward(x, rows)
    }

    /// The critic's values for `x` (`[rows, critic_in]`).
    pub fn critic_forward(&mut self, x: &[f32], rows: usize) -> &[f32] {
        self.critic.forward(x, rows)
    }

    fn push(&self, pol: &mut GroupPolicy) -> Result<()> {
        let avars = pol.actors[0].mlp().vars();
        let cvars = pol.critics[0].mlp().vars();
        push(&self.actor, &self.actor_adam, &avars, &mut pol.actor_opt, 0)?;
        match &mut pol.critic_opt {
            Some(c) => push(&self.critic, &self.critic_adam, &cvars, c, 0),
            None => push(
                &self.critic,
                &self.critic_adam,
                &cvars,
                &mut pol.actor_opt,
                avars.len(),
            ),
        }
    }
}

impl Learner {
    /// The PPO epochs of group `gi` by hand (the twin of `update_group`'s candle path: the same
    /// shuffles, minibatches, normalizations, losses, clipping and early stop).
    pub(super) fn update_group_cpu(
        &mut self,
        gi: usize,
        p: &PpoConfig,
        entropy_coef: f64,
    ) -> Result<GroupStats> {
        let mut g = self.cpu[gi].take().expect("a CPU learner for this group");
        let result = self.run_cpu_epochs(&mut g, gi, p, entropy_coef);
        self.cpu[gi] = Some(g);
        result
    }

    fn run_cpu_epochs(
        &mut self,
        g: &mut CpuGroup,
        gi: usize,
        p: &PpoConfig,
        entropy_coef: f64,
    ) -> Result<GroupStats> {
        g.pull(&self.policies[gi])?;
        let l = self.layouts[gi].clone();
        let total = self.bufs[gi].logp.len();
        let na = match l.action_space {
            ActionSpace::Discrete(n) => n,
            ActionSpace::Box { .. } => bail!("the CPU learner takes discrete actions only"),
        };
        let mut adv = std::mem::take(&mut g.batch_advantages);
        adv.clear();
        adv.extend_from_slice(&self.bufs[gi].advantages);
        if p.advantage_norm == AdvantageNorm::Batch {
            normalize_masked(&mut adv, &self.bufs[gi].active);
        }
        let mb_size = total / p.num_minibatches;
        let loss_cfg = LossConfig {
            clip_epsilon: p.clip_epsilon,
            clip_value_loss: p.clip_value_loss,
            value_loss: p.value_loss,
            huber_delta: p.huber_delta,
        };
        let joint = p.optimizer == OptimizerKind::Joint;
        let two_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        let mut st = GroupStats {
            agent_policy_loss: vec![f64::NAN; l.agents.len()],
            ..Default::default()
        };
        let mut count = 0.0f64;
        g.idx.clear();
        g.idx.extend(0..total);
        'epochs: for _ in 0..p.ppo_epochs {
            g.idx.shuffle(&mut self.rng);
            let (mut epoch_kl, mut epoch_mbs) = (0.0, 0.0f64);
            for mb in 0..p.num_minibatches {
                let b = &self.bufs[gi];
                let idx = &g.idx[mb * mb_size..(mb + 1) * mb_size];
                let m = idx.len();
                let gather = |dst: &mut Vec<f32>, src: &[f32], w: usize| {
                    dst.clear();
                    for &i in idx {
                        dst.extend_from_slice(&src[i * w..(i + 1) * w]);
                    }
                };
                gather(&mut g.x_actor, &b.actor_in, l.actor_in);
                gather(&mut g.x_critic, &b.critic_in, l.critic_in);
                gather(&mut g.actions, &b.actions, 1);
                gather(&mut g.old_logp, &b.logp, 1);
                gather(&mut g.old_values, &b.values, 1);
                gather(&mut g.active, &b.active, 1);
                gather(&mut g.advantages, &adv, 1);
                gather(&mut g.targets, &b.returns, 1);
                if let Some(mbias) = &b.mask_bias {
                    gather(&mut g.mask_bias, mbias, na);
                }
                if p.advantage_norm == AdvantageNorm::Minibatch {
                    normalize_masked(&mut g.advantages, &g.active);
                }
                let pol = &mut self.policies[gi];
                if p.value_norm {
                    pol.value_norm.update(&g.targets);
                    for x in g.targets.iter_mut() {
                        *x = pol.value_norm.normalize(*x);
                    }
                }
                g.d_logits.resize(m * na, 0.0);
                g.d_values.resize(m, 0.0);
                let mask = b.mask_bias.as_ref().map(|_| g.mask_bias.as_slice());
                let actor_pass = |net: &mut CpuMlp, d: &mut [f32]| {
                    let logits = net.forward(&g.x_actor, m);
                    let terms = policy_grad(
                        &PolicyInputs {
                            logits,
                            mask_bias: mask,
                            n: na,
                            actions: &g.actions,
                            old_logp: &g.old_logp,
                            advantages: &g.advantages,
                            active: &g.active,
                        },
                        p.clip_epsilon as f32,
                        entropy_coef as f32,
                        d,
                    );
                    net.backward(&g.x_actor, d);
                    terms
                };
                let critic_pass = |net: &mut CpuMlp, d: &mut [f32]| {
                    let values = net.forward(&g.x_critic, m);
                    let vl = value_grad(
                        values,
                        &g.old_values,
                        &g.targets,
                        &g.active,
                        &loss_cfg,
                        p.value_coef as f32,
                        d,
                    );
                    net.backward(&g.x_critic, d);
                    vl
                };
                // Actor and critic are independent until the clip: with a second core, the
                // critic's pass runs there (the same arithmetic, so the same numbers).
                let (actor, critic) = (&mut g.actor, &mut g.critic);
                let (d_logits, d_values) = (&mut g.d_logits, &mut g.d_values);
                let (terms, vl) = if two_cores {
                    std::thread::scope(|s| {
                        let h = s.spawn(|| critic_pass(critic, d_values));
                        let terms = actor_pass(actor, d_logits);
                        (terms, h.join())
                    })
                } else {
                    (
                        actor_pass(actor, d_logits),
                        Ok(critic_pass(critic, d_values)),
                    )
                };
                let vl = vl.map_err(|_| anyhow::anyhow!("the critic's update thread panicked"))?;
                let (pl, en) = (terms.policy_loss, terms.entropy);
                st.add_minibatch(
                    &self.cfg.groups[gi].name,
                    [pl, vl, en, terms.approx_kl, terms.clipfrac],
                )?;
                count += 1.0;
                epoch_kl += terms.approx_kl;
                epoch_mbs += 1.0;
                if joint {
                    clip_global_norm(
                        &mut [&mut g.actor.grads, &mut g.critic.grads],
                        p.max_grad_norm,
                    );
                } else {
                    clip_global_norm(&mut [&mut g.actor.grads], p.max_grad_norm);
                    clip_global_norm(&mut [&mut g.critic.grads], p.max_grad_norm);
                }
                g.actor_adam.step(&mut g.actor.params, &g.actor.grads);
                g.critic_adam.step(&mut g.critic.params, &g.critic.grads);
            }
            if let Some(target) = p.target_kl {
                if epoch_kl / epoch_mbs.max(1.0) > target {
                    break 'epochs;
                }
            }
        }
        g.batch_advantages = adv;
        g.push(&mut self.policies[gi])?;
        st.average_over(count);
        st.explained_variance = explained_variance_of(&self.bufs[gi], &self.policies[gi], p);
        Ok(st)
    }
}
