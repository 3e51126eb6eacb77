//! One agent group's networks behind one trait, whatever computes them: acting for all
//! environments and agents of a step, critic values, the gradient of one minibatch's PPO loss,
//! the optimizer step, and the parameters and optimizer state as flat vectors.
//!
//! | backend | where | what it is |
//! |---|---|---|
//! | [`cpu::CpuBackend`] | CPU (default) | forward and backward by hand on `gemm`, the loss gradient in one pass, flat Adam; allocation-free per minibatch; actor and critic passes on two cores |
//! | [`candle::CandleBackend`] | CUDA; CPU as the reference (`network.cpu_fast_path = false`) | candle's autograd over the same networks |
//!
//! Every backend owns its parameters and optimizer moments between updates; the learner reads
//! them only to checkpoint ([`Backend::state`]). The schedule that calls [`Backend::accumulate`]
//! and [`Backend::step`] (shuffles, minibatches, normalizations, epochs, early stop) is written
//! once, in `learner::update`; the checkpoint names are written once, in [`layout`], over the
//! networks' shapes ([`shape`], a leaf both read).
//!
//! # Rows
//! A step's rows are agent-major (`row = k * n_envs + e` for agent `k` of the group, written
//! once in [`RowLayout`]); a minibatch's rows carry their agent in [`Minibatch::agents`],
//! sorted by agent when the group has one network per agent ([`Minibatch::runs`]).

pub mod candle;
pub mod cpu;
pub mod device;
pub mod layout;
pub mod rows;
pub mod shape;

use anyhow::Result;
use rand_chacha::ChaCha8Rng;

use crate::algo::ppo::LossConfig;
use crate::algo::scalars::Scalars;
use crate::config::TrainConfig;

pub use crate::nn::comm::{Channels, MessageMode};
pub use layout::{GroupState, SideState};
pub use rows::{RowLayout, Run};
pub use shape::{GroupShape, NetShape, OptimShape, Precision, Recurrence, SideShape};

// Initialization writes each parameter where the layout puts it: here rather than in `shape`,
// which the layout reads.
impl GroupShape {
    /// Initial parameters of both sides, drawn from `rng`: per network of the actor side its
    /// layers (orthogonal) then its embedding (standard normal), then the critic side's the
    /// same way; log-stds start at `log_std_init`; an actor's message layers are drawn after
    /// its networks.
    pub fn init(&self, rng: &mut ChaCha8Rng) -> GroupState {
        let side = |s: &SideShape, rng: &mut ChaCha8Rng| {
            let lay = layout::SideLayout::of(s);
            let mut values = vec![0.0f32; lay.len()];
            let net = s.net();
            for k in 0..s.n_nets {
                net.init(s.net.head_gain, rng, &mut values[lay.net(k)]);
                if let Some(r) = lay.embedding() {
                    for v in &mut values[r] {
                        *v = crate::nn::init::normal(rng) as f32;
                    }
                }
            }
            for r in lay.log_stds() {
                values[r].fill(self.log_std_init as f32);
            }
            if let (Some(c), Some(r)) = (&s.comm, lay.comm()) {
                crate::nn::cpu_comm::CpuComm::new(c).init(rng, &mut values[r]);
            }
            SideState::fresh(values)
        };
        let actor = side(&self.actor, rng);
        let critic = side(&self.critic, rng);
        GroupState { actor, critic }
    }
}

/// What a backend is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// The hand-written CPU backend.
    Cpu,
    /// candle's autograd (CUDA, or the CPU reference).
    Candle,
}

/// Builds a group's backend on `dev` from its initial (or loaded) state.
///
/// `threads`: cores the CPU backend may use for one minibatch (actor and critic passes run
/// side by side with 2). bf16 ([`Precision::Bf16`]) is refused off CUDA.
pub fn build(
    kind: BackendKind,
    shape: &GroupShape,
    state: &GroupState,
    dev: &candle_core::Device,
    threads: usize,
) -> Result<Box<dyn Backend>> {
    if shape.precision == Precision::Bf16 && !dev.is_cuda() {
        anyhow::bail!(
            "group `{}`: ppo.use_mixed_precision = true computes in bf16 on CUDA only; on the \
             CPU set it to false (bf16 gives no speed there)",
            shape.name
        );
    }
    Ok(match kind {
        BackendKind::Cpu => Box::new(cpu::CpuBackend::new(shape, state, threads)?),
        BackendKind::Candle => Box::new(candle::CandleBackend::new(shape, state, dev)?),
    })
}

