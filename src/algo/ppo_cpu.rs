//! PPO's loss for a categorical or diagonal-Gaussian policy and a value head, with its gradient
//! written by hand: the same terms as [`super::ppo::loss`] over `nn::dist` (means over active
//! samples, clipped surrogate, entropy bonus, optionally clipped Huber or squared value loss,
//! approximate KL and clip fraction), in one pass over the minibatch with no allocation, for
//! the CPU backend (`backend::cpu`).

use super::ppo::{self, LossConfig, LossValues};
use crate::config::ValueLoss;
use crate::nn::dist;

/// The policy's output for the rows of a minibatch.
#[derive(Debug, Clone, Copy)]
pub enum Head<'a> {
    /// Logits `[B, n]`, with an additive mask (0 or -1e10 for a masked action) `[B, n]`.
    Categorical {
        /// Logits.
        logits: &'a [f32],
        /// Added to the logits before the softmax.
        mask_bias: Option<&'a [f32]>,
        /// Actions.
        n: usize,
    },
    /// Diagonal Gaussians: means and log-stds, each `[B, d]`.
    Gaussian {
        /// Means.
        mean: &'a [f32],
        /// Log standard deviations (clamped already).
        log_std: &'a [f32],
        /// Action size.
        d: usize,
    },
}

impl Head<'_> {
    /// Floats per row of the head's output (and of its gradient).
    pub fn width(&self) -> usize {
        match *self {
            Head::Categorical { n, .. } => n,
            Head::Gaussian { d, .. } => d,
        }
    }
}

/// What the policy part reads, all rows of one minibatch.
pub struct PolicyInputs<'a> {
    /// The policy's output.
    pub head: Head<'a>,
    /// Taken actions: indices `[B]`, or Gaussian samples `[B, d]`.
    pub actions: &'a [f32],
    /// Log-probabilities at collection time, `[B]`.
    pub old_logp: &'a [f32],
    /// Advantages, `[B]`.
    pub advantages: &'a [f32],
    /// 1 for active samples, 0 otherwise, `[B]`.
    pub active: &'a [f32],
    /// What the means divide by: the minibatch's active samples ([`active_count`]), also
    /// where these rows are one part of it (the parts' terms and gradients then add up).
    pub count: f64,
}

/// The policy terms, as means over active samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyTerms {
    /// `-mean(min(r A, clip(r) A))`.
    pub policy_loss: f64,
    /// Mean entropy.
    pub entropy: f64,
    /// `mean((r - 1) - ln r)`.
    pub approx_kl: f64,
    /// Fraction of ratios outside `[1 - eps, 1 + eps]`.
    pub clipfrac: f64,
}

impl PolicyTerms {
    /// The terms of two parts of one minibatch, each divided by the whole's count.
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            policy_loss: self.policy_loss + other.policy_loss,
            entropy: self.entropy + other.entropy,
            approx_kl: self.approx_kl + other.approx_kl,
            clipfrac: self.clipfrac + other.clipfrac,
        }
    }

    /// All the loss's values, with the critic's value loss ([`value_grad`]).
    pub fn with_value_loss(self, value_loss: f64) -> LossValues {
        LossValues {
            policy_loss: self.policy_loss,
            value_loss,
            entropy: self.entropy,
            approx_kl: self.approx_kl,
            clipfrac: self.clipfrac,
        }
    }
}

/// The number the means divide by: active samples, at least 1.
pub fn active_count(active: &[f32]) -> f64 {
    f64::from(active.iter().sum::<f32>()).max(1.0)
}

