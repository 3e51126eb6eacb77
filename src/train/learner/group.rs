//! One agent group in the learner: its backend (networks and optimizer), rollout buffer, value
//! normalizer and the buffers of a step. Every method works on the group's own data; the
//! learner only says when.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::Tensor;
use marl_envs::{ActionSpace, EnvSpec};
use rand_chacha::ChaCha8Rng;

use super::update::{self, GroupStats, MinibatchScratch};
use crate::algo::{gae, value_norm::ValueNorm};
use crate::backend::layout::{GroupLayout, SavedOptimizer};
use crate::backend::{ActorOut, Backend, BackendKind, GroupShape, StepInputs};
use crate::config::{Group, PpoConfig, RewardSharing, TrainConfig};
use crate::nn::dist;
use crate::train::buffer::{GroupBuffer, InputLayout};
use marl_envs::VecStep;

/// A group's learner.
pub struct GroupLearner {
    name: String,
    input: InputLayout,
    layout: GroupLayout,
    buf: GroupBuffer,
    backend: Box<dyn Backend>,
    value_norm: ValueNorm,
    /// How the group's rewards are shared (`algo.reward_sharing`), and `mixed`'s weight of the
    /// group's mean (`algo.reward_sharing_weight`).
    reward_sharing: RewardSharing,
    mixed_weight: f32,
    // Buffers of a step, kept between steps.
    x_actor: Vec<f32>,
    /// Critic rows without their state (bootstrap values).
    critic_rest: Vec<f32>,
    /// Whole critic rows, where the state sits inside them (agent-specific states).
    critic_whole: Vec<f32>,
    /// The environment of each row of a step, which is the index of its state.
    env_of_row: Vec<u32>,
    actor_out: ActorOut,
    logp_all: Vec<f32>,
    mask_bias: Vec<f32>,
    actions: Vec<f32>,
    logp: Vec<f32>,
    /// Values of the final states where episodes ended this step, or after the rollout.
    boot: Vec<f32>,
    /// 1 where a row's agent is live, outside the rollout (evaluation, bootstrapping).
    live: Vec<f32>,
    mb: MinibatchScratch,
    /// Recurrent networks: the rollout's states, `[R, H]` each (empty: feed-forward).
    rnn: Rnn,
    /// The actors exchange messages.
    talks: bool,
    /// Acts uniformly at random and never trains (`algo.random_groups`).
    random: bool,
}

/// The recurrent states of a group, each `[R, H]` (all empty for feed-forward networks).
#[derive(Debug, Clone, Default)]
struct Rnn {
    /// The actor's and the critic's state in the training rollout.
    actor: Vec<f32>,
    critic: Vec<f32>,
    /// Zero the row's states before the next step (its stream ended: episode or agent done).
    reset_next: Vec<bool>,
    /// The actor's state in evaluation episodes (never the rollout's).
    eval: Vec<f32>,
    /// Copies that a bootstrap evaluation advances and throws away.
    scratch_actor: Vec<f32>,
    scratch_critic: Vec<f32>,
}

impl Rnn {
    fn new(rows: usize, widths: Option<(usize, usize)>) -> Self {
        let Some((a, c)) = widths else {
            return Self::default();
        };
        Self {
            actor: vec![0.0; rows * a],
            critic: vec![0.0; rows * c],
            reset_next: vec![true; rows],
            eval: vec![0.0; rows * a],
            scratch_actor: vec![0.0; rows * a],
            scratch_critic: vec![0.0; rows * c],
        }
    }

    fn recurrent(&self) -> bool {
        !self.actor.is_empty()
    }
}

/// Zeroes the rows of `state` (`rows` of them) flagged in `reset`.
fn zero_rows(state: &mut [f32], rows: usize, reset: impl Iterator<Item = bool>) {
    let width = state.len() / rows.max(1);
    if width == 0 {
        return;
    }
    for (row, r) in state.chunks_exact_mut(width).zip(reset) {
        if r {
            row.fill(0.0);
        }
    }
}

/// Step `t`'s critic rows without their state, and its states, of the buffer's `critic_rest`
/// and `states`.
fn step_critic_rows<'a>(
    l: &InputLayout,
    (rest, states): (&'a [f32], &'a [f32]),
    t: usize,
) -> (&'a [f32], &'a [f32]) {
    let s = l.n_envs * l.state_dim;
    (
        &rest[l.row_layout().step_span(t, l.rest_in())],
        &states[t * s..(t + 1) * s],
    )
}

