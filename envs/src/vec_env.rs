//! `VecEnv`: N environments stepped together over flat buffers, with auto-reset.
//!
//! All buffers are structure-of-arrays over `[env, ...]` and allocated once. When every agent of
//! an environment is done, its final observation (and global state) are kept in `final_obs` /
//! `final_state` for bootstrapping, its episode return and length in `final_return` /
//! `final_len`, and the environment is reset in place, so `obs` always holds the observation the
//! policy acts on next.
//!
//! Environment `i` of a VecEnv that starts at global index `first` is seeded with
//! `derive_seed(seed, first + i)`, so a run gives the same numbers however its environments are
//! split among worker threads.

use crate::api::{derive_seed, EnvSpec, MultiAgentEnv, StepOut};
use crate::error::EnvError;
use crate::snapshot::{SnapshotReader, SnapshotWriter};

/// N environments of one spec with flat buffers and auto-reset.
pub struct VecEnv {
    envs: Vec<Box<dyn MultiAgentEnv>>,
    spec: EnvSpec,
    first_index: u64,
    obs: Vec<f32>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    done: Vec<bool>,
    final_obs: Vec<f32>,
    final_state: Vec<f32>,
    ep_return: Vec<f64>,
    ep_len: Vec<u64>,
    final_return: Vec<f64>,
    final_len: Vec<u64>,
    final_metrics: Vec<f64>,
}

impl VecEnv {
    /// Groups environments that share one spec; `first_index` is the global index of the
    /// first one (used for seeding).
    pub fn new(envs: Vec<Box<dyn MultiAgentEnv>>, first_index: u64) -> Result<Self, EnvError> {
        let spec = envs
            .first()
            .map(|e| e.spec().clone())
            .ok_or_else(|| EnvError::invalid_params("VecEnv", "needs at least one environment"))?;
        if let Some(other) = envs.iter().find(|e| e.spec() != &spec) {
            return Err(EnvError::invalid_params(
                "VecEnv",
                format!(
                    "environments differ: `{}` and `{}`",
                    spec.id,
                    other.spec().id
                ),
            ));
        }
        let n = envs.len();
        let a = spec.num_agents();
        let n_metrics = envs[0].metric_names().len();
        Ok(Self {
            obs: vec![0.0; n * spec.obs_len()],
            rewards: vec![0.0; n * a],
            terminated: vec![false; n * a],
            truncated: vec![false; n * a],
            done: vec![false; n],
            final_obs: vec![0.0; n * spec.obs_len()],
            final_state: vec![0.0; n * spec.state_dim],
            ep_return: vec![0.0; n * a],
            ep_len: vec![0; n],
            final_return: vec![0.0; n * a],
            final_len: vec![0; n],
            final_metrics: vec![0.0; n * n_metrics],
            envs,
            spec,
            first_index,
        })
    }

    /// Makes `n` environments with `make` and groups them.
    pub fn from_fn(
        n: usize,
        first_index: u64,
        mut make: impl FnMut() -> Result<Box<dyn MultiAgentEnv>, EnvError>,
    ) -> Result<Self, EnvError> {
        let envs = (0..n).map(|_| make()).collect::<Result<Vec<_>, _>>()?;
        Self::new(envs, first_index)
    }

    /// The spec shared by every environment.
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// Whether there are no environments (never true: `new` refuses it).
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// Resets every environment from the master seed.
    pub fn reset(&mut self, seed: u64) {
        let obs_len = self.spec.obs_len();
        for (i, env) in self.envs.iter_mut().enumerate() {
            let s = derive_seed(seed, self.first_index + i as u64);
            env.reset(Some(s), &mut self.obs[i * obs_len..(i + 1) * obs_len]);
        }
        self.ep_return.fill(0.0);
        self.ep_len.fill(0);
        self.done.fill(false);
    }

