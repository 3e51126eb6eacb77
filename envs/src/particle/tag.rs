//! `mpe/simple_tag_v3`: predator-prey. Slower adversaries chase faster good agents among
//! obstacles (mpe2 `simple_tag`).
//!
//! | | |
//! |---|---|
//! | Agents | `adversary_0..` (type `adversary`: size 0.075, accel 3, max speed 1.0), then `agent_0..` (type `agent`: size 0.05, accel 4, max speed 1.3); all collide, silent |
//! | Landmarks | `num_obstacles` obstacles, size 0.2, collide, fixed, placed in `U(-0.9, 0.9)^2` |
//! | Actions | `Discrete(5)` or `Box(0,1,(5,))` |
//! | Observation | `self_vel(2), self_pos(2), obstacle_rel(2 * obstacles), other_rel(2 * (agents - 1)), vel of the other good agents` (16 adversary / 14 good with the defaults) |
//! | State | all observations concatenated (62 with the defaults) |
//! | Reward | adversary: `+10` per (good, adversary) pair in contact, the same for every adversary; good: `-10` per adversary in contact, minus `bound(|x|) + bound(|y|)` (0 below 0.9, `10 (x - 0.9)` below 1, else `min(exp(2x - 2), 10)`) |
//! | Episode | truncated after `max_cycles` (25) |
//!
//! Parameters: `num_good` (1), `num_adversaries` (3), `num_obstacles` (2), `max_cycles` (25),
//! `continuous_actions` (false).

use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::core::{EntityParams, World};
use super::env::{put2, put_rel, uniform2, Scenario};
use super::numpy_exp::numpy_exp;

/// Parameters of `simple_tag_v3`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TagParams {
    /// Number of good agents (prey).
    pub num_good: usize,
    /// Number of adversaries (predators).
    pub num_adversaries: usize,
    /// Number of obstacles.
    pub num_obstacles: usize,
    /// Episode length.
    pub max_cycles: usize,
    /// Box actions instead of discrete ones.
    pub continuous_actions: bool,
}

impl Default for TagParams {
    fn default() -> Self {
        Self {
            num_good: 1,
            num_adversaries: 3,
            num_obstacles: 2,
            max_cycles: 25,
            continuous_actions: false,
        }
    }
}

/// The tag scenario.
#[derive(Debug, Clone)]
pub struct Tag {
    num_good: usize,
    num_adv: usize,
    num_obstacles: usize,
}

impl Tag {
    /// A tag scenario.
    pub fn new(p: &TagParams) -> Self {
        Self {
            num_good: p.num_good,
            num_adv: p.num_adversaries,
            num_obstacles: p.num_obstacles,
        }
    }

    fn n_agents(&self) -> usize {
        self.num_good + self.num_adv
    }

    fn is_adversary(&self, i: usize) -> bool {
        i < self.num_adv
    }
}

/// The good agents' penalty for leaving the arena, per coordinate.
fn bound(x: f64) -> f64 {
    if x < 0.9 {
        0.0
    } else if x < 1.0 {
        (x - 0.9) * 10.0
    } else {
        numpy_exp(2.0 * x - 2.0).min(10.0)
    }
}

impl Scenario for Tag {
    fn make_world(&self) -> World {
        let mut params: Vec<EntityParams> = (0..self.n_agents())
            .map(|i| {
                let adv = self.is_adversary(i);
                let name = if adv {
                    format!("adversary_{i}")
                } else {
                    format!("agent_{}", i - self.num_adv)
                };
                let mut a = EntityParams::agent(name, if adv { 0.075 } else { 0.05 });
                a.accel = Some(if adv { 3.0 } else { 4.0 });
                a.max_speed = Some(if adv { 1.0 } else { 1.3 });
                a
            })
            .collect();
        params.extend((0..self.num_obstacles).map(|i| {
            let mut l = EntityParams::landmark(format!("landmark {i}"), 0.2);
            l.collide = true;
            l
        }));
        World::new(self.n_agents(), 2, params)
    }

    fn adversaries(&self, _world: &World) -> Vec<bool> {
        (0..self.n_agents()).map(|i| self.is_adversary(i)).collect()
    }

    fn agent_types(&self, _world: &World) -> Vec<String> {
        (0..self.n_agents())
            .map(|i| {
                if self.is_adversary(i) {
                    "adversary"
                } else {
                    "agent"
                }
                .to_string()
            })
            .collect()
    }

    fn obs_dims(&self, _world: &World) -> Vec<usize> {
        let n = self.n_agents();
        (0..n)
            .map(|i| {
                let other_good = self.num_good - usize::from(!self.is_adversary(i));
                4 + 2 * self.num_obstacles + 2 * (n - 1) + 2 * other_good
            })
            .collect()
    }

    fn reset(&mut self, world: &mut World, rng: &mut ChaCha8Rng) {
        let n = self.n_agents();
        for (e, p) in world.pos.iter_mut().enumerate() {
            let r = if e < n { 1.0 } else { 0.9 };
            *p = uniform2(rng, -r, r);
        }
    }

    fn observe(&self, world: &World, i: usize, out: &mut [f32]) {
        let n = self.n_agents();
        let me = world.pos[i];
        let mut k = 0;
        put2(out, &mut k, world.vel[i]);
        put2(out, &mut k, me);
        for l in 0..self.num_obstacles {
            put_rel(out, &mut k, world.pos[world.landmark(l)], me);
        }
        for j in (0..n).filter(|&j| j != i) {
            put_rel(out, &mut k, world.pos[j], me);
        }
        for j in (self.num_adv..n).filter(|&j| j != i) {
            put2(out, &mut k, world.vel[j]);
        }
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["catches"]
    }

    /// `catches`: adversary-prey contacts summed over the steps (a contact lasting k steps
    /// counts k times, as the reward does).
    fn add_metrics(&self, world: &World, acc: &mut [f64]) {
        for good in self.num_adv..self.n_agents() {
            for adv in 0..self.num_adv {
                if world.is_collision(good, adv) {
                    acc[0] += 1.0;
                }
            }
        }
    }

    fn rewards(&self, world: &World, out: &mut [f64]) {
        let n = self.n_agents();
        let mut caught = 0.0;
        for good in self.num_adv..n {
            for adv in 0..self.num_adv {
                if world.is_collision(good, adv) {
                    caught += 10.0;
                }
            }
        }
        out[..self.num_adv].fill(caught);
        for (good, out) in out.iter_mut().enumerate().take(n).skip(self.num_adv) {
            let mut r = 0.0;
            for adv in 0..self.num_adv {
                if world.is_collision(adv, good) {
                    r -= 10.0;
                }
            }
            for d in 0..2 {
                r -= bound(world.pos[good][d].abs());
            }
            *out = r;
        }
    }
}
