//! PPO's loss terms: the clipped surrogate, the (optionally clipped) Huber or squared value
//! loss, the entropy bonus, and the diagnostics (approximate KL, clip fraction). Means are over
//! active samples only: an agent that is done before its episode ends contributes nothing.
//!
//! The home of PPO's formulas: per sample on scalars ([`surrogate`], [`approx_kl`],
//! [`ratio_clipped`]) for the CPU backend's hand-written gradient (`super::ppo_cpu`) and the
//! update's per-agent diagnostics, the same formulas on tensors for candle's autograd
//! ([`loss`]), the loss one step descends ([`total_loss`]), and the names the terms travel
//! under ([`names`], [`LossValues`]).

use anyhow::Result;
use candle_core::Tensor;

use crate::algo::scalars::Scalars;
use crate::config::ValueLoss;
use crate::util::real::Real;

/// The names of the loss terms and diagnostics ([`Scalars`]): every backend sets them, the
/// update reads them, and the metrics files' `losses/{name}` columns show them.
pub mod names {
    /// The clipped surrogate's loss.
    pub const POLICY_LOSS: &str = "policy_loss";
    /// The value loss, before its coefficient.
    pub const VALUE_LOSS: &str = "value_loss";
    /// The policy's mean entropy.
    pub const ENTROPY: &str = "entropy";
    /// The approximate KL of the new policy from the old.
    pub const APPROX_KL: &str = "approx_kl";
    /// The fraction of clipped ratios.
    pub const CLIPFRAC: &str = "clipfrac";
    /// The collected values' explained variance of the returns (per update, not per
    /// minibatch).
    pub const EXPLAINED_VARIANCE: &str = "explained_variance";
}

/// One minibatch's loss terms and diagnostics as numbers, whichever backend computed them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossValues {
    /// `-mean(min(r A, clip(r) A))`.
    pub policy_loss: f64,
    /// The value loss (before its coefficient).
    pub value_loss: f64,
    /// Mean entropy.
    pub entropy: f64,
    /// `mean((r - 1) - ln r)`.
    pub approx_kl: f64,
    /// Fraction of samples whose ratio left `[1 - eps, 1 + eps]`.
    pub clipfrac: f64,
}

impl LossValues {
    /// The values under their [`names`], in the order of the metrics files' columns.
    pub fn scalars(&self) -> Scalars {
        let mut s = Scalars::new();
        s.set(names::POLICY_LOSS, self.policy_loss);
        s.set(names::ENTROPY, self.entropy);
        s.set(names::APPROX_KL, self.approx_kl);
        s.set(names::CLIPFRAC, self.clipfrac);
        s.set(names::VALUE_LOSS, self.value_loss);
        s
    }
}

/// The two sides of PPO's clipped surrogate for one sample of probability ratio `ratio` and
/// advantage `adv`: `(r A, clip(r, 1 - eps, 1 + eps) A)`. The objective is their minimum
/// ([`surrogate`]); the hand-written gradient needs which side it is.
#[inline]
pub fn surrogate_sides<T: Real>(ratio: T, adv: T, eps: T) -> (T, T) {
    (ratio * adv, ratio.clamp(T::ONE - eps, T::ONE + eps) * adv)
}

/// PPO's clipped surrogate objective of one sample, `min(r A, clip(r, 1 - eps, 1 + eps) A)`
/// (the policy loss is minus its mean).
#[inline]
pub fn surrogate<T: Real>(ratio: T, adv: T, eps: T) -> T {
    let (unclipped, clipped) = surrogate_sides(ratio, adv, eps);
    unclipped.min(clipped)
}

/// One sample's approximate KL of the new policy from the old, `(r - 1) - ln r` (never
/// negative), from the ratio and its logarithm.
#[inline]
pub fn approx_kl<T: Real>(ratio: T, log_ratio: T) -> T {
    (ratio - T::ONE) - log_ratio
}

/// Whether a ratio left `[1 - eps, 1 + eps]` (counted by the clip fraction).
#[inline]
pub fn ratio_clipped<T: Real>(ratio: T, eps: T) -> bool {
    (ratio - T::ONE).abs() > eps
}