/// Writes `d (policy_loss - ent_coef * entropy) / d head` into `d_head` (`[B, width]`: logits,
/// or Gaussian means) and, for Gaussians, `d / d log_std` per row into `d_log_std` (`[B, d]`;
/// empty for categorical heads); with `row_logp`, the new log-probabilities `[B]`. Returns
/// the terms.
pub fn policy_grad(
    inp: &PolicyInputs<'_>,
    clip: f32,
    ent_coef: f32,
    d_head: &mut [f32],
    d_log_std: &mut [f32],
    mut row_logp: Option<&mut [f32]>,
) -> PolicyTerms {
    let w = inp.head.width();
    let count = inp.count;
    let inv = (1.0 / count) as f32;
    let mut t = PolicyTerms::default();
    for (b, d) in d_head.chunks_exact_mut(w).enumerate() {
        // The distribution's log-probability and entropy; `d` keeps what the gradient needs
        // (probabilities, or standardized errors).
        let (logp, h, max, log_sum) = match inp.head {
            Head::Categorical {
                logits,
                mask_bias,
                n,
            } => {
                let z = &logits[b * n..(b + 1) * n];
                let bias = mask_bias.map(|m| &m[b * n..(b + 1) * n]);
                let zb = |j: usize| z[j] + bias.map_or(0.0, |m| m[j]);
                let max = (0..n).map(zb).fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0f32;
                for (j, dj) in d.iter_mut().enumerate() {
                    *dj = (zb(j) - max).exp();
                    sum += *dj;
                }
                let log_sum = sum.ln();
                let mut h = 0.0f32;
                for (j, pj) in d.iter_mut().enumerate() {
                    *pj /= sum;
                    if *pj > 0.0 {
                        h -= *pj * (zb(j) - max - log_sum);
                    }
                }
                let a = inp.actions[b] as usize;
                (zb(a) - max - log_sum, h, max, log_sum)
            }
            Head::Gaussian {
                mean,
                log_std,
                d: dim,
            } => {
                let (mu, ls) = (
                    &mean[b * dim..(b + 1) * dim],
                    &log_std[b * dim..(b + 1) * dim],
                );
                let a = &inp.actions[b * dim..(b + 1) * dim];
                let (mut sq, mut ls_sum) = (0.0f32, 0.0f32);
                for j in 0..dim {
                    // d holds the standardized error z = (a - mu) / sigma for now.
                    d[j] = (a[j] - mu[j]) * (-ls[j]).exp();
                    sq += d[j] * d[j];
                    ls_sum += ls[j];
                }
                let logp = dist::gaussian_logp(sq, ls_sum, dim);
                (logp, dist::gaussian_entropy(ls_sum, dim), 0.0, 0.0)
            }
        };
        if let Some(out) = row_logp.as_deref_mut() {
            out[b] = logp;
        }
        let log_ratio = logp - inp.old_logp[b];
        let ratio = log_ratio.exp();
        let adv = inp.advantages[b];
        let (s1, s2) = ppo::surrogate_sides(ratio, adv, clip);
        let wt = inp.active[b];
        t.policy_loss -= f64::from(wt * ppo::surrogate(ratio, adv, clip));
        t.entropy += f64::from(wt * h);
        t.approx_kl += f64::from(wt * ppo::approx_kl(ratio, log_ratio));
        if ppo::ratio_clipped(ratio, clip) {
            t.clipfrac += f64::from(wt);
        }
        // d loss / d logp: -A r where the unclipped term is the minimum or the clip is inactive.
        let unclipped = s1 <= s2 || (ratio > 1.0 - clip && ratio < 1.0 + clip);
        let g_logp = if unclipped {
            -adv * ratio * wt * inv
        } else {
            0.0
        };
        let g_h = -ent_coef * wt * inv;
        match inp.head {
            Head::Categorical {
                logits,
                mask_bias,
                n,
            } => {
                // d logp / d z_j = [j = a] - p_j;  d H / d z_j = -p_j (log p_j + H).
                let a = inp.actions[b] as usize;
                let z = &logits[b * n..(b + 1) * n];
                let bias = mask_bias.map(|m| &m[b * n..(b + 1) * n]);
                let zb = |j: usize| z[j] + bias.map_or(0.0, |m| m[j]);
                for (j, pj) in d.iter_mut().enumerate() {
                    let p = *pj;
                    let dlogp = if j == a { 1.0 - p } else { -p };
                    let dh = if p > 0.0 {
                        -p * (zb(j) - max - log_sum + h)
                    } else {
                        0.0
                    };
                    *pj = g_logp * dlogp + g_h * dh;
                }
            }
            Head::Gaussian {
                log_std, d: dim, ..
            } => {
                // d logp / d mu = z / sigma, d logp / d ls = z^2 - 1, d H / d ls = 1.
                let ls = &log_std[b * dim..(b + 1) * dim];
                let dls = &mut d_log_std[b * dim..(b + 1) * dim];
                for j in 0..dim {
                    let z = d[j];
                    d[j] = g_logp * z * (-ls[j]).exp();
                    dls[j] = g_logp * (z * z - 1.0) + g_h;
                }
            }
        }
    }
    t.policy_loss /= count;
    t.entropy /= count;
    t.approx_kl /= count;
    t.clipfrac /= count;
    t
}

fn elementwise(err: f32, kind: ValueLoss, delta: f32) -> (f32, f32) {
    // (loss, d loss / d err)
    match kind {
        ValueLoss::Mse => (0.5 * err * err, err),
        ValueLoss::Huber => {
            let a = err.abs();
            let q = a.min(delta);
            (0.5 * q * q + delta * (a - q), err.clamp(-delta, delta))
        }
    }
}

