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
    /// `out = d` through the activation from its output `y`: [`activation_grad`] of a copy
    /// of `d`, the same products, in one pass.
    pub fn activation_grad_into(out: &mut [f32], d: &[f32], y: &[f32], relu: bool) {
        if relu {
            for ((o, &d), &y) in out.iter_mut().zip(d).zip(y) {
                *o = if y <= 0.0 { 0.0 } else { d };
            }
        } else {
            for ((o, &d), &y) in out.iter_mut().zip(d).zip(y) {
                *o = d * (1.0 - y * y);
            }
        }
    }
}

wide_fn! {
    /// Adds every row of `rows` (`[n, acc.len()]`) into `acc` (a bias gradient), row after
    /// row. Blocks of columns stay in registers over all rows instead of going through
    /// memory at each row; each element sees the same additions in the same order.
    pub fn add_rows(acc: &mut [f32], rows: &[f32]) {
        let w = acc.len();
        let mut c = 0;
        while c + 64 <= w {
            sum_columns::<64>(&mut acc[c..c + 64], rows, w, c);
            c += 64;
        }
        while c + 16 <= w {
            sum_columns::<16>(&mut acc[c..c + 16], rows, w, c);
            c += 16;
        }
        if c < w {
            for row in rows.chunks_exact(w) {
                for (a, &r) in acc[c..].iter_mut().zip(&row[c..]) {
                    *a += r;
                }
            }
        }
    }
}

/// Columns `c..c + B` of [`add_rows`], summed in a local block.
#[inline(always)]
fn sum_columns<const B: usize>(acc: &mut [f32], rows: &[f32], w: usize, c: usize) {
    let mut sum: [f32; B] = acc.try_into().expect("a block of columns");
    for row in rows.chunks_exact(w) {
        let r: &[f32; B] = row[c..c + B].try_into().expect("a block of columns");
        for j in 0..B {
            sum[j] += r[j];
        }
    }
    acc.copy_from_slice(&sum);
}

wide_fn! {
    /// `x <- x * s`.
    pub fn scale(x: &mut [f32], s: f32) {
        x.iter_mut().for_each(|v| *v *= s);
    }
}

/// The constants of one Adam step ([`adam`]), from `nn::optim::FlatAdam`.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    /// The moments' decay rates `(b1, b2)`.
    pub betas: (f32, f32),
    /// `lr / (1 - b1^t)`.
    pub step: f32,
    /// `1 / sqrt(1 - b2^t)`.
    pub inv_sqrt_bc2: f32,
    /// Added to the corrected root.
    pub eps: f32,
}

