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

/// Weights `w` (`[n, k]` row-major, the checkpoint layout) transposed into `[k, n_pad]` with
/// `n` rounded up to whole vectors (zeros beyond `n`), as [`affine`] reads them.
pub fn pack_transposed(w: &[f32], n: usize, k: usize, out: &mut Vec<f32>) {
    let n_pad = n.div_ceil(LANES) * LANES;
    out.clear();
    out.resize(k * n_pad, 0.0);
    for (j, row) in w.chunks_exact(k).enumerate().take(n) {
        for (kk, &v) in row.iter().enumerate() {
            out[kk * n_pad + j] = v;
        }
    }
}

/// Columns per vector block of [`affine`]'s packed weights.
const LANES: usize = 16;

/// `y[m, n] = bias + x[m, k] . W^T` with `W^T` packed by [`pack_transposed`]. Each output is
/// its bias followed by the products in order of `k`, one multiply-add each: the same
/// operations whatever `m` and whichever rows come with it, so a row computed in a batch of
/// one (a rollout step) equals the same row in a batch of thousands (a minibatch). `gemm`'s
/// kernels depend on the batch's shape.
pub fn affine(
    y: &mut [f32],
    x: &[f32],
    packed: &[f32],
    bias: &[f32],
    m: usize,
    k: usize,
    n: usize,
) {
    assert!(bias.len() >= n);
    affine_start(y, x, packed, Start::Bias(bias), m, k, n);
}

/// `y[m, n] += x[m, k] . W^T`, each output continuing from its current value with the products
/// in order of `k`, one multiply-add each, as [`affine`] does from its bias. So an affine map
/// split by input columns, `y = affine(x[.., ..j]) then affine_onto(x[.., j..])`, gives the bits
/// of the unsplit one: a factored critic's first layer (the state's columns once per state, a
/// row's own columns onto them) is the unfactored layer exactly. `packed` holds the rows of the
/// packed `W^T` for these `k` columns.
pub fn affine_onto(y: &mut [f32], x: &[f32], packed: &[f32], m: usize, k: usize, n: usize) {
    affine_start(y, x, packed, Start::Rows, m, k, n);
}

/// What [`affine`]'s accumulators start from.
#[derive(Clone, Copy)]
enum Start<'a> {
    /// The bias, the same for every row.
    Bias(&'a [f32]),
    /// The output's current values.
    Rows,
}

fn affine_start(
    y: &mut [f32],
    x: &[f32],
    packed: &[f32],
    bias: Start<'_>,
    m: usize,
    k: usize,
    n: usize,
) {
    assert!(y.len() >= m * n && x.len() >= m * k);
    let n_pad = n.div_ceil(LANES) * LANES;
    assert!(packed.len() >= k * n_pad);
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX-512F and FMA, checked just above.
            return unsafe { affine_avx512(y, x, packed, bias, m, k, n) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { affine_avx2(y, x, packed, bias, m, k, n) };
        }
    }
    affine_imp::<false>(y, x, packed, bias, m, k, n)
}

/// [`affine`] with AVX-512 registers: blocks of 8 rows x 32 columns held in 16 registers,
/// one fused multiply-add per product, in order of `k` (the same arithmetic as
/// [`affine_imp`] with FMA).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn affine_avx512(
    y: &mut [f32],
    x: &[f32],
    p: &[f32],
    b: Start<'_>,
    m: usize,
    k: usize,
    n: usize,
) {
    let n_pad = n.div_ceil(LANES) * LANES;
    // Rows outside, columns inside: a block of rows stays in L1 while the packed weights
    // (in L2) stream past it once.
    let mut r = 0;
    while r < m {
        let rows = if r + 8 <= m { 8 } else { 1 };
        let mut c = 0;
        while c < n_pad {
            let two = c + 2 * LANES <= n_pad;
            let valid = (n - c).min(if two { 2 * LANES } else { LANES });
            // The bias padded to whole vectors.
            let mut bias = [0.0f32; 2 * LANES];
            if let Start::Bias(b) = b {
                bias[..valid].copy_from_slice(&b[c..c + valid]);
            }
            let at = Block {
                c,
                valid,
                k,
                n,
                n_pad,
                bias: &bias,
                from_rows: matches!(b, Start::Rows),
            };
            // SAFETY: the caller checked AVX-512F and FMA; `affine` checked that x holds
            // m * k values, p holds k * n_pad and y holds m * n; each block stays inside them.
            unsafe {
                if rows == 8 {
                    block_avx512::<8>(y, x, p, r, two, &at);
                } else {
                    block_avx512::<1>(y, x, p, r, two, &at);
                }
            }
            c += if two { 2 * LANES } else { LANES };
        }
        r += rows;
    }
}