    /// Steps every environment with `actions` (`[n_envs, spec.action_len()]`), resetting those
    /// whose episode ends.
    pub fn step(&mut self, actions: &[f32]) -> Result<(), EnvError> {
        let (obs_len, a, act_len) = (
            self.spec.obs_len(),
            self.spec.num_agents(),
            self.spec.action_len(),
        );
        let state_dim = self.spec.state_dim;
        assert_eq!(
            actions.len(),
            self.envs.len() * act_len,
            "actions must be [n_envs, action_len]"
        );
        let nm = self.final_metrics.len() / self.envs.len();
        for (i, env) in self.envs.iter_mut().enumerate() {
            let obs = &mut self.obs[i * obs_len..(i + 1) * obs_len];
            let agents = i * a..(i + 1) * a;
            env.step(
                &actions[i * act_len..(i + 1) * act_len],
                StepOut {
                    obs,
                    rewards: &mut self.rewards[agents.clone()],
                    terminated: &mut self.terminated[agents.clone()],
                    truncated: &mut self.truncated[agents.clone()],
                },
            )?;
            for (acc, &r) in self.ep_return[agents.clone()]
                .iter_mut()
                .zip(&self.rewards[agents.clone()])
            {
                *acc += r;
            }
            self.ep_len[i] += 1;
            let done = self.terminated[agents.clone()]
                .iter()
                .zip(&self.truncated[agents.clone()])
                .all(|(&te, &tr)| te || tr);
            self.done[i] = done;
            if done {
                self.final_obs[i * obs_len..(i + 1) * obs_len].copy_from_slice(obs);
                env.state(&mut self.final_state[i * state_dim..(i + 1) * state_dim]);
                self.final_return[agents.clone()].copy_from_slice(&self.ep_return[agents.clone()]);
                self.final_len[i] = self.ep_len[i];
                env.metrics(&mut self.final_metrics[i * nm..(i + 1) * nm]);
                self.ep_return[agents].fill(0.0);
                self.ep_len[i] = 0;
                env.reset(None, obs);
            }
        }
        Ok(())
    }

    /// Observations to act on, `[n_envs, obs_len]` (after an auto-reset: the new episode's).
    pub fn obs(&self) -> &[f32] {
        &self.obs
    }

    /// Rewards of the last step, `[n_envs, n_agents]`.
    pub fn rewards(&self) -> &[f64] {
        &self.rewards
    }

    /// Per-agent terminations of the last step, `[n_envs, n_agents]`.
    pub fn terminated(&self) -> &[bool] {
        &self.terminated
    }

    /// Per-agent truncations of the last step, `[n_envs, n_agents]`.
    pub fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    /// Which environments finished an episode in the last step (and were reset), `[n_envs]`.
    pub fn done(&self) -> &[bool] {
        &self.done
    }

    /// The last observation of each finished episode, `[n_envs, obs_len]`; valid where `done`.
    pub fn final_obs(&self) -> &[f32] {
        &self.final_obs
    }

    /// The last global state of each finished episode, `[n_envs, state_dim]`; valid where `done`.
    pub fn final_state(&self) -> &[f32] {
        &self.final_state
    }

    /// Per-agent return of each finished episode, `[n_envs, n_agents]`; valid where `done`.
    pub fn final_return(&self) -> &[f64] {
        &self.final_return
    }

    /// Task figures (see [`MultiAgentEnv::metric_names`]) of the episodes that ended at the
    /// last step, `[n_envs, metric_names.len()]`.
    pub fn final_metrics(&self) -> &[f64] {
        &self.final_metrics
    }

    /// Names of the task figures.
    pub fn metric_names(&self) -> &'static [&'static str] {
        self.envs[0].metric_names()
    }

    /// Length of each finished episode, `[n_envs]`; valid where `done`.
    pub fn final_len(&self) -> &[u64] {
        &self.final_len
    }

    /// Writes the current global state of every environment, `[n_envs, state_dim]`.
    pub fn states(&self, out: &mut [f32]) {
        let d = self.spec.state_dim;
        for (i, env) in self.envs.iter().enumerate() {
            env.state(&mut out[i * d..(i + 1) * d]);
        }
    }

    /// Writes every environment's action masks, `[n_envs, mask_len]`.
    pub fn avail_actions(&self, out: &mut [bool]) {
        let m = self.spec.mask_len();
        for (i, env) in self.envs.iter().enumerate() {
            env.avail_actions(&mut out[i * m..(i + 1) * m]);
        }
    }

    /// One environment, for rendering or inspection.
    pub fn env(&self, i: usize) -> &dyn MultiAgentEnv {
        self.envs[i].as_ref()
    }

    /// Every environment and the running episode accumulators, for exact resume.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = SnapshotWriter::new(&self.snapshot_tag());
        for env in &self.envs {
            w.bytes(&env.snapshot());
        }
        w.f64s(&self.ep_return);
        for &l in &self.ep_len {
            w.u64(l);
        }
        w.finish()
    }

    /// Restores what [`snapshot`](Self::snapshot) wrote.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), EnvError> {
        let mut r = SnapshotReader::new(snapshot, &self.snapshot_tag())?;
        let obs_len = self.spec.obs_len();
        for (i, env) in self.envs.iter_mut().enumerate() {
            env.restore(r.bytes()?)?;
            env.observe(&mut self.obs[i * obs_len..(i + 1) * obs_len]);
        }
        r.f64s_into(&mut self.ep_return)?;
        for l in self.ep_len.iter_mut() {
            *l = r.u64()?;
        }
        r.finish()?;
        self.done.fill(false);
        Ok(())
    }

    fn snapshot_tag(&self) -> String {
        format!(
            "vec_env {} x{} from {}",
            self.spec.id,
            self.envs.len(),
            self.first_index
        )
    }
}
