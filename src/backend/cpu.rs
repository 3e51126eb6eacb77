//! The hand-written CPU backend: every network the config allows (shared or one per agent,
//! one-hot ids or learned embeddings, LayerNorms, tanh or ReLU, categorical or Gaussian
//! actors) as [`CpuMlp`]s over flat parameter vectors, the loss gradient of `algo::ppo_cpu`,
//! and flat Adam. Nothing is allocated per minibatch once the first has sized the buffers.
//!
//! The actor side and the critic side are independent until the optimizer step, so with two
//! threads the critic's pass of a minibatch runs on the second core (the same arithmetic, so
//! the same numbers).

use anyhow::{anyhow, Result};
use marl_envs::ActionSpace;

use super::layout::SideLayout;
use super::{
    ActorOut, Backend, BackendKind, Channels, CriticRows, GroupShape, GroupState, LossCoefs,
    MessageMode, Minibatch, RowLayout, RowOutputs, Run, SideShape, SideState, StepInputs,
};
use crate::algo::ppo_cpu::{
    active_count, policy_grad, value_grad, Head, PolicyInputs, PolicyTerms,
};
use crate::algo::scalars::Scalars;
use crate::config::OptimizerKind;
use crate::nn::comm::step_members;
use crate::nn::cpu_comm::CpuComm;
use crate::nn::cpu_mlp::{MlpInput, SharedRows};
use crate::nn::cpu_net::{CpuNet, Sequences};
use crate::nn::optim::{clip_global_norm, FlatAdam};
use crate::util::parallel;

/// Multiply-adds of a step's forwards (about rows x parameters) above which the actor's and
/// the critic's run on two cores.
const PARALLEL_STEP_MACS: usize = 1 << 16;

/// The range log-stds are clamped to, as `nn::dist` users do.
const LOG_STD_RANGE: (f32, f32) = (-5.0, 2.0);

/// One side (actor or critic): its networks, parameters, gradients, optimizer and buffers.
#[derive(Clone)]
struct Side {
    nets: Vec<CpuNet>,
    layout: SideLayout,
    values: Vec<f32>,
    /// Counts the changes of `values`: the networks reuse their packed weights while it
    /// stays the same (over a rollout's steps).
    version: u64,
    grads: Vec<f32>,
    adam: FlatAdam,
    out_dim: usize,
    /// Size of the learned embedding appended to the input (0: none).
    emb_dim: usize,
    /// Gaussian action size (0: no log-std), and where each network's log-std starts.
    ls_dim: usize,
    ls_at: Vec<usize>,
    /// Rows as the networks read them, where they differ from the caller's: with the
    /// embedding appended, or with a state the network cannot share written out in front.
    x_in: Vec<f32>,
    /// Whether the last forward read `x_in`, or the message layers' output (else the
    /// caller's rows).
    read_x_in: bool,
    read_comm: bool,
    /// The outputs of every row, `[rows, out_dim]`.
    out: Vec<f32>,
    /// The loss's gradient w.r.t. `out`.
    d_out: Vec<f32>,
    /// Log-stds per row, `[rows, ls_dim]`, and the loss's gradient w.r.t. them.
    ls_rows: Vec<f32>,
    d_ls: Vec<f32>,
    /// Gradient w.r.t. the network input (for the embedding).
    d_in: Vec<f32>,
    /// Buffers of a recurrent network's backward.
    scratch: (Vec<f32>, Vec<f32>),
    /// Zeros: a rollout step's reset flags (the caller zeroes the states itself).
    no_starts: Vec<f32>,
    /// A communicating actor's message layers (their parameters at `layout.comm()`), and
    /// the gradient w.r.t. their output (the state columns of `d_in`); a network's input
    /// gradient when the networks are one per agent.
    comm: Option<CpuComm>,
    d_comm: Vec<f32>,
    d_run: Vec<f32>,
}

/// What a side's recurrent networks run over: `len` steps per sequence, reset flags per row,
/// initial states per sequence.
#[derive(Debug, Clone, Copy)]
struct SideSeq<'a> {
    len: usize,
    starts: &'a [f32],
    h0: &'a [f32],
}