/// What the loss is computed from, all `[B]`.
pub struct LossInputs<'a> {
    /// Log-probabilities of the taken actions under the current policy.
    pub logp: &'a Tensor,
    /// ... under the policy that collected them.
    pub old_logp: &'a Tensor,
    /// Advantages (already normalized if so configured).
    pub advantages: &'a Tensor,
    /// Entropies of the current policy.
    pub entropy: &'a Tensor,
    /// Current value predictions (normalized scale when value normalization is on).
    pub values: &'a Tensor,
    /// Predictions at collection time.
    pub old_values: &'a Tensor,
    /// Value targets (same scale as `values`).
    pub targets: &'a Tensor,
    /// 1 for active samples, 0 otherwise.
    pub active: &'a Tensor,
}

/// How the loss is shaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    /// Ratio clip, also the value clip.
    pub clip_epsilon: f64,
    /// Clip the value loss around the old values.
    pub clip_value_loss: bool,
    /// Huber or MSE.
    pub value_loss: ValueLoss,
    /// Huber's delta.
    pub huber_delta: f64,
}

/// The loss terms (tensors, for backward) and diagnostics.
pub struct LossTerms {
    /// `-mean(min(r A, clip(r) A))`.
    pub policy_loss: Tensor,
    /// The value loss (before its coefficient).
    pub value_loss: Tensor,
    /// Mean entropy.
    pub entropy: Tensor,
    /// `mean((r - 1) - ln r)`.
    pub approx_kl: f64,
    /// Fraction of samples whose ratio left `[1 - eps, 1 + eps]`.
    pub clipfrac: f64,
}

fn masked_mean(x: &Tensor, active: &Tensor, count: f64) -> Result<Tensor> {
    Ok(((x * active)?.sum_all()? / count)?)
}

fn elementwise_value_loss(err: &Tensor, kind: ValueLoss, delta: f64) -> Result<Tensor> {
    Ok(match kind {
        ValueLoss::Mse => (err.sqr()? * 0.5)?,
        ValueLoss::Huber => {
            // 0.5 q^2 + delta (|e| - q) with q = min(|e|, delta): quadratic inside, linear out.
            let a = err.abs()?;
            let q = a.clamp(0.0, delta)?;
            ((q.sqr()? * 0.5)? + ((a - &q)? * delta)?)?
        }
    })
}

/// [`surrogate`] elementwise.
fn surrogate_t(ratio: &Tensor, adv: &Tensor, eps: f64) -> Result<Tensor> {
    let unclipped = (ratio * adv)?;
    let clipped = (ratio.clamp(1.0 - eps, 1.0 + eps)? * adv)?;
    Ok(unclipped.minimum(&clipped)?)
}

/// [`approx_kl`] elementwise.
fn approx_kl_t(ratio: &Tensor, log_ratio: &Tensor) -> Result<Tensor> {
    Ok(((ratio - 1.0)? - log_ratio)?)
}

/// [`ratio_clipped`] elementwise, as 0 or 1.
fn ratio_clipped_t(ratio: &Tensor, eps: f64) -> Result<Tensor> {
    Ok((ratio - 1.0)?
        .abs()?
        .gt(eps)?
        .to_dtype(candle_core::DType::F32)?)
}

/// Computes the loss terms.
pub fn loss(inp: &LossInputs<'_>, cfg: &LossConfig) -> Result<LossTerms> {
    let count = f64::from(inp.active.sum_all()?.to_scalar::<f32>()?).max(1.0);
    let eps = cfg.clip_epsilon;
    let log_ratio = (inp.logp - inp.old_logp)?;
    let ratio = log_ratio.exp()?;
    let surr = surrogate_t(&ratio, inp.advantages, eps)?;
    let policy_loss = masked_mean(&surr, inp.active, count)?.neg()?;

    let err = (inp.targets - inp.values)?;
    let mut vloss = elementwise_value_loss(&err, cfg.value_loss, cfg.huber_delta)?;
    if cfg.clip_value_loss {
        let clipped = (inp.old_values + (inp.values - inp.old_values)?.clamp(-eps, eps)?)?;
        let err_c = (inp.targets - clipped)?;
        vloss = vloss.maximum(&elementwise_value_loss(
            &err_c,
            cfg.value_loss,
            cfg.huber_delta,
        )?)?;
    }
    let value_loss = masked_mean(&vloss, inp.active, count)?;
    let entropy = masked_mean(inp.entropy, inp.active, count)?;

    // Diagnostics, without gradient.
    let r = ratio.detach();
    let kl = approx_kl_t(&r, &log_ratio.detach())?;
    let approx_kl = f64::from(masked_mean(&kl, inp.active, count)?.to_scalar::<f32>()?);
    let outside = ratio_clipped_t(&r, eps)?;
    let clipfrac = f64::from(masked_mean(&outside, inp.active, count)?.to_scalar::<f32>()?);
    Ok(LossTerms {
        policy_loss,
        value_loss,
        entropy,
        approx_kl,
        clipfrac,
    })
}

