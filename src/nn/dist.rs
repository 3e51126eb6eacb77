//! Action distributions: categorical (with action masks) and diagonal Gaussian. Log-probs and
//! entropies as tensors for the loss; sampling on the host with our seeded generator.

use anyhow::Result;
use candle_core::{Tensor, D};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::util::real::Real;

/// The logit given to masked actions: far below any real logit, finite so that `0 * logit`
/// stays 0 in the entropy.
pub const MASKED_LOGIT: f32 = -1e10;

/// `ln(2 pi) / 2`, a normal density's log-normalizer per dimension: the one constant of every
/// Gaussian formula here and in `algo::ppo_cpu` (rounded to f32 where they run in f32).
pub const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

/// `d ln(2 pi) / 2`: the log-normalizer of a `d`-dimensional standard normal.
#[inline]
fn log_normalizer<T: Real>(d: usize) -> T {
    T::of_usize(d) * T::of_f64(HALF_LN_2PI)
}

/// `d (1 + ln(2 pi)) / 2`: the entropy of a `d`-dimensional standard normal.
#[inline]
fn entropy_offset<T: Real>(d: usize) -> T {
    T::of_usize(d) * (T::HALF + T::of_f64(HALF_LN_2PI))
}

/// The log-density of a diagonal Gaussian in `d` dimensions at an action, from its sums over
/// the dimensions: `sq` of the squared standardized errors `((a - mu) / sigma)^2` and `ls_sum`
/// of the log-stds: `-sq / 2 - (ls_sum + d ln(2 pi) / 2)`. [`gaussian`] is the same formula
/// on tensors.
#[inline]
pub fn gaussian_logp<T: Real>(sq: T, ls_sum: T, d: usize) -> T {
    -T::HALF * sq - (ls_sum + log_normalizer::<T>(d))
}

/// The entropy of a diagonal Gaussian in `d` dimensions from the sum of its log-stds:
/// `ls_sum + d (1 + ln(2 pi)) / 2`. [`gaussian`] is the same formula on tensors.
#[inline]
pub fn gaussian_entropy<T: Real>(ls_sum: T, d: usize) -> T {
    ls_sum + entropy_offset::<T>(d)
}

/// Log-probabilities of `actions` and entropies of categorical distributions.
///
/// # Shapes
/// `logits`: `[B, n]`; `mask_bias`: `[B, n]` (0 for available, [`MASKED_LOGIT`] for masked);
/// `actions`: `[B]` u32. Returns `([B], [B])`.
pub fn categorical(
    logits: &Tensor,
    mask_bias: Option<&Tensor>,
    actions: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let logits = match mask_bias {
        Some(m) => (logits + m)?,
        None => logits.clone(),
    };
    let logp_all = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let logp = logp_all.gather(&actions.unsqueeze(1)?, 1)?.squeeze(1)?;
    let entropy = (logp_all.exp()? * &logp_all)?.sum(1)?.neg()?;
    Ok((logp, entropy))
}

/// Log-probabilities and entropies of diagonal Gaussians.
///
/// # Shapes
/// `mean`, `log_std`, `actions`: `[B, d]` (each row may come from a different actor's
/// state-independent log std). Returns `([B], [B])`.
pub fn gaussian(mean: &Tensor, log_std: &Tensor, actions: &Tensor) -> Result<(Tensor, Tensor)> {
    let d = mean.dim(1)?;
    let inv_var = (log_std * -2.0)?.exp()?; // 1 / sigma^2
    let sq = ((actions - mean)?.sqr()? * inv_var)?;
    let ls_sum = log_std.sum(1)?;
    // gaussian_logp and gaussian_entropy, row-wise.
    let logp = ((sq.sum(1)? * -0.5)? - (&ls_sum + log_normalizer::<f64>(d))?)?;
    let entropy = (ls_sum + entropy_offset::<f64>(d))?;
    Ok((logp, entropy))
}

/// Row-wise log-softmax of `logits + mask_bias` (`[rows, n]`) on the host, into `out`: what
/// the CPU learner's rollout uses instead of a candle op per step.
pub fn log_softmax_rows(logits: &[f32], mask_bias: Option<&[f32]>, n: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend_from_slice(logits);
    if let Some(b) = mask_bias {
        out.iter_mut().zip(b).for_each(|(x, &m)| *x += m);
    }
    for row in out.chunks_exact_mut(n) {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
        let log_sum = row.iter().map(|&x| (x - max).exp()).sum::<f32>().ln();
        // The same rounding as the loss's log-probabilities (`algo::ppo_cpu`), so that acting
        // and training see equal numbers.
        row.iter_mut().for_each(|x| *x = (*x - max) - log_sum);
    }
}

/// Samples an index from one row of log-probabilities (`greedy`: the most likely), returns it
/// and its log-probability.
pub fn sample_categorical(logp_row: &[f32], greedy: bool, rng: &mut ChaCha8Rng) -> (usize, f32) {
    let pick = if greedy {
        logp_row
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &l)| {
                if l > best.1 {
                    (i, l)
                } else {
                    best
                }
            })
            .0
    } else {
        let u: f32 = rng.random();
        let mut acc = 0.0;
        let mut pick = None;
        for (i, &l) in logp_row.iter().enumerate() {
            acc += l.exp();
            if u < acc {
                pick = Some(i);
                break;
            }
        }
        // Rounding can leave the sum a hair below u: take the last available action.
        pick.unwrap_or_else(|| {
            logp_row
                .iter()
                .rposition(|&l| l > MASKED_LOGIT / 2.0)
                .unwrap_or(0)
        })
    };
    (pick, logp_row[pick])
}