impl Side {
    fn new(shape: &SideShape, state: &SideState, lr: f64, eps: f64) -> Result<Self> {
        let layout = SideLayout::of(shape);
        anyhow::ensure!(
            state.values.len() == layout.len(),
            "`{}`: {} parameters given, the network has {}",
            shape.prefix,
            state.values.len(),
            layout.len()
        );
        let mut side = Self {
            nets: (0..shape.n_nets).map(|_| shape.net()).collect(),
            values: state.values.clone(),
            version: 0,
            grads: vec![0.0; layout.len()],
            adam: FlatAdam::new(layout.len(), lr, eps),
            layout,
            out_dim: shape.net.out_dim,
            emb_dim: shape.embedding.map_or(0, |(_, d)| d),
            ls_dim: shape.log_std.unwrap_or(0),
            ls_at: Vec::new(),
            x_in: Vec::new(),
            read_x_in: false,
            read_comm: false,
            out: Vec::new(),
            d_out: Vec::new(),
            ls_rows: Vec::new(),
            d_ls: Vec::new(),
            d_in: Vec::new(),
            scratch: (Vec::new(), Vec::new()),
            no_starts: Vec::new(),
            comm: shape.comm.as_ref().map(CpuComm::new),
            d_comm: Vec::new(),
            d_run: Vec::new(),
        };
        side.ls_at = side.layout.log_stds().map(|r| r.start).collect();
        side.load(state, true);
        Ok(side)
    }

    fn load(&mut self, s: &SideState, optimizer: bool) {
        self.values.copy_from_slice(&s.values);
        self.version += 1;
        if optimizer {
            let (m, v) = self.adam.moments_mut();
            m.copy_from_slice(&s.m);
            v.copy_from_slice(&s.v);
            self.adam.t = s.t;
        }
    }

    fn state(&self) -> SideState {
        let (m, v) = self.adam.moments();
        SideState {
            values: self.values.clone(),
            m: m.to_vec(),
            v: v.to_vec(),
            t: self.adam.t,
        }
    }

    /// The network serving `agent`.
    fn net_of(&self, agent: u32) -> usize {
        if self.nets.len() == 1 {
            0
        } else {
            agent as usize
        }
    }

    /// Whether the networks compute rows that share a state from the state once: one shared
    /// network whose first layer reads the raw input.
    fn shares_states(&self, x: &CriticRows<'_>) -> bool {
        x.states.is_some() && self.nets.len() == 1 && self.nets[0].shares_states()
    }

