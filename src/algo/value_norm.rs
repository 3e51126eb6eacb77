//! Running normalization of value targets (on-policy's `ValueNorm`): exponential moving
//! averages of the mean and mean of squares with a debiasing term, variance clamped at 1e-2.
//! The critic learns normalized targets; advantages use denormalized values.

/// Running statistics of one group's returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueNorm {
    mean: f64,
    mean_sq: f64,
    debias: f64,
    beta: f64,
}

impl Default for ValueNorm {
    fn default() -> Self {
        Self {
            mean: 0.0,
            mean_sq: 0.0,
            debias: 0.0,
            beta: 0.99999,
        }
    }
}

impl ValueNorm {
    /// Folds a batch of targets into the statistics.
    pub fn update(&mut self, batch: &[f32]) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as f64;
        let m = batch.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let sq = batch
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            / n;
        let b = self.beta;
        self.mean = b * self.mean + (1.0 - b) * m;
        self.mean_sq = b * self.mean_sq + (1.0 - b) * sq;
        self.debias = b * self.debias + (1.0 - b);
    }

    /// The debiased mean and variance.
    pub fn stats(&self) -> (f64, f64) {
        let d = self.debias.max(1e-5);
        let mean = self.mean / d;
        let var = (self.mean_sq / d - mean * mean).max(1e-2);
        (mean, var)
    }

    /// `(x - mean) / std`.
    pub fn normalize(&self, x: f32) -> f32 {
        let (m, v) = self.stats();
        ((f64::from(x) - m) / v.sqrt()) as f32
    }

    /// `x * std + mean`.
    pub fn denormalize(&self, x: f32) -> f32 {
        let (m, v) = self.stats();
        (f64::from(x) * v.sqrt() + m) as f32
    }

    /// The raw state, for checkpoints.
    pub fn to_array(&self) -> [f64; 3] {
        [self.mean, self.mean_sq, self.debias]
    }

    /// Restores [`to_array`](Self::to_array).
    pub fn from_array(a: [f64; 3]) -> Self {
        Self {
            mean: a[0],
            mean_sq: a[1],
            debias: a[2],
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debiased_statistics_of_one_batch_are_the_batch_statistics() {
        let mut n = ValueNorm::default();
        n.update(&[1.0, 3.0, 5.0, 7.0]);
        let (m, v) = n.stats();
        assert!((m - 4.0).abs() < 1e-9, "{m}");
        assert!((v - 5.0).abs() < 1e-6, "{v}");
        let x = 6.0f32;
        assert!((n.denormalize(n.normalize(x)) - x).abs() < 1e-5);
        assert!((n.normalize(4.0)).abs() < 1e-6);
    }

    #[test]
    fn variance_is_clamped() {
        let mut n = ValueNorm::default();
        n.update(&[2.0, 2.0]);
        assert_eq!(n.stats().1, 1e-2);
    }
}
