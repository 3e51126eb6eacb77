//! Where each parameter of a group lives in its flat vectors, and the frozen checkpoint names
//! (README, "Checkpoint layout"): written once here for every backend.
//!
//! | tensor (per network `p` = `{group}.actor`, or `{group}.actor.{k}` unshared) | shape |
//! |---|---|
//! | `p.input_norm.weight`, `p.input_norm.bias` (with LayerNorms) | `[in]` |
//! | `p.layers.{i}.weight`, `p.layers.{i}.bias` (before the GRU, if any) | `[out, in]`, `[out]` |
//! | `p.norms.{i}.weight`, `p.norms.{i}.bias` (with LayerNorms) | `[out]` |
//! | `p.head.weight`, `p.head.bias` | `[actions or 1, hidden]`, `[actions or 1]` |
//! | `p.gru.weight_ih_l0`, `p.gru.weight_hh_l0` (recurrent; PyTorch's `nn.GRU`, gates r, z, n) | `[3H, in]`, `[3H, H]` |
//! | `p.gru.bias_ih_l0`, `p.gru.bias_hh_l0` | `[3H]` |
//! | `p.rnn_norm.weight`, `p.rnn_norm.bias` (recurrent, with LayerNorms: on the GRU's output) | `[H]` |
//! | `p.post_layers.{i}`, `p.post_norms.{i}` (recurrent: dense layers after the GRU) | as `layers`, `norms` |
//! | `p.embedding` (learned agent ids, shared networks) | `[agents, size]` |
//! | `p.log_std` (Gaussian actors) | `[action size]` |
//! | `{group}.actor.comm.encoder.weight`, `.bias` (communicating actors; one set per group) | `[width, in]`, `[width]` |
//! | `{group}.actor.comm.rounds.{r}.message` (mean) or `.query`, `.key` and `.value` (attention) | `[dim or key, width]`, `[dim or key]` |
//! | `{group}.actor.comm.rounds.{r}.update` | `[width, dim]`, `[width]` |
//! | `{group}.actor.comm.rounds.{r}.gate` (after every round's layers) | `[width]` |
//!
//! and the same under `{group}.critic`. A side's flat vector holds the tensors in this order
//! (per network its MLP then its embedding; then the log-stds; the message layers last), which is also the order of
//! the optimizer's moments, saved as `{group}.actor_opt.{i}.m` / `.v` (`critic_opt` for the
//! critic; a joint optimizer numbers the critic's after the actor's, under `actor_opt`) with a
//! linear layer's moments as one `[out, in + 1]` matrix, bias last.

use std::collections::HashMap;
use std::ops::Range;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};

use super::shape::{GroupShape, SideShape};
use crate::config::OptimizerKind;

/// One side's flat parameters and its optimizer's moments (laid out as the parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct SideState {
    /// Parameters.
    pub values: Vec<f32>,
    /// Adam's first moments.
    pub m: Vec<f32>,
    /// Adam's second moments.
    pub v: Vec<f32>,
    /// Adam steps taken.
    pub t: u64,
}

impl SideState {
    /// Parameters with a fresh optimizer.
    pub fn fresh(values: Vec<f32>) -> Self {
        let n = values.len();
        Self {
            values,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }
}

/// Both sides of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupState {
    /// Actor(s), their embedding and log-stds.
    pub actor: SideState,
    /// Critic(s) and their embedding.
    pub critic: SideState,
}

/// What one tensor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `weight [out, in]` then `bias [out]`.
    Linear { out: usize, inp: usize },
    /// A vector.
    Vector(usize),
    /// A matrix.
    Matrix(usize, usize),
}

