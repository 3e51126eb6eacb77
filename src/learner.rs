//! The pieces the training loop calls: acting (one batched forward per group for all
//! environments and agents), collecting a rollout, advantages, the PPO update, and greedy
//! evaluation. `trainer.rs` strings them together top to bottom.

use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use marl_envs::{ActionSpace, EnvSpec};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::algo::{gae, ppo};
use crate::buffer::{GroupBuffer, InputLayout};
use crate::config::{AdvantageNorm, OptimizerKind, RewardSharing, Schedule, TrainConfig};
use crate::nn::dist;
use crate::optim::clip_grad_norm;
use crate::policy::GroupPolicy;
use crate::rollout::EnvPool;

mod cpu;

/// Episode statistics gathered during a rollout.
#[derive(Debug, Clone, Default)]
pub struct EpisodeStats {
    /// Finished episodes.
    pub episodes: u64,
    /// Sum of each agent's return over finished episodes.
    pub agent_return_sum: Vec<f64>,
    /// Sum of episode lengths.
    pub length_sum: u64,
}

impl EpisodeStats {
    /// Mean return of each agent (NaN without episodes).
    pub fn agent_means(&self) -> Vec<f64> {
        self.agent_return_sum
            .iter()
            .map(|s| {
                if self.episodes == 0 {
                    f64::NAN
                } else {
                    s / self.episodes as f64
                }
            })
            .collect()
    }
}

/// Losses and diagnostics of one group's update.
#[derive(Debug, Clone, Default)]
pub struct GroupStats {
    /// Mean policy loss over minibatches.
    pub policy_loss: f64,
    /// Mean value loss.
    pub value_loss: f64,
    /// Mean entropy.
    pub entropy: f64,
    /// Mean approximate KL.
    pub approx_kl: f64,
    /// Mean clip fraction.
    pub clipfrac: f64,
    /// Explained variance of the values for the returns.
    pub explained_variance: f64,
    /// Per-agent policy loss over the last epoch (agent order of the group).
    pub agent_policy_loss: Vec<f64>,
}

impl GroupStats {
    /// Adds one minibatch's policy loss, value loss, entropy, approximate KL and clip fraction
    /// to the sums, or stops training when one is not finite (the last checkpoint is kept).
    pub fn add_minibatch(&mut self, group: &str, terms: [f64; 5]) -> Result<()> {
        let [pl, vl, en, kl, cf] = terms;
        if !terms[..4].iter().all(|x| x.is_finite()) {
            bail!(
                "non-finite loss in group `{group}` (policy {pl}, value {vl}, entropy {en}, kl {kl}): \
                 training stopped; the last good checkpoint is kept"
            );
        }
        self.policy_loss += pl;
        self.value_loss += vl;
        self.entropy += en;
        self.approx_kl += kl;
        self.clipfrac += cf;
        Ok(())
    }

    /// Turns the sums into means over `minibatches`.
    pub fn average_over(&mut self, minibatches: f64) {
        let c = minibatches.max(1.0);
        self.policy_loss /= c;
        self.value_loss /= c;
        self.entropy /= c;
        self.approx_kl /= c;
        self.clipfrac /= c;
    }
}

/// Everything the learner owns: environments, networks, buffers, generator.
pub struct Learner {
    /// The resolved config.
    pub cfg: TrainConfig,
    /// Where the networks live.
    pub dev: Device,
    /// Training environments.
    pub pool: EnvPool,
    /// One per group.
    pub policies: Vec<GroupPolicy>,
    layouts: Vec<InputLayout>,
    bufs: Vec<GroupBuffer>,
    /// Sampling and shuffling generator.
    pub rng: ChaCha8Rng,
    joint_actions: Vec<f32>,
    agent_dead: Vec<bool>,
    scratch_actor: Vec<Vec<f32>>,
    scratch_critic: Vec<Vec<f32>>,
    /// Per group, the hand-written CPU update where it fits (see [`cpu`]).
    cpu: Vec<Option<cpu::CpuGroup>>,
}

fn spec_masked(spec: &EnvSpec) -> bool {
    spec.has_action_masks
}

