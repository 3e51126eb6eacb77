//! The candle backend: the group's networks as candle variables, the loss of `algo::ppo` over
//! `nn::dist` differentiated by candle's autograd, and Adam over the variables. It serves CUDA,
//! and on the CPU it is the reference the hand-written backend is tested against
//! (`network.cpu_fast_path = false`, `marl bench update --impl candle`).
//!
//! With [`Precision::Bf16`] (CUDA only: `backend::build` refuses it elsewhere) the networks'
//! passes run in bf16: `Side::run` casts the inputs, each layer its f32 parameters, and the
//! outputs back to f32 for the distributions and the loss; LayerNorms normalize in f32. The
//! gradients come back through the casts as f32, so the parameters, the clipping and Adam's
//! moments stay f32 (master weights), and rollouts act with the same bf16 passes they train
//! with.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use marl_envs::ActionSpace;

use super::layout::{fold_all, unfold_all, SideLayout};
use super::{
    ActorOut, Backend, BackendKind, Channels, CriticRows, GroupShape, GroupState, LossCoefs,
    MessageMode, Minibatch, Precision, RowLayout, RowOutputs, Run, SideShape, SideState,
};
use crate::algo::ppo;
use crate::algo::scalars::Scalars;
use crate::config::{Activation, CommKind, OptimizerKind};
use crate::nn::comm::{step_members, CommLayers};
use crate::nn::dist;
use crate::nn::mlp::{Linear, Mlp, MlpIn};
use crate::nn::optim::{clip_grad_norm, Adam};
use crate::nn::tanh::{sigmoid, tanh};

/// A GRU layer (PyTorch's `nn.GRU` equations, gates r, z, n) over time-major sequences.
struct Gru {
    w_ih: Var,
    w_hh: Var,
    b_ih: Var,
    b_hh: Var,
    width: usize,
}

impl Gru {
    fn new(inp: usize, width: usize, dev: &Device) -> Result<Self> {
        let g = 3 * width;
        Ok(Self {
            w_ih: Var::zeros((g, inp), DType::F32, dev)?,
            w_hh: Var::zeros((g, width), DType::F32, dev)?,
            b_ih: Var::zeros(g, DType::F32, dev)?,
            b_hh: Var::zeros(g, DType::F32, dev)?,
            width,
        })
    }

    fn vars(&self) -> [Var; 4] {
        [
            self.w_ih.clone(),
            self.w_hh.clone(),
            self.b_ih.clone(),
            self.b_hh.clone(),
        ]
    }

    /// Every step's output `[L*S, H]` for `x` `[L*S, in]` from `h0` `[S, H]`, zeroing the state
    /// before a step where `starts` (`[L*S]`) is 1.
    fn forward(&self, x: &Tensor, len: usize, starts: &Tensor, h0: &Tensor) -> Result<Tensor> {
        let h = self.width;
        let s_n = x.dim(0)? / len;
        // Everything in the input's dtype (bf16 passes cast the f32 parameters).
        let cast = |v: &Var| v.as_tensor().to_dtype(x.dtype());
        let (w_ih, w_hh) = (cast(&self.w_ih)?, cast(&self.w_hh)?);
        let (b_ih, b_hh) = (cast(&self.b_ih)?, cast(&self.b_hh)?);
        let gi = x.matmul(&w_ih.t()?)?.broadcast_add(&b_ih)?;
        let keep = (starts.neg()? + 1.0)?.unsqueeze(1)?.to_dtype(x.dtype())?;
        let mut state = h0.to_dtype(x.dtype())?;
        let mut outs = Vec::with_capacity(len);
        for t in 0..len {
            let gi_t = gi.narrow(0, t * s_n, s_n)?;
            let hp = state.broadcast_mul(&keep.narrow(0, t * s_n, s_n)?)?;
            let gh = hp.matmul(&w_hh.t()?)?.broadcast_add(&b_hh)?;
            let part = |m: &Tensor, k: usize| m.narrow(1, k * h, h);
            let r = sigmoid(&(part(&gi_t, 0)? + part(&gh, 0)?)?)?;
            let z = sigmoid(&(part(&gi_t, 1)? + part(&gh, 1)?)?)?;
            let n = tanh(&(part(&gi_t, 2)? + (&r * part(&gh, 2)?)?)?)?;
            state = (((z.neg()? + 1.0)? * n)? + (z * hp)?)?;
            outs.push(state.clone());
        }
        Ok(Tensor::cat(&outs, 0)?)
    }
}