impl GroupLearner {
    /// The learner of `group` with networks in `backend`.
    pub fn new(
        cfg: &TrainConfig,
        group: &Group,
        shape: GroupShape,
        backend: Box<dyn Backend>,
    ) -> Self {
        let input = InputLayout::new(cfg, group);
        let rows = input.rows();
        // An action is stored as its index (discrete) or its vector (box); a mask row per
        // action of a discrete space.
        let (act_w, mask_w) = (input.action_space.width(), input.action_space.num_choices());
        let widths = shape.actor.state_width().zip(shape.critic.state_width());
        let t_len = cfg.env().rollout_length;
        let chunk = match cfg.network().data_chunk_length {
            0 => t_len,
            c => c,
        };
        let buf = GroupBuffer::new(t_len, &input, input.masked(&cfg.spec), widths, chunk);
        Self {
            name: group.name.clone(),
            layout: GroupLayout::of(&shape),
            buf,
            backend,
            value_norm: ValueNorm::default(),
            reward_sharing: cfg.algo().reward_sharing,
            mixed_weight: cfg.algo().reward_sharing_weight as f32,
            x_actor: vec![0.0; rows * input.actor_in],
            critic_rest: vec![0.0; rows * input.rest_in()],
            critic_whole: Vec::new(),
            env_of_row: (0..rows)
                .map(|r| input.row_layout().env_of(r) as u32)
                .collect(),
            actor_out: ActorOut::default(),
            logp_all: Vec::new(),
            mask_bias: vec![0.0; rows * mask_w],
            actions: vec![0.0; rows * act_w],
            logp: vec![0.0; rows],
            boot: vec![0.0; rows],
            live: vec![1.0; rows],
            mb: MinibatchScratch::default(),
            rnn: Rnn::new(rows, widths),
            talks: shape.actor.comm.is_some(),
            random: group.random,
            input,
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the group acts uniformly at random and never trains (`algo.random_groups`):
    /// the learner then neither records, values nor updates it.
    pub fn is_random(&self) -> bool {
        self.random
    }

    /// The group's agents (environment indices).
    pub fn agents(&self) -> &[usize] {
        &self.input.agents
    }

    /// Which backend computes the group.
    pub fn backend_kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// The value normalizer's state.
    pub fn value_norm(&self) -> [f64; 3] {
        self.value_norm.to_array()
    }

    /// Learning rates of the actor (or joint) and critic optimizers.
    pub fn set_learning_rates(&mut self, actor: f64, critic: f64) {
        self.backend.set_learning_rates(actor, critic);
    }

    fn rows(&self) -> usize {
        self.input.rows()
    }

    /// Writes step `t`'s actor rows and active flags into the buffer.
    pub fn record_step_inputs(
        &mut self,
        spec: &EnvSpec,
        t: usize,
        d: &VecStep,
        agent_dead: &[bool],
    ) {
        let rl = self.input.row_layout();
        let na = spec.num_agents();
        self.input.actor_rows(
            spec,
            &d.obs,
            &mut self.buf.actor_in[rl.step_span(t, self.input.actor_in)],
        );
        for (k, &agent) in self.input.agents.iter().enumerate() {
            for e in 0..rl.n_envs {
                self.buf.active[rl.index(t, k, e)] =
                    if agent_dead[e * na + agent] { 0.0 } else { 1.0 };
            }
        }
        if self.rnn.recurrent() {
            // Streams that ended at the last step start from zero; each chunk of the rollout
            // keeps the states it starts from, so that training replays it exactly.
            let rnn = &mut self.rnn;
            let b = &mut self.buf;
            for (row, &reset) in rnn.reset_next.iter().enumerate() {
                b.starts[rl.at(t, row)] = if reset { 1.0 } else { 0.0 };
            }
            zero_rows(&mut rnn.actor, rl.rows(), rnn.reset_next.iter().copied());
            zero_rows(&mut rnn.critic, rl.rows(), rnn.reset_next.iter().copied());
            rnn.reset_next.fill(false);
            if t.is_multiple_of(b.chunk) {
                let c = t / b.chunk;
                for (dst, src) in [
                    (&mut b.h0_actor, &rnn.actor),
                    (&mut b.h0_critic, &rnn.critic),
                ] {
                    dst[c * src.len()..(c + 1) * src.len()].copy_from_slice(src);
                }
            }
        }
    }

    /// Acts on step `t`'s recorded actor rows; records actions, log-probabilities and masks.
    pub fn act_recorded(
        &mut self,
        spec: &EnvSpec,
        t: usize,
        masks: &[bool],
        rng: &mut ChaCha8Rng,
        joint: &mut [f32],
    ) -> Result<()> {
        let (r, rl) = (self.rows(), self.input.row_layout());
        let x = &self.buf.actor_in[rl.step_span(t, self.input.actor_in)];
        let live = &self.buf.active[rl.step_span(t, 1)];
        self.backend
            .act(x, r, live, &mut self.actor_out, &mut self.rnn.actor)?;
        self.sample(spec, masks, false, rng, joint);
        self.record_actions(t);
        Ok(())
    }

    /// Values step `t`, whose critic rows are built from `joint` (critics that see the others'
    /// actions).
    pub fn value_recorded(
        &mut self,
        spec: &EnvSpec,
        t: usize,
        obs: &[f32],
        states: &[f32],
        joint: &[f32],
    ) -> Result<()> {
        let r = self.rows();
        self.record_critic_rows(spec, t, obs, states, joint);
        let b = &mut self.buf;
        let (rest, st) = step_critic_rows(&self.input, (&b.critic_rest, &b.states), t);
        let x = self
            .input
            .critic_input(rest, st, &self.env_of_row, &mut self.critic_whole);
        let values = &mut b.values[self.input.row_layout().step_span(t, 1)];
        self.backend.values(x, r, values, &mut self.rnn.critic)
    }

    /// Acts and values step `t` in one go (critics that do not see actions).
    pub fn act_and_value_recorded(
        &mut self,
        spec: &EnvSpec,
        t: usize,
        d: &VecStep,
        rng: &mut ChaCha8Rng,
        joint: &mut [f32],
    ) -> Result<()> {
        let (r, rl) = (self.rows(), self.input.row_layout());
        self.record_critic_rows(spec, t, &d.obs, &d.states, joint);
        let b = &mut self.buf;
        let (rest, st) = step_critic_rows(&self.input, (&b.critic_rest, &b.states), t);
        let x_critic = self
            .input
            .critic_input(rest, st, &self.env_of_row, &mut self.critic_whole);
        self.backend.act_and_values(
            StepInputs {
                rows: r,
                x_actor: &b.actor_in[rl.step_span(t, self.input.actor_in)],
                live: &b.active[rl.step_span(t, 1)],
                x_critic,
                actor_state: &mut self.rnn.actor,
                critic_state: &mut self.rnn.critic,
            },
            &mut self.actor_out,
            &mut b.values[rl.step_span(t, 1)],
        )?;
        self.sample(spec, &d.masks, false, rng, joint);
        self.record_actions(t);
        Ok(())
    }

    /// Writes step `t`'s critic rows without their state, and its global states, into the
    /// buffer.
    fn record_critic_rows(
        &mut self,
        spec: &EnvSpec,
        t: usize,
        obs: &[f32],
        states: &[f32],
        joint: &[f32],
    ) {
        let span = self.input.row_layout().step_span(t, self.input.rest_in());
        let rest = &mut self.buf.critic_rest[span];
        self.input.critic_rest_rows(spec, obs, joint, rest);
        let s = self.input.n_envs * self.input.state_dim;
        self.buf.states[t * s..(t + 1) * s].copy_from_slice(&states[..s]);
    }

    /// Writes which rows' agents are live into `self.live` (`agent_dead`: per environment
    /// and agent; empty: none).
    fn mark_live(&mut self, spec: &EnvSpec, agent_dead: &[bool]) {
        let rl = self.input.row_layout();
        let na = spec.num_agents();
        for (k, &agent) in self.input.agents.iter().enumerate() {
            for e in 0..rl.n_envs {
                let dead = agent_dead.get(e * na + agent).copied().unwrap_or(false);
                self.live[rl.index(0, k, e)] = if dead { 0.0 } else { 1.0 };
            }
        }
    }

    /// What communicating actors' receivers get when acting (`marl eval --messages`).
    pub fn set_message_mode(&mut self, mode: crate::backend::MessageMode) {
        self.backend.set_message_mode(mode);
    }

    /// Acts in evaluation episodes, whose recurrent states are kept apart from the rollout's;
    /// `first[e]`: environment `e` starts an episode (its states are zeroed); agents marked in
    /// `agent_dead` (per environment and agent; may be empty) neither send nor receive.
    #[allow(clippy::too_many_arguments)]
    pub fn act_eval(
        &mut self,
        spec: &EnvSpec,
        (obs, masks): (&[f32], &[bool]),
        first: &[bool],
        agent_dead: &[bool],
        greedy: bool,
        rng: &mut ChaCha8Rng,
        joint: &mut [f32],
    ) -> Result<()> {
        self.mark_live(spec, agent_dead);
        if self.rnn.recurrent() {
            let (rl, rows) = (self.input.row_layout(), self.rows());
            let reset = (0..rows).map(|row| first[rl.env_of(row)]);
            zero_rows(&mut self.rnn.eval, rows, reset);
        }
        self.input.actor_rows(spec, obs, &mut self.x_actor);
        let r = self.rows();
        self.backend.act(
            &self.x_actor,
            r,
            &self.live,
            &mut self.actor_out,
            &mut self.rnn.eval,
        )?;
        self.sample(spec, masks, greedy, rng, joint);
        Ok(())
    }

    /// Samples the group's actions at a state to bootstrap from (critics that see the others'
    /// actions), from the rollout's recurrent states without advancing them.
    pub fn act_at_bootstrap(
        &mut self,
        spec: &EnvSpec,
        (obs, masks): (&[f32], &[bool]),
        agent_dead: &[bool],
        rng: &mut ChaCha8Rng,
        joint: &mut [f32],
    ) -> Result<()> {
        self.mark_live(spec, agent_dead);
        self.input.actor_rows(spec, obs, &mut self.x_actor);
        let r = self.rows();
        let state = &mut self.rnn.scratch_actor;
        state.copy_from_slice(&self.rnn.actor);
        self.backend
            .act(&self.x_actor, r, &self.live, &mut self.actor_out, state)?;
        self.sample(spec, masks, false, rng, joint);
        Ok(())
    }

    /// Values of the states to bootstrap from (final states of finished episodes, or the
    /// states after the rollout), kept for [`record_outcome`](Self::record_outcome) and
    /// [`finish_rollout`](Self::finish_rollout).
    pub fn bootstrap_values(
        &mut self,
        spec: &EnvSpec,
        obs: &[f32],
        states: &[f32],
        joint: &[f32],
    ) -> Result<()> {
        let r = self.rows();
        self.input
            .critic_rest_rows(spec, obs, joint, &mut self.critic_rest);
        let states = &states[..self.input.n_envs * self.input.state_dim];
        let x = self.input.critic_input(
            &self.critic_rest,
            states,
            &self.env_of_row,
            &mut self.critic_whole,
        );
        // From the rollout's states, without advancing them.
        let state = &mut self.rnn.scratch_critic;
        state.copy_from_slice(&self.rnn.critic);
        self.backend.values(x, r, &mut self.boot, state)
    }

    fn record_actions(&mut self, t: usize) {
        let rl = self.input.row_layout();
        let b = &mut self.buf;
        let aw = self.actions.len() / rl.rows();
        b.actions[rl.step_span(t, aw)].copy_from_slice(&self.actions);
        b.logp[rl.step_span(t, 1)].copy_from_slice(&self.logp);
        if let Some(dst) = &mut b.mask_bias {
            let w = self.mask_bias.len();
            dst[t * w..(t + 1) * w].copy_from_slice(&self.mask_bias);
        }
    }

    /// Samples every row's action from `self.actor_out` (greedy: the most likely, or the
    /// mean), keeps actions, log-probabilities and masks, and writes the joint action.
    fn sample(
        &mut self,
        spec: &EnvSpec,
        masks: &[bool],
        greedy: bool,
        rng: &mut ChaCha8Rng,
        joint: &mut [f32],
    ) {
        let (rl, n) = (self.input.row_layout(), self.input.n_envs);
        let al = spec.action_len();
        match self.input.action_space {
            ActionSpace::Discrete(n_actions) => {
                let masked = self.input.masked(spec);
                if masked {
                    self.mask_bias.fill(0.0);
                    for (k, &agent) in self.input.agents.iter().enumerate() {
                        // Joined groups: choices beyond the agent's own are never taken.
                        let own = spec.agents[agent].action_space.num_choices();
                        for e in 0..n {
                            let row = &mut self.mask_bias[rl.row(k, e) * n_actions..][..n_actions];
                            row[own..].fill(dist::MASKED_LOGIT);
                            if !spec.has_action_masks {
                                continue;
                            }
                            let m = &masks[e * spec.mask_len()..][spec.mask_range(agent)];
                            for (b, &ok) in row.iter_mut().zip(m) {
                                if !ok {
                                    *b = dist::MASKED_LOGIT;
                                }
                            }
                        }
                    }
                }
                let bias = masked.then_some(self.mask_bias.as_slice());
                dist::log_softmax_rows(&self.actor_out.out, bias, n_actions, &mut self.logp_all);
                for (k, &agent) in self.input.agents.iter().enumerate() {
                    let at = spec.action_range(agent).start;
                    for e in 0..n {
                        let row = rl.row(k, e);
                        let lp = &self.logp_all[row * n_actions..(row + 1) * n_actions];
                        let (a, logp) = dist::sample_categorical(lp, greedy, rng);
                        self.actions[row] = a as f32;
                        self.logp[row] = logp;
                        joint[e * al + at] = a as f32;
                    }
                }
            }
            ActionSpace::Box { dim, low, high } => {
                let out = &self.actor_out;
                for (k, &agent) in self.input.agents.iter().enumerate() {
                    let ar = spec.action_range(agent);
                    for e in 0..n {
                        let row = rl.row(k, e);
                        let a = &mut self.actions[row * dim..(row + 1) * dim];
                        self.logp[row] = dist::sample_gaussian(
                            &out.out[row * dim..(row + 1) * dim],
                            &out.log_std[row * dim..(row + 1) * dim],
                            greedy,
                            rng,
                            a,
                        );
                        // The policy acts in [-1, 1]; map linearly onto the box and clip.
                        let dst = &mut joint[e * al + ar.start..e * al + ar.end];
                        for (d, &x) in dst.iter_mut().zip(a.iter()) {
                            *d = (low + (x.clamp(-1.0, 1.0) + 1.0) * 0.5 * (high - low))
                                .clamp(low, high);
                        }
                    }
                }
            }
        }
    }

    /// Records step `t`'s rewards (shared as configured), terminations, ends of streams and
    /// next values: 0 after a termination, the final state's value at a truncation
    /// (`booted`: [`bootstrap_values`](Self::bootstrap_values) ran for this step), else
    /// unknown until the next step. An episode that ends without `booted` ended by termination,
    /// or by a truncation that `ppo.bootstrap_truncation = false` treats as one.
    pub fn record_outcome(&mut self, t: usize, d: &VecStep, booted: bool) {
        let w = self.mixed_weight;
        let (rl, n) = (self.input.row_layout(), self.input.n_envs);
        let na = d.rewards.len() / n;
        let kg = self.input.agents.len() as f32;
        let b = &mut self.buf;
        for e in 0..n {
            let mean: f32 = self
                .input
                .agents
                .iter()
                .map(|&a| d.rewards[e * na + a] as f32)
                .sum::<f32>()
                / kg;
            for (k, &agent) in self.input.agents.iter().enumerate() {
                let i = rl.index(t, k, e);
                let own = d.rewards[e * na + agent] as f32;
                b.rewards[i] = match self.reward_sharing {
                    RewardSharing::Individual => own,
                    RewardSharing::Shared => mean,
                    RewardSharing::Mixed => w * mean + (1.0 - w) * own,
                };
                let term = d.terminated[e * na + agent] || (d.done[e] && !booted);
                b.terminal[i] = term;
                b.ended[i] = d.done[e] || term;
                if let Some(reset) = self.rnn.reset_next.get_mut(rl.row(k, e)) {
                    *reset = b.ended[i];
                }
                b.next_values[i] = match (term, d.done[e]) {
                    (true, _) => 0.0,
                    (false, true) if booted => self.boot[rl.row(k, e)],
                    _ => f32::NAN, // filled from the next step's value
                };
            }
        }
    }

    /// Fills the next values still unknown: the next step's value, or after the last step the
    /// value of the state after the rollout ([`bootstrap_values`](Self::bootstrap_values)).
    pub fn finish_rollout(&mut self) {
        let b = &mut self.buf;
        let (rl, t_len) = (self.input.row_layout(), b.t_len);
        let r = rl.rows();
        for t in 0..t_len {
            for i in 0..r {
                let j = rl.at(t, i);
                if b.next_values[j].is_nan() {
                    b.next_values[j] = if t + 1 < t_len {
                        b.values[j + r]
                    } else {
                        self.boot[i]
                    };
                }
            }
        }
    }

    /// GAE in the environment's reward scale (values denormalized first).
    pub fn advantages(&mut self, p: &PpoConfig) {
        let b = &mut self.buf;
        let vn = &self.value_norm;
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

    /// PPO epochs over the collected batch.
    pub fn update(
        &mut self,
        p: &PpoConfig,
        entropy_coef: f64,
        log_agents: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<GroupStats> {
        update::run_epochs(
            &update::GroupBatch {
                name: &self.name,
                buf: &self.buf,
                input: &self.input,
                unshared: self.layout.unshared(),
                shared_critic: self.layout.shared_critic(),
                talks: self.talks,
            },
            self.backend.as_mut(),
            &mut self.value_norm,
            &update::Settings {
                ppo: p,
                entropy_coef,
                log_agents,
            },
            rng,
            &mut self.mb,
        )
    }

    /// Writes the group's networks and optimizer state (frozen names); returns the Adam step
    /// counts.
    pub fn export(
        &self,
        model: &mut Vec<(String, Tensor)>,
        optimizer: &mut Vec<(String, Tensor)>,
    ) -> Result<(u64, u64)> {
        self.layout.export(&self.backend.state()?, model, optimizer)
    }

    /// The rollout's recurrent states and reset flags, which `--resume` needs to continue
    /// exactly (none for feed-forward networks).
    pub fn export_rollout_state(&self, out: &mut Vec<(String, Tensor)>) -> Result<()> {
        if !self.rnn.recurrent() {
            return Ok(());
        }
        let r = self.rows();
        let cpu = &candle_core::Device::Cpu;
        let flags: Vec<f32> = self
            .rnn
            .reset_next
            .iter()
            .map(|&b| f32::from(u8::from(b)))
            .collect();
        for (name, v, w) in [
            ("actor", &self.rnn.actor, self.rnn.actor.len() / r),
            ("critic", &self.rnn.critic, self.rnn.critic.len() / r),
            ("reset", &flags, 1),
        ] {
            let t = Tensor::from_slice(v, (r, w), cpu)?;
            out.push((format!("{}.rollout_state.{name}", self.name), t));
        }
        Ok(())
    }

    /// Loads what [`export_rollout_state`](Self::export_rollout_state) wrote.
    pub fn import_rollout_state(&mut self, map: &HashMap<String, Tensor>) -> Result<()> {
        if !self.rnn.recurrent() {
            return Ok(());
        }
        let mut flags = vec![0.0f32; self.rows()];
        for (name, dst) in [
            ("actor", &mut self.rnn.actor),
            ("critic", &mut self.rnn.critic),
            ("reset", &mut flags),
        ] {
            let key = format!("{}.rollout_state.{name}", self.name);
            let t = map
                .get(&key)
                .with_context(|| format!("the checkpoint has no `{key}` (recurrent state)"))?;
            let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
            anyhow::ensure!(
                v.len() == dst.len(),
                "`{key}` has {} values, expected {}",
                v.len(),
                dst.len()
            );
            dst.copy_from_slice(&v);
        }
        for (dst, f) in self.rnn.reset_next.iter_mut().zip(&flags) {
            *dst = *f != 0.0;
        }
        Ok(())
    }

    /// Loads networks, value normalizer and (with `optimizer`) optimizer state.
    pub fn import(
        &mut self,
        model: &HashMap<String, Tensor>,
        optimizer: Option<SavedOptimizer<'_>>,
        value_norm: Option<[f64; 3]>,
    ) -> Result<()> {
        let state = self.layout.import(model, optimizer)?;
        self.backend.load_state(&state, optimizer.is_some())?;
        if let Some(v) = value_norm {
            self.value_norm = ValueNorm::from_array(v);
        }
        Ok(())
    }
}

#[cfg(test)]
impl GroupLearner {
    /// The rollout buffer.
    pub(super) fn buffer(&self) -> &GroupBuffer {
        &self.buf
    }

    /// The training pass over the whole rollout, by buffer position: (log-prob, value).
    pub(super) fn replay(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        let batch = update::GroupBatch {
            name: &self.name,
            buf: &self.buf,
            input: &self.input,
            unshared: self.layout.unshared(),
            shared_critic: self.layout.shared_critic(),
            talks: self.talks,
        };
        update::replay(&batch, self.backend.as_mut())
    }
}
