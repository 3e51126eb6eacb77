//! A vectorizable tanh for the CPU, with its backward.
//!
//! candle's CPU `tanh` calls scalar libm `tanhf` (12.6 ns per element, docs/candle.md section
//! 3.1); this rational approximation (Eigen's, max abs error about 3e-7) runs about 20x faster
//! and the compiler vectorizes it. On CUDA the built-in `tanh` is used.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

struct FastTanh;

/// Eigen's `generic_fast_tanh_float` coefficients.
const ALPHA: [f32; 7] = [
    4.893_524_6e-3,
    6.372_619_3e-4,
    1.485_722_4e-5,
    5.122_297e-8,
    -8.604_672e-11,
    2.000_188e-13,
    -2.760_768_5e-16,
];
const BETA: [f32; 4] = [4.893_525e-3, 2.268_434_7e-3, 1.185_347_1e-4, 1.198_258_4e-6];
const CLAMP: f32 = 7.905_311;

/// tanh of one value by the rational approximation.
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = ALPHA[6];
    p = p * x2 + ALPHA[5];
    p = p * x2 + ALPHA[4];
    p = p * x2 + ALPHA[3];
    p = p * x2 + ALPHA[2];
    p = p * x2 + ALPHA[1];
    p = p * x2 + ALPHA[0];
    let p = p * x;
    let mut q = BETA[3];
    q = q * x2 + BETA[2];
    q = q * x2 + BETA[1];
    q = q * x2 + BETA[0];
    p / q
}

/// The logistic sigmoid through the fast tanh, `(1 + tanh(x / 2)) / 2`, so that its derivative
/// `s (1 - s)` is exactly what the tanh's backward gives (the GRU's gates, CPU and candle).
#[inline(always)]
pub fn fast_sigmoid(x: f32) -> f32 {
    0.5 + 0.5 * fast_tanh(0.5 * x)
}

impl CustomOp1 for FastTanh {
    fn name(&self) -> &'static str {
        "fast-tanh"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = storage.as_slice::<f32>()?;
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("fast-tanh needs a contiguous input");
        };
        let out: Vec<f32> = src[start..end].iter().map(|&x| fast_tanh(x)).collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        // d tanh = 1 - tanh^2, from the result itself.
        let one_minus = (res.sqr()?.neg()? + 1.0)?;
        Ok(Some(grad_res.mul(&one_minus)?))
    }
}

/// tanh: the fast custom op on CPU for f32, candle's own elsewhere.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?.apply_op1(FastTanh)
    } else {
        x.tanh()
    }
}

/// The sigmoid as [`fast_sigmoid`] computes it.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    (tanh(&(x * 0.5)?)? + 1.0)? * 0.5
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn close_to_libm_tanh_everywhere() {
        let mut worst = 0.0f32;
        for i in -20_000..=20_000 {
            let x = i as f32 * 1e-3;
            worst = worst.max((fast_tanh(x) - x.tanh()).abs());
        }
        assert!(worst < 1e-6, "max abs error {worst}");
        assert_eq!(fast_tanh(100.0), fast_tanh(CLAMP));
    }

    #[test]
    fn backward_is_one_minus_tanh_squared() -> Result<()> {
        let x = Var::new(&[-1.0f32, 0.0, 0.5, 2.0], &Device::Cpu)?;
        let y = tanh(x.as_tensor())?;
        let grads = y.sum_all()?.backward()?;
        let g = grads.get(&x).expect("grad").to_vec1::<f32>()?;
        for (gi, xi) in g.iter().zip([-1.0f32, 0.0, 0.5, 2.0]) {
            assert!((gi - (1.0 - xi.tanh().powi(2))).abs() < 1e-6);
        }
        Ok(())
    }
}