/// The backend a config asks for on a device: the hand-written one on the CPU unless
/// `network.cpu_fast_path = false`; candle's on CUDA.
pub fn kind_for(cfg: &TrainConfig, dev: &candle_core::Device) -> BackendKind {
    if matches!(dev, candle_core::Device::Cpu) && cfg.network().cpu_fast_path {
        BackendKind::Cpu
    } else {
        BackendKind::Candle
    }
}

/// The actor's output for a set of rows, on the host.
#[derive(Debug, Clone, Default)]
pub struct ActorOut {
    /// Logits `[rows, n]` (discrete) or Gaussian means `[rows, d]` (box).
    pub out: Vec<f32>,
    /// Gaussian log-stds `[rows, d]` (clamped to [-5, 2]); empty for discrete actions.
    pub log_std: Vec<f32>,
}

/// A critic's host rows: whole, or (a critic on the global state) each row the state of its
/// environment and step, shared by the group's agents there, followed by the row's own
/// columns (the others' actions, the one-hot id). A backend whose network can computes the
/// state's part of the first layer once per distinct state; any other writes the rows out.
#[derive(Debug, Clone, Copy)]
pub struct CriticRows<'a> {
    /// `[rows, w]`: whole rows, or with `states` each row's columns after its state.
    pub own: &'a [f32],
    /// The states the rows begin with.
    pub states: Option<SharedStates<'a>>,
}

/// Global states that several critic rows begin with.
#[derive(Debug, Clone, Copy)]
pub struct SharedStates<'a> {
    /// The distinct states `[U, dim]`.
    pub values: &'a [f32],
    /// A state's width.
    pub dim: usize,
    /// Which state each row begins with `[rows]`.
    pub of_row: &'a [u32],
}

impl<'a> CriticRows<'a> {
    /// Whole rows.
    pub fn whole(x: &'a [f32]) -> Self {
        Self {
            own: x,
            states: None,
        }
    }

    /// Writes the whole rows (`rows` of them) into `out`, the state first.
    pub fn write_out(&self, rows: usize, out: &mut Vec<f32>) {
        out.clear();
        let own_w = self.own.len() / rows.max(1);
        for r in 0..rows {
            if let Some(s) = &self.states {
                let st = s.of_row[r] as usize;
                out.extend_from_slice(&s.values[st * s.dim..(st + 1) * s.dim]);
            }
            out.extend_from_slice(&self.own[r * own_w..(r + 1) * own_w]);
        }
    }
}

/// One minibatch, gathered on the host by the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Minibatch<'a> {
    /// Rows.
    pub rows: usize,
    /// Actor inputs `[rows, actor in]`.
    pub x_actor: &'a [f32],
    /// Critic inputs.
    pub x_critic: CriticRows<'a>,
    /// Actions taken: indices `[rows]` or Gaussian samples `[rows, d]`.
    pub actions: &'a [f32],
    /// Additive logit masks `[rows, n]` (0, or `MASKED_LOGIT`).
    pub mask_bias: Option<&'a [f32]>,
    /// Log-probabilities at collection `[rows]`.
    pub old_logp: &'a [f32],
    /// Values at collection (normalized scale) `[rows]`.
    pub old_values: &'a [f32],
    /// 1 where the agent was in its episode `[rows]`.
    pub active: &'a [f32],
    /// Advantages (normalized as configured) `[rows]`.
    pub advantages: &'a [f32],
    /// Value targets (normalized scale) `[rows]`.
    pub targets: &'a [f32],
    /// The agent (index in the group) of each row `[rows]`.
    pub agents: &'a [u32],
    /// Contiguous runs of one agent's rows. With one network per agent the rows are sorted by agent, so each agent has at most one run.
    pub runs: &'a [Run],
    /// Recurrent networks: the rows are whole sequences (see [`SeqBatch`]).
    pub seq: Option<SeqBatch<'a>>,
    /// Communicating actors: the rows' channels, whole (every member of each channel is a
    /// row of the minibatch; live where `active`).
    pub channels: Option<Channels<'a>>,
}

/// A minibatch of sequences for recurrent networks. Each run of [`Minibatch::runs`] holds
/// `rows / len` whole sequences, time-major (`row = start + t * S + s`); sequence `s` of the
/// run starting at row `start` is sequence `start / len + s` of the minibatch.
#[derive(Debug, Clone, Copy)]
pub struct SeqBatch<'a> {
    /// Steps per sequence.
    pub len: usize,
    /// 1 where the state is zeroed before the row's step (an episode began there), `[rows]`.
    pub starts: &'a [f32],
    /// The actor's state at each sequence's start, `[sequences, H]` (empty: feed-forward).
    pub h0_actor: &'a [f32],
    /// The critic's, likewise.
    pub h0_critic: &'a [f32],
}

