//! One actor or critic network for the CPU: a feed-forward MLP, or dense layers -> GRU ->
//! dense layers -> head (on-policy's rMAPPO: MLP -> GRU -> LayerNorm -> head; JaxMARL's
//! MAPPO-RNN: Dense -> ReLU -> GRU -> Dense -> ReLU -> head).
//!
//! Parameters are one flat slice: the layers before the GRU ([`CpuMlp`], every layer
//! activated), the GRU ([`CpuGru`]), then the layers after it with the head (a [`CpuMlp`] whose
//! input LayerNorm, with `layer_norm`, normalizes the GRU's output).

use rand_chacha::ChaCha8Rng;

use super::cpu_gru::CpuGru;
use super::cpu_mlp::{CpuMlp, MlpInput};

/// The sequences a recurrent network runs over: `len` steps of `rows / len` sequences,
/// time-major, the states they start from, and where states are zeroed.
#[derive(Debug, Clone, Copy)]
pub struct Sequences<'a> {
    /// Steps per sequence.
    pub len: usize,
    /// 1 where a sequence's state is zeroed before the row's step (`[rows]`).
    pub starts: &'a [f32],
    /// Initial states `[rows / len, H]`.
    pub h0: &'a [f32],
}

/// A network.
#[derive(Debug, Clone)]
pub enum CpuNet {
    /// Feed-forward.
    Mlp(Box<CpuMlp>),
    /// Dense layers (if any), a GRU, dense layers and the head.
    Recurrent(Box<Recurrent>),
}

/// The parts of a recurrent network.
#[derive(Debug, Clone)]
pub struct Recurrent {
    /// Before the GRU.
    pub base: Option<CpuMlp>,
    /// The GRU.
    pub gru: CpuGru,
    /// After the GRU, with the head.
    pub top: CpuMlp,
}

impl CpuNet {
    /// Parameters the network reads.
    pub fn param_count(&self) -> usize {
        match self {
            CpuNet::Mlp(m) => m.param_count(),
            CpuNet::Recurrent(r) => {
                r.base.as_ref().map_or(0, CpuMlp::param_count)
                    + r.gru.param_count()
                    + r.top.param_count()
            }
        }
    }

    /// The recurrent state's width (None: feed-forward).
    pub fn state_width(&self) -> Option<usize> {
        match self {
            CpuNet::Mlp(_) => None,
            CpuNet::Recurrent(r) => Some(r.gru.hidden()),
        }
    }

    /// Whether the first layer is dense on the raw input, so that rows sharing a state can be
    /// computed from it once ([`MlpInput::Shared`]): not under an input LayerNorm, not with a
    /// GRU reading the input directly.
    pub fn shares_states(&self) -> bool {
        match self {
            CpuNet::Mlp(m) => !m.has_input_norm(),
            CpuNet::Recurrent(r) => r.base.as_ref().is_some_and(|b| !b.has_input_norm()),
        }
    }

    /// Where the parts' parameters start: (GRU, after the GRU).
    fn split(&self) -> (usize, usize) {
        match self {
            CpuNet::Mlp(m) => (m.param_count(), m.param_count()),
            CpuNet::Recurrent(r) => {
                let b = r.base.as_ref().map_or(0, CpuMlp::param_count);
                (b, b + r.gru.param_count())
            }
        }
    }

    /// Initial parameters drawn from `rng` part by part (see [`CpuMlp::init`],
    /// [`CpuGru::init`]).
    pub fn init(&self, head_gain: f64, rng: &mut ChaCha8Rng, out: &mut [f32]) {
        match self {
            CpuNet::Mlp(m) => m.init(head_gain, rng, out),
            CpuNet::Recurrent(r) => {
                let (g, t) = self.split();
                if let Some(b) = &r.base {
                    b.init(head_gain, rng, &mut out[..g]);
                }
                r.gru.init(rng, &mut out[g..t]);
                r.top.init(head_gain, rng, &mut out[t..]);
            }
        }
    }

    /// The output for `rows` rows of `x` (a recurrent network: over `seq`), keeping what the
    /// backward needs.
    /// Rows sharing states only where [`shares_states`](Self::shares_states).
    /// `version` names the parameters' current values for reusing packed weights (see
    /// [`CpuMlp::forward_versioned`]); `None` packs them every time.
    pub fn forward(
        &mut self,
        params: &[f32],
        x: MlpInput<'_>,
        rows: usize,
        seq: Option<Sequences<'_>>,
        version: Option<u64>,
    ) -> &[f32] {
        let (g, t) = self.split();
        match self {
            CpuNet::Mlp(m) => m.forward_versioned(params, x, rows, version),
            CpuNet::Recurrent(r) => {
                let seq = seq.expect("a recurrent network runs over sequences");
                let Recurrent { base, gru, top } = &mut **r;
                let input = match (base, x) {
                    (Some(b), x) => b.forward_versioned(&params[..g], x, rows, version),
                    (None, MlpInput::Rows(x)) => x,
                    (None, MlpInput::Shared(_)) => panic!("a GRU reads whole rows"),
                };
                let h = gru.forward_versioned(
                    &params[g..t],
                    input,
                    seq.len,
                    seq.starts,
                    seq.h0,
                    version,
                );
                top.forward_versioned(&params[t..], MlpInput::Rows(h), rows, version)
            }
        }
    }

    /// The states after the last step of the last forward, `[sequences, H]`.
    pub fn final_state(&self) -> &[f32] {
        match self {
            CpuNet::Mlp(_) => &[],
            CpuNet::Recurrent(r) => r.gru.final_state(),
        }
    }

    /// Adds the gradients for `d_out` into `grads` (see [`CpuMlp::backward_input`]).
    pub fn backward(
        &mut self,
        params: &[f32],
        grads: &mut [f32],
        x: MlpInput<'_>,
        d_out: &[f32],
        d_input: Option<&mut Vec<f32>>,
        scratch: &mut (Vec<f32>, Vec<f32>),
    ) {
        let (g, t) = self.split();
        match self {
            CpuNet::Mlp(m) => m.backward_input(params, grads, x, d_out, d_input),
            CpuNet::Recurrent(r) => {
                let Recurrent { base, gru, top } = &mut **r;
                let (d_h, d_base) = scratch;
                let (gb, rest) = grads.split_at_mut(g);
                let (gg, gt) = rest.split_at_mut(t - g);
                top.backward(&params[t..], gt, gru.output(), d_out, Some(d_h));
                match (base, x) {
                    (Some(b), x) => {
                        gru.backward(&params[g..t], gg, b.output(), d_h, Some(d_base));
                        b.backward_input(&params[..g], gb, x, d_base, d_input);
                    }
                    (None, MlpInput::Rows(x)) => gru.backward(&params[g..t], gg, x, d_h, d_input),
                    (None, MlpInput::Shared(_)) => panic!("a GRU reads whole rows"),
                }
            }
        }
    }
}
