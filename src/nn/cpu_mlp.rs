//! An MLP with a hand-written forward and backward over preallocated flat buffers, for the
//! CPU: the arithmetic of [`super::mlp::Mlp`] (tanh or ReLU, on-policy's LayerNorms) without
//! candle's autograd, which allocates, zero-fills and adds a gradient for every node
//! (docs/candle.md section 2).
//!
//! Every matrix product is one call of `gemm` (the kernel candle itself uses) on strided views,
//! so no transpose is ever copied; the bias is added by starting the product from it, and the
//! bias gradient is a row sum. The network holds no parameters: they live in one flat slice
//! owned by the caller (per layer `weight [out, in]` row-major then `bias [out]`, the
//! checkpoint layout; see [`CpuMlp::new`] for the order), so that several networks, an agent
//! embedding and a log-std share one optimizer and one gradient-norm loop.
//!
//! # Shapes
//! `forward`: `[batch, dims[0]]` -> `[batch, dims[L]]`; gradients accumulate into the caller's
//! `[param_count]` slice.

use rand_chacha::ChaCha8Rng;

use super::init::orthogonal;
use super::simd;
use crate::util::parallel;

/// Multiply-adds of a layer's backward product above which its two products (weight and
/// input gradients) are worth handing one to the second core, where the caller lends it.
const SPLIT_MACS: usize = 1 << 15;

/// `dst[m x n] (+)= lhs[m x k] . rhs[k x n]`, each given as (slice, row stride, column stride).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    // The views must lie inside their slices; gemm trusts its pointers.
    let extent = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(extent(m, n, dst_rs, dst_cs) <= dst.len());
    assert!(extent(m, k, lhs_rs, lhs_cs) <= lhs.len());
    assert!(extent(k, n, rhs_rs, rhs_cs) <= rhs.len());
    // SAFETY: the three views were just checked to lie inside their slices, `dst` is borrowed
    // mutably and so aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// What an MLP reads: whole rows, or rows that begin with a state several rows share.
#[derive(Debug, Clone, Copy)]
pub enum MlpInput<'a> {
    /// `[batch, dims[0]]`.
    Rows(&'a [f32]),
    /// Each row is `states[of_row[r]]` followed by its own columns.
    Shared(SharedRows<'a>),
}

/// Rows that begin with a shared state: the first layer multiplies each distinct state once
/// (and in the backward sums the gradient of the rows that share it before one product),
/// instead of once per row. Only for a network whose first layer reads the raw input (no
/// input LayerNorm, whose statistics mix the state with the rest of the row).
#[derive(Debug, Clone, Copy)]
pub struct SharedRows<'a> {
    /// The distinct states `[U, dim]`.
    pub states: &'a [f32],
    /// A state's width: the first `dim` columns of the first layer's weight read it.
    pub dim: usize,
    /// Which state each row begins with `[batch]`.
    pub of_row: &'a [u32],
    /// Each row's columns after its state `[batch, dims[0] - dim]`.
    pub own: &'a [f32],
}

/// Where a LayerNorm's scale and shift live in the parameters, and what its forward kept.
#[derive(Debug, Clone, Default)]
struct Norm {
    gamma: usize,
    dim: usize,
    /// Normalized rows `[B, dim]` (before scale and shift).
    xhat: Vec<f32>,
    /// Reciprocal standard deviation per row.
    rstd: Vec<f32>,
}

impl Norm {
    /// `out = xhat * gamma + beta` per row of `x`, keeping xhat and rstd.
    fn forward(&mut self, params: &[f32], x: &[f32], out: &mut Vec<f32>) {
        let d = self.dim;
        let gamma = &params[self.gamma..self.gamma + d];
        let beta = &params[self.gamma + d..self.gamma + 2 * d];
        let rows = x.len() / d;
        self.xhat.resize(x.len(), 0.0);
        self.rstd.resize(rows, 0.0);
        out.resize(x.len(), 0.0);
        for (r, ((row, xh), dst)) in x
            .chunks_exact(d)
            .zip(self.xhat.chunks_exact_mut(d))
            .zip(out.chunks_exact_mut(d))
            .enumerate()
        {
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let rstd = 1.0 / (var + super::layer_norm::EPS).sqrt();
            self.rstd[r] = rstd;
            for j in 0..d {
                xh[j] = (row[j] - mean) * rstd;
                dst[j] = xh[j] * gamma[j] + beta[j];
            }
        }
    }