impl LossTerms {
    /// The terms as numbers.
    pub fn values(&self) -> Result<LossValues> {
        let f = |t: &Tensor| -> Result<f64> { Ok(t.to_scalar::<f32>()?.into()) };
        Ok(LossValues {
            policy_loss: f(&self.policy_loss)?,
            value_loss: f(&self.value_loss)?,
            entropy: f(&self.entropy)?,
            approx_kl: self.approx_kl,
            clipfrac: self.clipfrac,
        })
    }
}

/// The loss one optimizer step descends, CleanRL's `pg_loss - ent_coef * entropy + vf_coef *
/// v_loss`: what candle differentiates, and what `super::ppo_cpu`'s hand-written gradient is
/// the gradient of (`policy_grad`'s `ent_coef`, `value_grad`'s `value_coef`).
pub fn total_loss(terms: &LossTerms, entropy_coef: f64, value_coef: f64) -> Result<Tensor> {
    Ok(((&terms.policy_loss - (&terms.entropy * entropy_coef)?)?
        + (&terms.value_loss * value_coef)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32]) -> Tensor {
        Tensor::new(v, &Device::Cpu).expect("tensor")
    }

    #[test]
    fn hand_computed_losses() -> Result<()> {
        // Sample 0: ratio e^0.5 = 1.6487 with A = 2 -> clipped at 1.2: min(3.2974, 2.4) = 2.4.
        // Sample 1: ratio e^-0.5 = 0.6065 with A = -1 -> min(-0.6065, -0.8) = -0.8.
        // Sample 2: inactive. policy_loss = -(2.4 - 0.8) / 2 = -0.8.
        let logp = t(&[0.0, -1.0, 3.0]);
        let old = t(&[-0.5, -0.5, 0.0]);
        let adv = t(&[2.0, -1.0, 100.0]);
        let ent = t(&[1.0, 2.0, 50.0]);
        // Values: v = 1.5, old 1.0, target 3.0 -> clipped v 1.2; Huber(10) of 1.5 and 1.8:
        // max(1.125, 1.62) = 1.62. v = 0 exactly on target 0 with old 0: 0. mean = 0.81.
        let values = t(&[1.5, 0.0, 9.0]);
        let old_v = t(&[1.0, 0.0, 0.0]);
        let targets = t(&[3.0, 0.0, -9.0]);
        let active = t(&[1.0, 1.0, 0.0]);
        let inp = LossInputs {
            logp: &logp,
            old_logp: &old,
            advantages: &adv,
            entropy: &ent,
            values: &values,
            old_values: &old_v,
            targets: &targets,
            active: &active,
        };
        let cfg = LossConfig {
            clip_epsilon: 0.2,
            clip_value_loss: true,
            value_loss: ValueLoss::Huber,
            huber_delta: 10.0,
        };
        let l = loss(&inp, &cfg)?;
        assert!((l.policy_loss.to_scalar::<f32>()? - -0.8).abs() < 1e-5);
        assert!((l.value_loss.to_scalar::<f32>()? - 0.81).abs() < 1e-5);
        assert!((l.entropy.to_scalar::<f32>()? - 1.5).abs() < 1e-6);
        assert!(
            (l.clipfrac - 1.0).abs() < 1e-9,
            "both active ratios are outside [0.8, 1.2]"
        );
        // KL: (e^0.5 - 1 - 0.5 + e^-0.5 - 1 + 0.5) / 2 = 0.127626
        assert!((l.approx_kl - 0.127_626).abs() < 1e-5, "{}", l.approx_kl);
        Ok(())
    }

    #[test]
    fn huber_is_linear_beyond_delta_and_mse_is_half_squared() -> Result<()> {
        let e = t(&[0.5, 3.0, -4.0]);
        let h = elementwise_value_loss(&e, ValueLoss::Huber, 2.0)?.to_vec1::<f32>()?;
        assert_eq!(h, [0.125, 2.0 * (3.0 - 1.0), 2.0 * (4.0 - 1.0)]);
        let m = elementwise_value_loss(&e, ValueLoss::Mse, 2.0)?.to_vec1::<f32>()?;
        assert_eq!(m, [0.125, 4.5, 8.0]);
        Ok(())
    }
}
