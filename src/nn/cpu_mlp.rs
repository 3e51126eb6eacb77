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

/// An MLP `dims[0] -> dims[1] -> ... -> dims[L]`, tanh or ReLU hidden layers, linear last.
#[derive(Debug, Clone)]
pub struct CpuMlp {
    dims: Vec<usize>,
    relu: bool,
    /// Per layer: weight `[out, in]` row-major, then bias `[out]`.
    pub params: Vec<f32>,
    /// Gradients, laid out as `params`.
    pub grads: Vec<f32>,
    offsets: Vec<usize>,
    /// Per layer output `[batch, out]` (after tanh for hidden layers).
    acts: Vec<Vec<f32>>,
    /// Gradient w.r.t. the current layer's output, and the one below.
    delta: Vec<f32>,
    delta_below: Vec<f32>,
    batch: usize,
}

impl CpuMlp {
    /// From per-layer `(weight [out, in], bias [out])`; `relu` instead of tanh.
    pub fn from_layers(dims: &[usize], layers: &[(Vec<f32>, Vec<f32>)], relu: bool) -> Self {
        assert_eq!(layers.len() + 1, dims.len());
        let mut params = Vec::new();
        let mut offsets = Vec::new();
        for (l, (w, b)) in layers.iter().enumerate() {
            assert_eq!(w.len(), dims[l] * dims[l + 1]);
            assert_eq!(b.len(), dims[l + 1]);
            offsets.push(params.len());
            params.extend_from_slice(w);
            params.extend_from_slice(b);
        }
        Self {
            dims: dims.to_vec(),
            relu,
            grads: vec![0.0; params.len()],
            params,
            offsets,
            acts: vec![Vec::new(); layers.len()],
            delta: Vec::new(),
            delta_below: Vec::new(),
            batch: 0,
        }
    }

    /// Layer widths.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Where layer `l`'s weight starts in `params`.
    pub fn offset(&self, l: usize) -> usize {
        self.offsets[l]
    }

    fn layer(&self, l: usize) -> (usize, usize, usize, usize) {
        let (i, o) = (self.dims[l], self.dims[l + 1]);
        let w = self.offsets[l];
        (i, o, w, w + i * o)
    }

    /// The output `[batch, dims[L]]` for input `x` `[batch, dims[0]]`; keeps the activations
    /// for [`backward`](Self::backward).
    pub fn forward(&mut self, x: &[f32], batch: usize) -> &[f32] {
        assert_eq!(x.len(), batch * self.dims[0]);
        self.batch = batch;
        let n_layers = self.acts.len();
        for l in 0..n_layers {
            let (i, o, w, b) = self.layer(l);
            let (below, rest) = self.acts.split_at_mut(l);
            let input: &[f32] = if l == 0 { x } else { &below[l - 1] };
            let out = &mut rest[0];
            out.resize(batch * o, 0.0);
            for row in out.chunks_exact_mut(o) {
                row.copy_from_slice(&self.params[b..b + o]);
            }
            // out[B x o] += input[B x i] . W^T, W^T read through strides (row i: 1, col o: i).
            matmul(
                batch,
                o,
                i,
                out,
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
            }
        }
        &self.acts[n_layers - 1]
    }

    /// Writes the gradients of the parameters (overwriting `grads`) for `d_out`, the gradient
    /// of the loss w.r.t. the last forward's output.
    pub fn backward(&mut self, x: &[f32], d_out: &[f32]) {
        let batch = self.batch;
        let n_layers = self.acts.len();
        self.delta.clear();
        self.delta.extend_from_slice(d_out);
        for l in (0..n_layers).rev() {
            let (i, o, w, b) = self.layer(l);
            if l + 1 < n_layers {
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
            let input: &[f32] = if l == 0 { x } else { &self.acts[l - 1] };
            // dW[o x i] = delta^T[o x B] . input[B x i].
            let (gw, gb) = self.grads[w..b + o].split_at_mut(i * o);
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
            if l > 0 {
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
    }
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

    /// The hand-written forward and backward equal candle's autograd through `Mlp`.
    #[test]
    fn gradients_match_candle_autograd() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let dims = [7usize, 16, 16, 5];
        let net = Mlp::new(
            7,
            &[16, 16],
            5,
            Activation::Tanh,
            false,
            1.0,
            &mut rng,
            &dev,
        )?;
        let mut exported = Vec::new();
        net.export("n", &mut exported)?;
        let map: std::collections::HashMap<_, _> = exported.into_iter().collect();
        let get =
            |k: &str| -> anyhow::Result<Vec<f32>> { Ok(map[k].flatten_all()?.to_vec1::<f32>()?) };
        let mut layers = Vec::new();
        for l in 0..2 {
            layers.push((
                get(&format!("n.layers.{l}.weight"))?,
                get(&format!("n.layers.{l}.bias"))?,
            ));
        }
        layers.push((get("n.head.weight")?, get("n.head.bias")?));
        let mut cpu = CpuMlp::from_layers(&dims, &layers, false);
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
            assert!((a - b).abs() < 1e-5, "forward {a} vs {b}");
        }
        cpu.backward(&x, &coef);
        let grads = (yt * ct)?.sum_all()?.backward()?;
        // Candle's gradient of each folded [out, in + 1] matrix, split into weight and bias.
        let mut want = Vec::new();
        for v in net.vars() {
            let g = grads.get(v.as_tensor()).expect("grad");
            let (o, i1) = g.dims2()?;
            let rows: Vec<Vec<f32>> = g.to_vec2()?;
            for r in &rows {
                want.extend_from_slice(&r[..i1 - 1]);
            }
            want.extend(rows.iter().map(|r| r[i1 - 1]));
            assert_eq!(rows.len(), o);
        }
        assert_eq!(want.len(), cpu.grads.len());
        for (k, (a, b)) in cpu.grads.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                "grad {k}: {a} vs {b}"
            );
        }
        Ok(())
    }
}
