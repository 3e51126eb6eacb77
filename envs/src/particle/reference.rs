//! `mpe/simple_reference_v3`: two agents each know where the *other* must go and must say it
//! (mpe2 `simple_reference`).
//!
//! | | |
//! |---|---|
//! | Agents | `agent_0`, `agent_1`, type `agent`; size 0.05, no collision, speak 10 words |
//! | Landmarks | 3, size 0.05, colours red/green/blue; goal `g_i` of each agent drawn at reset |
//! | Actions | `Discrete(50)` = `move + 5 * word`, or `Box(0,1,(15,))` = 5 movement + 10 comm |
//! | Observation (21) | `self_vel(2), landmark_rel(6), colour of landmark g_i (3), partner_comm(10)` |
//! | State | both observations concatenated (42) |
//! | Without `env_channel` | actions `Discrete(5)` / `Box(0,1,(5,))` (movement only), observation (11) without `partner_comm`, state (22) |
//! | Reward | `l_i = -dist(partner, landmark g_i)`, `g = (l_0 + l_1) / 2`, `r_i = g (1 - local_ratio) + l_i local_ratio` |
//! | Episode | truncated after `max_cycles` (25) |
//!
//! Parameters: `local_ratio` (0.5), `max_cycles` (25), `continuous_actions` (false),
//! `env_channel` (true). State field `goal_landmark` (2).
//!
//! `env_channel = false` removes the environment's say channel: the agents are silent (mpe's
//! `silent = True`), so neither the word action nor the partner's utterance exists, and the only
//! way an agent can learn its own goal is a communication channel the learner adds. Movement,
//! resets (the same draws from the same seed) and rewards are those of the default scenario.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::core::{EntityParams, World};
use super::env::{get_indices, put2, put_rel, uniform2, Scenario};
use crate::api::WorldState;
use crate::error::EnvError;

/// Parameters of `simple_reference_v3`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReferenceParams {
    /// Weight of the agent's own term against the mean of both.
    pub local_ratio: f64,
    /// Episode length.
    pub max_cycles: usize,
    /// Box actions instead of discrete ones.
    pub continuous_actions: bool,
    /// Whether the environment carries the agents' say channel (mpe2's scenario: true). False
    /// makes the agents silent: movement-only actions, no partner utterance in the observation.
    pub env_channel: bool,
}

impl Default for ReferenceParams {
    fn default() -> Self {
        Self {
            local_ratio: 0.5,
            max_cycles: 25,
            continuous_actions: false,
            env_channel: true,
        }
    }
}

const COLORS: [[f64; 3]; 3] = [[0.75, 0.25, 0.25], [0.25, 0.75, 0.25], [0.25, 0.25, 0.75]];

/// The reference scenario.
#[derive(Debug, Clone)]
pub struct Reference {
    local_ratio: f64,
    env_channel: bool,
    goals: [usize; 2],
}

impl Reference {
    /// A reference scenario.
    pub fn new(p: &ReferenceParams) -> Self {
        Self {
            local_ratio: p.local_ratio,
            env_channel: p.env_channel,
            goals: [0, 0],
        }
    }

    /// `l_i`: minus the partner's distance to the landmark agent `i` knows.
    fn local(&self, world: &World, i: usize) -> f64 {
        -world.dist(1 - i, world.landmark(self.goals[i]))
    }
}

impl Scenario for Reference {
    fn make_world(&self) -> World {
        let mut params: Vec<EntityParams> = (0..2)
            .map(|i| {
                let mut a = EntityParams::agent(format!("agent_{i}"), 0.05);
                a.collide = false;
                a.silent = !self.env_channel;
                a
            })
            .collect();
        params.extend((0..3).map(|i| EntityParams::landmark(format!("landmark {i}"), 0.05)));
        World::new(2, 10, params)
    }

    fn agent_types(&self, _world: &World) -> Vec<String> {
        vec!["agent".into(); 2]
    }

    fn obs_dims(&self, _world: &World) -> Vec<usize> {
        vec![if self.env_channel { 21 } else { 11 }; 2]
    }

    fn reset(&mut self, world: &mut World, rng: &mut ChaCha8Rng) {
        self.goals = [rng.random_range(0..3), rng.random_range(0..3)];
        for p in world.pos.iter_mut() {
            *p = uniform2(rng, -1.0, 1.0);
        }
    }

    fn observe(&self, world: &World, i: usize, out: &mut [f32]) {
        let me = world.pos[i];
        let mut k = 0;
        put2(out, &mut k, world.vel[i]);
        for l in 0..3 {
            put_rel(out, &mut k, world.pos[world.landmark(l)], me);
        }
        for &c in &COLORS[self.goals[i]] {
            out[k] = c as f32;
            k += 1;
        }
        if self.env_channel {
            for &c in world.comm_of(1 - i) {
                out[k] = c as f32;
                k += 1;
            }
        }
    }

    fn rewards(&self, world: &World, out: &mut [f64]) {
        let local = [self.local(world, 0), self.local(world, 1)];
        let global = (0.0 + local[0] + local[1]) / 2.0;
        for (i, r) in out.iter_mut().enumerate() {
            *r = global * (1.0 - self.local_ratio) + local[i] * self.local_ratio;
        }
    }

    fn extra_fields(&self) -> &'static [&'static str] {
        &["goal_landmark"]
    }

    fn get_extra(&self, state: &mut WorldState) {
        state.insert(
            "goal_landmark",
            self.goals.iter().map(|&g| g as f64).collect(),
        );
    }

    fn set_extra(&mut self, state: &WorldState, _world: &World) -> Result<(), EnvError> {
        let g = get_indices(state, "goal_landmark", 2, 3)?;
        self.goals = [g[0], g[1]];
        Ok(())
    }

    fn extra_values(&self) -> Vec<f64> {
        self.goals.iter().map(|&g| g as f64).collect()
    }

    fn set_extra_values(&mut self, values: &[f64]) {
        self.goals = [values[0] as usize, values[1] as usize];
    }
}
