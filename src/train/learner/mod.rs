//! The pieces the training loop calls: acting (one batched forward per group for all
//! environments and agents), collecting a rollout, advantages, the PPO update, evaluation, and
//! the learner's own checkpoint. The training run (`train/mod.rs`) calls them stage by stage.
//!
//! Each group's networks live in a [`Backend`] (the device picks which); the minibatch schedule
//! every backend runs under is [`update`]; the group's buffers, value normalizer and step
//! buffers are its [`GroupLearner`]'s.

mod group;
#[cfg(test)]
mod tests;
mod update;

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use marl_envs::{derive_seed, ActionSpace, EnvSpec};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::layout::SavedOptimizer;
use crate::backend::{self, GroupShape};
use crate::config::{Schedule, TrainConfig};
use crate::run::checkpoint::{Checkpoint, GeneratorState, TrainerState};
use crate::run::metrics::EpisodeFigures;
use crate::train::rollout::EnvPool;

pub use group::GroupLearner;
pub use update::{explained_variance, GroupStats};

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
    /// No episode yet, for `n_agents` agents.
    pub fn of_agents(n_agents: usize) -> Self {
        Self {
            agent_return_sum: vec![0.0; n_agents],
            ..Self::default()
        }
    }

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

    /// The figures a metrics row reports of these episodes (NaN without episodes).
    pub fn figures(&self) -> EpisodeFigures {
        let agent_means = self.agent_means();
        let none = self.episodes == 0;
        let team: f64 = if none {
            f64::NAN
        } else {
            agent_means.iter().sum()
        };
        EpisodeFigures {
            per_agent: if none {
                f64::NAN
            } else {
                team / agent_means.len() as f64
            },
            team,
            length: if none {
                f64::NAN
            } else {
                self.length_sum as f64 / self.episodes as f64
            },
            agent_means,
        }
    }
}

/// Everything the learner owns: environments, groups (networks, buffers), generator.
pub struct Learner {
    cfg: TrainConfig,
    pool: EnvPool,
    groups: Vec<GroupLearner>,
    /// Sampling and shuffling generator.
    rng: ChaCha8Rng,
    /// The joint action of every environment, `[n_envs, action_len]`.
    joint: Vec<f32>,
    /// The joint action at the final states of finished episodes (bootstrapping).
    final_joint: Vec<f32>,
    /// Agents whose episode ended before their environment's, `[n_envs, agents]`.
    agent_dead: Vec<bool>,
    all_masks: Vec<bool>,
}

/// The streams of the run's seed that initialize the networks and drive sampling and shuffling.
const INIT_STREAM: u64 = 0x1_0000_0001;
const SAMPLE_STREAM: u64 = 0x1_0000_0002;

impl Learner {
    /// The learner of `cfg` with its training environments, networks initialized from the
    /// config's seed.
    pub fn for_training(cfg: TrainConfig, dev: Device) -> Result<Self> {
        let env = cfg.env();
        let pool = EnvPool::new(&env.id, &env.params, env.n_envs, cfg.num_workers())?;
        Self::seeded(cfg, dev, pool)
    }

    /// A learner that only evaluates on the pools it is given (`marl eval`), so that no
    /// environment of its own is started (for a Python environment: no idle worker process).
    /// It cannot collect or checkpoint.
    pub fn for_evaluation(cfg: TrainConfig, dev: Device) -> Result<Self> {
        let pool = EnvPool::detached(&cfg.spec);
        Self::seeded(cfg, dev, pool)
    }