/// Samples a Gaussian action (`greedy`: the mean) and returns its log-probability.
pub fn sample_gaussian(
    mean: &[f32],
    log_std: &[f32],
    greedy: bool,
    rng: &mut ChaCha8Rng,
    out: &mut [f32],
) -> f32 {
    let mut logp = 0.0f64;
    for i in 0..mean.len() {
        let eps = if greedy {
            0.0
        } else {
            super::init::normal(rng)
        };
        let sd = f64::from(log_std[i]).exp();
        out[i] = (f64::from(mean[i]) + sd * eps) as f32;
        let z = (f64::from(out[i]) - f64::from(mean[i])) / sd;
        // Summed per dimension in f64 and rounded once to f32: `gaussian_logp` over the sums
        // rounds otherwise, and would change the recorded log-probabilities' bits.
        logp += -0.5 * z * z - f64::from(log_std[i]) - HALF_LN_2PI;
    }
    logp as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn categorical_matches_the_closed_form() -> Result<()> {
        // logits [1, 2, 3]: p = softmax = [0.0900306, 0.2447285, 0.6652410]
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]], &dev)?;
        let actions = Tensor::new(&[2u32, 1], &dev)?;
        let (logp, ent) = categorical(&logits, None, &actions)?;
        let logp = logp.to_vec1::<f32>()?;
        let ent = ent.to_vec1::<f32>()?;
        assert!((logp[0] - 0.665_241_f32.ln()).abs() < 1e-5);
        assert!((logp[1] - (1.0f32 / 3.0).ln()).abs() < 1e-6);
        // H = -sum p ln p = 0.8323951 for [1,2,3]; ln 3 for uniform.
        assert!((ent[0] - 0.832_395_1).abs() < 1e-5, "{}", ent[0]);
        assert!((ent[1] - 3f32.ln()).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn masked_actions_get_no_probability_and_no_entropy() -> Result<()> {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[0.0f32, 0.0, 0.0]], &dev)?;
        let mask = Tensor::new(&[[0.0f32, MASKED_LOGIT, 0.0]], &dev)?;
        let (logp, ent) = categorical(&logits, Some(&mask), &Tensor::new(&[0u32], &dev)?)?;
        assert!((logp.to_vec1::<f32>()?[0] - 0.5f32.ln()).abs() < 1e-6);
        assert!((ent.to_vec1::<f32>()?[0] - 2f32.ln()).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn gaussian_matches_the_closed_form() -> Result<()> {
        // mean 0, log_std ln 2 (sigma 2), action 1 in one dim:
        // logp = -1/8 - ln 2 - ln(2 pi)/2 = -1.7370857; entropy = 1/2 + ln(2 pi)/2 + ln 2 = 2.1120857
        let dev = Device::Cpu;
        let mean = Tensor::new(&[[0.0f32, 1.0]], &dev)?;
        let log_std = Tensor::new(&[[2f32.ln(), 0.0]], &dev)?;
        let act = Tensor::new(&[[1.0f32, 1.0]], &dev)?;
        let (logp, ent) = gaussian(&mean, &log_std, &act)?;
        let want_logp = -0.125 - 2f64.ln() - HALF_LN_2PI + (-HALF_LN_2PI);
        assert!((f64::from(logp.to_vec1::<f32>()?[0]) - want_logp).abs() < 1e-5);
        let want_ent = 2.0 * (0.5 + HALF_LN_2PI) + 2f64.ln();
        assert!((f64::from(ent.to_vec1::<f32>()?[0]) - want_ent).abs() < 1e-5);
        Ok(())
    }

    #[test]
    fn scalar_gaussian_formulas_match_the_tensor_ones_and_keep_the_f32_constant() -> Result<()> {
        // The f32 constant the CPU loss has always used.
        assert_eq!((HALF_LN_2PI as f32).to_bits(), 0.918_938_5f32.to_bits());
        let dev = Device::Cpu;
        let (mean, log_std, act) = ([0.3f32, -1.0], [-0.5f32, 0.2], [1.0f32, 0.5]);
        let t = |v: &[f32]| Tensor::from_slice(v, (1, 2), &dev);
        let (logp, ent) = gaussian(&t(&mean)?, &t(&log_std)?, &t(&act)?)?;
        let (mut sq, mut ls_sum) = (0.0f32, 0.0f32);
        for j in 0..2 {
            let z = (act[j] - mean[j]) * (-log_std[j]).exp();
            sq += z * z;
            ls_sum += log_std[j];
        }
        assert!((gaussian_logp(sq, ls_sum, 2) - logp.to_vec1::<f32>()?[0]).abs() < 1e-6);
        assert!((gaussian_entropy(ls_sum, 2) - ent.to_vec1::<f32>()?[0]).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn host_sampling_follows_the_probabilities() {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let logp = [0.1f32.ln(), 0.6f32.ln(), 0.3f32.ln()];
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[sample_categorical(&logp, false, &mut rng).0] += 1;
        }
        assert!(
            (counts[1] as f64 / 30_000.0 - 0.6).abs() < 0.01,
            "{counts:?}"
        );
        assert_eq!(sample_categorical(&logp, true, &mut rng).0, 1);
    }
}
