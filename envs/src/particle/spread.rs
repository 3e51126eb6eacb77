//! `mpe/simple_spread_v3`: N agents cover N landmarks without colliding (mpe2 `simple_spread`).
//!
//! | | |
//! |---|---|
//! | Agents | `agent_0` .. `agent_{N-1}`, one type `agent`; size 0.15, collide, silent |
//! | Landmarks | N, size 0.05, fixed, no collision |
//! | Actions | `Discrete(5)` (no-op, -x, +x, -y, +y) or `Box(0, 1, (5,))` |
//! | Observation (4N + 6 ... = 6N) | `self_vel(2), self_pos(2), landmark_rel(2N), other_rel(2(N-1)), other_comm(2(N-1))` (comm always 0) |
//! | State | all observations concatenated, `6N^2` (54 for N = 3) |
//! | Reward | `r_i = g * (1 - local_ratio) + l_i * local_ratio`, `g = -sum_l min_a dist(a, l)`, `l_i = -1` per other agent closer than 0.3 |
//! | Episode | truncated after `max_cycles` (25); never terminated |
//!
//! Parameters: `N` (3), `local_ratio` (0.5), `max_cycles` (25), `continuous_actions` (false).

use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::core::{EntityParams, World};
use super::env::{put2, put_rel, uniform2, Scenario};

/// Parameters of `simple_spread_v3`, named as mpe2's `parallel_env` keyword arguments.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpreadParams {
    /// Number of agents and of landmarks.
    #[serde(rename = "N")]
    pub n: usize,
    /// Weight of the agent's own collision penalty against the shared coverage reward.
    pub local_ratio: f64,
    /// Episode length.
    pub max_cycles: usize,
    /// `Box(0,1,(5,))` actions instead of `Discrete(5)`.
    pub continuous_actions: bool,
}

impl Default for SpreadParams {
    fn default() -> Self {
        Self {
            n: 3,
            local_ratio: 0.5,
            max_cycles: 25,
            continuous_actions: false,
        }
    }
}

/// The spread scenario.
#[derive(Debug, Clone)]
pub struct Spread {
    n: usize,
    local_ratio: f64,
}

impl Spread {
    /// A spread scenario with `n` agents and landmarks.
    pub fn new(p: &SpreadParams) -> Self {
        Self {
            n: p.n,
            local_ratio: p.local_ratio,
        }
    }
}

impl Scenario for Spread {
    fn make_world(&self) -> World {
        let mut params: Vec<EntityParams> = (0..self.n)
            .map(|i| EntityParams::agent(format!("agent_{i}"), 0.15))
            .collect();
        params.extend((0..self.n).map(|i| EntityParams::landmark(format!("landmark {i}"), 0.05)));
        World::new(self.n, 2, params)
    }

    fn agent_types(&self, _world: &World) -> Vec<String> {
        vec!["agent".to_string(); self.n]
    }

    fn obs_dims(&self, _world: &World) -> Vec<usize> {
        vec![4 + 2 * self.n + 4 * (self.n - 1); self.n]
    }

    fn reset(&mut self, world: &mut World, rng: &mut ChaCha8Rng) {
        for p in world.pos.iter_mut() {
            *p = uniform2(rng, -1.0, 1.0);
        }
    }

    fn observe(&self, world: &World, i: usize, out: &mut [f32]) {
        let n = self.n;
        let me = world.pos[i];
        let mut k = 0;
        put2(out, &mut k, world.vel[i]);
        put2(out, &mut k, me);
        for l in 0..n {
            put_rel(out, &mut k, world.pos[n + l], me);
        }
        for j in (0..n).filter(|&j| j != i) {
            put_rel(out, &mut k, world.pos[j], me);
        }
        for j in (0..n).filter(|&j| j != i) {
            for &c in world.comm_of(j) {
                out[k] = c as f32;
                k += 1;
            }
        }
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["collisions", "occupied_landmarks"]
    }

    /// mpe2's benchmark figures: `collisions`, agent pairs in contact summed over the steps;
    /// `occupied_landmarks`, landmarks with an agent within 0.1 at the last step.
    fn add_metrics(&self, world: &World, acc: &mut [f64]) {
        let n = self.n;
        for a in 0..n {
            for b in a + 1..n {
                if world.is_collision(a, b) {
                    acc[0] += 1.0;
                }
            }
        }
        acc[1] = (n..2 * n)
            .filter(|&l| (0..n).any(|a| world.dist(a, l) < 0.1))
            .count() as f64;
    }

    fn rewards(&self, world: &World, out: &mut [f64]) {
        let n = self.n;
        let mut global = 0.0;
        for l in n..2 * n {
            let mut best = f64::INFINITY;
            for a in 0..n {
                let d = world.dist(a, l);
                // Python's min keeps the first smallest; no NaN can occur here.
                if d < best {
                    best = d;
                }
            }
            global -= best;
        }
        out[..n].fill(0.0);
        // Each colliding pair costs both agents 1; dist(a, b) == dist(b, a) bit for bit, so
        // each pair is measured once.
        for a in 0..n {
            for b in a + 1..n {
                if world.is_collision(a, b) {
                    out[a] -= 1.0;
                    out[b] -= 1.0;
                }
            }
        }
        for r in out[..n].iter_mut() {
            *r = global * (1.0 - self.local_ratio) + *r * self.local_ratio;
        }
    }
}
