//! A GRU layer by hand for the CPU, forward and backward through time over a batch of
//! sequences, PyTorch's `nn.GRU` equations and parameter layout (gates r, z, n):
//!
//! ```text
//! r = s(W_ir x + b_ir + W_hr h + b_hr)      z = s(W_iz x + b_iz + W_hz h + b_hz)
//! n = tanh(W_in x + b_in + r * (W_hn h + b_hn))      h' = (1 - z) * n + z * h
//! ```
//!
//! The input part of every gate is one gemm over all steps; the hidden part is one gemm per
//! step over all sequences; the weight gradients are one gemm each over all steps. A sequence's
//! state is zeroed before step `t` where `starts[t]` is 1 (an episode begins there).
//!
//! # Shapes
//! Rows are time-major, `row = t * S + s` for `S` sequences of `L` steps. Parameters (flat):
//! `weight_ih [3H, in]`, `weight_hh [3H, H]`, `bias_ih [3H]`, `bias_hh [3H]`.

use super::cpu_mlp::matmul;
use super::simd::{self, wide_fn};
use super::tanh::{fast_sigmoid, fast_tanh};

/// One GRU layer and what its forward kept for the backward.
#[derive(Debug, Clone)]
pub struct CpuGru {
    inp: usize,
    hid: usize,
    len: usize,
    seqs: usize,
    /// Input parts of the gates, biases included, `[L*S, 3H]`.
    gi: Vec<f32>,
    /// Hidden parts of the gates, biases included, `[L*S, 3H]`.
    gh: Vec<f32>,
    /// Gate activations r, z, n, each `[L*S, H]` (one buffer `[L*S, 3H]`).
    gates: Vec<f32>,
    /// The state each step started from (after resets), `[L*S, H]`.
    hp: Vec<f32>,
    /// Outputs (the new states), `[L*S, H]`.
    h: Vec<f32>,
    /// Where states were zeroed, `[L*S]`.
    starts: Vec<f32>,
    /// The weights transposed for [`simd::affine`], and the version of the parameters they
    /// were packed from (as [`super::cpu_mlp::CpuMlp::forward_versioned`]).
    packed_ih: Vec<f32>,
    packed_hh: Vec<f32>,
    packed_version: Option<u64>,
    // Backward buffers.
    dgi: Vec<f32>,
    dgh: Vec<f32>,
    dh_next: Vec<f32>,
    dhp: Vec<f32>,
}

impl CpuGru {
    /// A layer from `inp` inputs to `hid` units.
    pub fn new(inp: usize, hid: usize) -> Self {
        Self {
            inp,
            hid,
            len: 0,
            seqs: 0,
            gi: Vec::new(),
            gh: Vec::new(),
            gates: Vec::new(),
            hp: Vec::new(),
            h: Vec::new(),
            starts: Vec::new(),
            packed_ih: Vec::new(),
            packed_hh: Vec::new(),
            packed_version: None,
            dgi: Vec::new(),
            dgh: Vec::new(),
            dh_next: Vec::new(),
            dhp: Vec::new(),
        }
    }

    /// Parameters the layer reads.
    pub fn param_count(&self) -> usize {
        let g = 3 * self.hid;
        g * self.inp + g * self.hid + 2 * g
    }

    /// Units.
    pub fn hidden(&self) -> usize {
        self.hid
    }

    /// Every step's output of the last forward, `[L*S, H]`.
    pub fn output(&self) -> &[f32] {
        &self.h
    }

    /// The states after the last step of the last forward, `[S, H]`.
    pub fn final_state(&self) -> &[f32] {
        &self.h[(self.len.max(1) - 1) * self.seqs * self.hid..]
    }

    /// `(weight_ih, weight_hh, bias_ih, bias_hh)` offsets.
    fn offsets(&self) -> (usize, usize, usize, usize) {
        let g = 3 * self.hid;
        let w_hh = g * self.inp;
        let b_ih = w_hh + g * self.hid;
        (0, w_hh, b_ih, b_ih + g)
    }

    /// Initial parameters: each gate's input and hidden matrix orthogonal (gain 1), biases 0,
    /// as on-policy initializes its GRU.
    pub fn init(&self, rng: &mut rand_chacha::ChaCha8Rng, out: &mut [f32]) {
        assert_eq!(out.len(), self.param_count());
        out.fill(0.0);
        let (w_ih, w_hh, _, _) = self.offsets();
        let (h, i) = (self.hid, self.inp);
        for gate in 0..3 {
            let w = super::init::orthogonal(h, i, 1.0, rng);
            out[w_ih + gate * h * i..w_ih + (gate + 1) * h * i].copy_from_slice(&w);
        }
        for gate in 0..3 {
            let w = super::init::orthogonal(h, h, 1.0, rng);
            out[w_hh + gate * h * h..w_hh + (gate + 1) * h * h].copy_from_slice(&w);
        }
    }