impl Kind {
    fn len(self) -> usize {
        match self {
            Kind::Linear { out, inp } => out * inp + out,
            Kind::Vector(n) => n,
            Kind::Matrix(r, c) => r * c,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: Kind,
    offset: usize,
}

/// The tensors of one side, in order.
#[derive(Debug, Clone)]
pub struct SideLayout {
    entries: Vec<Entry>,
    nets: Vec<Range<usize>>,
    embedding: Option<Range<usize>>,
    log_stds: Vec<Range<usize>>,
    comm: Option<Range<usize>>,
    len: usize,
}

impl SideLayout {
    /// The layout of `side`.
    pub fn of(side: &SideShape) -> Self {
        let mut entries: Vec<Entry> = Vec::new();
        let prefix = |k: usize| {
            if side.n_nets == 1 {
                side.prefix.clone()
            } else {
                format!("{}.{k}", side.prefix)
            }
        };
        let n = &side.net;
        let ln = n.layer_norm;
        let mut nets = Vec::new();
        let mut embedding = None;
        for k in 0..side.n_nets {
            let p = prefix(k);
            let first = entries.len();
            // Dense layers: `{norm}` on the input, then `{layers}.{l}` each with `{norms}.{l}`
            // after its activation (all but a head).
            let dense = |entries: &mut Vec<Entry>,
                         dims: &[usize],
                         head: bool,
                         (norm, layers, norms): (&str, &str, &str)| {
                if ln {
                    for part in ["weight", "bias"] {
                        let name = format!("{p}.{norm}.{part}");
                        push_to(entries, name, Kind::Vector(dims[0]));
                    }
                }
                let n_layers = dims.len() - 1;
                for l in 0..n_layers {
                    let kind = Kind::Linear {
                        out: dims[l + 1],
                        inp: dims[l],
                    };
                    if head && l + 1 == n_layers {
                        push_to(entries, format!("{p}.head"), kind);
                        continue;
                    }
                    push_to(entries, format!("{p}.{layers}.{l}"), kind);
                    if ln {
                        for part in ["weight", "bias"] {
                            let name = format!("{p}.{norms}.{l}.{part}");
                            push_to(entries, name, Kind::Vector(dims[l + 1]));
                        }
                    }
                }
            };
            let mut dims = vec![side.mlp_in()];
            dims.extend(&n.hidden);
            match &n.recurrent {
                None => {
                    dims.push(n.out_dim);
                    dense(&mut entries, &dims, true, ("input_norm", "layers", "norms"));
                }
                Some(rec) => {
                    if dims.len() > 1 {
                        dense(
                            &mut entries,
                            &dims,
                            false,
                            ("input_norm", "layers", "norms"),
                        );
                    }
                    let (g, w, i) = (3 * rec.width, rec.width, dims[dims.len() - 1]);
                    push_to(
                        &mut entries,
                        format!("{p}.gru.weight_ih_l0"),
                        Kind::Matrix(g, i),
                    );
                    push_to(
                        &mut entries,
                        format!("{p}.gru.weight_hh_l0"),
                        Kind::Matrix(g, w),
                    );
                    push_to(&mut entries, format!("{p}.gru.bias_ih_l0"), Kind::Vector(g));
                    push_to(&mut entries, format!("{p}.gru.bias_hh_l0"), Kind::Vector(g));
                    let mut top = vec![w];
                    top.extend(&rec.after);
                    top.push(n.out_dim);
                    dense(
                        &mut entries,
                        &top,
                        true,
                        ("rnn_norm", "post_layers", "post_norms"),
                    );
                }
            }
            let start = entries[first].offset;
            nets.push(start..end_of(&entries));
            debug_assert_eq!(end_of(&entries) - start, side.net().param_count());
            if let Some((agents, size)) = side.embedding {
                let at = end_of(&entries);
                push_to(
                    &mut entries,
                    format!("{p}.embedding"),
                    Kind::Matrix(agents, size),
                );
                embedding = Some(at..end_of(&entries));
            }
        }
        let mut log_stds = Vec::new();
        if let Some(d) = side.log_std {
            for k in 0..side.n_nets {
                let at = end_of(&entries);
                push_to(
                    &mut entries,
                    format!("{}.log_std", prefix(k)),
                    Kind::Vector(d),
                );
                log_stds.push(at..end_of(&entries));
            }
        }
        // The message layers last, so that the layout of actors without them is unchanged.
        let comm = side.comm.as_ref().map(|c| {
            let at = end_of(&entries);
            for l in c.linears() {
                let kind = Kind::Linear {
                    out: l.out,
                    inp: l.inp,
                };
                push_to(
                    &mut entries,
                    format!("{}.comm.{}", side.prefix, l.name),
                    kind,
                );
            }
            for g in c.gates() {
                let kind = Kind::Vector(c.width);
                push_to(&mut entries, format!("{}.comm.{g}", side.prefix), kind);
            }
            at..end_of(&entries)
        });
        let len = end_of(&entries);
        Self {
            entries,
            nets,
            embedding,
            log_stds,
            comm,
            len,
        }
    }

    /// Floats in the side's vector.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the side has no parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tensors (optimizer slots) of the side.
    pub fn tensors(&self) -> usize {
        self.entries.len()
    }

    /// Where network `k`'s MLP lives.
    pub fn net(&self, k: usize) -> Range<usize> {
        self.nets[k].clone()
    }

    /// Where the learned agent embedding (`[agents, size]`) lives.
    pub fn embedding(&self) -> Option<Range<usize>> {
        self.embedding.clone()
    }

    /// Where the message layers live (communicating actors), in [`CommLayers::linears`]'
    /// order.
    ///
    /// [`CommLayers::linears`]: crate::nn::comm::CommLayers::linears
    pub fn comm(&self) -> Option<Range<usize>> {
        self.comm.clone()
    }

    /// Where each network's log-std lives (Gaussian actors).
    pub fn log_stds(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.log_stds.iter().cloned()
    }

    /// Sizes of the tensors in order, as candle holds them (a linear layer as one
    /// `[out, in + 1]` matrix).
    pub fn var_shapes(&self) -> Vec<Vec<usize>> {
        self.entries.iter().map(|e| folded_shape(e.kind)).collect()
    }

    /// The side's tensors under their checkpoint names.
    pub fn export_model(&self, values: &[f32], out: &mut Vec<(String, Tensor)>) -> Result<()> {
        for e in &self.entries {
            let v = &values[e.offset..e.offset + e.kind.len()];
            match e.kind {
                Kind::Linear { out: o, inp } => {
                    out.push((
                        format!("{}.weight", e.name),
                        tensor(&v[..o * inp], &[o, inp])?,
                    ));
                    out.push((format!("{}.bias", e.name), tensor(&v[o * inp..], &[o])?));
                }
                Kind::Vector(n) => out.push((e.name.clone(), tensor(v, &[n])?)),
                Kind::Matrix(r, c) => out.push((e.name.clone(), tensor(v, &[r, c])?)),
            }
        }
        Ok(())
    }

    /// Reads the side's tensors from a checkpoint's model into `values`.
    pub fn import_model(&self, map: &HashMap<String, Tensor>, values: &mut [f32]) -> Result<()> {
        for e in &self.entries {
            let dst = &mut values[e.offset..e.offset + e.kind.len()];
            match e.kind {
                Kind::Linear { out: o, inp } => {
                    let (w, b) = dst.split_at_mut(o * inp);
                    read(map, &format!("{}.weight", e.name), &[o, inp], w)?;
                    read(map, &format!("{}.bias", e.name), &[o], b)?;
                }
                Kind::Vector(n) => read(map, &e.name, &[n], dst)?,
                Kind::Matrix(r, c) => read(map, &e.name, &[r, c], dst)?,
            }
        }
        Ok(())
    }

    /// The optimizer's moments as `{opt}.{first + i}.m` / `.v`.
    fn export_moments(
        &self,
        opt: &str,
        first: usize,
        s: &SideState,
        out: &mut Vec<(String, Tensor)>,
    ) -> Result<()> {
        for (i, e) in self.entries.iter().enumerate() {
            for (key, src) in [("m", &s.m), ("v", &s.v)] {
                let v = fold(e.kind, &src[e.offset..e.offset + e.kind.len()]);
                let t = tensor(&v, &folded_shape(e.kind))?;
                out.push((format!("{opt}.{}.{key}", first + i), t));
            }
        }
        Ok(())
    }

    fn import_moments(
        &self,
        opt: &str,
        first: usize,
        map: &HashMap<String, Tensor>,
        s: &mut SideState,
    ) -> Result<()> {
        for (i, e) in self.entries.iter().enumerate() {
            for (key, dst) in [("m", &mut s.m), ("v", &mut s.v)] {
                let name = format!("{opt}.{}.{key}", first + i);
                let mut folded = vec![0.0; e.kind.len()];
                read(map, &name, &folded_shape(e.kind), &mut folded)
                    .with_context(|| "in the optimizer state".to_string())?;
                dst[e.offset..e.offset + e.kind.len()].copy_from_slice(&unfold(e.kind, &folded));
            }
        }
        Ok(())
    }
}

/// A checkpoint's optimizer state: its moments by name and each group's Adam step counts
/// (actor or joint, critic).
#[derive(Debug, Clone, Copy)]
pub struct SavedOptimizer<'a> {
    /// `{group}.actor_opt.{i}.m` and the like.
    pub tensors: &'a HashMap<String, Tensor>,
    /// Adam steps of the actor (or joint) and critic optimizers.
    pub steps: (u64, u64),
}

/// Both sides of a group and how its optimizer state is named.
#[derive(Debug, Clone)]
pub struct GroupLayout {
    name: String,
    /// The actor side.
    pub actor: SideLayout,
    /// The critic side.
    pub critic: SideLayout,
    joint: bool,
    unshared: bool,
}

impl GroupLayout {
    /// The layout of a group.
    pub fn of(shape: &GroupShape) -> Self {
        Self {
            name: shape.name.clone(),
            actor: SideLayout::of(&shape.actor),
            critic: SideLayout::of(&shape.critic),
            joint: shape.optim.kind == OptimizerKind::Joint,
            unshared: shape.actor.n_nets > 1 || shape.critic.n_nets > 1,
        }
    }

