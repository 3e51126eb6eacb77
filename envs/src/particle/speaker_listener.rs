//! `mpe/simple_speaker_listener_v4`: a speaker that sees the goal tells a listener that moves
//! (mpe2 `simple_speaker_listener`).
//!
//! | | |
//! |---|---|
//! | Agents | `speaker_0` (type `speaker`: fixed, says one of 3 words), `listener_0` (type `listener`: moves, silent); size 0.075, no collision |
//! | Landmarks | 3, size 0.04; one of them is the goal, drawn at reset |
//! | Actions | speaker `Discrete(3)` / `Box(0,1,(3,))` (its word); listener `Discrete(5)` / `Box(0,1,(5,))` |
//! | Observation | speaker (3): the goal landmark's colour; listener (11): `self_vel(2), landmark_rel(6), speaker_comm(3)` |
//! | State | both observations concatenated (14) |
//! | Reward | both agents: `-(dx*dx + dy*dy)`, `d = listener.pos - goal.pos` |
//! | Episode | truncated after `max_cycles` (25) |
//!
//! Parameters: `max_cycles` (25), `continuous_actions` (false). State field `goal_landmark` (1).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::core::{EntityParams, World};
use super::env::{get_indices, put2, put_rel, uniform2, Scenario};
use crate::api::WorldState;
use crate::error::EnvError;

/// Parameters of `simple_speaker_listener_v4`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpeakerListenerParams {
    /// Episode length.
    pub max_cycles: usize,
    /// Box actions instead of discrete ones.
    pub continuous_actions: bool,
}

impl Default for SpeakerListenerParams {
    fn default() -> Self {
        Self {
            max_cycles: 25,
            continuous_actions: false,
        }
    }
}

/// mpe2's landmark colours (red, green, blue shades); the speaker observes the goal's.
pub const LANDMARK_COLORS: [[f64; 3]; 3] =
    [[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]];

/// The speaker-listener scenario.
#[derive(Debug, Clone, Default)]
pub struct SpeakerListener {
    goal: usize,
}

impl Scenario for SpeakerListener {
    fn make_world(&self) -> World {
        let mut speaker = EntityParams::agent("speaker_0".into(), 0.075);
        speaker.movable = false;
        speaker.silent = false;
        speaker.collide = false;
        let mut listener = EntityParams::agent("listener_0".into(), 0.075);
        listener.collide = false;
        let mut params = vec![speaker, listener];
        params.extend((0..3).map(|i| EntityParams::landmark(format!("landmark {i}"), 0.04)));
        World::new(2, 3, params)
    }

    fn agent_types(&self, _world: &World) -> Vec<String> {
        vec!["speaker".into(), "listener".into()]
    }

    fn obs_dims(&self, _world: &World) -> Vec<usize> {
        vec![3, 11]
    }

    fn reset(&mut self, world: &mut World, rng: &mut ChaCha8Rng) {
        self.goal = rng.random_range(0..3);
        for p in world.pos.iter_mut() {
            *p = uniform2(rng, -1.0, 1.0);
        }
    }

    fn observe(&self, world: &World, i: usize, out: &mut [f32]) {
        if i == 0 {
            for (o, &c) in out.iter_mut().zip(&LANDMARK_COLORS[self.goal]) {
                *o = c as f32;
            }
            return;
        }
        let me = world.pos[1];
        let mut k = 0;
        put2(out, &mut k, world.vel[1]);
        for l in 0..3 {
            put_rel(out, &mut k, world.pos[world.landmark(l)], me);
        }
        for &c in world.comm_of(0) {
            out[k] = c as f32;
            k += 1;
        }
    }

    fn rewards(&self, world: &World, out: &mut [f64]) {
        let goal = world.landmark(self.goal);
        let dx = world.pos[1][0] - world.pos[goal][0];
        let dy = world.pos[1][1] - world.pos[goal][1];
        out.fill(-(dx * dx + dy * dy));
    }

    fn extra_fields(&self) -> &'static [&'static str] {
        &["goal_landmark"]
    }

    fn get_extra(&self, state: &mut WorldState) {
        state.insert("goal_landmark", vec![self.goal as f64]);
    }

    fn set_extra(&mut self, state: &WorldState, _world: &World) -> Result<(), EnvError> {
        self.goal = get_indices(state, "goal_landmark", 1, 3)?[0];
        Ok(())
    }

    fn extra_values(&self) -> Vec<f64> {
        vec![self.goal as f64]
    }

    fn set_extra_values(&mut self, values: &[f64]) {
        self.goal = values[0] as usize;
    }
}