wide_fn! {
    /// One Adam step over flat parameters (PyTorch's: eps added to the bias-corrected root).
    pub fn adam(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], k: AdamStep) {
        let AdamStep {
            betas: (b1, b2),
            step,
            inv_sqrt_bc2,
            eps,
        } = k;
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
/// [`affine_imp`] with FMA). Narrow outputs (a policy or value head) put 16 rows in the lanes
/// of one register per output instead, the same operations per output, so the bits do not
/// depend on which kernel ran.
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
    let mut r = 0;
    if (1..=NARROW).contains(&n) {
        // SAFETY: the caller checked AVX-512F and FMA and the slices' lengths; each block of
        // 16 rows lies inside them.
        unsafe {
            while r + LANES <= m {
                narrow_avx512(y, x, p, b, r, k, n, n_pad);
                r += LANES;
            }
        }
    }
    // Rows outside, columns inside: a block of rows stays in L1 while the packed weights
    // (in L2) stream past it once.
    while r < m {
        let rows = if r + 8 <= m { 8 } else { 1 };
        let mut c = 0;
        while c < n_pad {
            let two = c + 2 * LANES <= n_pad;
            let valid = (n - c).min(if two { 2 * LANES } else { LANES });
            let at = Block {
                c,
                valid,
                k,
                n,
                n_pad,
                start: b,
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

/// Outputs up to this many take [`narrow_avx512`]: 16 rows per register costs a transpose of
/// the rows' inputs, against 16 lanes of work per row and output vector in the column blocks.
#[cfg(target_arch = "x86_64")]
const NARROW: usize = 8;

/// Rows `r..r + 16` of a map with `n <= NARROW` outputs: output `j` of the 16 rows in one
/// register, started from its bias (or the rows' values) and given one multiply-add per `k`
/// in order, the inputs transposed 16 columns at a time in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn narrow_avx512(
    y: &mut [f32],
    x: &[f32],
    p: &[f32],
    start: Start<'_>,
    r: usize,
    k: usize,
    n: usize,
    n_pad: usize,
) {
    // SAFETY (all arms): as `narrow_rows`.
    unsafe {
        match n {
            1 => narrow_rows::<1>(y, x, p, start, r, k, n_pad),
            2 => narrow_rows::<2>(y, x, p, start, r, k, n_pad),
            3 => narrow_rows::<3>(y, x, p, start, r, k, n_pad),
            4 => narrow_rows::<4>(y, x, p, start, r, k, n_pad),
            5 => narrow_rows::<5>(y, x, p, start, r, k, n_pad),
            6 => narrow_rows::<6>(y, x, p, start, r, k, n_pad),
            7 => narrow_rows::<7>(y, x, p, start, r, k, n_pad),
            8 => narrow_rows::<8>(y, x, p, start, r, k, n_pad),
            _ => unreachable!("a narrow map has 1 to {NARROW} outputs"),
        }
    }
}

/// [`narrow_avx512`] for `N` outputs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
#[inline]
unsafe fn narrow_rows<const N: usize>(
    y: &mut [f32],
    x: &[f32],
    p: &[f32],
    start: Start<'_>,
    r: usize,
    k: usize,
    n_pad: usize,
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller checked AVX-512F and FMA, that rows r..r + 16 exist in x ([m, k]) and
    // y ([m, N]) and that the packed weights hold k rows of n_pad >= N values; masked lanes
    // are not read.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); N];
        let mut lanes = [[0.0f32; LANES]; N];
        for (j, out) in lanes.iter_mut().enumerate() {
            for (i, v) in out.iter_mut().enumerate() {
                *v = match start {
                    Start::Bias(b) => b[j],
                    Start::Rows => y[(r + i) * N + j],
                };
            }
        }
        for (a, v) in acc.iter_mut().zip(&lanes) {
            *a = _mm512_loadu_ps(v.as_ptr());
        }
        let xp = x.as_ptr().add(r * k);
        let mut k0 = 0;
        while k0 < k {
            let width = (k - k0).min(LANES);
            let mask = ((1u32 << width) - 1) as __mmask16;
            let mut rows = [_mm512_setzero_ps(); LANES];
            for (i, row) in rows.iter_mut().enumerate() {
                *row = _mm512_maskz_loadu_ps(mask, xp.add(i * k + k0));
            }
            let cols = transpose16(&rows);
            for (kk, col) in cols.iter().enumerate().take(width) {
                let w = p.as_ptr().add((k0 + kk) * n_pad);
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(*col, _mm512_set1_ps(*w.add(j)), *a);
                }
            }
            k0 += width;
        }
        if N == 1 {
            _mm512_storeu_ps(y.as_mut_ptr().add(r), acc[0]);
        } else {
            for (a, v) in acc.iter().zip(lanes.iter_mut()) {
                _mm512_storeu_ps(v.as_mut_ptr(), *a);
            }
            for i in 0..LANES {
                for (j, v) in lanes.iter().enumerate() {
                    y[(r + i) * N + j] = v[i];
                }
            }
        }
    }
}

/// The 16 x 16 transpose of `rows` (row `i` lane `j` -> column `j` lane `i`), in shuffles.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn transpose16(rows: &[std::arch::x86_64::__m512; LANES]) -> [std::arch::x86_64::__m512; LANES] {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_ps();
    // Pairs of rows interleaved, then quads, within each 128-bit lane: `quad[4g + c]` holds,
    // in lane `l`, rows 4g..4g + 4 of column 4l + c.
    let mut pair = [zero; LANES];
    for i in 0..8 {
        pair[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
        pair[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
    let mut quad = [zero; LANES];
    for g in 0..4 {
        let t = &pair[4 * g..4 * g + 4];
        quad[4 * g] = _mm512_shuffle_ps::<0x44>(t[0], t[2]);
        quad[4 * g + 1] = _mm512_shuffle_ps::<0xEE>(t[0], t[2]);
        quad[4 * g + 2] = _mm512_shuffle_ps::<0x44>(t[1], t[3]);
        quad[4 * g + 3] = _mm512_shuffle_ps::<0xEE>(t[1], t[3]);
    }
    // Then the 128-bit lanes gathered across quads: column 4l + c.
    let mut cols = [zero; LANES];
    for c in 0..4 {
        let even_lo = _mm512_shuffle_f32x4::<0x88>(quad[c], quad[4 + c]);
        let odd_lo = _mm512_shuffle_f32x4::<0xDD>(quad[c], quad[4 + c]);
        let even_hi = _mm512_shuffle_f32x4::<0x88>(quad[8 + c], quad[12 + c]);
        let odd_hi = _mm512_shuffle_f32x4::<0xDD>(quad[8 + c], quad[12 + c]);
        cols[c] = _mm512_shuffle_f32x4::<0x88>(even_lo, even_hi);
        cols[8 + c] = _mm512_shuffle_f32x4::<0xDD>(even_lo, even_hi);
        cols[4 + c] = _mm512_shuffle_f32x4::<0x88>(odd_lo, odd_hi);
        cols[12 + c] = _mm512_shuffle_f32x4::<0xDD>(odd_lo, odd_hi);
    }
    cols
}

/// Where a block of [`affine_avx512`] works.
#[cfg(target_arch = "x86_64")]
struct Block<'a> {
    c: usize,
    valid: usize,
    k: usize,
    n: usize,
    n_pad: usize,
    start: Start<'a>,
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
        start,
    } = *at;
    // Lanes inside the output (masked loads and stores touch nothing beyond `valid`).
    let mask = |from: usize| -> __mmask16 {
        let lanes = valid.saturating_sub(from).min(LANES);
        ((1u32 << lanes) - 1) as __mmask16
    };
    let (m0, m1) = (mask(0), mask(LANES));
    // SAFETY: see `affine_avx512`: rows r..r + R exist, the packed weights have k rows of
    // n_pad values and the block's columns c..c + 32 (or 16) are inside them; masked lanes
    // are neither read nor written.
    unsafe {
        let mut acc0 = [_mm512_setzero_ps(); R];
        let mut acc1 = [_mm512_setzero_ps(); R];
        match start {
            Start::Bias(b) => {
                let b0 = _mm512_maskz_loadu_ps(m0, b.as_ptr().add(c));
                let b1 = if m1 != 0 {
                    _mm512_maskz_loadu_ps(m1, b.as_ptr().add(c + LANES))
                } else {
                    _mm512_setzero_ps()
                };
                acc0 = [b0; R];
                acc1 = [b1; R];
            }
            Start::Rows => {
                for i in 0..R {
                    let row = y.as_ptr().add((r + i) * n + c);
                    acc0[i] = _mm512_maskz_loadu_ps(m0, row);
                    if m1 != 0 {
                        acc1[i] = _mm512_maskz_loadu_ps(m1, row.add(LANES));
                    }
                }
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
        // Masked stores are slow on some CPUs (Zen 4): only the last block of a row uses them.
        for i in 0..R {
            let row = y.as_mut_ptr().add((r + i) * n + c);
            if m0 == u16::MAX {
                _mm512_storeu_ps(row, acc0[i]);
            } else {
                _mm512_mask_storeu_ps(row, m0, acc0[i]);
            }
            if m1 == u16::MAX {
                _mm512_storeu_ps(row.add(LANES), acc1[i]);
            } else if m1 != 0 {
                _mm512_mask_storeu_ps(row.add(LANES), m1, acc1[i]);
            }
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

    /// Whichever kernel the machine picks (column blocks, rows in lanes for narrow heads, the
    /// row tails) gives the bits of the portable one with fused multiply-adds, from a bias or
    /// onto the output's values: each output is the same sequence of operations.
    #[test]
    fn every_kernel_gives_the_portable_fused_bits() {
        let val = |i: usize| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.37;
        for k in [1, 7, 16, 17, 64] {
            for n in [1, 2, 5, 8, 9, 16, 33, 64] {
                for m in [1, 15, 16, 17, 40] {
                    let x: Vec<f32> = (0..m * k).map(val).collect();
                    let w: Vec<f32> = (0..n * k).map(|i| val(i + 11)).collect();
                    let bias: Vec<f32> = (0..n).map(|i| val(i + 5)).collect();
                    let start: Vec<f32> = (0..m * n).map(|i| val(i + 3)).collect();
                    let mut packed = Vec::new();
                    pack_transposed(&w, n, k, &mut packed);
                    let (mut fast, mut portable) = (vec![0.0; m * n], vec![0.0; m * n]);
                    affine(&mut fast, &x, &packed, &bias, m, k, n);
                    affine_imp::<true>(&mut portable, &x, &packed, Start::Bias(&bias), m, k, n);
                    assert_eq!(fast, portable, "from the bias: m {m} k {k} n {n}");
                    let (mut fast, mut portable) = (start.clone(), start.clone());
                    affine_onto(&mut fast, &x, &packed, m, k, n);
                    affine_imp::<true>(&mut portable, &x, &packed, Start::Rows, m, k, n);
                    assert_eq!(fast, portable, "onto the rows: m {m} k {k} n {n}");
                }
            }
        }
    }

    /// The bias gradient summed in register blocks gives the bits of the row-by-row sum.
    #[test]
    fn add_rows_sums_each_column_in_row_order() {
        let val = |i: usize| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 1.37;
        for w in [1, 5, 16, 17, 64, 65, 130] {
            let rows: Vec<f32> = (0..37 * w).map(val).collect();
            let mut fast: Vec<f32> = (0..w).map(|j| val(j + 3)).collect();
            let mut naive = fast.clone();
            add_rows(&mut fast, &rows);
            for row in rows.chunks_exact(w) {
                for (a, &r) in naive.iter_mut().zip(row) {
                    *a += r;
                }
            }
            assert_eq!(fast, naive, "width {w}");
        }
    }
}
