//! Generalized advantage estimation over a rollout, as a pure function on slices.
//!
//! Every column (one agent of one environment) is a stream of `T` steps, stored `[T, columns]`.
//! The caller says, per step, which value the next state has (`next_values`: 0 after a
//! termination, the value of the final observation after a truncation, the next step's value
//! otherwise) and where an episode ended (`ended`), which cuts the lambda chain. Bootstrapping
//! at a time limit is right where the limit only cuts a longer task short; where the limit is
//! part of the scored task (MPE's 25 steps), the learner passes 0 there instead
//! (`ppo.bootstrap_truncation = false`).

/// Writes advantages and returns (`advantage + value`), both `[T, columns]`.
#[allow(clippy::too_many_arguments)]
pub fn compute(
    columns: usize,
    rewards: &[f32],
    values: &[f32],
    next_values: &[f32],
    ended: &[bool],
    gamma: f32,
    lambda: f32,
    advantages: &mut [f32],
    returns: &mut [f32],
) {
    let t_len = rewards.len() / columns.max(1);
    let mut carry = vec![0.0f32; columns];
    for t in (0..t_len).rev() {
        for c in 0..columns {
            let i = t * columns + c;
            let delta = rewards[i] + gamma * next_values[i] - values[i];
            let keep = if ended[i] { 0.0 } else { 1.0 };
            carry[c] = delta + gamma * lambda * keep * carry[c];
            advantages[i] = carry[c];
            returns[i] = carry[c] + values[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive definition: A_t = sum_k (gamma lambda)^k delta_{t+k} within the episode.
    fn naive(r: &[f32], v: &[f32], nv: &[f32], ended: &[bool], g: f32, l: f32) -> Vec<f32> {
        (0..r.len())
            .map(|t| {
                let mut a = 0.0;
                let mut w = 1.0;
                for k in t..r.len() {
                    a += w * (r[k] + g * nv[k] - v[k]);
                    if ended[k] {
                        break;
                    }
                    w *= g * l;
                }
                a
            })
            .collect()
    }

    #[test]
    fn matches_the_naive_sum_across_episode_boundaries() {
        let r = [1.0, 0.0, -1.0, 2.0, 0.5, 0.0];
        let v = [0.5, 0.2, 0.1, -0.3, 0.0, 1.0];
        // Step 2 ends an episode by truncation (bootstrap 0.7); step 5 runs on (next value 0.4).
        let nv = [0.2, 0.1, 0.7, 0.0, 1.0, 0.4];
        let ended = [false, false, true, false, false, false];
        let (mut a, mut ret) = ([0.0; 6], [0.0; 6]);
        compute(1, &r, &v, &nv, &ended, 0.99, 0.95, &mut a, &mut ret);
        let want = naive(&r, &v, &nv, &ended, 0.99, 0.95);
        for t in 0..6 {
            assert!(
                (a[t] - want[t]).abs() < 1e-6,
                "t={t}: {} vs {}",
                a[t],
                want[t]
            );
            assert!((ret[t] - (a[t] + v[t])).abs() < 1e-6);
        }
    }

    #[test]
    fn gamma_zero_gives_one_step_advantages_and_termination_does_not_bootstrap() {
        let (r, v) = ([1.0, 2.0], [0.5, 0.5]);
        let (mut a, mut ret) = ([0.0; 2], [0.0; 2]);
        compute(
            1,
            &r,
            &v,
            &[3.0, 3.0],
            &[false, false],
            0.0,
            0.95,
            &mut a,
            &mut ret,
        );
        assert_eq!(a, [0.5, 1.5]);
        // Terminated at the last step: next value 0, so A = r - v.
        compute(
            1,
            &r,
            &v,
            &[0.5, 0.0],
            &[false, true],
            1.0,
            1.0,
            &mut a,
            &mut ret,
        );
        assert_eq!(a[1], 1.5);
        assert_eq!(a[0], 1.0 + 0.5 - 0.5 + 1.5);
    }

    #[test]
    fn columns_are_independent() {
        // Two columns interleaved give the same as each alone.
        let r = [1.0, 5.0, 2.0, 6.0];
        let v = [0.1, 0.2, 0.3, 0.4];
        let nv = [0.3, 0.4, 0.9, 0.0];
        let ended = [false, false, false, true];
        let (mut a, mut ret) = ([0.0; 4], [0.0; 4]);
        compute(2, &r, &v, &nv, &ended, 0.9, 0.8, &mut a, &mut ret);
        let (mut a0, mut r0) = ([0.0; 2], [0.0; 2]);
        compute(
            1,
            &[1.0, 2.0],
            &[0.1, 0.3],
            &[0.3, 0.9],
            &[false, false],
            0.9,
            0.8,
            &mut a0,
            &mut r0,
        );
        assert_eq!([a[0], a[2]], a0);
    }
}