/// Writes `d (value_coef * value_loss) / d values` into `d_values` and returns the value loss
/// (a sum over active samples divided by `count`, as [`PolicyInputs::count`], before its
/// coefficient).
#[allow(clippy::too_many_arguments)]
pub fn value_grad(
    values: &[f32],
    old_values: &[f32],
    targets: &[f32],
    active: &[f32],
    cfg: &LossConfig,
    value_coef: f32,
    count: f64,
    d_values: &mut [f32],
) -> f64 {
    let inv = (1.0 / count) as f32;
    let eps = cfg.clip_epsilon as f32;
    let delta = cfg.huber_delta as f32;
    let mut total = 0.0f64;
    for b in 0..values.len() {
        let (v, t, w) = (values[b], targets[b], active[b]);
        let (mut l, dl_derr) = elementwise(t - v, cfg.value_loss, delta);
        // err = t - v: d err / d v = -1.
        let mut g = -dl_derr;
        if cfg.clip_value_loss {
            let moved = v - old_values[b];
            let vc = old_values[b] + moved.clamp(-eps, eps);
            let (lc, dc) = elementwise(t - vc, cfg.value_loss, delta);
            if lc > l {
                l = lc;
                // The clipped prediction follows v only inside the clip range.
                g = if moved > -eps && moved < eps {
                    -dc
                } else {
                    0.0
                };
            }
        }
        total += f64::from(w * l);
        d_values[b] = value_coef * w * inv * g;
    }
    total / count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::ppo;
    use candle_core::{Device, Tensor, Var};

    /// The terms and their gradient equal candle's autograd through `ppo::loss` and
    /// `dist::categorical`, masks, inactive samples and both value losses included.
    #[test]
    fn terms_and_gradients_match_autograd() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let n = 3;
        let logits = vec![
            0.3f32, -0.2, 0.9, 2.0, -1.0, 0.5, 0.2, 0.1, 0.0, -0.4, 0.8, 0.3,
        ];
        let bias = vec![
            0.0f32, 0.0, 0.0, 0.0, -1e10, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1e10,
        ];
        let actions = [2.0f32, 0.0, 1.0, 1.0];
        let old = [-1.2f32, -0.1, -1.5, -0.2];
        let adv = [1.5f32, -0.7, 0.4, 2.0];
        let active = [1.0f32, 1.0, 0.0, 1.0];
        let values = [0.5f32, -0.2, 1.0, 12.0];
        let old_v = [0.1f32, -0.1, 0.9, 0.0];
        let targets = [1.0f32, -0.3, 0.0, 30.0];
        for (kind, clip_v) in [(ValueLoss::Mse, false), (ValueLoss::Huber, true)] {
            let cfg = LossConfig {
                clip_epsilon: 0.2,
                clip_value_loss: clip_v,
                value_loss: kind,
                huber_delta: 10.0,
            };
            let mut d_logits = vec![0.0; logits.len()];
            let pt = policy_grad(
                &PolicyInputs {
                    head: Head::Categorical {
                        logits: &logits,
                        mask_bias: Some(&bias),
                        n,
                    },
                    actions: &actions,
                    old_logp: &old,
                    advantages: &adv,
                    active: &active,
                    count: active_count(&active),
                },
                0.2,
                0.01,
                &mut d_logits,
                &mut [],
                None,
            );
            let mut d_v = vec![0.0; 4];
            let vl = value_grad(
                &values,
                &old_v,
                &targets,
                &active,
                &cfg,
                0.5,
                active_count(&active),
                &mut d_v,
            );

            let t = |v: &[f32]| Tensor::from_vec(v.to_vec(), v.len(), &dev);
            let z = Var::from_tensor(&Tensor::from_vec(logits.clone(), (4, n), &dev)?)?;
            let vv = Var::from_tensor(&t(&values)?)?;
            let acts = Tensor::from_vec(actions.iter().map(|&a| a as u32).collect(), 4, &dev)?;
            let bias_t = Tensor::from_vec(bias.clone(), (4, n), &dev)?;
            let (logp, ent) = crate::nn::dist::categorical(z.as_tensor(), Some(&bias_t), &acts)?;
            let terms = ppo::loss(
                &ppo::LossInputs {
                    logp: &logp,
                    old_logp: &t(&old)?,
                    advantages: &t(&adv)?,
                    entropy: &ent,
                    values: vv.as_tensor(),
                    old_values: &t(&old_v)?,
                    targets: &t(&targets)?,
                    active: &t(&active)?,
                },
                &cfg,
            )?;
            let close = |a: f64, b: f64, what: &str| {
                assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{what}: {a} vs {b}");
            };
            close(
                pt.policy_loss,
                terms.policy_loss.to_scalar::<f32>()?.into(),
                "policy",
            );
            close(
                pt.entropy,
                terms.entropy.to_scalar::<f32>()?.into(),
                "entropy",
            );
            close(vl, terms.value_loss.to_scalar::<f32>()?.into(), "value");
            close(pt.approx_kl, terms.approx_kl, "kl");
            close(pt.clipfrac, terms.clipfrac, "clipfrac");
            let total =
                ((&terms.policy_loss - (&terms.entropy * 0.01)?)? + (&terms.value_loss * 0.5)?)?;
            let grads = total.backward()?;
            let gz: Vec<f32> = grads
                .get(z.as_tensor())
                .expect("dz")
                .flatten_all()?
                .to_vec1()?;
            for (k, (a, b)) in d_logits.iter().zip(&gz).enumerate() {
                close(f64::from(*a), f64::from(*b), &format!("d logit {k}"));
            }
            let gv: Vec<f32> = grads.get(vv.as_tensor()).expect("dv").to_vec1()?;
            for (k, (a, b)) in d_v.iter().zip(&gv).enumerate() {
                close(f64::from(*a), f64::from(*b), &format!("d value {k}"));
            }
        }
        Ok(())
    }

    /// The Gaussian terms and their gradients (means and log-stds) equal candle's autograd
    /// through `ppo::loss` and `dist::gaussian`, including a clipped ratio.
    #[test]
    fn gaussian_terms_and_gradients_match_autograd() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let d = 2;
        let mean = vec![0.1f32, -0.3, 0.8, 0.2, -0.5, 0.0];
        let log_std = vec![-0.5f32, -0.2, 0.1, -1.0, -0.5, 0.3];
        let actions = [0.3f32, -0.1, 0.0, 0.4, -0.9, 1.2];
        let old = [-1.0f32, -3.5, -1.9];
        let adv = [1.0f32, -2.0, 0.5];
        let active = [1.0f32, 1.0, 1.0];
        let mut d_mean = vec![0.0; 6];
        let mut d_ls = vec![0.0; 6];
        let mut logp_rows = vec![0.0; 3];
        let pt = policy_grad(
            &PolicyInputs {
                head: Head::Gaussian {
                    mean: &mean,
                    log_std: &log_std,
                    d,
                },
                actions: &actions,
                old_logp: &old,
                advantages: &adv,
                active: &active,
                count: active_count(&active),
            },
            0.2,
            0.01,
            &mut d_mean,
            &mut d_ls,
            Some(&mut logp_rows),
        );
        let t = |v: &[f32]| Tensor::from_vec(v.to_vec(), v.len(), &dev);
        let mu = Var::from_tensor(&Tensor::from_vec(mean.clone(), (3, d), &dev)?)?;
        let ls = Var::from_tensor(&Tensor::from_vec(log_std.clone(), (3, d), &dev)?)?;
        let acts = Tensor::from_vec(actions.to_vec(), (3, d), &dev)?;
        let (logp, ent) = crate::nn::dist::gaussian(mu.as_tensor(), ls.as_tensor(), &acts)?;
        let zeros = t(&[0.0; 3])?;
        let terms = ppo::loss(
            &ppo::LossInputs {
                logp: &logp,
                old_logp: &t(&old)?,
                advantages: &t(&adv)?,
                entropy: &ent,
                values: &zeros,
                old_values: &zeros,
                targets: &zeros,
                active: &t(&active)?,
            },
            &LossConfig {
                clip_epsilon: 0.2,
                clip_value_loss: false,
                value_loss: ValueLoss::Mse,
                huber_delta: 10.0,
            },
        )?;
        let close = |a: f64, b: f64, what: &str| {
            assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{what}: {a} vs {b}");
        };
        let want_logp: Vec<f32> = logp.to_vec1()?;
        for (a, b) in logp_rows.iter().zip(&want_logp) {
            close(f64::from(*a), f64::from(*b), "row logp");
        }
        assert!(pt.clipfrac > 0.0, "the test covers a clipped ratio");
        close(
            pt.policy_loss,
            terms.policy_loss.to_scalar::<f32>()?.into(),
            "policy",
        );
        close(
            pt.entropy,
            terms.entropy.to_scalar::<f32>()?.into(),
            "entropy",
        );
        close(pt.approx_kl, terms.approx_kl, "kl");
        let total = (&terms.policy_loss - (&terms.entropy * 0.01)?)?;
        let grads = total.backward()?;
        for (var, got, what) in [(&mu, &d_mean, "d mean"), (&ls, &d_ls, "d log std")] {
            let want: Vec<f32> = grads
                .get(var.as_tensor())
                .expect("grad")
                .flatten_all()?
                .to_vec1()?;
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                close(f64::from(*a), f64::from(*b), &format!("{what} {k}"));
            }
        }
        Ok(())
    }
}