    /// Fills `x_in` where the networks do not read `x` as it is: the communicated state in
    /// place of the host row, the learned embedding appended to each row, and a state that the
    /// networks cannot share written out in front.
    fn prepare_input(
        &mut self,
        x: &CriticRows<'_>,
        rows: usize,
        agents: &[u32],
        talk: Option<(&Channels<'_>, MessageMode)>,
    ) {
        let shared = self.shares_states(x);
        let emb = self.layout.embedding();
        self.read_x_in = emb.is_some() || (x.states.is_some() && !shared);
        // The networks read the communicated state where it is, unless rows need more.
        self.read_comm = self.comm.is_some() && !self.read_x_in;
        if self.comm.is_some() {
            self.read_x_in = !self.read_comm;
        }
        if !self.read_x_in && !self.read_comm {
            return;
        }
        let e = self.emb_dim;
        let own_w = x.own.len() / rows.max(1);
        let (hidden, h_w) = match (&mut self.comm, self.layout.comm()) {
            (Some(comm), Some(range)) => {
                let (ch, mode) = talk.expect("a communicating actor is given its channels");
                let h_w = comm.width();
                let version = Some(self.version);
                let h = comm.forward(&self.values[range], x.own, rows, ch, mode, version);
                (h, h_w)
            }
            _ => (&[][..], 0),
        };
        if self.read_comm {
            return;
        }
        let x_in = &mut self.x_in;
        x_in.clear();
        for r in 0..rows {
            if let (Some(s), false) = (&x.states, shared) {
                let st = s.of_row[r] as usize;
                x_in.extend_from_slice(&s.values[st * s.dim..(st + 1) * s.dim]);
            }
            if h_w == 0 {
                x_in.extend_from_slice(&x.own[r * own_w..(r + 1) * own_w]);
            } else {
                x_in.extend_from_slice(&hidden[r * h_w..(r + 1) * h_w]);
            }
            if let Some(emb) = &emb {
                let a = agents[r] as usize;
                x_in.extend_from_slice(&self.values[emb.start + a * e..emb.start + (a + 1) * e]);
            }
        }
    }

    /// The outputs of `rows` rows of `x` into `self.out` (and, for Gaussian actors, their
    /// log-stds into `self.ls_rows`); recurrent networks run over `seq`, communicating actors
    /// talk over `talk`'s channels.
    fn forward(
        &mut self,
        x: CriticRows<'_>,
        rows: usize,
        agents: &[u32],
        runs: &[Run],
        seq: Option<SideSeq<'_>>,
        talk: Option<(&Channels<'_>, MessageMode)>,
    ) {
        self.prepare_input(&x, rows, agents, talk);
        let shared = self.shares_states(&x);
        let Self {
            nets,
            layout,
            values,
            version,
            out_dim,
            x_in,
            read_x_in,
            read_comm,
            comm,
            out,
            ..
        } = self;
        let width = nets[0].state_width().unwrap_or(0);
        // A run's sequences: its rows' reset flags and its sequences' initial states.
        let seq_of = |start: usize, n: usize| {
            seq.map(|s| Sequences {
                len: s.len,
                starts: &s.starts[start..start + n],
                h0: &s.h0[start / s.len * width..(start + n) / s.len * width],
            })
        };
        let o = *out_dim;
        let rows_in = match (&*comm, *read_x_in, *read_comm) {
            (_, true, _) => &x_in[..],
            (Some(c), _, true) => c.output(),
            _ => x.own,
        };
        let input = network_input(&x, shared, rows_in);
        out.resize(rows * o, 0.0);
        if nets.len() == 1 {
            let y = nets[0].forward(
                &values[layout.net(0)],
                input,
                rows,
                seq_of(0, rows),
                Some(*version),
            );
            out.copy_from_slice(y);
        } else {
            let MlpInput::Rows(input) = input else {
                unreachable!("per-agent networks read whole rows")
            };
            let w = input.len() / rows.max(1);
            for run in runs {
                let (k, start, n) = (run.agent, run.start, run.len);
                let y = nets[k].forward(
                    &values[layout.net(k)],
                    MlpInput::Rows(&input[start * w..(start + n) * w]),
                    n,
                    seq_of(start, n),
                    Some(*version),
                );
                out[start * o..(start + n) * o].copy_from_slice(y);
            }
        }
        if self.ls_dim > 0 {
            let d = self.ls_dim;
            self.ls_rows.resize(rows * d, 0.0);
            for r in 0..rows {
                let at = self.ls_at[self.net_of(agents[r])];
                let src = &self.values[at..at + d];
                for (dst, &v) in self.ls_rows[r * d..(r + 1) * d].iter_mut().zip(src) {
                    *dst = v.clamp(LOG_STD_RANGE.0, LOG_STD_RANGE.1);
                }
            }
        }
    }

    /// One rollout step of `rows` rows (agent-major) from the recurrent `state`, which it
    /// advances; feed-forward networks ignore it.
    fn step(
        &mut self,
        x: CriticRows<'_>,
        rows: usize,
        (agents, runs): (&[u32], &[Run]),
        talk: Option<(&Channels<'_>, MessageMode)>,
        state: &mut [f32],
    ) {
        let Some(width) = self.nets[0].state_width() else {
            self.forward(x, rows, agents, runs, None, talk);
            return;
        };
        let mut no_starts = std::mem::take(&mut self.no_starts);
        no_starts.resize(rows, 0.0);
        let seq = SideSeq {
            len: 1,
            starts: &no_starts,
            h0: state,
        };
        self.forward(x, rows, agents, runs, Some(seq), talk);
        self.no_starts = no_starts;
        if self.nets.len() == 1 {
            state.copy_from_slice(self.nets[0].final_state());
        } else {
            for run in runs {
                let (k, start, n) = (run.agent, run.start, run.len);
                state[start * width..(start + n) * width]
                    .copy_from_slice(self.nets[k].final_state());
            }
        }
    }

    /// Adds the gradients for `self.d_out` (and `self.d_ls`) after [`forward`](Self::forward)
    /// on the same rows (and channels).
    fn backward(
        &mut self,
        x: CriticRows<'_>,
        agents: &[u32],
        runs: &[Run],
        channels: Option<&Channels<'_>>,
    ) {
        let shared = self.shares_states(&x);
        let talks = self.comm.is_some();
        let Self {
            nets,
            layout,
            values,
            grads,
            out_dim,
            emb_dim,
            x_in,
            read_x_in,
            read_comm,
            comm,
            d_out,
            d_in,
            d_run,
            scratch,
            ..
        } = self;
        let (o, e) = (*out_dim, *emb_dim);
        let rows = d_out.len() / o;
        let emb = layout.embedding();
        let rows_in = match (&*comm, *read_x_in, *read_comm) {
            (_, true, _) => &x_in[..],
            (Some(c), _, true) => c.output(),
            _ => x.own,
        };
        let input = network_input(&x, shared, rows_in);
        if nets.len() == 1 {
            let r0 = layout.net(0);
            let want_dx = (emb.is_some() || talks).then_some(&mut *d_in);
            nets[0].backward(
                &values[r0.clone()],
                &mut grads[r0],
                input,
                d_out,
                want_dx,
                scratch,
            );
            if let Some(emb) = emb {
                // The embedding's rows receive the input gradient's last `e` columns (the
                // gradient covers each row's own columns only when states are shared).
                let g = &mut grads[emb];
                let w = d_in.len() / rows.max(1);
                for (r, row) in d_in.chunks_exact(w).enumerate().take(rows) {
                    let a = agents[r] as usize;
                    for (dst, &src) in g[a * e..(a + 1) * e].iter_mut().zip(&row[w - e..]) {
                        *dst += src;
                    }
                }
            }
        } else {
            let MlpInput::Rows(input) = input else {
                unreachable!("per-agent networks read whole rows")
            };
            let w = input.len() / rows.max(1);
            if talks {
                d_in.resize(rows * w, 0.0);
            }
            for run in runs {
                let (k, start, n) = (run.agent, run.start, run.len);
                let range = layout.net(k);
                nets[k].backward(
                    &values[range.clone()],
                    &mut grads[range],
                    MlpInput::Rows(&input[start * w..(start + n) * w]),
                    &d_out[start * o..(start + n) * o],
                    talks.then_some(&mut *d_run),
                    scratch,
                );
                if talks {
                    d_in[start * w..(start + n) * w].copy_from_slice(d_run);
                }
            }
        }
        if let (Some(comm), Some(range)) = (&mut self.comm, self.layout.comm()) {
            // The communicated state's columns of the input gradient, back through the
            // message layers to every sender.
            let ch = channels.expect("a communicating actor is given its channels");
            let h_w = comm.width();
            let w = self.d_in.len() / rows.max(1);
            self.d_comm.clear();
            for row in self.d_in.chunks_exact(w).take(rows) {
                self.d_comm.extend_from_slice(&row[..h_w]);
            }
            let (p, g) = (&self.values[range.clone()], &mut self.grads[range]);
            comm.backward(p, g, x.own, ch, &self.d_comm);
        }
        if self.ls_dim > 0 {
            let d = self.ls_dim;
            for r in 0..rows {
                let at = self.ls_at[self.net_of(agents[r])];
                for j in 0..d {
                    // The clamp passes the gradient only inside its range.
                    let v = self.values[at + j];
                    if v > LOG_STD_RANGE.0 && v < LOG_STD_RANGE.1 {
                        self.grads[at + j] += self.d_ls[r * d + j];
                    }
                }
            }
        }
    }
}

/// What the networks read: `rows` (the caller's rows or `x_in`), beginning with `x`'s shared
/// states where `shared`.
fn network_input<'a>(x: &CriticRows<'a>, shared: bool, rows: &'a [f32]) -> MlpInput<'a> {
    match (x.states, shared) {
        (Some(s), true) => MlpInput::Shared(SharedRows {
            states: s.values,
            dim: s.dim,
            of_row: s.of_row,
            own: rows,
        }),
        _ => MlpInput::Rows(rows),
    }
}

/// A group's networks computed by hand on the CPU.
pub struct CpuBackend {
    n_agents: usize,
    action_space: ActionSpace,
    actor: Side,
    critic: Side,
    joint: bool,
    max_grad_norm: f64,
    threads: usize,
    /// The agent of each row of a step, its runs and its channels (one per environment),
    /// for the last step size seen.
    step_agents: Vec<u32>,
    step_runs: Vec<Run>,
    step_members: Vec<u32>,
    /// What the actor's receivers get when acting.
    mode: MessageMode,
    /// The sides of a halved minibatch's second half, once one has been halved.
    second: Option<Box<SecondHalf>>,
    halves: Halves,
}

impl CpuBackend {
    /// The backend for `shape`, starting from `state`; `threads` (1 or 2) cores per minibatch.
    pub fn new(shape: &GroupShape, state: &GroupState, threads: usize) -> Result<Self> {
        let o = &shape.optim;
        let joint = o.kind == OptimizerKind::Joint;
        let critic_lr = if joint {
            o.learning_rate
        } else {
            o.critic_learning_rate
        };
        Ok(Self {
            n_agents: shape.n_agents,
            action_space: shape.action_space.clone(),
            actor: Side::new(&shape.actor, &state.actor, o.learning_rate, o.adam_eps)?,
            critic: Side::new(&shape.critic, &state.critic, critic_lr, o.adam_eps)?,
            joint,
            max_grad_norm: o.max_grad_norm,
            threads: threads.max(1),
            step_agents: Vec::new(),
            step_runs: Vec::new(),
            step_members: Vec::new(),
            mode: MessageMode::Sent,
            second: None,
            halves: Halves::default(),
        })
    }

    /// Agents and runs of a step's `rows` rows (agent-major).
    fn step_rows(&mut self, rows: usize) {
        if self.step_agents.len() == rows {
            return;
        }
        let step = RowLayout {
            n_envs: rows / self.n_agents,
            n_agents: self.n_agents,
        };
        self.step_agents = (0..rows).map(|r| step.agent_of(r) as u32).collect();
        self.step_runs = step.step_runs().collect();
        step_members(step.n_envs, step.n_agents, &mut self.step_members);
    }

    /// The step's channels, with `live` agents.
    fn step_channels<'a>(members: &'a [u32], n_agents: usize, live: &'a [f32]) -> Channels<'a> {
        Channels {
            members,
            n_members: n_agents,
            live,
        }
    }
}

/// The actor's pass of a minibatch: forward, loss gradient, backward.
fn actor_pass(
    side: &mut Side,
    space: &ActionSpace,
    mb: &Minibatch<'_>,
    coefs: &LossCoefs,
    count: f64,
    row_logp: Option<&mut [f32]>,
) -> PolicyTerms {
    let terms = actor_loss(side, space, mb, coefs, count, row_logp);
    actor_backward(side, mb);
    terms
}

/// The first half of [`actor_pass`]: forward and the loss's gradient w.r.t. the outputs.
fn actor_loss(
    side: &mut Side,
    space: &ActionSpace,
    mb: &Minibatch<'_>,
    coefs: &LossCoefs,
    count: f64,
    row_logp: Option<&mut [f32]>,
) -> PolicyTerms {
    let seq = mb.seq.map(|s| SideSeq {
        len: s.len,
        starts: s.starts,
        h0: s.h0_actor,
    });
    let x = CriticRows::whole(mb.x_actor);
    let talk = mb.channels.as_ref().map(|c| (c, MessageMode::Sent));
    side.forward(x, mb.rows, mb.agents, mb.runs, seq, talk);
    side.d_out.resize(side.out.len(), 0.0);
    side.d_ls.resize(side.ls_rows.len(), 0.0);
    let head = match *space {
        ActionSpace::Discrete(n) => Head::Categorical {
            logits: &side.out,
            mask_bias: mb.mask_bias,
            n,
        },
        ActionSpace::Box { dim, .. } => Head::Gaussian {
            mean: &side.out,
            log_std: &side.ls_rows,
            d: dim,
        },
    };
    policy_grad(
        &PolicyInputs {
            head,
            actions: mb.actions,
            old_logp: mb.old_logp,
            advantages: mb.advantages,
            active: mb.active,
            count,
        },
        coefs.loss.clip_epsilon as f32,
        coefs.entropy_coef as f32,
        &mut side.d_out,
        &mut side.d_ls,
        row_logp,
    )
}

/// The second half of [`actor_pass`]: the backward from the outputs' gradient.
fn actor_backward(side: &mut Side, mb: &Minibatch<'_>) {
    let x = CriticRows::whole(mb.x_actor);
    side.backward(x, mb.agents, mb.runs, mb.channels.as_ref());
}

/// The critic's pass of a minibatch; returns the value loss.
fn critic_pass(
    side: &mut Side,
    mb: &Minibatch<'_>,
    coefs: &LossCoefs,
    count: f64,
    row_values: Option<&mut [f32]>,
) -> f64 {
    let seq = mb.seq.map(|s| SideSeq {
        len: s.len,
        starts: s.starts,
        h0: s.h0_critic,
    });
    side.forward(mb.x_critic, mb.rows, mb.agents, mb.runs, seq, None);
    if let Some(dst) = row_values {
        dst.copy_from_slice(&side.out);
    }
    side.d_out.resize(side.out.len(), 0.0);
    let value_loss = value_grad(
        &side.out,
        mb.old_values,
        mb.targets,
        mb.active,
        &coefs.loss,
        coefs.value_coef as f32,
        count,
        &mut side.d_out,
    );
    side.backward(mb.x_critic, mb.agents, mb.runs, None);
    value_loss
}

/// Both passes of one part of a minibatch (the whole or a half) on one pair of sides; means
/// divide by `count`, the whole minibatch's active rows.
#[allow(clippy::too_many_arguments)]
fn both_passes(
    actor: &mut Side,
    critic: &mut Side,
    space: &ActionSpace,
    mb: &Minibatch<'_>,
    coefs: &LossCoefs,
    count: f64,
    rows: Option<RowOutputs<'_>>,
) -> (PolicyTerms, f64) {
    let (row_logp, row_values) = match rows {
        Some(r) => (Some(r.logp), Some(r.values)),
        None => (None, None),
    };
    let terms = actor_pass(actor, space, mb, coefs, count, row_logp);
    (terms, critic_pass(critic, mb, coefs, count, row_values))
}

/// The sides that run the second half of a minibatch (see [`CpuBackend::accumulate`]): the
/// same networks with buffers and gradients of their own, their parameters copied from the
/// backend's whenever those changed (their optimizer state is never used).
struct SecondHalf {
    actor: Side,
    critic: Side,
}

impl SecondHalf {
    fn of(actor: &Side, critic: &Side) -> Box<Self> {
        let mut second = Box::new(Self {
            actor: actor.clone(),
            critic: critic.clone(),
        });
        second.actor.grads.fill(0.0);
        second.critic.grads.fill(0.0);
        second
    }

    /// Takes the parameters of `actor` and `critic` where they have changed since.
    fn follow(&mut self, actor: &Side, critic: &Side) {
        for (mine, theirs) in [(&mut self.actor, actor), (&mut self.critic, critic)] {
            if mine.version != theirs.version {
                mine.values.copy_from_slice(&theirs.values);
                mine.version = theirs.version;
            }
        }
    }

    /// Adds its gradients into `actor`'s and `critic`'s (after theirs: a fixed order) and
    /// zeroes its own.
    fn hand_over(&mut self, actor: &mut Side, critic: &mut Side) {
        for (mine, theirs) in [(&mut self.actor, actor), (&mut self.critic, critic)] {
            for (g, h) in theirs.grads.iter_mut().zip(mine.grads.iter_mut()) {
                *g += *h;
                *h = 0.0;
            }
        }
    }
}

/// Half B's rebased tables for [`Halves::cut`].
#[derive(Debug, Default)]
struct Halves {
    members: Vec<u32>,
    of_row: Vec<u32>,
}

impl Halves {
    /// `mb` as two minibatches of whole channels, rows `[0, cut)` and `[cut, rows)`: where its
    /// rows are feed-forward and each channel's members are consecutive rows in channel order
    /// (the learner's environment-step minibatches), for networks that ignore `runs` (one per
    /// side). None otherwise.
    fn cut<'a>(&'a mut self, mb: &Minibatch<'a>) -> Option<[Minibatch<'a>; 2]> {
        let ch = mb.channels?;
        let (n, n_ch, rows) = (ch.n_members, ch.len(), mb.rows);
        if mb.seq.is_some() || n_ch < 2 || n * n_ch != rows {
            return None;
        }
        if !(0..n_ch).all(|c| ch.of(c).iter().all(|&r| r as usize / n == c)) {
            return None;
        }
        let cut = n_ch / 2 * n;
        self.members.clear();
        self.members
            .extend(ch.members[cut..].iter().map(|&r| r - cut as u32));
        // The learner copies a minibatch's states in order of first use, so each half reads
        // a range of them; where not (states read in place), both read them all.
        let states = mb.x_critic.states.map(|s| {
            let (of_a, of_b) = s.of_row.split_at(cut);
            let first_b = of_b.iter().copied().min().unwrap_or(0);
            let ranged = of_a.iter().all(|&st| st < first_b);
            self.of_row.clear();
            if ranged {
                self.of_row.extend(of_b.iter().map(|&st| st - first_b));
            } else {
                self.of_row.extend_from_slice(of_b);
            }
            let at = if ranged { first_b as usize * s.dim } else { 0 };
            let values_a = if ranged { &s.values[..at] } else { s.values };
            (s, of_a, values_a, &s.values[at..])
        });
        let this: &'a Halves = self;
        let split = |x: &'a [f32]| x.split_at(x.len() / rows * cut);
        let (own_a, own_b) = split(mb.x_critic.own);
        let (critic_a, critic_b) = match states {
            None => (CriticRows::whole(own_a), CriticRows::whole(own_b)),
            Some((s, of_a, values_a, values_b)) => (
                CriticRows {
                    own: own_a,
                    states: Some(super::SharedStates {
                        values: values_a,
                        of_row: of_a,
                        ..s
                    }),
                },
                CriticRows {
                    own: own_b,
                    states: Some(super::SharedStates {
                        values: values_b,
                        of_row: &this.of_row,
                        ..s
                    }),
                },
            ),
        };
        let half = |lo: usize, hi: usize, x_critic, members: &'a [u32]| {
            let part = |x: &'a [f32]| {
                let w = x.len() / rows;
                &x[lo * w..hi * w]
            };
            Minibatch {
                rows: hi - lo,
                x_actor: part(mb.x_actor),
                x_critic,
                actions: part(mb.actions),
                mask_bias: mb.mask_bias.map(part),
                old_logp: part(mb.old_logp),
                old_values: part(mb.old_values),
                active: part(mb.active),
                advantages: part(mb.advantages),
                targets: part(mb.targets),
                agents: &mb.agents[lo..hi],
                runs: &[],
                seq: None,
                channels: Some(Channels {
                    members,
                    n_members: n,
                    live: part(ch.live),
                }),
            }
        };
        Some([
            half(0, cut, critic_a, &ch.members[..cut]),
            half(cut, rows, critic_b, &this.members),
        ])
    }
}

