//! Adam with its state exportable (PPO's: eps 1e-5, no weight decay), and global-norm gradient
//! clipping, for both backends: [`Adam`] and [`clip_grad_norm`] over candle's variables,
//! [`FlatAdam`] and [`clip_global_norm`] over the CPU backend's flat vectors, sharing the
//! betas, the bias corrections and the clip factor. candle-nn's AdamW keeps its moments
//! private, so an exact resume needs our own.
//!
//! The two Adams round differently (candle divides the second moment by its correction,
//! the flat one multiplies its root by a precomputed inverse root in f32): each backend keeps
//! the arithmetic its checkpoints were trained with.

use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use super::simd;

/// Adam's decay rates of the first and second moments, (0.9, 0.999).
pub const BETAS: (f64, f64) = (0.9, 0.999);

/// Adam's bias corrections after `t` steps: `(1 - beta1^t, 1 - beta2^t)`.
#[inline]
pub fn bias_corrections(t: u64) -> (f64, f64) {
    (1.0 - BETAS.0.powi(t as i32), 1.0 - BETAS.1.powi(t as i32))
}

/// The factor that brings gradients of global L2 norm `norm` to at most `max_norm`, or None
/// where they are left alone (under the max, or `max_norm` 0: no clipping).
#[inline]
pub fn clip_scale(norm: f64, max_norm: f64) -> Option<f64> {
    (max_norm > 0.0 && norm > max_norm).then(|| max_norm / (norm + 1e-6))
}

/// Adam over a fixed list of variables.
pub struct Adam {
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken (for bias correction).
    pub t: u64,
    /// Learning rate.
    pub lr: f64,
    eps: f64,
}