impl Learner {
    /// Builds environments and networks.
    pub fn new(
        cfg: TrainConfig,
        dev: Device,
        pool: EnvPool,
        init_rng: &mut ChaCha8Rng,
        rng: ChaCha8Rng,
    ) -> Result<Self> {
        let mut policies = Vec::new();
        let mut layouts = Vec::new();
        let mut bufs = Vec::new();
        for g in &cfg.groups {
            policies.push(GroupPolicy::new(&cfg, g, init_rng, &dev)?);
            let l = InputLayout::new(&cfg.raw, g);
            bufs.push(GroupBuffer::new(
                cfg.raw.env.rollout_length,
                &l,
                spec_masked(&cfg.spec),
            ));
            layouts.push(l);
        }
        let n = cfg.raw.env.n_envs;
        let spec = cfg.spec.clone();
        let (p, lg) = (&cfg.raw.ppo, &cfg.raw.logging);
        let cpu = policies
            .iter()
            .map(|pol| {
                let fits =
                    cfg.raw.network.cpu_fast_path && cpu::fits(pol, p, lg.log_agent_metrics, &dev);
                if fits {
                    cpu::CpuGroup::new(pol, p)
                } else {
                    None
                }
            })
            .collect();
        let mut l = Self {
            cpu,
            scratch_actor: layouts
                .iter()
                .map(|l| vec![0.0; l.rows() * l.actor_in])
                .collect(),
            scratch_critic: layouts
                .iter()
                .map(|l| vec![0.0; l.rows() * l.critic_in])
                .collect(),
            joint_actions: vec![0.0; n * spec.action_len()],
            agent_dead: vec![false; n * spec.num_agents()],
            cfg,
            dev,
            pool,
            policies,
            layouts,
            bufs,
            rng,
        };
        l.sync_cpu_params()?;
        Ok(l)
    }

    fn n_envs(&self) -> usize {
        self.cfg.raw.env.n_envs
    }

    /// Samples every group's actions for `obs` and writes them into `joint` (`[n_envs,
    /// action_len]`); returns per group the (actor rows, policy actions, log-probs, mask bias).
    #[allow(clippy::type_complexity)]
    fn act(
        &mut self,
        obs: &[f32],
        masks: &[bool],
        greedy: bool,
        joint: &mut [f32],
    ) -> Result<Vec<(Vec<f32>, Vec<f32>, Option<Vec<f32>>)>> {
        let spec = self.cfg.spec.clone();
        let n = self.n_envs();
        let mut out = Vec::new();
        for (gi, pol) in self.policies.iter().enumerate() {
            let l = &self.layouts[gi];
            let rows = l.rows();
            let xs = &mut self.scratch_actor[gi];
            l.actor_rows(&spec, obs, xs);
            let chunks = pol.step_chunks();
            // The hand-written path computes the logits on the host, no tensor per step.
            let y = match &mut self.cpu[gi] {
                Some(g) => ActorOut::Host(g.actor_forward(xs, rows)),
                None => {
                    let x = Tensor::from_slice(xs, (rows, l.actor_in), &self.dev)?;
                    ActorOut::Tensor(pol.actor_out(&x, &chunks, pol.ids.as_ref())?)
                }
            };
            match l.action_space {
                ActionSpace::Discrete(na) => {
                    let bias = if spec.has_action_masks {
                        let mut b = vec![0.0f32; rows * na];
                        for (k, &agent) in l.agents.iter().enumerate() {
                            let mr = spec.mask_range(agent);
                            for e in 0..n {
                                let m = &masks
                                    [e * spec.mask_len() + mr.start..e * spec.mask_len() + mr.end];
                                for (c, &ok) in m.iter().enumerate() {
                                    if !ok {
                                        b[(k * n + e) * na + c] = dist::MASKED_LOGIT;
                                    }
                                }
                            }
                        }
                        Some(b)
                    } else {
                        None
                    };
                    let mut lp = Vec::new();
                    match y {
                        ActorOut::Host(host) => {
                            dist::log_softmax_rows(host, bias.as_deref(), na, &mut lp)
                        }
                        ActorOut::Tensor(y) => {
                            let logits = match &bias {
                                Some(b) => (y + Tensor::from_slice(b, (rows, na), &self.dev)?)?,
                                None => y,
                            };
                            let logp_all =
                                candle_nn::ops::log_softmax(&logits, 1)?.to_device(&Device::Cpu)?;
                            lp = logp_all.flatten_all()?.to_vec1()?;
                        }
                    }
                    let mut acts = vec![0.0f32; rows];
                    let mut logps = vec![0.0f32; rows];
                    for (k, &agent) in l.agents.iter().enumerate() {
                        let ar = spec.action_range(agent);
                        for e in 0..n {
                            let row = k * n + e;
                            let (a, logp) = dist::sample_categorical(
                                &lp[row * na..(row + 1) * na],
                                greedy,
                                &mut self.rng,
                            );
                            acts[row] = a as f32;
                            logps[row] = logp;
                            joint[e * spec.action_len() + ar.start] = a as f32;
                        }
                    }
                    out.push((acts, logps, bias));
                }
                ActionSpace::Box { dim, low, high } => {
                    let ActorOut::Tensor(y) = y else {
                        bail!("the CPU learner takes discrete actions only")
                    };
                    let mean: Vec<f32> = y.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
                    let ls = pol
                        .log_std_rows(&chunks, rows)?
                        .expect("box actors have a log std");
                    let ls: Vec<f32> = ls.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
                    let mut acts = vec![0.0f32; rows * dim];
                    let mut logps = vec![0.0f32; rows];
                    for (k, &agent) in l.agents.iter().enumerate() {
                        let ar = spec.action_range(agent);
                        for e in 0..n {
                            let row = k * n + e;
                            let a = &mut acts[row * dim..(row + 1) * dim];
                            logps[row] = dist::sample_gaussian(
                                &mean[row * dim..(row + 1) * dim],
                                &ls[row * dim..(row + 1) * dim],
                                greedy,
                                &mut self.rng,
                                a,
                            );
                            // The policy acts in [-1, 1]; map linearly onto the box and clip.
                            let dst = &mut joint
                                [e * spec.action_len() + ar.start..e * spec.action_len() + ar.end];
                            for (d, &x) in dst.iter_mut().zip(a.iter()) {
                                *d = (low + (x.clamp(-1.0, 1.0) + 1.0) * 0.5 * (high - low))
                                    .clamp(low, high);
                            }
                        }
                    }
                    out.push((acts, logps, None));
                }
            }
        }
        Ok(out)
    }