    fn seeded(cfg: TrainConfig, dev: Device, pool: EnvPool) -> Result<Self> {
        let seed = cfg.seed();
        let mut init_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, INIT_STREAM));
        let sample_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, SAMPLE_STREAM));
        Self::new(cfg, dev, pool, &mut init_rng, sample_rng)
    }

    /// Builds the groups' networks (initialized from `init_rng`) on `dev`, acting in `pool`.
    pub fn new(
        cfg: TrainConfig,
        dev: Device,
        pool: EnvPool,
        init_rng: &mut ChaCha8Rng,
        rng: ChaCha8Rng,
    ) -> Result<Self> {
        let kind = backend::kind_for(&cfg, &dev);
        // The hand-written backend runs the critic's pass of a minibatch on a second core.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
        let groups = cfg
            .groups
            .iter()
            .map(|g| {
                let shape = GroupShape::of(&cfg, g);
                let init = shape.init(init_rng);
                let b = backend::build(kind, &shape, &init, &dev, threads)
                    .with_context(|| format!("group `{}`", g.name))?;
                Ok(GroupLearner::new(&cfg, g, shape, b))
            })
            .collect::<Result<Vec<_>>>()?;
        let n = cfg.env().n_envs;
        let spec = &cfg.spec;
        Ok(Self {
            joint: vec![0.0; n * spec.action_len()],
            final_joint: vec![0.0; n * spec.action_len()],
            agent_dead: vec![false; n * spec.num_agents()],
            all_masks: vec![true; n * spec.mask_len()],
            cfg,
            pool,
            groups,
            rng,
        })
    }

    /// The resolved config.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Which backend computes group `gi`.
    pub fn backend_kind(&self, gi: usize) -> Option<backend::BackendKind> {
        self.groups.get(gi).map(GroupLearner::backend_kind)
    }

    /// Resets the training environments (seeded from `seed`) and forgets agents done early.
    pub fn reset_envs(&mut self, seed: u64) -> Result<()> {
        self.agent_dead.fill(false);
        self.pool.reset(seed)
    }

    /// Puts `rng` in place of the sampling and shuffling generator; returns the one it was.
    pub fn swap_sampler(&mut self, rng: ChaCha8Rng) -> ChaCha8Rng {
        std::mem::replace(&mut self.rng, rng)
    }

    /// Collects one rollout of `rollout_length` steps into the groups' buffers (groups of
    /// `algo.random_groups` act at random and record nothing).
    pub fn collect(&mut self, stats: &mut EpisodeStats) -> Result<()> {
        let t_len = self.cfg.env().rollout_length;
        let other_actions = self.cfg.algo().critic_other_actions;
        let spec = &self.cfg.spec;
        for t in 0..t_len {
            // ── act ──
            let d = &self.pool.data;
            for g in self.groups.iter_mut().filter(|g| g.is_random()) {
                random_group_actions(spec, g.agents(), &d.masks, &mut self.rng, &mut self.joint);
            }
            for g in learning(&mut self.groups) {
                g.record_step_inputs(spec, t, d, &self.agent_dead);
            }
            if other_actions {
                // The critics see the others' actions: act first, then value.
                for g in learning(&mut self.groups) {
                    g.act_recorded(spec, t, &d.masks, &mut self.rng, &mut self.joint)?;
                }
                for g in learning(&mut self.groups) {
                    g.value_recorded(spec, t, &d.obs, &d.states, &self.joint)?;
                }
            } else {
                for g in learning(&mut self.groups) {
                    g.act_and_value_recorded(spec, t, d, &mut self.rng, &mut self.joint)?;
                }
            }

            // ── step ──
            self.pool.step(&self.joint)?;
            let d = &self.pool.data;
            let na = spec.num_agents();
            let any_truncated_end = self.cfg.ppo().bootstrap_truncation
                && (0..d.done.len())
                    .any(|e| d.done[e] && (0..na).any(|a| !d.terminated[e * na + a]));
            if any_truncated_end {
                // Values of the final states, for bootstrapping at truncation; the others'
                // actions there were never taken, so they are sampled from the current policy.
                self.final_joint.copy_from_slice(&self.joint);
                if other_actions {
                    for g in learning(&mut self.groups) {
                        g.act_at_bootstrap(
                            spec,
                            (&d.final_obs, &self.all_masks),
                            &self.agent_dead,
                            &mut self.rng,
                            &mut self.final_joint,
                        )?;
                    }
                }
                for g in learning(&mut self.groups) {
                    g.bootstrap_values(spec, &d.final_obs, &d.final_states, &self.final_joint)?;
                }
            }
            for g in learning(&mut self.groups) {
                g.record_outcome(t, d, any_truncated_end);
            }
            for e in 0..d.done.len() {
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
        let d = &self.pool.data;
        if other_actions {
            for g in learning(&mut self.groups) {
                g.act_at_bootstrap(
                    spec,
                    (&d.obs, &d.masks),
                    &self.agent_dead,
                    &mut self.rng,
                    &mut self.joint,
                )?;
            }
        }
        for g in learning(&mut self.groups) {
            g.bootstrap_values(spec, &d.obs, &d.states, &self.joint)?;
            g.finish_rollout();
        }
        Ok(())
    }

    /// GAE in the environment's reward scale (values denormalized first).
    pub fn advantages(&mut self) {
        let p = self.cfg.ppo();
        for g in learning(&mut self.groups) {
            g.advantages(p);
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
        let p = self.cfg.ppo();
        let lr = Self::scheduled(p.lr_schedule, p.learning_rate, 0.0, progress);
        let clr = Self::scheduled(p.lr_schedule, p.critic_learning_rate, 0.0, progress);
        for g in &mut self.groups {
            g.set_learning_rates(lr, clr);
        }
        lr
    }

    /// PPO epochs over the collected batch, every group; returns per-group statistics (none
    /// for a group of `algo.random_groups`, which does not train).
    pub fn update(&mut self, entropy_coef: f64) -> Result<Vec<GroupStats>> {
        let p = self.cfg.ppo();
        let log_agents = self.cfg.logging().log_agent_metrics;
        self.groups
            .iter_mut()
            .map(|g| {
                if g.is_random() {
                    Ok(GroupStats {
                        terms: Default::default(),
                        agent_policy_loss: vec![f64::NAN; g.agents().len()],
                    })
                } else {
                    g.update(p, entropy_coef, log_agents, &mut self.rng)
                }
            })
            .collect()
    }

    /// What communicating actors' receivers get when acting from now on (`marl eval
    /// --messages`).
    pub fn set_message_mode(&mut self, mode: backend::MessageMode) {
        for g in &mut self.groups {
            g.set_message_mode(mode);
        }
    }

    /// The joint action of every environment (`[n_envs, action_len]`) in evaluation episodes,
    /// for observations and masks laid out as the pool's: the policies' (greedy or sampled),
    /// except for the groups flagged in `random_groups` and those of `algo.random_groups`,
    /// which act uniformly at random (masked) from `rng`. `first[e]`: environment `e` starts
    /// an episode (recurrent policies start from zero there; their evaluation states are
    /// apart from the rollout's). `agent_dead`
    /// (per environment and agent, or empty): agents done before their episode, which do not
    /// talk.
    #[allow(clippy::too_many_arguments)]
    pub fn policy_actions(
        &mut self,
        obs: &[f32],
        masks: &[bool],
        first: &[bool],
        agent_dead: &[bool],
        greedy: bool,
        random_groups: &[bool],
        rng: &mut ChaCha8Rng,
        joint: &mut [f32],
    ) -> Result<()> {
        let spec = &self.cfg.spec;
        for (gi, g) in self.groups.iter_mut().enumerate() {
            if g.is_random() || random_groups.get(gi).copied().unwrap_or(false) {
                random_group_actions(spec, g.agents(), masks, rng, joint);
            } else {
                g.act_eval(
                    spec,
                    (obs, masks),
                    first,
                    agent_dead,
                    greedy,
                    &mut self.rng,
                    joint,
                )?;
            }
        }
        Ok(())
    }

    /// Everything a checkpoint holds: networks and optimizer state in the frozen layout, the
    /// generator, value normalizers and the environments.
    pub fn checkpoint(
        &mut self,
        update: u64,
        global_step: u64,
        episodes: u64,
    ) -> Result<Checkpoint> {
        let mut model = Vec::new();
        let mut optimizer = Vec::new();
        let mut adam_steps = Vec::new();
        for g in &self.groups {
            adam_steps.push(g.export(&mut model, &mut optimizer)?);
            g.export_rollout_state(&mut optimizer)?;
        }
        // Agents whose episode ended before their environment's, for exact resume.
        let done: Vec<f32> = self
            .agent_dead
            .iter()
            .map(|&d| f32::from(u8::from(d)))
            .collect();
        let n = done.len();
        optimizer.push((AGENTS_DONE.into(), Tensor::from_vec(done, n, &Device::Cpu)?));
        let state = TrainerState {
            update,
            global_step,
            episodes,
            rng: GeneratorState::of(&self.rng),
            value_norm: self.groups.iter().map(GroupLearner::value_norm).collect(),
            adam_steps,
            env_id: self.cfg.spec.id.clone(),
        };
        Ok(Checkpoint {
            model,
            optimizer,
            state,
            envs: self.pool.snapshot()?,
        })
    }

    /// Loads a checkpoint's networks and value normalizers (and, with `full`, the optimizer
    /// state, the generator and the environments: everything `--resume` needs).
    pub fn restore(&mut self, ck: &Checkpoint, full: bool) -> Result<()> {
        // Evaluation may run a policy in another env of the same spaces (`marl eval --env`): the
        // tensor shapes are checked below. Resuming needs the very same env.
        anyhow::ensure!(
            !full || ck.state.env_id == self.cfg.spec.id,
            "the checkpoint is of `{}`, the config names `{}`",
            ck.state.env_id,
            self.cfg.spec.id
        );
        let model: HashMap<String, Tensor> = ck.model.iter().cloned().collect();
        let opt: HashMap<String, Tensor> = ck.optimizer.iter().cloned().collect();
        for (gi, g) in self.groups.iter_mut().enumerate() {
            let steps = ck.state.adam_steps.get(gi).copied().unwrap_or((0, 0));
            let optimizer = full.then_some(SavedOptimizer {
                tensors: &opt,
                steps,
            });
            g.import(&model, optimizer, ck.state.value_norm.get(gi).copied())
                .with_context(|| format!("group `{}`", g.name()))?;
            if full {
                g.import_rollout_state(&opt)
                    .with_context(|| format!("group `{}`", g.name()))?;
            }
        }
        if !full {
            return Ok(());
        }
        // Checkpoints before this was saved had no such tensor: no agent was done early.
        self.agent_dead.fill(false);
        if let Some(t) = opt.get(AGENTS_DONE) {
            let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
            anyhow::ensure!(
                v.len() == self.agent_dead.len(),
                "`{AGENTS_DONE}` has the wrong size"
            );
            for (d, x) in self.agent_dead.iter_mut().zip(v) {
                *d = x != 0.0;
            }
        }
        self.rng = ck.state.rng.to_rng()?;
        self.pool
            .restore(&ck.envs)
            .context("restoring the environments")?;
        Ok(())
    }
}

/// The groups that learn (all but those of `algo.random_groups`).
fn learning(groups: &mut [GroupLearner]) -> impl Iterator<Item = &mut GroupLearner> {
    groups.iter_mut().filter(|g| !g.is_random())
}

/// The checkpoint tensor (with the optimizer state) of the agents done before their
/// environment's episode ended.
const AGENTS_DONE: &str = "rollout.agents_done";

/// Uniformly random (masked; `masks` may be empty where the environment has none) actions for
/// the agents of one group, allocation-free.
fn random_group_actions(
    spec: &EnvSpec,
    agents: &[usize],
    masks: &[bool],
    rng: &mut ChaCha8Rng,
    joint: &mut [f32],
) {
    use rand::Rng;
    let n_envs = joint.len() / spec.action_len();
    for e in 0..n_envs {
        for &agent in agents {
            let ar = spec.action_range(agent);
            let dst = &mut joint[e * spec.action_len() + ar.start..e * spec.action_len() + ar.end];
            match spec.agents[agent].action_space {
                ActionSpace::Discrete(n) => {
                    let mr = spec.mask_range(agent);
                    let at = e * spec.mask_len();
                    let m = masks.get(at + mr.start..at + mr.end).unwrap_or_default();
                    let ok = |c: &usize| m.get(*c).copied().unwrap_or(true);
                    let n_ok = (0..n).filter(ok).count();
                    if n_ok == 0 {
                        dst[0] = 0.0;
                        continue;
                    }
                    let k = rng.random_range(0..n_ok);
                    dst[0] = (0..n).filter(ok).nth(k).unwrap_or(0) as f32;
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