impl Adam {
    /// Adam with [`BETAS`].
    pub fn new(vars: Vec<Var>, lr: f64, eps: f64) -> Result<Self> {
        let m = vars
            .iter()
            .map(|v| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = m.clone();
        Ok(Self {
            vars,
            m,
            v,
            t: 0,
            lr,
            eps,
        })
    }

    /// The variables it updates.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// One step with the gradients in `grads` (a variable without a gradient is left alone).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let (b1, b2) = BETAS;
        let (c1, c2) = bias_corrections(self.t);
        for i in 0..self.vars.len() {
            let Some(g) = grads.get(&self.vars[i]) else {
                continue;
            };
            let m = ((&self.m[i] * b1)? + (g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let denom = ((&v / c2)?.sqrt()? + self.eps)?;
            let update = ((&m / c1)? / denom)?;
            let w = (self.vars[i].as_tensor() - (update * self.lr)?)?;
            self.vars[i].set(&w)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// The first and second moments of variable `i`.
    pub fn moments(&self, i: usize) -> (&Tensor, &Tensor) {
        (&self.m[i], &self.v[i])
    }

    /// Replaces the moments of variable `i` (same shape as the variable).
    pub fn set_moments(&mut self, i: usize, m: Tensor, v: Tensor) -> Result<()> {
        anyhow::ensure!(
            m.dims() == self.vars[i].dims() && v.dims() == self.vars[i].dims(),
            "Adam moments of the wrong shape"
        );
        self.m[i] = m;
        self.v[i] = v;
        Ok(())
    }

    /// The moments as named tensors (`{prefix}.{i}.m`, `{prefix}.{i}.v`).
    pub fn export(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        for i in 0..self.vars.len() {
            out.push((format!("{prefix}.{i}.m"), self.m[i].clone()));
            out.push((format!("{prefix}.{i}.v"), self.v[i].clone()));
        }
    }

    /// Loads what [`export`](Self::export) wrote.
    pub fn import(
        &mut self,
        prefix: &str,
        map: &std::collections::HashMap<String, Tensor>,
        t: u64,
    ) -> Result<()> {
        for i in 0..self.vars.len() {
            let dev = self.vars[i].device();
            for (slot, key) in [(0, "m"), (1, "v")] {
                let name = format!("{prefix}.{i}.{key}");
                let src = map
                    .get(&name)
                    .with_context(|| format!("optimizer state has no `{name}`"))?;
                anyhow::ensure!(
                    src.dims() == self.vars[i].dims(),
                    "optimizer tensor `{name}` has the wrong shape"
                );
                let src = src.to_device(dev)?;
                if slot == 0 {
                    self.m[i] = src;
                } else {
                    self.v[i] = src;
                }
            }
        }
        self.t = t;
        Ok(())
    }
}

/// Scales the gradients of `vars` so that their global L2 norm is at most `max_norm` (0: no
/// clipping), and returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut sq = 0.0f64;
    for v in vars {
        if let Some(g) = grads.get(v) {
            sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = sq.sqrt();
    if let Some(scale) = clip_scale(norm, max_norm) {
        for v in vars {
            if let Some(g) = grads.get(v) {
                let scaled = (g * scale)?;
                grads.insert(v, scaled);
            }
        }
    }
    Ok(norm)
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

    /// One step with [`BETAS`].
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        self.t += 1;
        let (bc1, bc2) = bias_corrections(self.t);
        let k = simd::AdamStep {
            betas: (BETAS.0 as f32, BETAS.1 as f32),
            step: (self.lr / bc1) as f32,
            inv_sqrt_bc2: (1.0 / bc2.sqrt()) as f32,
            eps: self.eps as f32,
        };
        simd::adam(params, grads, &mut self.m, &mut self.v, k);
    }
}

/// Scales the gradients so that their joint L2 norm is at most `max_norm` (0: no clipping), as
/// [`clip_grad_norm`] does; returns the norm before clipping.
pub fn clip_global_norm(grads: &mut [&mut [f32]], max_norm: f64) -> f64 {
    let sq: f64 = grads
        .iter()
        .map(|g| g.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
        .sum();
    let norm = sq.sqrt();
    if let Some(s) = clip_scale(norm, max_norm) {
        let s = s as f32;
        for g in grads.iter_mut() {
            simd::scale(g, s);
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adam_first_step_moves_each_weight_by_lr() -> Result<()> {
        // With bias correction the first step is lr * g / (|g| + eps) ~ lr * sign(g).
        let x = Var::new(&[1.0f32, -2.0], &Device::Cpu)?;
        let loss = (x.as_tensor() * &Tensor::new(&[3.0f32, -0.5], &Device::Cpu)?)?.sum_all()?;
        let grads = loss.backward()?;
        let mut opt = Adam::new(vec![x.clone()], 0.1, 1e-5)?;
        opt.step(&grads)?;
        let w = x.as_tensor().to_vec1::<f32>()?;
        assert!(
            (w[0] - 0.9).abs() < 1e-5 && (w[1] - -1.9).abs() < 1e-5,
            "{w:?}"
        );
        Ok(())
    }

    #[test]
    fn the_flat_kernel_keeps_its_f32_betas() {
        // simd::adam ran on the literals 0.9f32 and 0.999f32 before BETAS was shared.
        assert_eq!((BETAS.0 as f32).to_bits(), 0.9f32.to_bits());
        assert_eq!((BETAS.1 as f32).to_bits(), 0.999f32.to_bits());
    }

    #[test]
    fn clipping_scales_to_the_max_norm() -> Result<()> {
        // Gradient (3, 4): norm 5, clipped to 1 -> (0.6, 0.8).
        let x = Var::new(&[0.0f32, 0.0], &Device::Cpu)?;
        let loss = (x.as_tensor() * &Tensor::new(&[3.0f32, 4.0], &Device::Cpu)?)?.sum_all()?;
        let mut grads = loss.backward()?;
        let norm = clip_grad_norm(&mut grads, std::slice::from_ref(&x), 1.0)?;
        assert!((norm - 5.0).abs() < 1e-6);
        let g = grads.get(&x).expect("grad").to_vec1::<f32>()?;
        assert!(
            (g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5,
            "{g:?}"
        );
        let norm = clip_grad_norm(&mut grads, std::slice::from_ref(&x), 10.0)?;
        assert!((norm - 1.0).abs() < 1e-5, "under the max: unchanged");
        Ok(())
    }
}
