//! `mpe/simple_adversary_v3`: N good agents guard a goal landmark that one adversary, who does
//! not know which landmark it is, tries to reach (mpe2 `simple_adversary`).
//!
//! | | |
//! |---|---|
//! | Agents | `adversary_0` (type `adversary`), `agent_0` .. `agent_{N-1}` (type `agent`); size 0.15, no collision, silent |
//! | Landmarks | N, size 0.08; one is the goal, drawn at reset |
//! | Actions | `Discrete(5)` or `Box(0,1,(5,))` |
//! | Observation | adversary (4N): `landmark_rel(2N), good_rel(2N)`; good (4N + 2): `goal_rel(2), landmark_rel(2N), other_rel(2N)` |
//! | State | all observations concatenated (28 for N = 2) |
//! | Reward | adversary: `-dist(adv, goal)`; every good agent: `-min_k dist(good_k, goal) + dist(adv, goal)` |
//! | Episode | truncated after `max_cycles` (25) |
//!
//! Parameters: `N` (2), `max_cycles` (25), `continuous_actions` (false). State field
//! `goal_landmark` (1).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::core::{EntityParams, World};
use super::env::{get_indices, put_rel, uniform2, Scenario};
use crate::api::WorldState;
use crate::error::EnvError;

/// Parameters of `simple_adversary_v3`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdversaryParams {
    /// Number of good agents and of landmarks.
    #[serde(rename = "N")]
    pub n: usize,
    /// Episode length.
    pub max_cycles: usize,
    /// Box actions instead of discrete ones.
    pub continuous_actions: bool,
}

impl Default for AdversaryParams {
    fn default() -> Self {
        Self {
            n: 2,
            max_cycles: 25,
            continuous_actions: false,
        }
    }
}

/// The adversary scenario.
#[derive(Debug, Clone)]
pub struct Adversary {
    n: usize,
    goal: usize,
}

impl Adversary {
    /// An adversary scenario with `n` good agents.
    pub fn new(p: &AdversaryParams) -> Self {
        Self { n: p.n, goal: 0 }
    }
}

impl Scenario for Adversary {
    fn make_world(&self) -> World {
        let mut params = vec![EntityParams::agent("adversary_0".into(), 0.15)];
        params.extend((0..self.n).map(|i| EntityParams::agent(format!("agent_{i}"), 0.15)));
        params.iter_mut().for_each(|p| p.collide = false);
        params.extend((0..self.n).map(|i| EntityParams::landmark(format!("landmark {i}"), 0.08)));
        World::new(self.n + 1, 2, params)
    }

    fn adversaries(&self, _world: &World) -> Vec<bool> {
        let mut a = vec![true];
        a.extend(std::iter::repeat_n(false, self.n));
        a
    }

    fn agent_types(&self, _world: &World) -> Vec<String> {
        let mut t = vec!["adversary".to_string()];
        t.extend(std::iter::repeat_n("agent".to_string(), self.n));
        t
    }

    fn obs_dims(&self, _world: &World) -> Vec<usize> {
        let mut d = vec![4 * self.n];
        d.extend(std::iter::repeat_n(4 * self.n + 2, self.n));
        d
    }

    fn reset(&mut self, world: &mut World, rng: &mut ChaCha8Rng) {
        self.goal = rng.random_range(0..self.n);
        for p in world.pos.iter_mut() {
            *p = uniform2(rng, -1.0, 1.0);
        }
    }

    fn observe(&self, world: &World, i: usize, out: &mut [f32]) {
        let me = world.pos[i];
        let mut k = 0;
        if i > 0 {
            put_rel(out, &mut k, world.pos[world.landmark(self.goal)], me);
        }
        for l in 0..self.n {
            put_rel(out, &mut k, world.pos[world.landmark(l)], me);
        }
        for j in (0..=self.n).filter(|&j| j != i) {
            put_rel(out, &mut k, world.pos[j], me);
        }
    }

    fn rewards(&self, world: &World, out: &mut [f64]) {
        let goal = world.landmark(self.goal);
        let adv = world.dist(0, goal);
        let mut best = f64::INFINITY;
        for k in 1..=self.n {
            let d = world.dist(k, goal);
            if d < best {
                best = d;
            }
        }
        out[0] = -adv;
        let good = -best + (0.0 + adv);
        out[1..].fill(good);
    }

    fn extra_fields(&self) -> &'static [&'static str] {
        &["goal_landmark"]
    }

    fn get_extra(&self, state: &mut WorldState) {
        state.insert("goal_landmark", vec![self.goal as f64]);
    }

    fn set_extra(&mut self, state: &WorldState, _world: &World) -> Result<(), EnvError> {
        self.goal = get_indices(state, "goal_landmark", 1, self.n)?[0];
        Ok(())
    }

    fn extra_values(&self) -> Vec<f64> {
        vec![self.goal as f64]
    }

    fn set_extra_values(&mut self, values: &[f64]) {
        self.goal = values[0] as usize;
    }
}