    /// Given `g = d loss / d out` (rows), adds the scale and shift gradients into `grads`
    /// and, with `dx`, writes the gradient w.r.t. the input in place of `g`.
    fn backward(&self, params: &[f32], grads: &mut [f32], g: &mut [f32], dx: bool) {
        let d = self.dim;
        let gamma = &params[self.gamma..self.gamma + d];
        let (dgamma, dbeta) = grads[self.gamma..self.gamma + 2 * d].split_at_mut(d);
        for (r, (gr, xh)) in g
            .chunks_exact_mut(d)
            .zip(self.xhat.chunks_exact(d))
            .enumerate()
        {
            let (mut m1, mut m2) = (0.0f32, 0.0f32);
            for j in 0..d {
                let dxhat = gr[j] * gamma[j];
                m1 += dxhat;
                m2 += dxhat * xh[j];
                dgamma[j] += gr[j] * xh[j];
                dbeta[j] += gr[j];
            }
            if dx {
                let (m1, m2, rstd) = (m1 / d as f32, m2 / d as f32, self.rstd[r]);
                for j in 0..d {
                    gr[j] = rstd * (gr[j] * gamma[j] - m1 - xh[j] * m2);
                }
            }
        }
    }
}

/// An MLP `dims[0] -> dims[1] -> ... -> dims[L]`: tanh or ReLU hidden layers, a linear last
/// layer (a head) unless `activate_last`, and with `layer_norm` on-policy's LayerNorms (on the
/// input, and after each activation), as [`super::mlp::Mlp`].
#[derive(Debug, Clone)]
pub struct CpuMlp {
    dims: Vec<usize>,
    relu: bool,
    activate_last: bool,
    param_count: usize,
    /// Where each linear layer's weight starts.
    offsets: Vec<usize>,
    input_norm: Option<Norm>,
    /// After layer `l`'s activation.
    norms: Vec<Option<Norm>>,
    /// The normalized input (with an input norm).
    x_normed: Vec<f32>,
    /// Per layer: output after the activation, or the head's output.
    acts: Vec<Vec<f32>>,
    /// Per activated layer with a norm: the normalized output, the next layer's input.
    normed: Vec<Vec<f32>>,
    /// Each layer's weights transposed for [`simd::affine`], and the version of the
    /// parameters they were packed from (see [`forward_versioned`](Self::forward_versioned)).
    packed: Vec<Vec<f32>>,
    packed_version: Option<u64>,
    /// Gradient w.r.t. the current layer's output, and the one below.
    delta: Vec<f32>,
    delta_below: Vec<f32>,
    /// With shared states: the first layer's output per distinct state, and its gradient.
    state_part: Vec<f32>,
    d_state_part: Vec<f32>,
    batch: usize,
}

impl CpuMlp {
    /// A network of the given widths. Its parameters, in order: input norm (scale, shift), then
    /// per layer weight `[out, in]`, bias `[out]`, and after an activated layer its norm
    /// (scale, shift). This is the order of `Mlp::vars` with each linear layer unfolded.
    pub fn new(dims: &[usize], relu: bool, layer_norm: bool, activate_last: bool) -> Self {
        assert!(dims.len() >= 2, "an MLP needs an input and an output width");
        let mut at = 0;
        let norm = |d: usize, at: &mut usize| {
            let n = Norm {
                gamma: *at,
                dim: d,
                ..Norm::default()
            };
            *at += 2 * d;
            n
        };
        let input_norm = layer_norm.then(|| norm(dims[0], &mut at));
        let n_layers = dims.len() - 1;
        let mut offsets = Vec::new();
        let mut norms = Vec::new();
        for l in 0..n_layers {
            offsets.push(at);
            at += dims[l] * dims[l + 1] + dims[l + 1];
            let activated = l + 1 < n_layers || activate_last;
            norms.push((layer_norm && activated).then(|| norm(dims[l + 1], &mut at)));
        }
        Self {
            dims: dims.to_vec(),
            relu,
            activate_last,
            param_count: at,
            offsets,
            input_norm,
            norms,
            x_normed: Vec::new(),
            acts: vec![Vec::new(); n_layers],
            normed: vec![Vec::new(); n_layers],
            packed: vec![Vec::new(); n_layers],
            packed_version: None,
            delta: Vec::new(),
            delta_below: Vec::new(),
            state_part: Vec::new(),
            d_state_part: Vec::new(),
            batch: 0,
        }
    }