impl Backend for CpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn act(
        &mut self,
        x: &[f32],
        rows: usize,
        live: &[f32],
        out: &mut ActorOut,
        state: &mut [f32],
    ) -> Result<()> {
        self.step_rows(rows);
        let a = &mut self.actor;
        let x = CriticRows::whole(x);
        let ch = Self::step_channels(&self.step_members, self.n_agents, live);
        let rows_of = (&self.step_agents[..], &self.step_runs[..]);
        a.step(x, rows, rows_of, Some((&ch, self.mode)), state);
        out.out.clear();
        out.out.extend_from_slice(&a.out);
        out.log_std.clear();
        out.log_std.extend_from_slice(&a.ls_rows[..rows * a.ls_dim]);
        Ok(())
    }

    fn values(
        &mut self,
        x: CriticRows<'_>,
        rows: usize,
        out: &mut [f32],
        state: &mut [f32],
    ) -> Result<()> {
        self.step_rows(rows);
        let c = &mut self.critic;
        c.step(x, rows, (&self.step_agents, &self.step_runs), None, state);
        out.copy_from_slice(&c.out);
        Ok(())
    }

    fn act_and_values(
        &mut self,
        step: StepInputs<'_>,
        actor_out: &mut ActorOut,
        values: &mut [f32],
    ) -> Result<()> {
        // Handing half a step to the second core costs about a microsecond while it is awake:
        // worth it from a few thousand multiply-adds per side (bench_ippo_mpe's 48 rows of
        // 64-wide networks: its rollout 11% faster), not for the tiniest networks.
        let rows = step.rows;
        let macs = rows * (self.actor.values.len() + self.critic.values.len());
        if self.threads < 2 || macs < PARALLEL_STEP_MACS {
            self.act(step.x_actor, rows, step.live, actor_out, step.actor_state)?;
            return self.values(step.x_critic, rows, values, step.critic_state);
        }
        self.step_rows(rows);
        let (actor, critic) = (&mut self.actor, &mut self.critic);
        let rows_of = (&self.step_agents[..], &self.step_runs[..]);
        let StepInputs {
            x_actor,
            live,
            x_critic,
            actor_state,
            critic_state,
            ..
        } = step;
        let ch = Self::step_channels(&self.step_members, self.n_agents, live);
        let talk = Some((&ch, self.mode));
        let ((), done) = parallel::join(
            || actor.step(CriticRows::whole(x_actor), rows, rows_of, talk, actor_state),
            || critic.step(x_critic, rows, rows_of, None, critic_state),
        );
        done.map_err(|_| anyhow!("the critic's forward panicked"))?;
        actor_out.out.clear();
        actor_out.out.extend_from_slice(&actor.out);
        actor_out.log_std.clear();
        actor_out
            .log_std
            .extend_from_slice(&actor.ls_rows[..rows * actor.ls_dim]);
        values.copy_from_slice(&critic.out);
        Ok(())
    }

    fn accumulate(
        &mut self,
        mb: &Minibatch<'_>,
        coefs: &LossCoefs,
        rows: Option<RowOutputs<'_>>,
    ) -> Result<Scalars> {
        let count = active_count(mb.active);
        let Self {
            actor,
            critic,
            action_space: space,
            threads,
            second,
            halves,
            ..
        } = self;
        let one_net_each = actor.nets.len() == 1 && critic.nets.len() == 1;
        if let (Some(_), true) = (&actor.comm, one_net_each) {
            if let Some([a, b]) = halves.cut(mb) {
                // A communicating actor costs about three critics, so rather than the actor
                // on one core and the critic on the other, each core runs both on half the
                // minibatch's channels, the second half on sides of its own whose gradients
                // are then added in. Halves on one core or two: the same arithmetic.
                let second = second.get_or_insert_with(|| SecondHalf::of(actor, critic));
                second.follow(actor, critic);
                let (rows_a, rows_b) = match rows {
                    Some(r) => {
                        let (la, lb) = r.logp.split_at_mut(a.rows);
                        let (va, vb) = r.values.split_at_mut(a.rows);
                        let a = RowOutputs {
                            logp: la,
                            values: va,
                        };
                        (
                            Some(a),
                            Some(RowOutputs {
                                logp: lb,
                                values: vb,
                            }),
                        )
                    }
                    None => (None, None),
                };
                let (sa, sb) = (&mut second.actor, &mut second.critic);
                let ((ta, va), part_b) = if *threads > 1 {
                    parallel::join(
                        || both_passes(actor, critic, space, &a, coefs, count, rows_a),
                        || both_passes(sa, sb, space, &b, coefs, count, rows_b),
                    )
                } else {
                    let first = both_passes(actor, critic, space, &a, coefs, count, rows_a);
                    (
                        first,
                        Ok(both_passes(sa, sb, space, &b, coefs, count, rows_b)),
                    )
                };
                let (tb, vb) = part_b.map_err(|_| anyhow!("the second half's pass panicked"))?;
                second.hand_over(actor, critic);
                return Ok(ta.plus(&tb).with_value_loss(va + vb).scalars());
            }
        }
        let (row_logp, row_values) = match rows {
            Some(r) => (Some(r.logp), Some(r.values)),
            None => (None, None),
        };
        let (terms, value_loss) = if *threads > 1 && actor.comm.is_some() {
            // Minibatches that cannot be halved (recurrent chunks, networks per agent): the
            // critic's pass runs beside the actor's forward, then the actor's backward has
            // both cores (each layer's weight and input gradients side by side).
            let (terms, value_loss) = parallel::join(
                || actor_loss(actor, space, mb, coefs, count, row_logp),
                || critic_pass(critic, mb, coefs, count, row_values),
            );
            parallel::with_second_core(|| actor_backward(actor, mb));
            (terms, value_loss)
        } else if *threads > 1 {
            parallel::join(
                || actor_pass(actor, space, mb, coefs, count, row_logp),
                || critic_pass(critic, mb, coefs, count, row_values),
            )
        } else {
            let terms = actor_pass(actor, space, mb, coefs, count, row_logp);
            (terms, Ok(critic_pass(critic, mb, coefs, count, row_values)))
        };
        let value_loss = value_loss.map_err(|_| anyhow!("the critic's pass panicked"))?;
        Ok(terms.with_value_loss(value_loss).scalars())
    }

    fn step(&mut self, pending: usize) -> Result<()> {
        let (a, c) = (&mut self.actor, &mut self.critic);
        if pending > 1 {
            let s = 1.0 / pending as f32;
            a.grads
                .iter_mut()
                .chain(c.grads.iter_mut())
                .for_each(|g| *g *= s);
        }
        if self.joint {
            clip_global_norm(&mut [&mut a.grads, &mut c.grads], self.max_grad_norm);
        } else {
            clip_global_norm(&mut [&mut a.grads], self.max_grad_norm);
            clip_global_norm(&mut [&mut c.grads], self.max_grad_norm);
        }
        for side in [a, c] {
            side.adam.step(&mut side.values, &side.grads);
            side.version += 1;
            side.grads.fill(0.0);
        }
        Ok(())
    }

    fn pending_gradient(&mut self) -> Result<[Vec<f32>; 2]> {
        Ok([self.actor.grads.clone(), self.critic.grads.clone()])
    }

    fn set_message_mode(&mut self, mode: MessageMode) {
        self.mode = mode;
    }

    fn set_learning_rates(&mut self, actor: f64, critic: f64) {
        self.actor.adam.lr = actor;
        self.critic.adam.lr = if self.joint { actor } else { critic };
    }

    fn state(&self) -> Result<GroupState> {
        Ok(GroupState {
            actor: self.actor.state(),
            critic: self.critic.state(),
        })
    }

    fn load_state(&mut self, state: &GroupState, optimizer: bool) -> Result<()> {
        for (side, s) in [
            (&mut self.actor, &state.actor),
            (&mut self.critic, &state.critic),
        ] {
            anyhow::ensure!(
                s.values.len() == side.values.len(),
                "parameters of the wrong size: {} given, {} expected",
                s.values.len(),
                side.values.len()
            );
            side.load(s, optimizer);
        }
        Ok(())
    }
}
