//! `np.exp` for `float64` as the reference computes it, bit for bit.
//!
//! mpe2's `simple_tag` bounds the good agents with `min(np.exp(2x - 2), 10)`. numpy 2 wheels on
//! x86-64 machines with AVX-512 (this team's machines, where the reference traces are recorded)
//! route `np.exp(float64)` to Intel SVML's `__svml_exp8_ha` instead of libm, and that kernel
//! differs from glibc's `exp` by one ulp for about 4.5% of arguments in the range the bound uses
//! (measured with numpy 2.4.6: 13,552 of 300,000 uniform draws in [0, 2.31]). `f64::exp` would
//! therefore break parity on some tag episodes where a good agent leaves the arena.
//!
//! This is a scalar emulation of that kernel's main path: `k = floor(16 x log2(e))` (the kernel
//! computes it with a round-toward-zero FMA against a shifter; we get the same integer from the
//! exact product), `r = x - (k/16) ln2` in two fused steps, a degree-6 polynomial in fused
//! steps, a 16-entry table of `2^(j/16)` as head and tail, and a scale by `2^floor(k/16)`.
//! Constants are the kernel's (numpy 2.4.6 wheel, Intel SVML, BSD-3-Clause). Arguments with
//! `|x| >= 707.7` take the kernel's special path, for which we fall back to `f64::exp`; the tag
//! bound never needs them (it caps at 10 from `x = 2.3` on).
//!
//! On machines without AVX-512 numpy uses libm's `exp`, and [`f64::exp`] is the reference there.

/// `log2(e)`, rounded to nearest.
const LOG2E: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
/// `ln 2` head and tail.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fefa_39ef);
const LN2_LO: f64 = f64::from_bits(0x3c7a_bc9e_3b39_803f);
/// Polynomial coefficients, highest degree first (about 1/720, 1/120, 1/24, 1/6, 1/2, 1).
const C: [f64; 6] = [
    f64::from_bits(0x3f57_4118_3694_0c04),
    f64::from_bits(0x3f81_101c_bbc2_65c0),
    f64::from_bits(0x3fa5_5557_242d_68fe),
    f64::from_bits(0x3fc5_5555_5393_9732),
    f64::from_bits(0x3fe0_0000_0000_d008),
    f64::from_bits(0x3fef_ffff_ffff_ff70),
];
/// Beyond this magnitude the kernel takes its special (overflow/underflow) path.
const SPECIAL: f64 = f64::from_bits(0x4086_1da0_4cba_fe44);
/// `2^(j/16)` rounded to nearest.
const T_HI: [u64; 16] = [
    0x3ff0000000000000,
    0x3ff0b5586cf9890f,
    0x3ff172b83c7d517b,
    0x3ff2387a6e756238,
    0x3ff306fe0a31b715,
    0x3ff3dea64c123422,
    0x3ff4bfdad5362a27,
    0x3ff5ab07dd485429,
    0x3ff6a09e667f3bcd,
    0x3ff7a11473eb0187,
    0x3ff8ace5422aa0db,
    0x3ff9c49182a3f090,
    0x3ffae89f995ad3ad,
    0x3ffc199bdd85529c,
    0x3ffd5818dcfba487,
    0x3ffea4afa2a490da,
];
/// The kernel's tails of `2^(j/16)`.
const T_LO: [u64; 16] = [
    0x0000000000000000,
    0x3c979aa65d837b6d,
    0xbc801b15eaa59348,
    0x3c968efde3a8a894,
    0x3c834d754db0abb6,
    0x3c859f48a72a4c6d,
    0x3c7690cebb7aafb0,
    0x3c9063e1e21c5409,
    0xbc93b3efbf5e2228,
    0xbc7b32dcb94da51d,
    0x3c8db72fc1f0eab4,
    0x3c71affc2b91ce27,
    0x3c8c1a7792cb3387,
    0x3c736eae30af0cb3,
    0x3c74a385a63d07a7,
    0xbc8ff7128fd391f0,
];

/// `np.exp(x)` for `float64` on numpy's AVX-512 path.
pub fn numpy_exp(x: f64) -> f64 {
    // NaN and infinities take the special path too.
    if x.is_nan() || x.abs() >= SPECIAL {
        return x.exp();
    }
    // k = floor(16 * x * log2(e)) over the exact product: p + e == x * LOG2E exactly.
    let p = x * LOG2E;
    let e = x.mul_add(LOG2E, -p);
    let (q, eq) = (p * 16.0, e * 16.0);
    let mut k = q.floor();
    if q == k && eq < 0.0 {
        k -= 1.0;
    }
    let n = k / 16.0;
    let ki = k as i64;
    let j = ki.rem_euclid(16) as usize;
    let r = (-LN2_LO).mul_add(n, (-n).mul_add(LN2_HI, x));
    let r2 = r * r;
    let a = C[0].mul_add(r, C[1]);
    let b = C[2].mul_add(r, C[3]);
    let c = C[4].mul_add(r, C[5]);
    let poly = r2.mul_add(r2.mul_add(a, b), c);
    let t_hi = f64::from_bits(T_HI[j]);
    let s = t_hi.mul_add(poly.mul_add(r, f64::from_bits(T_LO[j])), t_hi);
    scale(s, ki.div_euclid(16))
}

/// `s * 2^m`, exact while the result is normal (the main path's range).
fn scale(s: f64, m: i64) -> f64 {
    // Two steps keep each factor a normal power of two for |m| up to 1022 + 1022.
    let half = m / 2;
    s * pow2(half) * pow2(m - half)
}

fn pow2(m: i64) -> f64 {
    f64::from_bits(((m + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::numpy_exp;

    /// `(x, np.exp(x))` as bits, from numpy 2.4.6 on an AVX-512 machine; the first is the
    /// argument that broke tag parity with libm's `exp` (2 * 1.613428265951324 - 2), the next
    /// six are arguments where numpy and glibc differ.
    const VECTORS: [(u64, u64); 15] = [
        (0x3ff3a13450967e60, 0x400b48aff9a2decc),
        (0x3ffe5a4425ad8319, 0x401aaa1ac698cf29),
        (0x400246a6db47fb6f, 0x4023a439eb58e556),
        (0x3fd64ae15453d91d, 0x3ff6aabee9f89519),
        (0x3fe0bcbab39ecf61, 0x3ffafe8ca1090070),
        (0x3ff137aaa6f64e44, 0x4007772c2f57ffdf),
        (0x3fdb2fab5a364f5a, 0x3ff877da364366f5),
        (0x0000000000000000, 0x3ff0000000000000),
        (0x3ff0000000000000, 0x4005bf0a8b145769),
        (0x3fcd09a284b3f301, 0x3ff4130bb95b535e),
        (0x40026bb1bbb55516, 0x4024000000000001),
        (0xc00c000000000000, 0x3f9eec1018e4ff66),
        (0x4024800000000000, 0x40db9ea2aed2a0f1),
        (0xc085e00000000000, 0x00d14f2b0fb9307f),
        (0x4085e00000000000, 0x7f0d945df4f8ec8e),
    ];

    #[test]
    fn matches_numpy_bit_for_bit() {
        for (x, want) in VECTORS {
            let x = f64::from_bits(x);
            assert_eq!(numpy_exp(x).to_bits(), want, "np.exp({x:e})");
        }
    }

    #[test]
    fn differs_from_libm_where_numpy_does() {
        let x = f64::from_bits(VECTORS[0].0);
        assert_ne!(
            x.exp().to_bits(),
            VECTORS[0].1,
            "the motivating case must differ from libm"
        );
    }
}
