//! Weight initialization from our own seeded generator (candle's CPU generator cannot be
//! seeded): orthogonal matrices with a gain, as on-policy, CleanRL and JaxMARL initialize PPO
//! networks.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A standard normal draw (Box-Muller).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A `rows x cols` matrix (row-major) with orthonormal rows or columns, times `gain`: the QR
/// of a Gaussian matrix with the signs of R's diagonal folded in, as `torch.nn.init.orthogonal_`.
pub fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    // Orthonormalize the columns of a tall matrix (n x k, n >= k) by modified Gram-Schmidt.
    let (n, k, transpose) = if rows >= cols {
        (rows, cols, false)
    } else {
        (cols, rows, true)
    };
    let mut a: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..n).map(|_| normal(rng)).collect())
        .collect();
    for j in 0..k {
        for i in 0..j {
            let dot: f64 = (0..n).map(|t| a[i][t] * a[j][t]).sum();
            for t in 0..n {
                a[j][t] -= dot * a[i][t];
            }
        }
        let norm = a[j].iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        // Dividing by the positive norm is the sign fold: R's diagonal is then positive.
        a[j].iter_mut().for_each(|x| *x /= norm);
    }
    let mut out = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let v = if transpose { a[r][c] } else { a[c][r] };
            out[r * cols + c] = (gain * v) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn orthogonal_rows_or_columns_scaled_by_the_gain() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for (rows, cols) in [(64, 18), (5, 64), (64, 64)] {
            let w = orthogonal(rows, cols, 2.0, &mut rng);
            // W W^T = 4 I when rows <= cols, W^T W = 4 I otherwise.
            let (outer, inner) = if rows <= cols {
                (rows, cols)
            } else {
                (cols, rows)
            };
            for i in 0..outer {
                for j in 0..outer {
                    let dot: f64 = (0..inner)
                        .map(|t| {
                            let (a, b) = if rows <= cols {
                                (w[i * cols + t], w[j * cols + t])
                            } else {
                                (w[t * cols + i], w[t * cols + j])
                            };
                            f64::from(a) * f64::from(b)
                        })
                        .sum();
                    let want = if i == j { 4.0 } else { 0.0 };
                    assert!(
                        (dot - want).abs() < 1e-4,
                        "{rows}x{cols}: ({i},{j}) = {dot}"
                    );
                }
            }
        }
    }
}