    /// Whether either side has one network per agent.
    pub fn unshared(&self) -> bool {
        self.unshared
    }

    /// Whether the group's agents share one critic.
    pub fn shared_critic(&self) -> bool {
        self.critic.nets.len() == 1
    }

    /// Writes the group's networks into `model` and its optimizer moments into `optimizer`;
    /// returns the Adam step counts as checkpoints record them (actor or joint, critic).
    pub fn export(
        &self,
        s: &GroupState,
        model: &mut Vec<(String, Tensor)>,
        optimizer: &mut Vec<(String, Tensor)>,
    ) -> Result<(u64, u64)> {
        self.actor.export_model(&s.actor.values, model)?;
        self.critic.export_model(&s.critic.values, model)?;
        let actor_opt = format!("{}.actor_opt", self.name);
        self.actor
            .export_moments(&actor_opt, 0, &s.actor, optimizer)?;
        if self.joint {
            let first = self.actor.tensors();
            self.critic
                .export_moments(&actor_opt, first, &s.critic, optimizer)?;
            Ok((s.actor.t, 0))
        } else {
            let critic_opt = format!("{}.critic_opt", self.name);
            self.critic
                .export_moments(&critic_opt, 0, &s.critic, optimizer)?;
            Ok((s.actor.t, s.critic.t))
        }
    }