    /// Layer widths.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Parameters the network reads.
    pub fn param_count(&self) -> usize {
        self.param_count
    }

    /// Whether the input is normalized first.
    pub fn has_input_norm(&self) -> bool {
        self.input_norm.is_some()
    }

    /// Initial parameters: orthogonal weights with gain 5/3 (tanh) or sqrt 2 (ReLU), the last
    /// layer's with `last_gain` when it is a head, zero biases, LayerNorm scale 1 and shift 0.
    /// Draws from `rng` layer by layer, as `Mlp::new` does.
    pub fn init(&self, last_gain: f64, rng: &mut ChaCha8Rng, out: &mut [f32]) {
        assert_eq!(out.len(), self.param_count);
        out.fill(0.0);
        let gain = if self.relu {
            std::f64::consts::SQRT_2
        } else {
            5.0 / 3.0
        };
        let n_layers = self.offsets.len();
        for l in 0..n_layers {
            let (i, o, w, _) = self.layer(l);
            let g = if l + 1 == n_layers && !self.activate_last {
                last_gain
            } else {
                gain
            };
            out[w..w + i * o].copy_from_slice(&orthogonal(o, i, g, rng));
        }
        for n in self.input_norm.iter().chain(self.norms.iter().flatten()) {
            out[n.gamma..n.gamma + n.dim].fill(1.0);
        }
    }

    /// `(in, out, weight offset, bias offset)` of layer `l`.
    fn layer(&self, l: usize) -> (usize, usize, usize, usize) {
        let (i, o) = (self.dims[l], self.dims[l + 1]);
        let w = self.offsets[l];
        (i, o, w, w + i * o)
    }

    fn activated(&self, l: usize) -> bool {
        l + 1 < self.offsets.len() || self.activate_last
    }

    /// What layer `l` reads: the (normalized) input, or the layer below's (normalized) output.
    fn layer_input<'a>(&'a self, l: usize, x: &'a [f32]) -> &'a [f32] {
        match l {
            0 if self.input_norm.is_some() => &self.x_normed,
            0 => x,
            _ if self.norms[l - 1].is_some() => &self.normed[l - 1],
            _ => &self.acts[l - 1],
        }
    }

    /// The output `[batch, dims[L]]` for input `x` `[batch, dims[0]]` under `params`; keeps
    /// what [`backward`](Self::backward) needs.
    pub fn forward(&mut self, params: &[f32], x: &[f32], batch: usize) -> &[f32] {
        self.forward_input(params, MlpInput::Rows(x), batch)
    }

    /// [`forward`](Self::forward) for rows that may share states: the same bits as the rows
    /// written out whole, since the first layer adds each row's own columns onto its state's
    /// part in the order of the whole row ([`simd::affine_onto`]).
    pub fn forward_input(&mut self, params: &[f32], input: MlpInput<'_>, batch: usize) -> &[f32] {
        self.forward_versioned(params, input, batch, None)
    }

