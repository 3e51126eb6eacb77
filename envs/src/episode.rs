//! One environment's episode stepped by the caller: the buffers of a step, the returns so far
//! and whether it has ended, so that every loop that plays single episodes (rendering, timing,
//! evaluation pictures, tests) is the same few lines.

use crate::api::{all_ended, EnvSpec, MultiAgentEnv, StepOut};
use crate::error::EnvError;

/// An episode in progress: the buffers of its last step, its returns so far and its length.
/// (Not a record of a finished episode: [`crate::testing::EpisodeLog`] keeps every step of one
/// for comparisons.)
#[derive(Debug, Clone)]
pub struct LiveEpisode {
    /// Observations after the last reset or step (`[obs_len]`).
    pub obs: Vec<f32>,
    /// Available actions for the next step (`[mask_len]`; all true where the environment has
    /// no masks).
    pub masks: Vec<bool>,
    /// The last step's rewards.
    pub rewards: Vec<f64>,
    /// The last step's terminations.
    pub terminated: Vec<bool>,
    /// The last step's truncations.
    pub truncated: Vec<bool>,
    /// Every agent's return so far.
    pub returns: Vec<f64>,
    /// Steps taken.
    pub steps: usize,
}

impl LiveEpisode {
    /// Resets `env` (`seed`: None continues its generator) and starts an episode.
    pub fn start<E: MultiAgentEnv + ?Sized>(env: &mut E, seed: Option<u64>) -> Self {
        let spec: &EnvSpec = env.spec();
        let n = spec.num_agents();
        let masked = spec.has_action_masks;
        let mut ep = Self {
            obs: vec![0.0; spec.obs_len()],
            masks: vec![true; spec.mask_len()],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            returns: vec![0.0; n],
            steps: 0,
        };
        env.reset(seed, &mut ep.obs);
        if masked {
            env.avail_actions(&mut ep.masks);
        }
        ep
    }

    /// Resets `env` into a new episode in the same buffers (no allocation).
    pub fn restart<E: MultiAgentEnv + ?Sized>(&mut self, env: &mut E, seed: Option<u64>) {
        env.reset(seed, &mut self.obs);
        self.masks.fill(true);
        if env.spec().has_action_masks {
            env.avail_actions(&mut self.masks);
        }
        self.returns.fill(0.0);
        self.steps = 0;
    }

    /// Steps `env` with the joint action; returns whether every agent's episode has ended.
    pub fn step<E: MultiAgentEnv + ?Sized>(
        &mut self,
        env: &mut E,
        actions: &[f32],
    ) -> Result<bool, EnvError> {
        let out = StepOut {
            obs: &mut self.obs,
            rewards: &mut self.rewards,
            terminated: &mut self.terminated,
            truncated: &mut self.truncated,
        };
        env.step(actions, out)?;
        if env.spec().has_action_masks {
            env.avail_actions(&mut self.masks);
        }
        self.steps += 1;
        self.returns
            .iter_mut()
            .zip(&self.rewards)
            .for_each(|(acc, x)| *acc += x);
        Ok(self.ended())
    }

    /// Whether every agent's episode has ended (terminated or truncated).
    pub fn ended(&self) -> bool {
        all_ended(&self.terminated, &self.truncated)
    }
}