/// A batch's channels on the device (see [`Channels`]).
struct DeviceChannels {
    /// Row of each member, `[channels * members]` (u32).
    members: Tensor,
    /// Each row's place in `members`, `[rows]` (u32).
    place: Tensor,
    /// Whether member `a` hears member `b`: both live and `a != b`, `[channels, M, M]`.
    hears: Tensor,
    /// Channel `c` reads what channel `c + 1` received (shuffled messages), `[channels]`.
    next: Tensor,
    n_channels: usize,
    n_members: usize,
}

impl DeviceChannels {
    fn of(ch: &Channels<'_>, rows: usize, dev: &Device) -> Result<Self> {
        let (n_ch, m) = (ch.len(), ch.n_members);
        let mut place = vec![0u32; rows];
        for (i, &r) in ch.members.iter().enumerate() {
            place[r as usize] = i as u32;
        }
        let mut hears = vec![0.0f32; n_ch * m * m];
        for c in 0..n_ch {
            let members = ch.of(c);
            for (a, &ra) in members.iter().enumerate() {
                for (b, &rb) in members.iter().enumerate() {
                    if a != b && ch.is_live(ra) && ch.is_live(rb) {
                        hears[(c * m + a) * m + b] = 1.0;
                    }
                }
            }
        }
        let next: Vec<u32> = (0..n_ch).map(|c| ((c + 1) % n_ch) as u32).collect();
        Ok(Self {
            members: Tensor::from_slice(ch.members, n_ch * m, dev)?,
            place: Tensor::from_vec(place, rows, dev)?,
            hears: Tensor::from_vec(hears, (n_ch, m, m), dev)?,
            next: Tensor::from_vec(next, n_ch, dev)?,
            n_channels: n_ch,
            n_members: m,
        })
    }

    /// Rows `[rows, w]` as `[channels, M, w]`.
    fn by_channel(&self, x: &Tensor) -> Result<Tensor> {
        let w = x.dim(1)?;
        Ok(x.index_select(&self.members, 0)?
            .reshape((self.n_channels, self.n_members, w))?)
    }

    /// `[channels, M, w]` back to rows `[rows, w]`.
    fn to_rows(&self, x: &Tensor) -> Result<Tensor> {
        let w = x.dim(2)?;
        Ok(x.reshape((self.n_channels * self.n_members, w))?
            .index_select(&self.place, 0)?)
    }
}

/// The message layers of a communicating actor (`nn::comm`), differentiated by autograd.
struct Comm {
    layers: CommLayers,
    /// In `CommLayers::linears` order.
    linears: Vec<Linear>,
    /// Each round's gate.
    gates: Vec<Var>,
}

impl Comm {
    fn new(layers: &CommLayers, dev: &Device) -> Result<Self> {
        let linears = layers
            .linears()
            .iter()
            .map(|l| Linear::zeros(l.inp, l.out, dev))
            .collect::<Result<Vec<_>>>()?;
        let gates = (0..layers.rounds)
            .map(|_| Var::zeros(layers.width, DType::F32, dev))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            layers: layers.clone(),
            linears,
            gates,
        })
    }

    fn vars(&self) -> Vec<Var> {
        let mut v: Vec<Var> = self.linears.iter().map(Linear::var).collect();
        v.extend(self.gates.iter().cloned());
        v
    }

    /// The final hidden state `[rows, width]` of host rows `x`.
    fn forward(&self, x: &Tensor, ch: &DeviceChannels, mode: MessageMode) -> Result<Tensor> {
        let mut h = tanh(&self.linears[0].forward(x)?)?;
        let per = self.layers.senders() + 1;
        // A receiver's weight on each sender: the mean over those it hears, or attention.
        let hears = ch.hears.to_dtype(x.dtype())?;
        for r in 0..self.layers.rounds {
            let first = 1 + r * per;
            let weights = match self.layers.kind {
                CommKind::Mean => {
                    let count = hears.sum_keepdim(2)?.maximum(1.0)?;
                    let w = hears.broadcast_div(&count)?;
                    let msg = ch.by_channel(&self.linears[first].forward(&h)?)?;
                    (w, msg)
                }
                CommKind::Attention => {
                    let q = ch.by_channel(&self.linears[first].forward(&h)?)?;
                    let k = ch.by_channel(&self.linears[first + 1].forward(&h)?)?;
                    let v = ch.by_channel(&self.linears[first + 2].forward(&h)?)?;
                    let scale = 1.0 / (self.layers.key_dim as f64).sqrt();
                    let scores = (q.matmul(&k.transpose(1, 2)?.contiguous()?)? * scale)?;
                    // Those not heard get exp(-1e9) = 0; a receiver that hears nobody gets
                    // uniform weights, zeroed by `hears`.
                    let masked = (scores + ((&hears - 1.0)? * 1e9)?)?;
                    let w = (candle_nn::ops::softmax(&masked, candle_core::D::Minus1)? * &hears)?;
                    (w, v)
                }
            };
            let (w, msg) = weights;
            let mut received = w.matmul(&msg.contiguous()?)?; // [channels, M, dim]
            match mode {
                MessageMode::Sent => {}
                MessageMode::Zero => received = received.zeros_like()?,
                MessageMode::Shuffle => received = received.index_select(&ch.next, 0)?,
            }
            let c = ch.to_rows(&received)?;
            let u = tanh(&self.linears[first + per - 1].forward(&c)?)?;
            let gate = self.gates[r].as_tensor().to_dtype(u.dtype())?;
            h = (h + u.broadcast_mul(&gate)?)?;
        }
        Ok(h)
    }
}