    /// [`forward_input`](Self::forward_input) reusing the packed weights of the last forward
    /// when it ran on the same `version` of the parameters (the caller bumps the version
    /// whenever it changes them: a rollout's steps then pack once per update, not per step).
    /// `None` packs every time.
    pub fn forward_versioned(
        &mut self,
        params: &[f32],
        input: MlpInput<'_>,
        batch: usize,
        version: Option<u64>,
    ) -> &[f32] {
        assert_eq!(params.len(), self.param_count);
        let repack = version.is_none() || version != self.packed_version;
        self.packed_version = version;
        let x = match input {
            MlpInput::Rows(x) => x,
            MlpInput::Shared(s) => {
                assert!(
                    self.input_norm.is_none(),
                    "shared states under an input norm"
                );
                assert_eq!(s.own.len(), batch * (self.dims[0] - s.dim));
                assert_eq!(s.of_row.len(), batch);
                &[]
            }
        };
        if let MlpInput::Rows(x) = input {
            assert_eq!(x.len(), batch * self.dims[0]);
        }
        self.batch = batch;
        if let Some(n) = &mut self.input_norm {
            n.forward(params, x, &mut self.x_normed);
        }
        let n_layers = self.acts.len();
        for l in 0..n_layers {
            let (i, o, w, b) = self.layer(l);
            let mut out = std::mem::take(&mut self.acts[l]);
            let mut packed = std::mem::take(&mut self.packed[l]);
            out.resize(batch * o, 0.0);
            // out[B x o] = b + input[B x i] . W^T, row by row the same arithmetic whatever B.
            if repack {
                simd::pack_transposed(&params[w..b], o, i, &mut packed);
            }
            match input {
                MlpInput::Shared(s) if l == 0 => {
                    // The state's columns once per distinct state, then each row's own columns
                    // onto its state's part.
                    let n_pad = packed.len() / i;
                    let (p_state, p_own) = packed.split_at(s.dim * n_pad);
                    let u = s.states.len() / s.dim.max(1);
                    let part = &mut self.state_part;
                    part.resize(u * o, 0.0);
                    simd::affine(part, s.states, p_state, &params[b..b + o], u, s.dim, o);
                    for (row, &st) in out.chunks_exact_mut(o).zip(s.of_row) {
                        row.copy_from_slice(&part[st as usize * o..(st as usize + 1) * o]);
                    }
                    simd::affine_onto(&mut out, s.own, p_own, batch, i - s.dim, o);
                }
                _ => {
                    let input = self.layer_input(l, x);
                    simd::affine(&mut out, input, &packed, &params[b..b + o], batch, i, o);
                }
            }
            self.packed[l] = packed;
            if self.activated(l) {
                simd::activate(&mut out, self.relu);
                if let Some(n) = &mut self.norms[l] {
                    n.forward(params, &out, &mut self.normed[l]);
                }
            }
            self.acts[l] = out;
        }
        self.output()
    }

    /// The last forward's output.
    pub fn output(&self) -> &[f32] {
        let last = self.acts.len() - 1;
        match &self.norms[last] {
            Some(_) => &self.normed[last],
            None => &self.acts[last],
        }
    }

    /// Adds the gradients of the parameters for `d_out` (the gradient of the loss w.r.t. the
    /// last forward's output) into `grads`; with `d_input`, also writes the gradient w.r.t. the
    /// input `[batch, dims[0]]` there.
    pub fn backward(
        &mut self,
        params: &[f32],
        grads: &mut [f32],
        x: &[f32],
        d_out: &[f32],
        d_input: Option<&mut Vec<f32>>,
    ) {
        self.backward_input(params, grads, MlpInput::Rows(x), d_out, d_input);
    }