    /// Runs `len` steps of `x.len() / (len * inp)` sequences from the states `h0` (`[S, H]`),
    /// zeroing a sequence's state before step `t` where `starts[t * S + s]` is 1; returns every
    /// step's output `[L*S, H]` (the last step's rows are the final states).
    pub fn forward(
        &mut self,
        params: &[f32],
        x: &[f32],
        len: usize,
        starts: &[f32],
        h0: &[f32],
    ) -> &[f32] {
        self.forward_versioned(params, x, len, starts, h0, None)
    }

    /// [`forward`](Self::forward) reusing the packed weights of the last forward on the same
    /// `version` of the parameters (`None`: pack every time).
    pub fn forward_versioned(
        &mut self,
        params: &[f32],
        x: &[f32],
        len: usize,
        starts: &[f32],
        h0: &[f32],
        version: Option<u64>,
    ) -> &[f32] {
        let repack = version.is_none() || version != self.packed_version;
        self.packed_version = version;
        let (i, h) = (self.inp, self.hid);
        let g = 3 * h;
        let rows = x.len() / i;
        let s_n = rows / len;
        assert_eq!(rows, len * s_n);
        assert_eq!(starts.len(), rows);
        assert_eq!(h0.len(), s_n * h);
        assert_eq!(params.len(), self.param_count());
        (self.len, self.seqs) = (len, s_n);
        let (w_ih, w_hh, b_ih, b_hh) = self.offsets();
        for buf in [&mut self.gi, &mut self.gh, &mut self.gates] {
            buf.resize(rows * g, 0.0);
        }
        self.hp.resize(rows * h, 0.0);
        self.h.resize(rows * h, 0.0);
        self.starts.clear();
        self.starts.extend_from_slice(starts);
        // Input parts of every step at once: gi = b_ih + x W_ih^T (row by row the same
        // arithmetic whatever the batch: a rollout step equals the same step in training).
        if repack {
            simd::pack_transposed(&params[w_ih..w_hh], g, i, &mut self.packed_ih);
            simd::pack_transposed(&params[w_hh..b_ih], g, h, &mut self.packed_hh);
        }
        simd::affine(
            &mut self.gi,
            x,
            &self.packed_ih,
            &params[b_ih..b_ih + g],
            rows,
            i,
            g,
        );
        for t in 0..len {
            let (a, b) = (t * s_n, (t + 1) * s_n);
            // The state this step starts from, zeroed where an episode begins.
            for s in 0..s_n {
                let keep = 1.0 - starts[a + s];
                let prev = if t == 0 {
                    &h0[s * h..(s + 1) * h]
                } else {
                    &self.h[(a - s_n + s) * h..(a - s_n + s + 1) * h]
                };
                for (dst, &v) in self.hp[(a + s) * h..(a + s + 1) * h].iter_mut().zip(prev) {
                    *dst = v * keep;
                }
            }
            simd::affine(
                &mut self.gh[a * g..b * g],
                &self.hp[a * h..b * h],
                &self.packed_hh,
                &params[b_hh..b_hh + g],
                s_n,
                h,
                g,
            );
            gates_forward(
                h,
                &self.gi[a * g..b * g],
                &self.gh[a * g..b * g],
                &self.hp[a * h..b * h],
                &mut self.gates[a * g..b * g],
                &mut self.h[a * h..b * h],
            );
        }
        &self.h
    }

    /// Adds the parameters' gradients for `d_out` (`[L*S, H]`, the loss's gradient w.r.t. every
    /// output of the last forward) into `grads`; with `d_input`, writes the gradient w.r.t. the
    /// input `[L*S, in]` there. The initial states are constants (stored, not learned).
    pub fn backward(
        &mut self,
        params: &[f32],
        grads: &mut [f32],
        x: &[f32],
        d_out: &[f32],
        d_input: Option<&mut Vec<f32>>,
    ) {
        let (i, h) = (self.inp, self.hid);
        let g = 3 * h;
        let (len, s_n) = (self.len, self.seqs);
        let rows = len * s_n;
        assert_eq!(d_out.len(), rows * h);
        let (w_ih, w_hh, b_ih, b_hh) = self.offsets();
        self.dgi.resize(rows * g, 0.0);
        self.dgh.resize(rows * g, 0.0);
        self.dh_next.clear();
        self.dh_next.resize(s_n * h, 0.0);
        self.dhp.resize(s_n * h, 0.0);
        for t in (0..len).rev() {
            let (a, b) = (t * s_n, (t + 1) * s_n);
            gates_backward(
                h,
                GateGrads {
                    gates: &self.gates[a * g..b * g],
                    gh: &self.gh[a * g..b * g],
                    hp: &self.hp[a * h..b * h],
                    d_out: &d_out[a * h..b * h],
                    dh_next: &self.dh_next,
                },
                &mut self.dgi[a * g..b * g],
                &mut self.dgh[a * g..b * g],
                &mut self.dhp,
            );
            if t == 0 {
                break;
            }
            // d h_prev += dgh W_hh, then through the resets into the previous step.
            matmul(
                s_n,
                h,
                g,
                &mut self.dhp,
                (h, 1),
                true,
                &self.dgh[a * g..(a + s_n) * g],
                (g, 1),
                &params[w_hh..b_ih],
                (h, 1),
            );
            for s in 0..s_n {
                let keep = 1.0 - self.starts[a + s];
                for j in 0..h {
                    self.dh_next[s * h + j] = self.dhp[s * h + j] * keep;
                }
            }
        }
        // dW_hh += dgh^T hp, dW_ih += dgi^T x, bias gradients as column sums.
        matmul(
            g,
            h,
            rows,
            &mut grads[w_hh..b_ih],
            (h, 1),
            true,
            &self.dgh,
            (1, g),
            &self.hp,
            (h, 1),
        );
        matmul(
            g,
            i,
            rows,
            &mut grads[w_ih..w_hh],
            (i, 1),
            true,
            &self.dgi,
            (1, g),
            x,
            (i, 1),
        );
        simd::add_rows(&mut grads[b_ih..b_ih + g], &self.dgi);
        simd::add_rows(&mut grads[b_hh..b_hh + g], &self.dgh);
        if let Some(dx) = d_input {
            dx.resize(rows * i, 0.0);
            matmul(
                rows,
                i,
                g,
                dx,
                (i, 1),
                false,
                &self.dgi,
                (g, 1),
                &params[w_ih..w_hh],
                (i, 1),
            );
        }
    }
}