/// A network: an MLP, or dense layers -> GRU -> dense layers -> head; with an optional learned
/// agent embedding appended to its input.
struct Net {
    body: Body,
    embedding: Option<Var>,
}

enum Body {
    Mlp(Mlp),
    Recurrent {
        base: Option<Mlp>,
        gru: Gru,
        top: Mlp,
    },
}

/// A side's rows on the device: whole, or (critics on the global state) each the state of its
/// environment and step followed by its own columns (see [`CriticRows`]).
enum Input {
    Rows(Tensor),
    Shared {
        /// The distinct states `[U, dim]`.
        states: Tensor,
        /// Each row's state `[rows]` (u32).
        of_row: Tensor,
        /// Each row's own columns `[rows, w]`.
        own: Tensor,
    },
}

impl Input {
    /// Host rows on `dev`.
    fn of(x: &CriticRows<'_>, rows: usize, dev: &Device) -> Result<Self> {
        let own = Tensor::from_slice(x.own, (rows, x.own.len() / rows.max(1)), dev)?;
        Ok(match &x.states {
            None => Input::Rows(own),
            Some(s) => Input::Shared {
                states: Tensor::from_slice(s.values, (s.values.len() / s.dim, s.dim), dev)?,
                of_row: Tensor::from_slice(&s.of_row[..rows], rows, dev)?,
                own,
            },
        })
    }

    /// The rows in `dtype`, written out whole unless `keep_shared`.
    fn prepared(&self, dtype: DType, keep_shared: bool) -> Result<Self> {
        Ok(match self {
            Input::Rows(x) => Input::Rows(x.to_dtype(dtype)?),
            Input::Shared {
                states,
                of_row,
                own,
            } => {
                let (states, own) = (states.to_dtype(dtype)?, own.to_dtype(dtype)?);
                if keep_shared {
                    Input::Shared {
                        states,
                        of_row: of_row.clone(),
                        own,
                    }
                } else {
                    let st = states.index_select(of_row, 0)?;
                    let rows = if own.dim(1)? == 0 {
                        st
                    } else {
                        Tensor::cat(&[&st, &own], 1)?
                    };
                    Input::Rows(rows)
                }
            }
        })
    }

    fn rows(&self) -> Result<usize> {
        Ok(match self {
            Input::Rows(x) => x.dim(0)?,
            Input::Shared { own, .. } => own.dim(0)?,
        })
    }

    /// Whole rows (per-agent networks take runs of them).
    fn whole(&self) -> Result<&Tensor> {
        match self {
            Input::Rows(x) => Ok(x),
            Input::Shared { .. } => anyhow::bail!("rows that share states where whole rows go"),
        }
    }
}

/// A run's sequences: steps per sequence, reset flags per row, initial states.
struct Seq<'a> {
    len: usize,
    starts: Tensor,
    h0: &'a Tensor,
}

impl Net {
    /// Whether rows that share states can be given as such.
    fn shares_states(&self) -> bool {
        match &self.body {
            Body::Mlp(m) => m.shares_states(),
            Body::Recurrent { base, .. } => base.as_ref().is_some_and(Mlp::shares_states),
        }
    }