    /// [`backward`](Self::backward) after [`forward_input`](Self::forward_input) on `input`;
    /// with shared states the input gradient covers each row's own columns only.
    pub fn backward_input(
        &mut self,
        params: &[f32],
        grads: &mut [f32],
        input: MlpInput<'_>,
        d_out: &[f32],
        d_input: Option<&mut Vec<f32>>,
    ) {
        assert_eq!(grads.len(), self.param_count);
        let (x, shared) = match input {
            MlpInput::Rows(x) => (x, None),
            MlpInput::Shared(s) => (&[][..], Some(s)),
        };
        let batch = self.batch;
        let n_layers = self.acts.len();
        let want_dx = d_input.is_some();
        // The top layer's delta: `d_out` itself where nothing changes it (a linear head),
        // else written once, through the activation where no norm comes first.
        let top = n_layers - 1;
        let read_d_out = !self.activated(top);
        let fused = self.activated(top) && self.norms[top].is_none();
        if fused {
            self.delta.resize(d_out.len(), 0.0);
            simd::activation_grad_into(&mut self.delta, d_out, &self.acts[top], self.relu);
        } else if !read_d_out {
            self.delta.clear();
            self.delta.extend_from_slice(d_out);
        }
        for l in (0..n_layers).rev() {
            let (i, o, w, b) = self.layer(l);
            if l == top && read_d_out && shared.is_some() && l == 0 {
                // The shared first layer reads `self.delta`.
                self.delta.clear();
                self.delta.extend_from_slice(d_out);
            }
            if self.activated(l) && !(l == top && fused) {
                // delta is d loss / d (this layer's norm output, or activation output).
                if let Some(n) = &self.norms[l] {
                    n.backward(params, grads, &mut self.delta, true);
                }
                // Through the activation, from its output: tanh' = 1 - y^2, relu' = [y > 0].
                simd::activation_grad(&mut self.delta, &self.acts[l], self.relu);
            }
            if let (0, Some(s)) = (l, shared) {
                self.first_layer_backward_shared(params, grads, &s, want_dx);
                continue;
            }
            let mut below = std::mem::take(&mut self.delta_below);
            let delta = if l == top && read_d_out {
                d_out
            } else {
                &self.delta
            };
            let input = self.layer_input(l, x);
            let (gw, gb) = grads[w..b + o].split_at_mut(i * o);
            // dW[o x i] += delta^T[o x B] . input[B x i].
            let mut weight_grad = || {
                matmul(o, i, batch, gw, (i, 1), true, delta, (1, o), input, (i, 1));
                simd::add_rows(gb, delta);
            };
            let below_too = l > 0 || self.input_norm.is_some() || want_dx;
            if below_too {
                // d input[B x i] = delta[B x o] . W[o x i], independent of dW: the two
                // products may run side by side (`parallel::split`).
                below.resize(batch * i, 0.0);
                let weight = &params[w..b];
                let mut input_grad = || {
                    matmul(
                        batch,
                        i,
                        o,
                        &mut below,
                        (i, 1),
                        false,
                        delta,
                        (o, 1),
                        weight,
                        (i, 1),
                    )
                };
                if batch * i * o >= SPLIT_MACS {
                    parallel::split(input_grad, weight_grad);
                } else {
                    input_grad();
                    weight_grad();
                }
            } else {
                weight_grad();
            }
            self.delta_below = below;
            if below_too {
                std::mem::swap(&mut self.delta, &mut self.delta_below);
            }
        }
        if let Some(n) = &self.input_norm {
            n.backward(params, grads, &mut self.delta, want_dx);
        }
        if let Some(dx) = d_input {
            // Handed over, not copied: `self.delta` is rewritten before it is read again.
            std::mem::swap(dx, &mut self.delta);
        }
    }

    /// The first layer's backward over rows that share states: each row's own columns by one
    /// product, the state's columns by one product over the distinct states of the rows'
    /// gradients summed per state (in row order, so whatever the threads), and with `want_dx`
    /// the gradient w.r.t. each row's own columns into `self.delta`.
    fn first_layer_backward_shared(
        &mut self,
        params: &[f32],
        grads: &mut [f32],
        s: &SharedRows<'_>,
        want_dx: bool,
    ) {
        let (i, o, w, b) = self.layer(0);
        let (sd, batch) = (s.dim, self.batch);
        let own_w = i - sd;
        let (gw, gb) = grads[w..b + o].split_at_mut(i * o);
        if own_w > 0 {
            // dW[:, sd..] += delta^T . own, written into the weight's last columns in place.
            matmul(
                o,
                own_w,
                batch,
                &mut gw[sd..],
                (i, 1),
                true,
                &self.delta,
                (1, o),
                s.own,
                (own_w, 1),
            );
        }
        let u = s.states.len() / sd.max(1);
        let d_part = &mut self.d_state_part;
        d_part.clear();
        d_part.resize(u * o, 0.0);
        for (row, &st) in self.delta.chunks_exact(o).zip(s.of_row) {
            let dst = &mut d_part[st as usize * o..(st as usize + 1) * o];
            for (d, &g) in dst.iter_mut().zip(row) {
                *d += g;
            }
        }
        // dW[:, ..sd] += d_part^T . states.
        matmul(
            o,
            sd,
            u,
            gw,
            (i, 1),
            true,
            d_part,
            (1, o),
            s.states,
            (sd, 1),
        );
        simd::add_rows(gb, &self.delta);
        if want_dx {
            // d own[B x own_w] = delta[B x o] . W[:, sd..].
            self.delta_below.resize(batch * own_w, 0.0);
            if own_w > 0 {
                matmul(
                    batch,
                    own_w,
                    o,
                    &mut self.delta_below,
                    (own_w, 1),
                    false,
                    &self.delta,
                    (o, 1),
                    &params[w + sd..b],
                    (i, 1),
                );
            }
            std::mem::swap(&mut self.delta, &mut self.delta_below);
        }
    }
}