/// Where a block of [`affine_avx512`] works.
#[cfg(target_arch = "x86_64")]
struct Block<'a> {
    c: usize,
    valid: usize,
    k: usize,
    n: usize,
    n_pad: usize,
    bias: &'a [f32; 2 * LANES],
    /// Start from the output's values instead of the bias.
    from_rows: bool,
}

/// Rows `r..r + R` and the block's columns (two vectors, or one) of [`affine_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
#[inline]
unsafe fn block_avx512<const R: usize>(
    y: &mut [f32],
    x: &[f32],
    p: &[f32],
    r: usize,
    two: bool,
    at: &Block<'_>,
) {
    use std::arch::x86_64::*;
    let Block {
        c,
        valid,
        k,
        n,
        n_pad,
        bias,
        from_rows,
    } = *at;
    // SAFETY: see `affine_avx512`: rows r..r + R exist, the packed weights have k rows of
    // n_pad values and the block's columns c..c + 32 (or 16) are inside them.
    unsafe {
        let b0 = _mm512_loadu_ps(bias.as_ptr());
        let b1 = _mm512_loadu_ps(bias.as_ptr().add(LANES));
        let mut acc0 = [b0; R];
        let mut acc1 = [b1; R];
        if from_rows {
            for i in 0..R {
                let row = (r + i) * n + c;
                let mut start = [0.0f32; 2 * LANES];
                start[..valid].copy_from_slice(&y[row..row + valid]);
                acc0[i] = _mm512_loadu_ps(start.as_ptr());
                acc1[i] = _mm512_loadu_ps(start.as_ptr().add(LANES));
            }
        }
        let xp = x.as_ptr().add(r * k);
        let mut wp = p.as_ptr().add(c);
        if two {
            for kk in 0..k {
                let w0 = _mm512_loadu_ps(wp);
                let w1 = _mm512_loadu_ps(wp.add(LANES));
                for i in 0..R {
                    let xv = _mm512_set1_ps(*xp.add(i * k + kk));
                    acc0[i] = _mm512_fmadd_ps(xv, w0, acc0[i]);
                    acc1[i] = _mm512_fmadd_ps(xv, w1, acc1[i]);
                }
                wp = wp.add(n_pad);
            }
        } else {
            for kk in 0..k {
                let w0 = _mm512_loadu_ps(wp);
                for i in 0..R {
                    let xv = _mm512_set1_ps(*xp.add(i * k + kk));
                    acc0[i] = _mm512_fmadd_ps(xv, w0, acc0[i]);
                }
                wp = wp.add(n_pad);
            }
        }
        let mut out = [0.0f32; 2 * LANES];
        for i in 0..R {
            _mm512_storeu_ps(out.as_mut_ptr(), acc0[i]);
            _mm512_storeu_ps(out.as_mut_ptr().add(LANES), acc1[i]);
            let row = (r + i) * n + c;
            y[row..row + valid].copy_from_slice(&out[..valid]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn affine_avx2(
    y: &mut [f32],
    x: &[f32],
    p: &[f32],
    b: Start<'_>,
    m: usize,
    k: usize,
    n: usize,
) {
    affine_imp::<true>(y, x, p, b, m, k, n)
}

/// `c + a * b`, fused where the build path has FMA (each path uses one form throughout).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        c + a * b
    }
}

#[inline(always)]
fn affine_imp<const FMA: bool>(
    y: &mut [f32],
    x: &[f32],
    packed: &[f32],
    bias: Start<'_>,
    m: usize,
    k: usize,
    n: usize,
) {
    let n_pad = n.div_ceil(LANES) * LANES;
    let mut r = 0;
    while r + 4 <= m {
        rows_block::<4, FMA>(y, x, packed, bias, r, k, n, n_pad);
        r += 4;
    }
    while r < m {
        rows_block::<1, FMA>(y, x, packed, bias, r, k, n, n_pad);
        r += 1;
    }
}

/// Rows `r..r + R` of [`affine`], two vectors of columns at a time, then one.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rows_block<const R: usize, const FMA: bool>(
    y: &mut [f32],
    x: &[f32],
    packed: &[f32],
    bias: Start<'_>,
    r: usize,
    k: usize,
    n: usize,
    n_pad: usize,
) {
    let mut c = 0;
    while c < n_pad {
        let width = if c + 2 * LANES <= n_pad {
            2 * LANES
        } else {
            LANES
        };
        let mut acc = [[0.0f32; 2 * LANES]; R];
        for (i, row) in acc.iter_mut().enumerate() {
            for (j, a) in row.iter_mut().enumerate().take(width) {
                *a = match bias {
                    _ if c + j >= n => 0.0,
                    Start::Bias(b) => b[c + j],
                    Start::Rows => y[(r + i) * n + c + j],
                };
            }
        }
        if width == 2 * LANES {
            for kk in 0..k {
                let w: &[f32; 2 * LANES] = packed[kk * n_pad + c..][..2 * LANES]
                    .try_into()
                    .expect("a block of packed weights");
                for (i, row) in acc.iter_mut().enumerate() {
                    let xv = x[(r + i) * k + kk];
                    for j in 0..2 * LANES {
                        row[j] = madd::<FMA>(xv, w[j], row[j]);
                    }
                }
            }
        } else {
            for kk in 0..k {
                let w: &[f32; LANES] = packed[kk * n_pad + c..][..LANES]
                    .try_into()
                    .expect("a block of packed weights");
                for (i, row) in acc.iter_mut().enumerate() {
                    let xv = x[(r + i) * k + kk];
                    for j in 0..LANES {
                        row[j] = madd::<FMA>(xv, w[j], row[j]);
                    }
                }
            }
        }
        let valid = width.min(n - c.min(n));
        for (i, row) in acc.iter().enumerate() {
            y[(r + i) * n + c..(r + i) * n + c + valid].copy_from_slice(&row[..valid]);
        }
        c += width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An affine map split by input columns (the first `j` from the bias, the rest onto them)
    /// gives the unsplit map's bits, for row counts that take every block path.
    #[test]
    fn affine_split_by_columns_gives_the_unsplit_bits() {
        let (k, n, j) = (37, 70, 23);
        let val = |i: usize| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.37;
        for m in [1, 3, 4, 8, 13] {
            let x: Vec<f32> = (0..m * k).map(val).collect();
            let w: Vec<f32> = (0..n * k).map(|i| val(i + 11)).collect();
            let bias: Vec<f32> = (0..n).map(|i| val(i + 5)).collect();
            let mut packed = Vec::new();
            pack_transposed(&w, n, k, &mut packed);
            let mut whole = vec![0.0; m * n];
            affine(&mut whole, &x, &packed, &bias, m, k, n);
            let left: Vec<f32> = x.chunks_exact(k).flat_map(|r| r[..j].to_vec()).collect();
            let right: Vec<f32> = x.chunks_exact(k).flat_map(|r| r[j..].to_vec()).collect();
            let n_pad = n.div_ceil(LANES) * LANES;
            let mut split = vec![0.0; m * n];
            affine(&mut split, &left, &packed[..j * n_pad], &bias, m, j, n);
            affine_onto(&mut split, &right, &packed[j * n_pad..], m, k - j, n);
            assert_eq!(whole, split, "{m} rows");
        }
    }
}
