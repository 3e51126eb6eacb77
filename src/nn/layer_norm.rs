//! LayerNorm over the last dimension as one fused CPU op with its backward.
//!
//! Composed from candle ops, a LayerNorm is about ten ops with strided reductions and
//! broadcasts, each allocating and each zero-filling its gradient: it made on-policy's MLP 3x
//! slower than PyTorch (`scripts/bench-update.sh`). Here the forward is one pass per row and the
//! backward one pass over rows plus the column sums for the scale and shift. Other devices use
//! the composed version.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};

/// Epsilon added to the variance (PyTorch's default).
pub const EPS: f32 = 1e-5;

struct FusedLayerNorm;

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("fused layer norm needs contiguous inputs");
    };
    Ok(&s.as_slice::<f32>()?[a..b])
}

/// Mean and reciprocal standard deviation of one row.
#[inline]
fn row_stats(row: &[f32]) -> (f32, f32) {
    let d = row.len() as f32;
    let mean = row.iter().sum::<f32>() / d;
    let var = row.iter().map(|&x| (x - mean) * (x - mean)).sum::<f32>() / d;
    (mean, 1.0 / (var + EPS).sqrt())
}

impl CustomOp3 for FusedLayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s1, l1)?;
        let (gamma, beta) = (contiguous(s2, l2)?, contiguous(s3, l3)?);
        let d = gamma.len();
        let mut out = vec![0.0f32; x.len()];
        for (row, dst) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let (mean, rstd) = row_stats(row);
            for j in 0..d {
                dst[j] = (row[j] - mean) * rstd * gamma[j] + beta[j];
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = gamma.dim(0)?;
        let xs: Vec<f32> = x.flatten_all()?.to_vec1()?;
        let gs: Vec<f32> = grad.flatten_all()?.to_vec1()?;
        let gam: Vec<f32> = gamma.to_vec1()?;
        let mut dx = vec![0.0f32; xs.len()];
        let mut dgamma = vec![0.0f32; d];
        let mut dbeta = vec![0.0f32; d];
        let mut xhat = vec![0.0f32; d];
        for ((row, g), out) in xs
            .chunks_exact(d)
            .zip(gs.chunks_exact(d))
            .zip(dx.chunks_exact_mut(d))
        {
            let (mean, rstd) = row_stats(row);
            let (mut m1, mut m2) = (0.0f32, 0.0f32);
            for j in 0..d {
                xhat[j] = (row[j] - mean) * rstd;
                let dxhat = g[j] * gam[j];
                m1 += dxhat;
                m2 += dxhat * xhat[j];
                dgamma[j] += g[j] * xhat[j];
                dbeta[j] += g[j];
            }
            let (m1, m2) = (m1 / d as f32, m2 / d as f32);
            for j in 0..d {
                out[j] = rstd * (g[j] * gam[j] - m1 - xhat[j] * m2);
            }
        }
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dgamma, d, dev)?),
            Some(Tensor::from_vec(dbeta, d, dev)?),
        ))
    }
}

/// `(x - mean) / sqrt(var + eps) * gamma + beta` over the last dimension of `[B, d]`.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && x.rank() == 2 {
        return x.contiguous()?.apply_op3(gamma, beta, FusedLayerNorm);
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centered.broadcast_div(&(var + f64::from(EPS))?.sqrt()?)?;
    normed.broadcast_mul(gamma)?.broadcast_add(beta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The fused op against the composed one: same output, same gradients.
    #[test]
    fn fused_matches_composed_forward_and_backward() -> Result<()> {
        let dev = Device::Cpu;
        let xv: Vec<f32> = (0..24)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3)
            .collect();
        let x = Var::from_tensor(&Tensor::from_vec(xv, (4, 6), &dev)?)?;
        let gamma = Var::from_tensor(&Tensor::new(&[1.0f32, 0.5, -1.0, 2.0, 0.1, 1.5], &dev)?)?;
        let beta = Var::from_tensor(&Tensor::new(&[0.0f32, 0.1, 0.2, -0.3, 0.4, 0.0], &dev)?)?;
        let w = Tensor::new(&[[1.0f32, -2.0, 0.5, 3.0, 1.0, -1.0]], &dev)?.broadcast_as((4, 6))?;
        let fused = layer_norm(x.as_tensor(), gamma.as_tensor(), beta.as_tensor())?;
        // The composed path, forced by a 3-d view.
        let composed = {
            let x3 = x.as_tensor().unsqueeze(0)?;
            layer_norm(&x3, gamma.as_tensor(), beta.as_tensor())?.squeeze(0)?
        };
        let diff = (&fused - &composed)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "forward differs by {diff}");
        let g1 = (fused * &w)?.sum_all()?.backward()?;
        let g2 = (composed * &w)?.sum_all()?.backward()?;
        for v in [&x, &gamma, &beta] {
            let a = g1.get(v).expect("grad");
            let b = g2.get(v).expect("grad");
            let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "gradient differs by {diff}");
        }
        Ok(())
    }
}