    /// Critic values (normalized scale) of every group's rows for the given inputs.
    fn values_for(&mut self, obs: &[f32], states: &[f32], joint: &[f32]) -> Result<Vec<Vec<f32>>> {
        let spec = self.cfg.spec.clone();
        let mut out = Vec::new();
        for (gi, pol) in self.policies.iter().enumerate() {
            let l = &self.layouts[gi];
            let xs = &mut self.scratch_critic[gi];
            l.critic_rows(&spec, obs, states, joint, xs);
            if let Some(g) = &mut self.cpu[gi] {
                out.push(g.critic_forward(xs, l.rows()).to_vec());
                continue;
            }
            let x = Tensor::from_slice(xs, (l.rows(), l.critic_in), &self.dev)?;
            let v = pol.values(&x, &pol.step_chunks(), pol.ids.as_ref())?;
            out.push(v.to_device(&Device::Cpu)?.to_vec1()?);
        }
        Ok(out)
    }

    /// Collects one rollout of `rollout_length` steps into the buffers.
    pub fn collect(&mut self, stats: &mut EpisodeStats) -> Result<()> {
        let spec = self.cfg.spec.clone();
        let n = self.n_envs();
        let na = spec.num_agents();
        let t_len = self.cfg.raw.env.rollout_length;
        let (sharing, w) = (
            self.cfg.raw.algo.reward_sharing,
            self.cfg.raw.algo.reward_sharing_weight as f32,
        );
        self.sync_cpu_params()?;
        let mut joint = std::mem::take(&mut self.joint_actions);
        for t in 0..t_len {
            // ── act ──
            // The step's data is lent out of the pool (no copy) while the networks read it.
            let data = std::mem::take(&mut self.pool.data);
            let acted = self.act(&data.obs, &data.masks, false, &mut joint);
            let values = self.values_for(&data.obs, &data.states, &joint);
            self.pool.data = data;
            let (acted, values) = (acted?, values?);
            for (gi, (acts, logps, bias)) in acted.into_iter().enumerate() {
                let l = &self.layouts[gi];
                let b = &mut self.bufs[gi];
                let r = l.rows();
                b.actor_in[t * r * l.actor_in..(t + 1) * r * l.actor_in]
                    .copy_from_slice(&self.scratch_actor[gi]);
                b.critic_in[t * r * l.critic_in..(t + 1) * r * l.critic_in]
                    .copy_from_slice(&self.scratch_critic[gi]);
                let aw = acts.len() / r;
                b.actions[t * r * aw..(t + 1) * r * aw].copy_from_slice(&acts);
                b.logp[t * r..(t + 1) * r].copy_from_slice(&logps);
                b.values[t * r..(t + 1) * r].copy_from_slice(&values[gi]);
                if let (Some(dst), Some(src)) = (&mut b.mask_bias, bias) {
                    dst[t * src.len()..(t + 1) * src.len()].copy_from_slice(&src);
                }
                for (k, &agent) in l.agents.iter().enumerate() {
                    for e in 0..n {
                        b.active[t * r + k * n + e] = if self.agent_dead[e * na + agent] {
                            0.0
                        } else {
                            1.0
                        };
                    }
                }
            }

            // ── step ──
            self.pool.step(&joint)?;
            let d = &self.pool.data;
            let any_truncated_end =
                (0..n).any(|e| d.done[e] && (0..na).any(|a| !d.terminated[e * na + a]));
            let boot = if any_truncated_end {
                // Values of the final states, for bootstrapping at truncation; the others'
                // actions there were never taken, so they are sampled from the current policy.
                let data = std::mem::take(&mut self.pool.data);
                let mut fj = joint.clone();
                let mut sampled = Ok(Vec::new());
                if self.cfg.raw.algo.critic_other_actions {
                    let all = vec![true; data.masks.len()];
                    sampled = self.act(&data.final_obs, &all, false, &mut fj);
                }
                let v = self.values_for(&data.final_obs, &data.final_states, &fj);
                self.pool.data = data;
                sampled?;
                Some(v?)
            } else {
                None
            };
            let d = &self.pool.data;
            for (gi, l) in self.layouts.iter().enumerate() {
                let b = &mut self.bufs[gi];
                let r = l.rows();
                let kg = l.agents.len() as f32;
                for e in 0..n {
                    let mean: f32 = l
                        .agents
                        .iter()
                        .map(|&a| d.rewards[e * na + a] as f32)
                        .sum::<f32>()
                        / kg;
                    for (k, &agent) in l.agents.iter().enumerate() {
                        let i = t * r + k * n + e;
                        let own = d.rewards[e * na + agent] as f32;
                        b.rewards[i] = match sharing {
                            RewardSharing::Individual => own,
                            RewardSharing::Shared => mean,
                            RewardSharing::Mixed => w * mean + (1.0 - w) * own,
                        };
                        let term = d.terminated[e * na + agent];
                        b.terminal[i] = term;
                        b.ended[i] = d.done[e] || term;
                        b.next_values[i] = match (&boot, term, d.done[e]) {
                            (_, true, _) => 0.0,
                            (Some(bv), false, true) => bv[gi][k * n + e],
                            _ => f32::NAN, // filled from the next step's value below
                        };
                    }
                }
            }
            for e in 0..n {
                if d.done[e] {
                    stats.episodes += 1;
                    stats.length_sum += d.final_len[e];
                    for a in 0..na {
                        stats.agent_return_sum[a] += d.final_return[e * na + a];
                        self.agent_dead[e * na + a] = false;
                    }
                } else {
                    for a in 0..na {
                        self.agent_dead[e * na + a] |= d.terminated[e * na + a];
                    }
                }
            }
        }

        // ── bootstrap from the state after the rollout ──
        let data = std::mem::take(&mut self.pool.data);
        let mut sampled = Ok(Vec::new());
        if self.cfg.raw.algo.critic_other_actions {
            sampled = self.act(&data.obs, &data.masks, false, &mut joint);
        }
        let last = self.values_for(&data.obs, &data.states, &joint);
        self.pool.data = data;
        sampled?;
        let last = last?;
        self.joint_actions = joint;
        for (gi, b) in self.bufs.iter_mut().enumerate() {
            let r = b.rows;
            for t in 0..t_len {
                for i in 0..r {
                    let j = t * r + i;
                    if b.next_values[j].is_nan() {
                        b.next_values[j] = if t + 1 < t_len {
                            b.values[j + r]
                        } else {
                            last[gi][i]
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// GAE in the environment's reward scale (values denormalized first).
    pub fn advantages(&mut self) {
        let p = &self.cfg.raw.ppo;
        for (gi, b) in self.bufs.iter_mut().enumerate() {
            let vn = &self.policies[gi].value_norm;
            let denorm = |v: f32| if p.value_norm { vn.denormalize(v) } else { v };
            let values: Vec<f32> = b.values.iter().map(|&v| denorm(v)).collect();
            let next: Vec<f32> = b
                .next_values
                .iter()
                .zip(&b.terminal)
                .map(|(&v, &term)| if term { 0.0 } else { denorm(v) })
                .collect();
            gae::compute(
                b.rows,
                &b.rewards,
                &values,
                &next,
                &b.ended,
                p.gamma as f32,
                p.gae_lambda as f32,
                &mut b.advantages,
                &mut b.returns,
            );
        }
    }

    /// The schedule's value at `progress` in [0, 1] between `start` and `end`.
    pub fn scheduled(schedule: Schedule, start: f64, end: f64, progress: f64) -> f64 {
        match schedule {
            Schedule::Constant => start,
            Schedule::Linear => start + (end - start) * progress,
            Schedule::Cosine => {
                end + (start - end) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// Sets the learning rates for training progress `progress` in [0, 1]; returns the actor's.
    pub fn set_learning_rate(&mut self, progress: f64) -> f64 {
        let p = &self.cfg.raw.ppo;
        let lr = Self::scheduled(p.lr_schedule, p.learning_rate, 0.0, progress);
        let clr = Self::scheduled(p.lr_schedule, p.critic_learning_rate, 0.0, progress);
        for pol in &mut self.policies {
            pol.actor_opt.lr = lr;
            if let Some(c) = &mut pol.critic_opt {
                c.lr = clr;
            }
        }
        lr
    }

    /// Loads the current weights of the candle variables into the hand-written networks:
    /// after building and after a checkpoint is loaded (and, for safety, before every rollout
    /// and evaluation: a few tens of thousands of floats).
    pub fn sync_cpu_params(&mut self) -> Result<()> {
        for (g, pol) in self.cpu.iter_mut().zip(&self.policies) {
            if let Some(g) = g {
                g.pull_params(pol)?;
            }
        }
        Ok(())
    }

    /// Whether group `gi` is updated by the hand-written CPU path ([`cpu`]).
    pub fn cpu_path(&self, gi: usize) -> bool {
        self.cpu.get(gi).is_some_and(Option::is_some)
    }

    /// PPO epochs over the collected batch, every group; returns per-group statistics.
    pub fn update(&mut self, entropy_coef: f64) -> Result<Vec<GroupStats>> {
        let p = self.cfg.raw.ppo.clone();
        let mut all = Vec::new();
        for gi in 0..self.policies.len() {
            let st = if self.cpu[gi].is_some() {
                self.update_group_cpu(gi, &p, entropy_coef)?
            } else {
                self.update_group(gi, &p, entropy_coef)?
            };
            all.push(st);
        }
        Ok(all)
    }

    fn update_group(
        &mut self,
        gi: usize,
        p: &crate::config::PpoConfig,
        entropy_coef: f64,
    ) -> Result<GroupStats> {
        let l = self.layouts[gi].clone();
        let b = &self.bufs[gi];
        let total = b.logp.len();
        let r = b.rows;
        let n_envs = l.n_envs;
        let n_agents = l.agents.len();
        let aw = b.actions.len() / total;
        let na = match l.action_space {
            ActionSpace::Discrete(n) => n,
            ActionSpace::Box { .. } => 0,
        };
        // Advantages, normalized over the batch if so configured (active samples only).
        let mut adv = b.advantages.clone();
        if p.advantage_norm == AdvantageNorm::Batch {
            normalize_masked(&mut adv, &b.active);
        }
        let mb_size = total / p.num_minibatches;
        let shared_actor = self.policies[gi].actors.len() == 1;
        let shared_critic = self.policies[gi].critics.len() == 1;
        let mut st = GroupStats {
            agent_policy_loss: vec![0.0; n_agents],
            ..Default::default()
        };
        let mut count = 0.0f64;
        let mut agent_counts = vec![0.0; n_agents];
        let mut pending: Vec<Tensor> = Vec::new();
        let mut indices: Vec<usize> = (0..total).collect();
        let loss_cfg = ppo::LossConfig {
            clip_epsilon: p.clip_epsilon,
            clip_value_loss: p.clip_value_loss,
            value_loss: p.value_loss,
            huber_delta: p.huber_delta,
        };
        'epochs: for epoch in 0..p.ppo_epochs {
            indices.shuffle(&mut self.rng);
            let mut epoch_kl = 0.0;
            let mut epoch_mbs = 0.0f64;
            for mb in 0..p.num_minibatches {
                let mut idx: Vec<usize> = indices[mb * mb_size..(mb + 1) * mb_size].to_vec();
                let agent_of = |i: usize| (i % r) / n_envs;
                if !(shared_actor && shared_critic) {
                    idx.sort_by_key(|&i| agent_of(i));
                }
                let mut chunks: Vec<(usize, usize, usize)> = Vec::new();
                for (pos, &i) in idx.iter().enumerate() {
                    let k = agent_of(i);
                    match chunks.last_mut() {
                        Some(c) if c.0 == k => c.2 += 1,
                        _ => chunks.push((k, pos, 1)),
                    }
                }
                let m = idx.len();
                let b = &self.bufs[gi];
                let gather = |src: &[f32], w: usize| -> Vec<f32> {
                    let mut out = Vec::with_capacity(m * w);
                    for &i in &idx {
                        out.extend_from_slice(&src[i * w..(i + 1) * w]);
                    }
                    out
                };
                let dev = &self.dev;
                let x_actor =
                    Tensor::from_vec(gather(&b.actor_in, l.actor_in), (m, l.actor_in), dev)?;
                let x_critic =
                    Tensor::from_vec(gather(&b.critic_in, l.critic_in), (m, l.critic_in), dev)?;
                let old_logp = Tensor::from_vec(gather(&b.logp, 1), m, dev)?;
                let old_v = Tensor::from_vec(gather(&b.values, 1), m, dev)?;
                let active_h = gather(&b.active, 1);
                let active = Tensor::from_vec(active_h.clone(), m, dev)?;
                let mut adv_mb = gather(&adv, 1);
                if p.advantage_norm == AdvantageNorm::Minibatch {
                    normalize_masked(&mut adv_mb, &active_h);
                }
                let adv_t = Tensor::from_vec(adv_mb, m, dev)?;
                let mut ret = gather(&b.returns, 1);
                let pol = &mut self.policies[gi];
                if p.value_norm {
                    pol.value_norm.update(&ret);
                    ret.iter_mut()
                        .for_each(|x| *x = pol.value_norm.normalize(*x));
                }
                let targets = Tensor::from_vec(ret, m, dev)?;
                let ids = if pol.ids.is_some() {
                    Some(Tensor::from_vec(
                        idx.iter().map(|&i| agent_of(i) as u32).collect::<Vec<_>>(),
                        m,
                        dev,
                    )?)
                } else {
                    None
                };
                let out = pol.actor_out(&x_actor, &chunks, ids.as_ref())?;
                let (logp, entropy) = match l.action_space {
                    ActionSpace::Discrete(_) => {
                        let acts: Vec<u32> =
                            gather(&b.actions, 1).iter().map(|&a| a as u32).collect();
                        let acts = Tensor::from_vec(acts, m, dev)?;
                        let bias = match &b.mask_bias {
                            Some(mb) => Some(Tensor::from_vec(gather(mb, na), (m, na), dev)?),
                            None => None,
                        };
                        dist::categorical(&out, bias.as_ref(), &acts)?
                    }
                    ActionSpace::Box { dim, .. } => {
                        let acts = Tensor::from_vec(gather(&b.actions, aw), (m, dim), dev)?;
                        let ls = pol.log_std_rows(&chunks, m)?.expect("log std");
                        dist::gaussian(&out, &ls, &acts)?
                    }
                };
                let values = pol.values(&x_critic, &chunks, ids.as_ref())?;
                let terms = ppo::loss(
                    &ppo::LossInputs {
                        logp: &logp,
                        old_logp: &old_logp,
                        advantages: &adv_t,
                        entropy: &entropy,
                        values: &values,
                        old_values: &old_v,
                        targets: &targets,
                        active: &active,
                    },
                    &loss_cfg,
                )?;
                let total_loss = ((&terms.policy_loss - (&terms.entropy * entropy_coef)?)?
                    + (&terms.value_loss * p.value_coef)?)?;
                let pl = f64::from(terms.policy_loss.to_scalar::<f32>()?);
                let vl = f64::from(terms.value_loss.to_scalar::<f32>()?);
                let en = f64::from(terms.entropy.to_scalar::<f32>()?);
                let name = l_name(&self.cfg, gi);
                st.add_minibatch(&name, [pl, vl, en, terms.approx_kl, terms.clipfrac])?;
                count += 1.0;
                epoch_kl += terms.approx_kl;
                epoch_mbs += 1.0;
                if epoch + 1 == p.ppo_epochs && self.cfg.raw.logging.log_agent_metrics {
                    // Per-agent surrogate of the last epoch, without gradient.
                    per_agent_policy_loss(
                        &logp,
                        &old_logp,
                        &adv_t,
                        &active_h,
                        &idx,
                        &agent_of,
                        p.clip_epsilon,
                        &mut st.agent_policy_loss,
                        &mut agent_counts,
                    )?;
                }
                pending.push(total_loss);
                let last_mb = epoch + 1 == p.ppo_epochs && mb + 1 == p.num_minibatches;
                if pending.len() == p.grad_accum_steps || last_mb || mb + 1 == p.num_minibatches {
                    let k = pending.len() as f64;
                    let summed = pending
                        .drain(..)
                        .reduce(|a, b| (a + b).expect("same shape"))
                        .expect("non-empty");
                    let mut grads = (summed / k)?.backward()?;
                    let pol = &mut self.policies[gi];
                    match (&mut pol.critic_opt, p.optimizer) {
                        (Some(copt), OptimizerKind::Separate) => {
                            clip_grad_norm(&mut grads, pol.actor_opt.vars(), p.max_grad_norm)?;
                            clip_grad_norm(&mut grads, copt.vars(), p.max_grad_norm)?;
                            pol.actor_opt.step(&grads)?;
                            copt.step(&grads)?;
                        }
                        _ => {
                            clip_grad_norm(&mut grads, pol.actor_opt.vars(), p.max_grad_norm)?;
                            pol.actor_opt.step(&grads)?;
                        }
                    }
                }
            }
            if let Some(target) = p.target_kl {
                if epoch_kl / epoch_mbs.max(1.0) > target {
                    break 'epochs;
                }
            }
        }
        st.average_over(count);
        for (s, n) in st.agent_policy_loss.iter_mut().zip(&agent_counts) {
            *s = if *n > 0.0 { *s / n } else { f64::NAN };
        }
        st.explained_variance = explained_variance_of(&self.bufs[gi], &self.policies[gi], p);
        Ok(st)
    }

    /// The joint action of every environment (`[n_envs, action_len]`) for observations and
    /// masks laid out as the pool's: the policies' (greedy or sampled), except for the groups
    /// flagged in `random_groups`, which act uniformly at random (masked) from `rng`.
    pub fn policy_actions(
        &mut self,
        obs: &[f32],
        masks: &[bool],
        greedy: bool,
        random_groups: &[bool],
        rng: &mut ChaCha8Rng,
        joint: &mut [f32],
    ) -> Result<()> {
        self.act(obs, masks, greedy, joint)?;
        for (gi, l) in self.layouts.iter().enumerate() {
            if random_groups.get(gi).copied().unwrap_or(false) {
                random_group_actions(&self.cfg.spec, l, masks, rng, joint);
            }
        }
        Ok(())
    }

    /// Greedy (or stochastic) evaluation: one episode per environment of `pool`; returns each
    /// finished episode.
    pub fn evaluate(
        &mut self,
        pool: &mut EnvPool,
        seed: u64,
        greedy: bool,
        random_groups: &[bool],
    ) -> Result<Vec<Episode>> {
        let spec = self.cfg.spec.clone();
        let n = pool.len();
        anyhow::ensure!(
            n == self.n_envs(),
            "evaluation pool must have n_envs environments"
        );
        let na = spec.num_agents();
        self.sync_cpu_params()?;
        pool.reset(seed)?;
        let nm = pool.metric_names().len();
        let mut results: Vec<Option<Episode>> = vec![None; n];
        let mut joint = vec![0.0f32; n * spec.action_len()];
        let mut rng = rand::SeedableRng::seed_from_u64(seed);
        while results.iter().any(Option::is_none) {
            self.policy_actions(
                &pool.data.obs,
                &pool.data.masks,
                greedy,
                random_groups,
                &mut rng,
                &mut joint,
            )?;
            pool.step(&joint)?;
            for e in 0..n {
                if pool.data.done[e] && results[e].is_none() {
                    results[e] = Some(Episode {
                        returns: pool.data.final_return[e * na..(e + 1) * na].to_vec(),
                        length: pool.data.final_len[e],
                        metrics: pool.data.final_metrics[e * nm..(e + 1) * nm].to_vec(),
                    });
                }
            }
        }
        Ok(results.into_iter().flatten().collect())
    }
}

/// The actor's output for a step: computed on the host by the hand-written path, or a tensor.
enum ActorOut<'a> {
    Host(&'a [f32]),
    Tensor(Tensor),
}

/// Explained variance of the collected values for the returns, in the reward scale.
fn explained_variance_of(b: &GroupBuffer, pol: &GroupPolicy, p: &crate::config::PpoConfig) -> f64 {
    let vn = &pol.value_norm;
    let vals: Vec<f64> = b
        .values
        .iter()
        .map(|&v| f64::from(if p.value_norm { vn.denormalize(v) } else { v }))
        .collect();
    let rets: Vec<f64> = b.returns.iter().map(|&x| f64::from(x)).collect();
    explained_variance(&vals, &rets)
}

/// One finished evaluation episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// Per-agent return (raw rewards, summed).
    pub returns: Vec<f64>,
    /// Steps.
    pub length: u64,
    /// The env's task figures (`EnvPool::metric_names`).
    pub metrics: Vec<f64>,
}

fn l_name(cfg: &TrainConfig, gi: usize) -> String {
    cfg.groups[gi].name.clone()
}

fn random_group_actions(
    spec: &EnvSpec,
    l: &InputLayout,
    masks: &[bool],
    rng: &mut ChaCha8Rng,
    joint: &mut [f32],
) {
    use rand::Rng;
    for e in 0..l.n_envs {
        for &agent in &l.agents {
            let ar = spec.action_range(agent);
            let dst = &mut joint[e * spec.action_len() + ar.start..e * spec.action_len() + ar.end];
            match spec.agents[agent].action_space {
                ActionSpace::Discrete(n) => {
                    let mr = spec.mask_range(agent);
                    let m = &masks[e * spec.mask_len() + mr.start..e * spec.mask_len() + mr.end];
                    let ok: Vec<usize> = (0..n)
                        .filter(|&c| m.get(c).copied().unwrap_or(true))
                        .collect();
                    dst[0] = ok[rng.random_range(0..ok.len())] as f32;
                }
                ActionSpace::Box { low, high, .. } => {
                    for d in dst.iter_mut() {
                        *d = low + (high - low) * rng.random::<f32>();
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn per_agent_policy_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    adv: &Tensor,
    active: &[f32],
    idx: &[usize],
    agent_of: &dyn Fn(usize) -> usize,
    eps: f64,
    sums: &mut [f64],
    counts: &mut [f64],
) -> Result<()> {
    let ratio: Vec<f32> = (logp - old_logp)?
        .exp()?
        .to_device(&Device::Cpu)?
        .to_vec1()?;
    let adv: Vec<f32> = adv.to_device(&Device::Cpu)?.to_vec1()?;
    for (pos, &i) in idx.iter().enumerate() {
        if active[pos] == 0.0 {
            continue;
        }
        let r = f64::from(ratio[pos]);
        let a = f64::from(adv[pos]);
        let s = -(r * a).min(r.clamp(1.0 - eps, 1.0 + eps) * a);
        sums[agent_of(i)] += s;
        counts[agent_of(i)] += 1.0;
    }
    Ok(())
}

/// Normalizes `x` to zero mean and unit std over the active entries.
fn normalize_masked(x: &mut [f32], active: &[f32]) {
    let n: f64 = active.iter().map(|&a| f64::from(a)).sum();
    if n < 2.0 {
        return;
    }
    let mean = x
        .iter()
        .zip(active)
        .map(|(&v, &a)| f64::from(v * a))
        .sum::<f64>()
        / n;
    let var = x
        .iter()
        .zip(active)
        .map(|(&v, &a)| f64::from(a) * (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let std = var.sqrt() + 1e-8;
    x.iter_mut()
        .for_each(|v| *v = ((f64::from(*v) - mean) / std) as f32);
}

/// `1 - Var(returns - values) / Var(returns)`.
pub fn explained_variance(values: &[f64], returns: &[f64]) -> f64 {
    let n = returns.len() as f64;
    let mean = |x: &dyn Fn(usize) -> f64| (0..returns.len()).map(x).sum::<f64>() / n;
    let mr = mean(&|i| returns[i]);
    let var_r = mean(&|i| (returns[i] - mr).powi(2));
    let md = mean(&|i| returns[i] - values[i]);
    let var_d = mean(&|i| (returns[i] - values[i] - md).powi(2));
    if var_r == 0.0 {
        f64::NAN
    } else {
        1.0 - var_d / var_r
    }
}