    /// The output, and for a recurrent network every step's state.
    fn forward(
        &self,
        x: &Input,
        ids: Option<&Tensor>,
        seq: Option<Seq<'_>>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        // The embedding goes after each row's columns (after its own ones when shared).
        let with_emb = |x: &Tensor| -> Result<Tensor> {
            Ok(match (&self.embedding, ids) {
                (Some(e), Some(ids)) => {
                    let emb = e.as_tensor().index_select(ids, 0)?.to_dtype(x.dtype())?;
                    if x.dim(1)? == 0 {
                        emb
                    } else {
                        Tensor::cat(&[x, &emb], 1)?
                    }
                }
                _ => x.clone(),
            })
        };
        let (rows, own);
        let input = match x {
            Input::Rows(x) => {
                rows = with_emb(x)?;
                MlpIn::Rows(&rows)
            }
            Input::Shared {
                states,
                of_row,
                own: o,
            } => {
                own = with_emb(o)?;
                MlpIn::Shared {
                    states,
                    of_row,
                    own: &own,
                }
            }
        };
        match &self.body {
            Body::Mlp(m) => Ok((m.forward_input(input)?, None)),
            Body::Recurrent { base, gru, top } => {
                let seq = seq.context("a recurrent network runs over sequences")?;
                let input = match (base, input) {
                    (Some(b), input) => b.forward_input(input)?,
                    (None, MlpIn::Rows(x)) => x.clone(),
                    (None, MlpIn::Shared { .. }) => anyhow::bail!("a GRU reads whole rows"),
                };
                let h = gru.forward(&input, seq.len, &seq.starts, seq.h0)?;
                Ok((top.forward(&h)?, Some(h)))
            }
        }
    }

    fn vars(&self) -> Vec<Var> {
        let mut v = match &self.body {
            Body::Mlp(m) => m.vars(),
            Body::Recurrent { base, gru, top } => {
                let mut v = base.as_ref().map(Mlp::vars).unwrap_or_default();
                v.extend(gru.vars());
                v.extend(top.vars());
                v
            }
        };
        v.extend(self.embedding.clone());
        v
    }
}

/// One side's networks, log-stds and variables (in the layout's order), and the dtype its
/// passes compute in.
struct Side {
    nets: Vec<Net>,
    log_std: Vec<Var>,
    /// A communicating actor's message layers (their state read after the host row).
    comm: Option<Comm>,
    vars: Vec<Var>,
    layout: SideLayout,
    compute: DType,
}