    /// Reads a group's state from a checkpoint's model and, with `optimizer`, its moments and
    /// step counts (otherwise the optimizer starts fresh).
    pub fn import(
        &self,
        model: &HashMap<String, Tensor>,
        optimizer: Option<SavedOptimizer<'_>>,
    ) -> Result<GroupState> {
        let mut s = GroupState {
            actor: SideState::fresh(vec![0.0; self.actor.len()]),
            critic: SideState::fresh(vec![0.0; self.critic.len()]),
        };
        self.actor.import_model(model, &mut s.actor.values)?;
        self.critic.import_model(model, &mut s.critic.values)?;
        if let Some(SavedOptimizer {
            tensors: opt,
            steps: (ta, tc),
        }) = optimizer
        {
            let actor_opt = format!("{}.actor_opt", self.name);
            self.actor
                .import_moments(&actor_opt, 0, opt, &mut s.actor)?;
            if self.joint {
                let first = self.actor.tensors();
                self.critic
                    .import_moments(&actor_opt, first, opt, &mut s.critic)?;
                (s.actor.t, s.critic.t) = (ta, ta);
            } else {
                let critic_opt = format!("{}.critic_opt", self.name);
                self.critic
                    .import_moments(&critic_opt, 0, opt, &mut s.critic)?;
                (s.actor.t, s.critic.t) = (ta, tc);
            }
        }
        Ok(s)
    }
}

/// Where the next tensor goes.
fn end_of(entries: &[Entry]) -> usize {
    entries.last().map_or(0, |e| e.offset + e.kind.len())
}

/// Appends a tensor after the others.
fn push_to(entries: &mut Vec<Entry>, name: String, kind: Kind) {
    let offset = end_of(entries);
    entries.push(Entry { name, kind, offset });
}

fn folded_shape(kind: Kind) -> Vec<usize> {
    match kind {
        Kind::Linear { out, inp } => vec![out, inp + 1],
        Kind::Vector(n) => vec![n],
        Kind::Matrix(r, c) => vec![r, c],
    }
}

/// A linear layer's `weight [out, in]` then `bias [out]` as one `[out, in + 1]` matrix.
fn fold(kind: Kind, flat: &[f32]) -> Vec<f32> {
    match kind {
        Kind::Linear { out, inp } => {
            let (w, b) = flat.split_at(out * inp);
            let mut f = Vec::with_capacity(flat.len());
            for r in 0..out {
                f.extend_from_slice(&w[r * inp..(r + 1) * inp]);
                f.push(b[r]);
            }
            f
        }
        _ => flat.to_vec(),
    }
}

/// The inverse of [`fold`].
fn unfold(kind: Kind, folded: &[f32]) -> Vec<f32> {
    match kind {
        Kind::Linear { out, inp } => {
            let mut f = Vec::with_capacity(folded.len());
            for r in 0..out {
                f.extend_from_slice(&folded[r * (inp + 1)..r * (inp + 1) + inp]);
            }
            f.extend((0..out).map(|r| folded[r * (inp + 1) + inp]));
            f
        }
        _ => folded.to_vec(),
    }
}

/// Converts between the flat layout and candle's variables (linear layers folded).
pub(crate) fn fold_all(layout: &SideLayout, flat: &[f32]) -> Vec<Vec<f32>> {
    layout
        .entries
        .iter()
        .map(|e| fold(e.kind, &flat[e.offset..e.offset + e.kind.len()]))
        .collect()
}

/// The inverse of [`fold_all`].
pub(crate) fn unfold_all(layout: &SideLayout, vars: &[Vec<f32>], flat: &mut [f32]) {
    for (e, v) in layout.entries.iter().zip(vars) {
        flat[e.offset..e.offset + e.kind.len()].copy_from_slice(&unfold(e.kind, v));
    }
}

fn tensor(v: &[f32], shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_vec(v.to_vec(), shape, &Device::Cpu)?)
}

fn read(map: &HashMap<String, Tensor>, name: &str, shape: &[usize], dst: &mut [f32]) -> Result<()> {
    let t = map
        .get(name)
        .with_context(|| format!("checkpoint has no tensor `{name}`"))?;
    if t.dims() != shape {
        bail!(
            "tensor `{name}` has shape {:?}, expected {shape:?}",
            t.dims()
        );
    }
    let v: Vec<f32> = t
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1()?;
    dst.copy_from_slice(&v);
    Ok(())
}
