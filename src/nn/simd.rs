//! Elementwise kernels compiled twice: for the baseline x86-64 the crate targets (portable
//! builds) and for AVX-512, picked at run time where the CPU has it, as `gemm` picks its own
//! kernels. Only the vector width changes, never the arithmetic: each element sees the same
//! operations in the same order (no reassociation, no fused multiply-add), so both give the
//! same bits.

/// Whether this CPU runs the AVX-512 versions.
#[inline]
pub fn wide() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines a function whose body is compiled for the baseline and for AVX-512 (see the module
/// docs), the latter called where the CPU has it.
macro_rules! wide_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn imp($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    imp($($arg),*)
                }
                if $crate::nn::simd::wide() {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    return unsafe { avx512($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}
pub(crate) use wide_fn;

use super::tanh::fast_tanh;

wide_fn! {
    /// `x <- tanh(x)` (the fast tanh) or `x <- max(x, 0)`.
    pub fn activate(x: &mut [f32], relu: bool) {
        if relu {
            x.iter_mut().for_each(|v| *v = v.max(0.0));
        } else {
            x.iter_mut().for_each(|v| *v = fast_tanh(*v));
        }
    }
}

wide_fn! {
    /// Through the activation from its output `y`: `d <- d (1 - y^2)` (tanh) or
    /// `d <- d [y > 0]` (ReLU).
    pub fn activation_grad(d: &mut [f32], y: &[f32], relu: bool) {
        if relu {
            for (d, &y) in d.iter_mut().zip(y) {
                if y <= 0.0 {
                    *d = 0.0;
                }
            }
        } else {
            for (d, &y) in d.iter_mut().zip(y) {
                *d *= 1.0 - y * y;
            }
        }
    }
}

wide_fn! {
    /// Adds every row of `rows` (`[n, acc.len()]`) into `acc` (a bias gradient).
    pub fn add_rows(acc: &mut [f32], rows: &[f32]) {
        for row in rows.chunks_exact(acc.len()) {
            for (a, &r) in acc.iter_mut().zip(row) {
                *a += r;
            }
        }
    }
}

wide_fn! {
    /// `x <- x * s`.
    pub fn scale(x: &mut [f32], s: f32) {
        x.iter_mut().for_each(|v| *v *= s);
    }
}

wide_fn! {
    /// One Adam step over flat parameters with betas (0.9, 0.999): `step = lr / (1 - b1^t)`,
    /// `inv_sqrt_bc2 = 1 / sqrt(1 - b2^t)`.
    pub fn adam(
        params: &mut [f32],
        grads: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        step: f32,
        inv_sqrt_bc2: f32,
        eps: f32,
    ) {
        let (b1, b2) = (0.9f32, 0.999f32);
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step * *m / (v.sqrt() * inv_sqrt_bc2 + eps);
        }
    }
}