impl Side {
    fn new(shape: &SideShape, dev: &Device, compute: DType) -> Result<Self> {
        let n = &shape.net;
        let activation = if n.relu {
            Activation::Relu
        } else {
            Activation::Tanh
        };
        let mut nets = Vec::new();
        let mut vars = Vec::new();
        for _ in 0..shape.n_nets {
            let body = match &n.recurrent {
                None => Body::Mlp(Mlp::new(
                    shape.mlp_in(),
                    &n.hidden,
                    Some(n.out_dim),
                    activation,
                    n.layer_norm,
                    dev,
                )?),
                Some(rec) => {
                    let base = match n.hidden.is_empty() {
                        true => None,
                        false => Some(Mlp::new(
                            shape.mlp_in(),
                            &n.hidden,
                            None,
                            activation,
                            n.layer_norm,
                            dev,
                        )?),
                    };
                    let gru_in = n.hidden.last().copied().unwrap_or(shape.mlp_in());
                    Body::Recurrent {
                        base,
                        gru: Gru::new(gru_in, rec.width, dev)?,
                        top: Mlp::new(
                            rec.width,
                            &rec.after,
                            Some(n.out_dim),
                            activation,
                            n.layer_norm,
                            dev,
                        )?,
                    }
                }
            };
            let embedding = match shape.embedding {
                Some((agents, size)) => Some(Var::zeros((agents, size), DType::F32, dev)?),
                None => None,
            };
            let net = Net { body, embedding };
            vars.extend(net.vars());
            nets.push(net);
        }
        let log_std = match shape.log_std {
            Some(d) => (0..shape.n_nets)
                .map(|_| Var::zeros(d, DType::F32, dev))
                .collect::<candle_core::Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        vars.extend(log_std.iter().cloned());
        let comm = shape.comm.as_ref().map(|c| Comm::new(c, dev)).transpose()?;
        vars.extend(comm.iter().flat_map(Comm::vars));
        Ok(Self {
            nets,
            log_std,
            comm,
            vars,
            layout: SideLayout::of(shape),
            compute,
        })
    }

    /// Runs the networks over rows; `runs` says which agent owns each contiguous run of rows
    /// (used with one network per agent), `ids` the agent of each row (for embeddings),
    /// `seq` the sequences of recurrent networks: (steps, reset flags per row, initial states
    /// per sequence). Returns the outputs and, for recurrent networks, every row's new state,
    /// in f32 whatever the dtype the passes computed in.
    fn run(
        &self,
        x: &Input,
        runs: &[Run],
        ids: Option<&Tensor>,
        seq: Option<(usize, &Tensor, &Tensor)>,
        talk: Option<(&DeviceChannels, MessageMode)>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        // One network that can takes rows sharing states as they are; the others read them
        // written out.
        let keep_shared = self.nets.len() == 1 && self.nets[0].shares_states();
        let mut x = x.prepared(self.compute, keep_shared)?;
        if let Some(comm) = &self.comm {
            let (ch, mode) = talk.context("a communicating actor is given its channels")?;
            x = Input::Rows(comm.forward(x.whole()?, ch, mode)?);
        }
        let (y, h) = self.run_nets(&x, runs, ids, seq)?;
        let f32 = |t: Tensor| t.to_dtype(DType::F32);
        Ok((f32(y)?, h.map(f32).transpose()?))
    }

    /// [`run`](Self::run) in the compute dtype.
    fn run_nets(
        &self,
        x: &Input,
        runs: &[Run],
        ids: Option<&Tensor>,
        seq: Option<(usize, &Tensor, &Tensor)>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let part = |start: usize, n: usize| -> Result<Option<Seq<'_>>> {
            let Some((len, starts, h0)) = seq else {
                return Ok(None);
            };
            Ok(Some(Seq {
                len,
                starts: starts.narrow(0, start, n)?,
                h0,
            }))
        };
        if self.nets.len() == 1 {
            return self.nets[0].forward(x, ids, part(0, x.rows()?)?);
        }
        let x = x.whole()?;
        let (mut outs, mut states) = (Vec::new(), Vec::new());
        for run in runs {
            let (k, start, n) = (run.agent, run.start, run.len);
            let h0 = match seq {
                Some((len, _, h0)) => Some(h0.narrow(0, start / len, n / len)?),
                None => None,
            };
            let s = part(start, n)?.map(|s| Seq {
                h0: h0.as_ref().expect("states with sequences"),
                ..s
            });
            let run = Input::Rows(x.narrow(0, start, n)?);
            let (y, h) = self.nets[k].forward(&run, None, s)?;
            outs.push(y);
            states.extend(h);
        }
        let states = (!states.is_empty())
            .then(|| Tensor::cat(&states, 0))
            .transpose()?;
        Ok((Tensor::cat(&outs, 0)?, states))
    }

    /// The (clamped) log-std of every row, `[rows, d]`.
    fn log_std_rows(&self, runs: &[Run], rows: usize) -> Result<Tensor> {
        let clamp = |v: &Var| v.as_tensor().clamp(-5.0, 2.0);
        if self.log_std.len() == 1 {
            let ls = clamp(&self.log_std[0])?;
            return Ok(ls
                .unsqueeze(0)?
                .broadcast_as((rows, ls.dim(0)?))?
                .contiguous()?);
        }
        let parts = runs
            .iter()
            .map(|&Run { agent: k, len, .. }| {
                let ls = clamp(&self.log_std[k])?;
                Ok(ls.unsqueeze(0)?.broadcast_as((len, ls.dim(0)?))?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, 0)?.contiguous()?)
    }

    fn values(&self) -> Result<Vec<f32>> {
        let vars = self
            .vars
            .iter()
            .map(|v| Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?))
            .collect::<Result<Vec<_>>>()?;
        let mut flat = vec![0.0; self.layout.len()];
        unfold_all(&self.layout, &vars, &mut flat);
        Ok(flat)
    }

    fn set_values(&self, flat: &[f32]) -> Result<()> {
        anyhow::ensure!(
            flat.len() == self.layout.len(),
            "parameters of the wrong size: {} given, {} expected",
            flat.len(),
            self.layout.len()
        );
        for (var, v) in self.vars.iter().zip(fold_all(&self.layout, flat)) {
            var.set(&Tensor::from_vec(v, var.shape(), var.device())?)?;
        }
        Ok(())
    }
}

/// A group's networks on candle.
pub struct CandleBackend {
    dev: Device,
    n_agents: usize,
    action_space: ActionSpace,
    actor: Side,
    critic: Side,
    /// The actor's (or the joint) optimizer.
    actor_opt: Adam,
    /// The critic's (none with the joint optimizer).
    critic_opt: Option<Adam>,
    max_grad_norm: f64,
    /// Losses whose gradients are pending (gradient accumulation).
    pending: Vec<Tensor>,
    /// What the actor's receivers get when acting.
    mode: MessageMode,
}

