//! The floating-point types a formula written once runs in: f32 (the CPU backend's loss,
//! acting) and f64 (diagnostics, host-side sums). Each method is the type's own inherent
//! operation, so a generic formula rounds exactly as the same formula written for one type.

use std::ops::{Add, Mul, Neg, Sub};

/// f32 or f64.
pub trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
{
    /// 1.
    const ONE: Self;
    /// 0.5.
    const HALF: Self;
    /// `x` rounded to this type (`as`).
    fn of_f64(x: f64) -> Self;
    /// `n` rounded to this type (`as`).
    fn of_usize(n: usize) -> Self;
    /// The smaller of the two (the inherent `min`).
    fn min(self, other: Self) -> Self;
    /// The inherent `clamp`.
    fn clamp(self, lo: Self, hi: Self) -> Self;
    /// The inherent `abs`.
    fn abs(self) -> Self;
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            const ONE: Self = 1.0;
            const HALF: Self = 0.5;
            #[inline]
            fn of_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn of_usize(n: usize) -> Self {
                n as $t
            }
            #[inline]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
            #[inline]
            fn clamp(self, lo: Self, hi: Self) -> Self {
                <$t>::clamp(self, lo, hi)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
        }
    };
}

real!(f32);
real!(f64);
