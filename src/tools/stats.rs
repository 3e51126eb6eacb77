//! The statistics results are reported with: mean with standard deviation and a normal 95%
//! interval (over episodes), and, over a handful of seeds, the interquartile mean and
//! percentile-bootstrap intervals (Agarwal et al. 2021, "Deep RL at the edge of the statistical
//! precipice") and Welch's t-test. Bootstraps draw from a fixed seed, so a report is
//! reproducible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean, standard deviation and 95% confidence half-width of a sample.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// 1.96 standard errors (normal approximation; episodes are many).
    pub ci95: f64,
}

impl Spread {
    /// Of a sample.
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len() as f64;
        let m = mean(xs);
        let sd = std_dev(xs);
        Self {
            mean: m,
            std: sd,
            ci95: 1.96 * sd / n.max(1.0).sqrt(),
        }
    }
}

/// The mean (NaN when empty).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The sample standard deviation (0 for fewer than two values).
pub fn std_dev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// The interquartile mean: the mean of the middle 50% of the sorted values, the quartile
/// boundaries weighted fractionally so that it is defined for any n (n < 4 included).
pub fn iqm(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let (lo, hi) = (0.25 * n, 0.75 * n);
    let mut sum = 0.0;
    for (i, x) in v.iter().enumerate() {
        // Overlap of [i, i + 1) with [lo, hi).
        let w = ((i + 1) as f64).min(hi) - (i as f64).max(lo);
        if w > 0.0 {
            sum += w * x;
        }
    }
    sum / (hi - lo)
}

/// Percentile of sorted values, linear between ranks (numpy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos.fract());
    if i + 1 < sorted.len() {
        sorted[i] * (1.0 - f) + sorted[i + 1] * f
    } else {
        sorted[i]
    }
}

/// A 95% percentile-bootstrap interval of `stat` over resamples of `xs`.
pub fn bootstrap_ci(
    xs: &[f64],
    stat: fn(&[f64]) -> f64,
    resamples: usize,
    seed: u64,
) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = vec![0.0; xs.len()];
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| {
            for b in buf.iter_mut() {
                *b = xs[rng.random_range(0..xs.len())];
            }
            stat(&buf)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    (percentile(&stats, 0.025), percentile(&stats, 0.975))
}

/// A 95% percentile-bootstrap interval of `mean(a) - mean(b)`, each resampled on its own.
pub fn bootstrap_diff_ci(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |xs: &[f64]| {
        (0..xs.len())
            .map(|_| xs[rng.random_range(0..xs.len())])
            .sum::<f64>()
            / xs.len() as f64
    };
    let mut stats: Vec<f64> = (0..resamples).map(|_| draw(a) - draw(b)).collect();
    stats.sort_by(f64::total_cmp);
    (percentile(&stats, 0.025), percentile(&stats, 0.975))
}

/// Welch's unequal-variance t-test of `mean(a) != mean(b)`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Welch {
    /// The t statistic.
    pub t: f64,
    /// Welch-Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value (NaN when undefined: fewer than two values in a sample, or no
    /// variance in either).
    pub p: f64,
}

/// Welch's t-test.
pub fn welch(a: &[f64], b: &[f64]) -> Welch {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let undefined = Welch {
        t: f64::NAN,
        df: f64::NAN,
        p: f64::NAN,
    };
    if na < 2.0 || nb < 2.0 {
        return undefined;
    }
    let (va, vb) = (std_dev(a).powi(2) / na, std_dev(b).powi(2) / nb);
    if va + vb == 0.0 {
        return undefined;
    }
    let t = (mean(a) - mean(b)) / (va + vb).sqrt();
    let df = (va + vb).powi(2) / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    let p = StudentsT::new(0.0, 1.0, df)
        .map(|d| 2.0 * d.cdf(-t.abs()))
        .unwrap_or(f64::NAN);
    Welch { t, df, p }
}

/// The area under a curve `(x, y)` by the trapezoid rule, divided by its x extent: the mean
/// value over training, in the curve's own units (NaN with fewer than two points).
pub fn normalized_auc(points: &[(f64, f64)]) -> f64 {
    if points.len() < 2 {
        return points.first().map_or(f64::NAN, |p| p.1);
    }
    let area: f64 = points
        .windows(2)
        .map(|w| 0.5 * (w[0].1 + w[1].1) * (w[1].0 - w[0].0))
        .sum();
    let span = points[points.len() - 1].0 - points[0].0;
    if span > 0.0 {
        area / span
    } else {
        points[0].1
    }
}

/// The first x at which the curve reaches `threshold` (None if it never does).
pub fn steps_to(points: &[(f64, f64)], threshold: f64) -> Option<f64> {
    points.iter().find(|p| p.1 >= threshold).map(|p| p.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqm_matches_the_trimmed_mean() {
        // n divisible by 4: the plain mean of the middle half.
        assert_eq!(iqm(&[8.0, 1.0, 2.0, 100.0, 3.0, 4.0, 5.0, 6.0]), 4.5);
        // n = 3: [0.75, 2.25) -> 0.25 of the first, all of the second, 0.25 of the third.
        assert!((iqm(&[1.0, 2.0, 6.0]) - (0.25 + 2.0 + 1.5) / 1.5).abs() < 1e-12);
        assert_eq!(iqm(&[7.0]), 7.0);
    }

    #[test]
    fn welch_agrees_with_the_closed_form() {
        // Welch's formulas by hand, the p-value from mpmath's regularized incomplete beta
        // I_{df/(df+t^2)}(df/2, 1/2) (what scipy's ttest_ind(equal_var=False) computes).
        let w = welch(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &[2.0, 4.0, 6.0, 8.0, 10.0, 12.0],
        );
        assert!((w.t + 2.376_354_103_144).abs() < 1e-9, "{w:?}");
        assert!((w.df - 6.972_255_729_795).abs() < 1e-9, "{w:?}");
        assert!((w.p - 0.049_284_338_206_7).abs() < 1e-9, "{w:?}");
        assert!(welch(&[1.0], &[2.0, 3.0]).p.is_nan());
    }

    #[test]
    fn bootstrap_interval_covers_the_mean_and_is_reproducible() {
        let xs: Vec<f64> = (0..50).map(|i| f64::from(i % 7)).collect();
        let (lo, hi) = bootstrap_ci(&xs, mean, 2000, 3);
        assert!(lo < mean(&xs) && mean(&xs) < hi && hi - lo < 2.0);
        assert_eq!((lo, hi), bootstrap_ci(&xs, mean, 2000, 3));
        let (dlo, dhi) = bootstrap_diff_ci(&xs, &xs, 2000, 3);
        assert!(dlo < 0.0 && 0.0 < dhi);
    }

    #[test]
    fn auc_and_threshold() {
        let c = [(0.0, 0.0), (1.0, 1.0), (3.0, 1.0)];
        assert!((normalized_auc(&c) - 2.5 / 3.0).abs() < 1e-12);
        assert_eq!(steps_to(&c, 0.9), Some(1.0));
        assert_eq!(steps_to(&c, 2.0), None);
    }
}