impl CandleBackend {
    /// The backend for `shape` on `dev`, starting from `state`.
    pub fn new(shape: &GroupShape, state: &GroupState, dev: &Device) -> Result<Self> {
        let compute = match shape.precision {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        };
        let actor = Side::new(&shape.actor, dev, compute)?;
        let critic = Side::new(&shape.critic, dev, compute)?;
        let o = &shape.optim;
        let (actor_opt, critic_opt) = match o.kind {
            OptimizerKind::Separate => (
                Adam::new(actor.vars.clone(), o.learning_rate, o.adam_eps)?,
                Some(Adam::new(
                    critic.vars.clone(),
                    o.critic_learning_rate,
                    o.adam_eps,
                )?),
            ),
            OptimizerKind::Joint => {
                let mut all = actor.vars.clone();
                all.extend(critic.vars.iter().cloned());
                (Adam::new(all, o.learning_rate, o.adam_eps)?, None)
            }
        };
        let mut b = Self {
            dev: dev.clone(),
            n_agents: shape.n_agents,
            action_space: shape.action_space.clone(),
            actor,
            critic,
            actor_opt,
            critic_opt,
            max_grad_norm: o.max_grad_norm,
            pending: Vec::new(),
            mode: MessageMode::Sent,
        };
        b.load_state(state, true)?;
        Ok(b)
    }

    /// Runs and agent ids of a step's `rows` rows (agent-major).
    fn step_rows(&self, rows: usize) -> Result<(Vec<Run>, Option<Tensor>)> {
        let step = RowLayout {
            n_envs: rows / self.n_agents,
            n_agents: self.n_agents,
        };
        let runs = step.step_runs().collect();
        let ids =
            if self.actor.nets[0].embedding.is_some() || self.critic.nets[0].embedding.is_some() {
                let v: Vec<u32> = (0..rows).map(|r| step.agent_of(r) as u32).collect();
                Some(Tensor::from_vec(v, rows, &self.dev)?)
            } else {
                None
            };
        Ok((runs, ids))
    }

    /// One rollout step of a side: the output, and a recurrent side's `state` advanced.
    fn side_step(
        &self,
        side: &Side,
        x: &Input,
        (runs, ids): (&[Run], Option<&Tensor>),
        talk: Option<(&DeviceChannels, MessageMode)>,
        state: &mut [f32],
    ) -> Result<Tensor> {
        let rows = x.rows()?;
        if state.is_empty() {
            return Ok(side.run(x, runs, ids, None, talk)?.0);
        }
        let starts = Tensor::zeros(rows, DType::F32, &self.dev)?;
        let h0 = Tensor::from_slice(state, (rows, state.len() / rows), &self.dev)?;
        let (y, h) = side.run(x, runs, ids, Some((1, &starts, &h0)), talk)?;
        let h: Vec<f32> = h
            .context("a recurrent side returns its state")?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1()?;
        state.copy_from_slice(&h);
        Ok(y)
    }

    /// The optimizers' moments per side, flat (a joint optimizer's split at the actor's end).
    fn moments(&self) -> Result<[(Vec<f32>, Vec<f32>); 2]> {
        let host = |opt: &Adam, i: usize| -> Result<(Vec<f32>, Vec<f32>)> {
            let (m, v) = opt.moments(i);
            Ok((m.flatten_all()?.to_vec1()?, v.flatten_all()?.to_vec1()?))
        };
        let na = self.actor.vars.len();
        let mut sides = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
        for (si, (side, first)) in [(&self.actor, 0), (&self.critic, na)]
            .into_iter()
            .enumerate()
        {
            let (opt, first) = match &self.critic_opt {
                Some(c) if si == 1 => (c, 0),
                _ => (&self.actor_opt, first),
            };
            let (ms, vs): (Vec<_>, Vec<_>) = (0..side.vars.len())
                .map(|i| host(opt, first + i))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .unzip();
            let (mut m, mut v) = (vec![0.0; side.layout.len()], vec![0.0; side.layout.len()]);
            unfold_all(&side.layout, &ms, &mut m);
            unfold_all(&side.layout, &vs, &mut v);
            sides[si] = (m, v);
        }
        Ok(sides)
    }
}

