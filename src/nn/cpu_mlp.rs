//! A tanh MLP with a hand-written forward and backward over preallocated flat buffers, for the
//! CPU: the same arithmetic as [`super::mlp::Mlp`] (plain layers, no LayerNorm) without candle's
//! autograd, which allocates, zero-fills and adds a gradient for every node (CANDLE.md).
//!
//! Every matrix product is one call of `gemm` (the kernel candle itself uses) on strided views,
//! so no transpose is ever copied; the bias is added by starting the product from it, and the
//! bias gradient is a row sum. Parameters and gradients are each one flat vector (per layer:
//! `weight [out, in]` row-major, then `bias [out]`, the checkpoint layout), so Adam and the
//! gradient norm are single loops.
//!
//! The learner uses it for the groups it fits (see `Learner::cpu_path`); the candle path stays
//! for everything else (LayerNorm, Gaussian actors, unshared networks, CUDA).

use anyhow::Result;
use candle_core::{Device, Tensor};

use super::tanh::fast_tanh;

/// `dst[m x n] (+)= lhs[m x k] . rhs[k x n]`, each given as (slice, row stride, column stride).
#[allow(clippy::too_many_arguments)]
fn matmul(
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

/// Where a LayerNorm's scale and shift live in `params`, and what its forward kept.
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

    /// Given `g = d loss / d out` (rows), writes the scale and shift gradients into `grads`
    /// and, with `dx`, the gradient w.r.t. the input in place of `g`.
    fn backward(&self, params: &[f32], grads: &mut [f32], g: &mut [f32], dx: bool) {
        let d = self.dim;
        let gamma = &params[self.gamma..self.gamma + d];
        let (dgamma, dbeta) = grads[self.gamma..self.gamma + 2 * d].split_at_mut(d);
        dgamma.fill(0.0);
        dbeta.fill(0.0);
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

/// An MLP `dims[0] -> dims[1] -> ... -> dims[L]`: tanh or ReLU hidden layers, linear last,
/// and with `layer_norm` on-policy's LayerNorms (on the input, and after each hidden
/// activation), as [`super::mlp::Mlp`].
///
/// `params` follows the order of `Mlp::vars` with each linear layer unfolded: input norm
/// (scale, shift), then per hidden layer weight `[out, in]`, bias, norm scale, norm shift,
/// then the head's weight and bias.
#[derive(Debug, Clone)]
pub struct CpuMlp {
    dims: Vec<usize>,
    relu: bool,
    /// The parameters (layout above).
    pub params: Vec<f32>,
    /// Gradients, laid out as `params`.
    pub grads: Vec<f32>,
    /// Where each linear layer's weight starts.
    offsets: Vec<usize>,
    input_norm: Option<Norm>,
    /// After hidden layer `l`'s activation.
    norms: Vec<Option<Norm>>,
    /// The normalized input (with an input norm).
    x_normed: Vec<f32>,
    /// Per layer: output after the activation (hidden) or the logits (last).
    acts: Vec<Vec<f32>>,
    /// Per hidden layer with a norm: the normalized output, the next layer's input.
    normed: Vec<Vec<f32>>,
    /// Gradient w.r.t. the current layer's output, and the one below.
    delta: Vec<f32>,
    delta_below: Vec<f32>,
    batch: usize,
}

impl CpuMlp {
    /// Zero parameters of the given shape (load real ones into `params`).
    pub fn new(dims: &[usize], relu: bool, layer_norm: bool) -> Self {
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
        let mut offsets = Vec::new();
        let mut norms = Vec::new();
        let n_layers = dims.len() - 1;
        for l in 0..n_layers {
            offsets.push(at);
            at += dims[l] * dims[l + 1] + dims[l + 1];
            if l + 1 < n_layers {
                norms.push(layer_norm.then(|| norm(dims[l + 1], &mut at)));
            }
        }
        Self {
            dims: dims.to_vec(),
            relu,
            params: vec![0.0; at],
            grads: vec![0.0; at],
            offsets,
            input_norm,
            norms,
            x_normed: Vec::new(),
            acts: vec![Vec::new(); n_layers],
            normed: vec![Vec::new(); n_layers.saturating_sub(1)],
            delta: Vec::new(),
            delta_below: Vec::new(),
            batch: 0,
        }
    }

    /// From per-layer `(weight [out, in], bias [out])` of a network without LayerNorm.
    pub fn from_layers(dims: &[usize], layers: &[(Vec<f32>, Vec<f32>)], relu: bool) -> Self {
        assert_eq!(layers.len() + 1, dims.len());
        let mut net = Self::new(dims, relu, false);
        for (l, (w, b)) in layers.iter().enumerate() {
            let (i, o, wo, bo) = net.layer(l);
            assert_eq!((w.len(), b.len()), (i * o, o));
            net.params[wo..bo].copy_from_slice(w);
            net.params[bo..bo + o].copy_from_slice(b);
        }
        net
    }

    /// Layer widths.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    fn layer(&self, l: usize) -> (usize, usize, usize, usize) {
        let (i, o) = (self.dims[l], self.dims[l + 1]);
        let w = self.offsets[l];
        (i, o, w, w + i * o)
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

    /// The output `[batch, dims[L]]` for input `x` `[batch, dims[0]]`; keeps what
    /// [`backward`](Self::backward) needs.
    pub fn forward(&mut self, x: &[f32], batch: usize) -> &[f32] {
        assert_eq!(x.len(), batch * self.dims[0]);
        self.batch = batch;
        if let Some(n) = &mut self.input_norm {
            n.forward(&self.params, x, &mut self.x_normed);
        }
        let n_layers = self.acts.len();
        for l in 0..n_layers {
            let (i, o, w, b) = self.layer(l);
            let mut out = std::mem::take(&mut self.acts[l]);
            let input = self.layer_input(l, x);
            out.resize(batch * o, 0.0);
            for row in out.chunks_exact_mut(o) {
                row.copy_from_slice(&self.params[b..b + o]);
            }
            // out[B x o] += input[B x i] . W^T, W^T read through strides (row i: 1, col o: i).
            matmul(
                batch,
                o,
                i,
                &mut out,
                (o, 1),
                true,
                input,
                (i, 1),
                &self.params[w..b],
                (1, i),
            );
            if l + 1 < n_layers {
                if self.relu {
                    out.iter_mut().for_each(|v| *v = v.max(0.0));
                } else {
                    out.iter_mut().for_each(|v| *v = fast_tanh(*v));
                }
                if let Some(n) = &mut self.norms[l] {
                    n.forward(&self.params, &out, &mut self.normed[l]);
                }
            }
            self.acts[l] = out;
        }
        &self.acts[n_layers - 1]
    }

    /// Writes the gradients of the parameters (overwriting `grads`) for `d_out`, the gradient
    /// of the loss w.r.t. the last forward's output.
    pub fn backward(&mut self, x: &[f32], d_out: &[f32]) {
        let batch = self.batch;
        let n_layers = self.acts.len();
        // Taken out for the pass, so the inputs can be borrowed from self meanwhile.
        let mut grads = std::mem::take(&mut self.grads);
        self.delta.clear();
        self.delta.extend_from_slice(d_out);
        for l in (0..n_layers).rev() {
            let (i, o, w, b) = self.layer(l);
            if l + 1 < n_layers {
                // delta is d loss / d (this layer's norm output, or activation output).
                if let Some(n) = &self.norms[l] {
                    n.backward(&self.params, &mut grads, &mut self.delta, true);
                }
                // Through the activation, from its output: tanh' = 1 - y^2, relu' = [y > 0].
                let ys = &self.acts[l];
                if self.relu {
                    for (d, &y) in self.delta.iter_mut().zip(ys) {
                        if y <= 0.0 {
                            *d = 0.0;
                        }
                    }
                } else {
                    for (d, y) in self.delta.iter_mut().zip(ys) {
                        *d *= 1.0 - y * y;
                    }
                }
            }
            let input = self.layer_input(l, x);
            // dW[o x i] = delta^T[o x B] . input[B x i].
            let (gw, gb) = grads[w..b + o].split_at_mut(i * o);
            matmul(
                o,
                i,
                batch,
                gw,
                (i, 1),
                false,
                &self.delta,
                (1, o),
                input,
                (i, 1),
            );
            gb.fill(0.0);
            for row in self.delta.chunks_exact(o) {
                for (g, d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
            if l > 0 || self.input_norm.is_some() {
                // d input[B x i] = delta[B x o] . W[o x i].
                self.delta_below.resize(batch * i, 0.0);
                matmul(
                    batch,
                    i,
                    o,
                    &mut self.delta_below,
                    (i, 1),
                    false,
                    &self.delta,
                    (o, 1),
                    &self.params[w..b],
                    (i, 1),
                );
                std::mem::swap(&mut self.delta, &mut self.delta_below);
            }
        }
        if let Some(n) = &self.input_norm {
            // The observations need no gradient: only the norm's scale and shift.
            n.backward(&self.params, &mut grads, &mut self.delta, false);
        }
        self.grads = grads;
    }
}

/// The candle variables' values (linear layers as `[out, in + 1]` matrices, bias last, and
/// LayerNorm vectors) to `CpuMlp`'s flat layout (the same order, each matrix unfolded into its
/// weight `[out, in]` and bias).
pub fn unfold(tensors: &[&Tensor], flat: &mut Vec<f32>) -> Result<()> {
    flat.clear();
    for t in tensors {
        let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
        match *t.dims() {
            [o, i1] => {
                let i = i1 - 1;
                for r in 0..o {
                    flat.extend_from_slice(&v[r * i1..r * i1 + i]);
                }
                flat.extend((0..o).map(|r| v[r * i1 + i]));
            }
            _ => flat.extend_from_slice(&v),
        }
    }
    Ok(())
}

/// The inverse of [`unfold`], as tensors shaped as `like`.
pub fn fold(like: &[&Tensor], flat: &[f32], dev: &Device) -> Result<Vec<Tensor>> {
    let mut out = Vec::new();
    let mut at = 0;
    for t in like {
        match *t.dims() {
            [o, i1] => {
                let i = i1 - 1;
                let (w, b) = (&flat[at..at + i * o], &flat[at + i * o..at + i * o + o]);
                let mut f = Vec::with_capacity(o * i1);
                for r in 0..o {
                    f.extend_from_slice(&w[r * i..(r + 1) * i]);
                    f.push(b[r]);
                }
                out.push(Tensor::from_vec(f, (o, i1), dev)?);
                at += i * o + o;
            }
            _ => {
                let n = t.elem_count();
                out.push(Tensor::from_vec(flat[at..at + n].to_vec(), t.dims(), dev)?);
                at += n;
            }
        }
    }
    anyhow::ensure!(
        at == flat.len(),
        "CPU network and candle network differ in size"
    );
    Ok(out)
}

/// Adam (PyTorch's: eps added to the bias-corrected root) over flat parameters.
#[derive(Debug, Clone)]
pub struct FlatAdam {
    m: Vec<f32>,
    v: Vec<f32>,
    /// Steps taken.
    pub t: u64,
    /// Learning rate.
    pub lr: f64,
    eps: f64,
}

impl FlatAdam {
    /// For `n` parameters.
    pub fn new(n: usize, lr: f64, eps: f64) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            lr,
            eps,
        }
    }

    /// The first and second moments.
    pub fn moments(&self) -> (&[f32], &[f32]) {
        (&self.m, &self.v)
    }

    /// The moments, to load saved ones (laid out as the parameters).
    pub fn moments_mut(&mut self) -> (&mut Vec<f32>, &mut Vec<f32>) {
        (&mut self.m, &mut self.v)
    }

    /// One step with betas (0.9, 0.999).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        self.t += 1;
        let (b1, b2) = (0.9f32, 0.999f32);
        let bc1 = 1.0 - 0.9f64.powi(self.t as i32);
        let bc2 = 1.0 - 0.999f64.powi(self.t as i32);
        let step = (self.lr / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let eps = self.eps as f32;
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step * *m / (v.sqrt() * inv_sqrt_bc2 + eps);
        }
    }
}

/// Scales the gradients so that their joint L2 norm is at most `max_norm` (0: no clipping), as
/// [`crate::optim::clip_grad_norm`] does; returns the norm before clipping.
pub fn clip_global_norm(grads: &mut [&mut [f32]], max_norm: f64) -> f64 {
    let sq: f64 = grads
        .iter()
        .map(|g| g.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
        .sum();
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let s = (max_norm / (norm + 1e-6)) as f32;
        for g in grads.iter_mut() {
            for x in g.iter_mut() {
                *x *= s;
            }
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Activation;
    use crate::nn::mlp::Mlp;
    use candle_core::{Device, Tensor};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The hand-written forward and backward equal candle's autograd through `Mlp`, with and
    /// without LayerNorms, tanh and ReLU.
    #[test]
    fn gradients_match_candle_autograd() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for (ln, act) in [
            (false, Activation::Tanh),
            (true, Activation::Tanh),
            (false, Activation::Relu),
            (true, Activation::Relu),
        ] {
            let net = Mlp::new(7, &[16, 16], 5, act, ln, 1.0, &mut rng, &dev)?;
            // Scales and shifts away from 1 and 0, so their gradients are really tested.
            for v in net.vars().iter().filter(|v| v.rank() == 1) {
                let vals: Vec<f32> = (0..v.elem_count())
                    .map(|_| rng.random_range(0.5..1.5))
                    .collect();
                v.set(&Tensor::from_vec(vals, v.elem_count(), &dev)?)?;
            }
            let (dims, relu, has_ln) = net.cpu_shape();
            assert_eq!((relu, has_ln), (act == Activation::Relu, ln));
            let mut cpu = CpuMlp::new(&dims, relu, has_ln);
            let vars = net.vars();
            let tensors: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
            unfold(&tensors, &mut cpu.params)?;
            assert_eq!(cpu.params.len(), cpu.grads.len());
            let batch = 9;
            let x: Vec<f32> = (0..batch * 7)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let coef: Vec<f32> = (0..batch * 5)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            // Loss = sum(out * coef): d out = coef.
            let out = cpu.forward(&x, batch).to_vec();
            let xt = Tensor::from_vec(x.clone(), (batch, 7), &dev)?;
            let ct = Tensor::from_vec(coef.clone(), (batch, 5), &dev)?;
            let yt = net.forward(&xt)?;
            let want: Vec<f32> = yt.flatten_all()?.to_vec1()?;
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "ln {ln}: forward {a} vs {b}");
            }
            cpu.backward(&x, &coef);
            let grads = (yt * ct)?.sum_all()?.backward()?;
            let g: Vec<Tensor> = vars
                .iter()
                .map(|v| grads.get(v.as_tensor()).expect("grad").clone())
                .collect();
            let mut want = Vec::new();
            unfold(&g.iter().collect::<Vec<_>>(), &mut want)?;
            assert_eq!(want.len(), cpu.grads.len());
            for (k, (a, b)) in cpu.grads.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                    "ln {ln} {act:?}: grad {k}: {a} vs {b}"
                );
            }
            // And back: fold(unfold(w)) == w.
            let back = fold(&tensors, &cpu.params, &dev)?;
            for (t, b) in tensors.iter().zip(&back) {
                let d = (*t - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert_eq!(d, 0.0);
            }
        }
        Ok(())
    }
}