/// Per-row outputs of a minibatch's pass (per-agent losses, tests).
#[derive(Debug)]
pub struct RowOutputs<'a> {
    /// Log-probabilities of the rows' actions `[rows]`.
    pub logp: &'a mut [f32],
    /// Values (normalized scale) `[rows]`.
    pub values: &'a mut [f32],
}

/// One step's inputs to both sides.
#[derive(Debug)]
pub struct StepInputs<'a> {
    /// Rows (agents x environments, agent-major).
    pub rows: usize,
    /// Actor rows.
    pub x_actor: &'a [f32],
    /// 1 where the row's agent is live (communicating actors: it sends and receives);
    /// empty: all are.
    pub live: &'a [f32],
    /// Critic rows.
    pub x_critic: CriticRows<'a>,
    /// The actor's recurrent state (empty: feed-forward).
    pub actor_state: &'a mut [f32],
    /// The critic's.
    pub critic_state: &'a mut [f32],
}

/// The loss's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossCoefs {
    /// Clipping and the value loss's kind.
    pub loss: LossConfig,
    /// Entropy bonus weight.
    pub entropy_coef: f64,
    /// Value loss weight.
    pub value_coef: f64,
}

/// One group's networks and optimizer on one device.
pub trait Backend: Send {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// Actor outputs for the rows of one step (agent-major: `rows / n_agents` environments
    /// per agent) into `out`. A recurrent actor steps from `state` (`[rows, H]`, zeroed by the
    /// caller where an episode begins) and leaves the new state there. Communicating actors
    /// exchange messages among the agents of each environment that are `live` (`[rows]`;
    /// empty: all).
    fn act(
        &mut self,
        x: &[f32],
        rows: usize,
        live: &[f32],
        out: &mut ActorOut,
        state: &mut [f32],
    ) -> Result<()>;

    /// Critic values (normalized scale) of one step's rows into `out` (`[rows]`); a recurrent
    /// critic steps its `state` as [`act`](Self::act) does.
    fn values(
        &mut self,
        x: CriticRows<'_>,
        rows: usize,
        out: &mut [f32],
        state: &mut [f32],
    ) -> Result<()>;

    /// [`act`](Self::act) and [`values`](Self::values) of the same step, side by side where
    /// the backend can.
    fn act_and_values(
        &mut self,
        step: StepInputs<'_>,
        actor_out: &mut ActorOut,
        values: &mut [f32],
    ) -> Result<()> {
        self.act(
            step.x_actor,
            step.rows,
            step.live,
            actor_out,
            step.actor_state,
        )?;
        self.values(step.x_critic, step.rows, values, step.critic_state)
    }

    /// What communicating actors' receivers are given when acting from now on
    /// (`marl eval --messages`); training always uses the messages as sent.
    fn set_message_mode(&mut self, mode: MessageMode);

    /// The PPO loss of a minibatch (named terms: `policy_loss`, `value_loss`, `entropy`,
    /// `approx_kl`, `clipfrac`); its gradient is added to the pending one. With `rows`,
    /// also each row's new log-probability and value.
    fn accumulate(
        &mut self,
        mb: &Minibatch<'_>,
        coefs: &LossCoefs,
        rows: Option<RowOutputs<'_>>,
    ) -> Result<Scalars>;

    /// One optimizer step on the mean of the `pending` gradients accumulated since the last
    /// step: global-norm clip (per optimizer), Adam, gradients back to zero.
    fn step(&mut self, pending: usize) -> Result<()>;

    /// The sum of the gradients accumulated since the last step, per side (actor, critic) in
    /// the flat layout; they stay pending. For tests and diagnostics.
    fn pending_gradient(&mut self) -> Result<[Vec<f32>; 2]>;

    /// Learning rates of the actor (or joint) and critic optimizers.
    fn set_learning_rates(&mut self, actor: f64, critic: f64);

    /// Parameters and optimizer state, flat, in the layout of [`layout::SideLayout`].
    fn state(&self) -> Result<GroupState>;

    /// Loads parameters and, with `optimizer`, the optimizer state.
    fn load_state(&mut self, state: &GroupState, optimizer: bool) -> Result<()>;
}