impl Backend for CandleBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Candle
    }

    fn act(
        &mut self,
        x: &[f32],
        rows: usize,
        live: &[f32],
        out: &mut ActorOut,
        state: &mut [f32],
    ) -> Result<()> {
        let (runs, ids) = self.step_rows(rows)?;
        let xt = Input::Rows(Tensor::from_slice(x, (rows, x.len() / rows), &self.dev)?);
        let channels = match self.actor.comm {
            Some(_) => {
                let mut members = Vec::new();
                step_members(rows / self.n_agents, self.n_agents, &mut members);
                let ch = Channels {
                    members: &members,
                    n_members: self.n_agents,
                    live,
                };
                Some(DeviceChannels::of(&ch, rows, &self.dev)?)
            }
            None => None,
        };
        let talk = channels.as_ref().map(|c| (c, self.mode));
        let y = self.side_step(&self.actor, &xt, (&runs, ids.as_ref()), talk, state)?;
        out.out = y.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
        out.log_std.clear();
        if !self.actor.log_std.is_empty() {
            let ls = self.actor.log_std_rows(&runs, rows)?;
            out.log_std = ls.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
        }
        Ok(())
    }

    fn values(
        &mut self,
        x: CriticRows<'_>,
        rows: usize,
        out: &mut [f32],
        state: &mut [f32],
    ) -> Result<()> {
        let (runs, ids) = self.step_rows(rows)?;
        let xt = Input::of(&x, rows, &self.dev)?;
        let v: Vec<f32> = self
            .side_step(&self.critic, &xt, (&runs, ids.as_ref()), None, state)?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1()?;
        out.copy_from_slice(&v);
        Ok(())
    }

    fn accumulate(
        &mut self,
        mb: &Minibatch<'_>,
        coefs: &LossCoefs,
        rows: Option<RowOutputs<'_>>,
    ) -> Result<Scalars> {
        let (m, dev) = (mb.rows, &self.dev);
        let t = |v: &[f32]| Tensor::from_slice(v, m, dev);
        let x_actor = Input::Rows(Tensor::from_slice(
            mb.x_actor,
            (m, mb.x_actor.len() / m),
            dev,
        )?);
        let x_critic = Input::of(&mb.x_critic, m, dev)?;
        let ids = Tensor::from_slice(mb.agents, m, dev)?;
        let seq = match mb.seq {
            Some(s) => {
                let starts = Tensor::from_slice(s.starts, m, dev)?;
                let h0 = |h: &[f32]| -> Result<Tensor> {
                    let n_seq = m / s.len;
                    Ok(Tensor::from_slice(h, (n_seq, h.len() / n_seq.max(1)), dev)?)
                };
                Some((s.len, starts, h0(s.h0_actor)?, h0(s.h0_critic)?))
            }
            None => None,
        };
        let side_seq = |critic: bool| {
            seq.as_ref()
                .map(|(len, starts, ha, hc)| (*len, starts, if critic { hc } else { ha }))
        };
        let channels = match (&self.actor.comm, &mb.channels) {
            (Some(_), Some(ch)) => Some(DeviceChannels::of(ch, m, dev)?),
            (Some(_), None) => anyhow::bail!("a communicating actor's minibatch needs channels"),
            (None, _) => None,
        };
        let talk = channels.as_ref().map(|c| (c, MessageMode::Sent));
        let (out, _) = self
            .actor
            .run(&x_actor, mb.runs, Some(&ids), side_seq(false), talk)?;
        let (logp, entropy) = match self.action_space {
            ActionSpace::Discrete(n) => {
                let acts: Vec<u32> = mb.actions.iter().map(|&a| a as u32).collect();
                let acts = Tensor::from_vec(acts, m, dev)?;
                let bias = match mb.mask_bias {
                    Some(b) => Some(Tensor::from_slice(b, (m, n), dev)?),
                    None => None,
                };
                dist::categorical(&out, bias.as_ref(), &acts)?
            }
            ActionSpace::Box { dim, .. } => {
                let acts = Tensor::from_slice(mb.actions, (m, dim), dev)?;
                let ls = self.actor.log_std_rows(mb.runs, m)?;
                dist::gaussian(&out, &ls, &acts)?
            }
        };
        let (values, _) = self
            .critic
            .run(&x_critic, mb.runs, Some(&ids), side_seq(true), None)?;
        let values = values.squeeze(1)?;
        let terms = ppo::loss(
            &ppo::LossInputs {
                logp: &logp,
                old_logp: &t(mb.old_logp)?,
                advantages: &t(mb.advantages)?,
                entropy: &entropy,
                values: &values,
                old_values: &t(mb.old_values)?,
                targets: &t(mb.targets)?,
                active: &t(mb.active)?,
            },
            &coefs.loss,
        )?;
        let total = ppo::total_loss(&terms, coefs.entropy_coef, coefs.value_coef)?;
        if let Some(dst) = rows {
            let lp: Vec<f32> = logp.to_device(&Device::Cpu)?.to_vec1()?;
            dst.logp.copy_from_slice(&lp);
            let v: Vec<f32> = values.to_device(&Device::Cpu)?.to_vec1()?;
            dst.values.copy_from_slice(&v);
        }
        self.pending.push(total);
        Ok(terms.values()?.scalars())
    }

    fn step(&mut self, pending: usize) -> Result<()> {
        anyhow::ensure!(
            pending == self.pending.len() && pending > 0,
            "{pending} gradients to step on, {} accumulated",
            self.pending.len()
        );
        let summed = self
            .pending
            .drain(..)
            .reduce(|a, b| (a + b).expect("losses are scalars"))
            .context("no loss")?;
        let mut grads = (summed / pending as f64)?.backward()?;
        clip_grad_norm(&mut grads, self.actor_opt.vars(), self.max_grad_norm)?;
        if let Some(c) = &self.critic_opt {
            clip_grad_norm(&mut grads, c.vars(), self.max_grad_norm)?;
        }
        self.actor_opt.step(&grads)?;
        if let Some(c) = &mut self.critic_opt {
            c.step(&grads)?;
        }
        Ok(())
    }

    fn pending_gradient(&mut self) -> Result<[Vec<f32>; 2]> {
        let summed = self
            .pending
            .iter()
            .skip(1)
            .try_fold(self.pending.first().context("no loss")?.clone(), |a, b| {
                a + b
            })?;
        let grads = summed.backward()?;
        let side = |s: &Side| -> Result<Vec<f32>> {
            let vars = s
                .vars
                .iter()
                .map(|v| match grads.get(v.as_tensor()) {
                    Some(g) => Ok(g.flatten_all()?.to_vec1::<f32>()?),
                    None => Ok(vec![0.0; v.elem_count()]),
                })
                .collect::<Result<Vec<_>>>()?;
            let mut flat = vec![0.0; s.layout.len()];
            unfold_all(&s.layout, &vars, &mut flat);
            Ok(flat)
        };
        Ok([side(&self.actor)?, side(&self.critic)?])
    }

    fn set_message_mode(&mut self, mode: MessageMode) {
        self.mode = mode;
    }

    fn set_learning_rates(&mut self, actor: f64, critic: f64) {
        self.actor_opt.lr = actor;
        if let Some(c) = &mut self.critic_opt {
            c.lr = critic;
        }
    }

    fn state(&self) -> Result<GroupState> {
        let [(am, av), (cm, cv)] = self.moments()?;
        let critic_t = self.critic_opt.as_ref().map_or(self.actor_opt.t, |c| c.t);
        Ok(GroupState {
            actor: SideState {
                values: self.actor.values()?,
                m: am,
                v: av,
                t: self.actor_opt.t,
            },
            critic: SideState {
                values: self.critic.values()?,
                m: cm,
                v: cv,
                t: critic_t,
            },
        })
    }

    fn load_state(&mut self, state: &GroupState, optimizer: bool) -> Result<()> {
        self.actor.set_values(&state.actor.values)?;
        self.critic.set_values(&state.critic.values)?;
        if !optimizer {
            return Ok(());
        }
        let na = self.actor.vars.len();
        for (si, (side, s)) in [(&self.actor, &state.actor), (&self.critic, &state.critic)]
            .into_iter()
            .enumerate()
        {
            let ms = fold_all(&side.layout, &s.m);
            let vs = fold_all(&side.layout, &s.v);
            let (opt, first) = match &mut self.critic_opt {
                Some(c) if si == 1 => (c, 0),
                _ => (&mut self.actor_opt, if si == 1 { na } else { 0 }),
            };
            for (i, ((m, v), var)) in ms.into_iter().zip(vs).zip(&side.vars).enumerate() {
                let m = Tensor::from_vec(m, var.shape(), &self.dev)?;
                let v = Tensor::from_vec(v, var.shape(), &self.dev)?;
                opt.set_moments(first + i, m, v)?;
            }
            opt.t = s.t;
        }
        Ok(())
    }
}