wide_fn! {
    /// The gates (r, z, n per row, `[rows, 3H]`) and the new states `[rows, H]` of one step
    /// from the gates' input and hidden parts `[rows, 3H]` and the previous states `[rows, H]`.
    fn gates_forward(
        h: usize,
        gi: &[f32],
        gh: &[f32],
        hp: &[f32],
        gates: &mut [f32],
        out: &mut [f32],
    ) {
        let (g, rows) = (3 * h, out.len() / h);
        for r in 0..rows {
            let (i_r, rest) = gi[r * g..(r + 1) * g].split_at(h);
            let (i_z, i_n) = rest.split_at(h);
            let (h_r, rest) = gh[r * g..(r + 1) * g].split_at(h);
            let (h_z, h_n) = rest.split_at(h);
            let (g_r, rest) = gates[r * g..(r + 1) * g].split_at_mut(h);
            let (g_z, g_n) = rest.split_at_mut(h);
            let (hp, out) = (&hp[r * h..(r + 1) * h], &mut out[r * h..(r + 1) * h]);
            for j in 0..h {
                let rg = fast_sigmoid(i_r[j] + h_r[j]);
                let zg = fast_sigmoid(i_z[j] + h_z[j]);
                let ng = fast_tanh(i_n[j] + rg * h_n[j]);
                g_r[j] = rg;
                g_z[j] = zg;
                g_n[j] = ng;
                out[j] = (1.0 - zg) * ng + zg * hp[j];
            }
        }
    }
}

/// What the gates' backward of one step reads.
struct GateGrads<'a> {
    gates: &'a [f32],
    gh: &'a [f32],
    hp: &'a [f32],
    d_out: &'a [f32],
    dh_next: &'a [f32],
}

wide_fn! {
    /// The gradients w.r.t. the gates' input and hidden parts of one step (`[rows, 3H]` each),
    /// and the direct part of the gradient w.r.t. the previous states (`dhp`, `[rows, H]`),
    /// from the gradient w.r.t. the step's outputs and from the step after.
    fn gates_backward(
        h: usize,
        x: GateGrads<'_>,
        dgi: &mut [f32],
        dgh: &mut [f32],
        dhp: &mut [f32],
    ) {
        let (g, rows) = (3 * h, x.d_out.len() / h);
        for r in 0..rows {
            let (g_r, rest) = x.gates[r * g..(r + 1) * g].split_at(h);
            let (g_z, g_n) = rest.split_at(h);
            let h_n = &x.gh[r * g + 2 * h..(r + 1) * g];
            let (hp, d_out, dh_next) = (
                &x.hp[r * h..(r + 1) * h],
                &x.d_out[r * h..(r + 1) * h],
                &x.dh_next[r * h..(r + 1) * h],
            );
            let (di_r, rest) = dgi[r * g..(r + 1) * g].split_at_mut(h);
            let (di_z, di_n) = rest.split_at_mut(h);
            let (dh_r, rest) = dgh[r * g..(r + 1) * g].split_at_mut(h);
            let (dh_z, dh_n) = rest.split_at_mut(h);
            let dhp = &mut dhp[r * h..(r + 1) * h];
            for j in 0..h {
                let (rg, zg, ng) = (g_r[j], g_z[j], g_n[j]);
                let dh = d_out[j] + dh_next[j];
                let dn = dh * (1.0 - zg) * (1.0 - ng * ng);
                let dz = dh * (hp[j] - ng) * zg * (1.0 - zg);
                let dr = dn * h_n[j] * rg * (1.0 - rg);
                di_r[j] = dr;
                di_z[j] = dz;
                di_n[j] = dn;
                dh_r[j] = dr;
                dh_z[j] = dz;
                dh_n[j] = dn * rg;
                dhp[j] = dh * zg;
            }
        }
    }
}
