//! `VecEnv`: N environments stepped together, with auto-reset, writing into caller-owned flat
//! buffers ([`VecStep`]).
//!
//! The buffers are structure-of-arrays over `[env, ...]`, allocated once by the caller, and a
//! VecEnv writes its environments' rows `at..at + len()` of them: the caller chooses where, so a
//! trainer whose environments are split into several VecEnvs (worker shards) has each write its
//! rows of the whole batch, as [`MultiAgentEnv::step`] writes into the caller's [`StepOut`].
//! When every agent of an environment is done, its final observation (and global state) are
//! kept in `final_obs` / `final_states` for bootstrapping, its episode return and length in
//! `final_return` / `final_len`, and the environment is reset in place, so `obs` always holds
//! the observation the policy acts on next.
//!
//! Environment `i` of a VecEnv that starts at global index `first` is seeded with
//! `derive_seed(seed, first + i)`, so a run gives the same numbers however its environments are
//! split among worker threads.

use crate::api::{all_ended, derive_seed, EnvSpec, MultiAgentEnv, StepOut};
use crate::error::EnvError;
use crate::snapshot::{SnapshotReader, SnapshotWriter};

/// What N environments produced at their last reset or step, `[n_envs, ...]` flat: the buffers
/// a [`VecEnv`] writes, owned by the caller. Rows where `done` is false keep the `final_*`
/// values of that environment's previous episode.
#[derive(Debug, Clone, Default)]
pub struct VecStep {
    /// Observations to act on next, `[n_envs, obs_len]`.
    pub obs: Vec<f32>,
    /// Global states to act on next, `[n_envs, state_dim]`; left empty, not written (computing
    /// them is a pass over every environment that not every caller wants).
    pub states: Vec<f32>,
    /// Action masks for the next step, `[n_envs, mask_len]` (all true where the environment
    /// has none); left empty, not written.
    pub masks: Vec<bool>,
    /// Rewards of the step, `[n_envs, n_agents]`.
    pub rewards: Vec<f64>,
    /// Per-agent terminations of the step, `[n_envs, n_agents]`.
    pub terminated: Vec<bool>,
    /// Per-agent truncations of the step, `[n_envs, n_agents]`.
    pub truncated: Vec<bool>,
    /// Environments whose episode ended at this step (and were reset), `[n_envs]`.
    pub done: Vec<bool>,
    /// The last observation of each finished episode, `[n_envs, obs_len]`; valid where `done`.
    pub final_obs: Vec<f32>,
    /// The last global state of each finished episode, `[n_envs, state_dim]`; valid where
    /// `done`.
    pub final_states: Vec<f32>,
    /// Per-agent return (raw rewards, summed) of each finished episode, `[n_envs, n_agents]`;
    /// valid where `done`.
    pub final_return: Vec<f64>,
    /// Length of each finished episode, `[n_envs]`; valid where `done`.
    pub final_len: Vec<u64>,
    /// Task figures (see [`MultiAgentEnv::metric_names`]) of each finished episode,
    /// `[n_envs, metric_names.len()]`; valid where `done`.
    pub final_metrics: Vec<f64>,
}

impl VecStep {
    /// Buffers for `n` environments of `spec` with `n_metrics` task figures each, global states
    /// and masks included.
    pub fn new(n: usize, spec: &EnvSpec, n_metrics: usize) -> Self {
        let a = spec.num_agents();
        Self {
            obs: vec![0.0; n * spec.obs_len()],
            states: vec![0.0; n * spec.state_dim],
            masks: vec![true; n * spec.mask_len()],
            rewards: vec![0.0; n * a],
            terminated: vec![false; n * a],
            truncated: vec![false; n * a],
            done: vec![false; n],
            final_obs: vec![0.0; n * spec.obs_len()],
            final_states: vec![0.0; n * spec.state_dim],
            final_return: vec![0.0; n * a],
            final_len: vec![0; n],
            final_metrics: vec![0.0; n * n_metrics],
        }
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether there are no environments.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// Copies every array of `src` into rows `at..at + src.len()`: how the buffers of a VecEnv
    /// that cannot write the whole batch itself (one on another thread) join it.
    pub fn copy_rows_from(&mut self, at: usize, src: &VecStep) {
        let n = src.len();
        put(&mut self.obs, at, n, &src.obs);
        put(&mut self.states, at, n, &src.states);
        put(&mut self.masks, at, n, &src.masks);
        put(&mut self.rewards, at, n, &src.rewards);
        put(&mut self.terminated, at, n, &src.terminated);
        put(&mut self.truncated, at, n, &src.truncated);
        put(&mut self.done, at, n, &src.done);
        put(&mut self.final_obs, at, n, &src.final_obs);
        put(&mut self.final_states, at, n, &src.final_states);
        put(&mut self.final_return, at, n, &src.final_return);
        put(&mut self.final_len, at, n, &src.final_len);
        put(&mut self.final_metrics, at, n, &src.final_metrics);
    }
}

/// Copies `src`, `rows` rows of equal width, into `dst` from row `at`.
fn put<T: Copy>(dst: &mut [T], at: usize, rows: usize, src: &[T]) {
    if rows == 0 {
        return;
    }
    let w = src.len() / rows;
    dst[at * w..(at + rows) * w].copy_from_slice(src);
}

/// N environments of one spec with auto-reset, writing into a caller's [`VecStep`].
pub struct VecEnv {
    envs: Vec<Box<dyn MultiAgentEnv>>,
    spec: EnvSpec,
    first_index: u64,
    n_metrics: usize,
    /// Running episode returns, `[n_envs, n_agents]`.
    ep_return: Vec<f64>,
    /// Running episode lengths, `[n_envs]`.
    ep_len: Vec<u64>,
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
        Ok(Self {
            n_metrics: envs[0].metric_names().len(),
            ep_return: vec![0.0; n * spec.num_agents()],
            ep_len: vec![0; n],
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

    /// Buffers for exactly these environments (rows from 0).
    pub fn new_step(&self) -> VecStep {
        VecStep::new(self.len(), &self.spec, self.n_metrics)
    }

    /// Resets every environment from the master seed into rows `at..at + len()` of `out`
    /// (observations, states, masks; `done` cleared).
    pub fn reset(&mut self, seed: u64, out: &mut VecStep, at: usize) {
        let obs_len = self.spec.obs_len();
        for (i, env) in self.envs.iter_mut().enumerate() {
            let s = derive_seed(seed, self.first_index + i as u64);
            let row = at + i;
            env.reset(Some(s), &mut out.obs[row * obs_len..(row + 1) * obs_len]);
        }
        self.ep_return.fill(0.0);
        self.ep_len.fill(0);
        self.after_reset(out, at);
    }

    /// Steps every environment with `actions` (`[n_envs, spec.action_len()]`) into rows
    /// `at..at + len()` of `out`, resetting those whose episode ends.
    pub fn step(&mut self, actions: &[f32], out: &mut VecStep, at: usize) -> Result<(), EnvError> {
        let (obs_len, a, act_len) = (
            self.spec.obs_len(),
            self.spec.num_agents(),
            self.spec.action_len(),
        );
        let (state_dim, nm) = (self.spec.state_dim, self.n_metrics);
        assert_eq!(
            actions.len(),
            self.envs.len() * act_len,
            "actions must be [n_envs, action_len]"
        );
        for (i, env) in self.envs.iter_mut().enumerate() {
            let row = at + i;
            let obs = row * obs_len..(row + 1) * obs_len;
            // `agents` indexes `out`, `mine` this VecEnv's own accumulators.
            let agents = row * a..(row + 1) * a;
            let mine = i * a..(i + 1) * a;
            env.step(
                &actions[i * act_len..(i + 1) * act_len],
                StepOut {
                    obs: &mut out.obs[obs.clone()],
                    rewards: &mut out.rewards[agents.clone()],
                    terminated: &mut out.terminated[agents.clone()],
                    truncated: &mut out.truncated[agents.clone()],
                },
            )?;
            for (acc, &r) in self.ep_return[mine.clone()]
                .iter_mut()
                .zip(&out.rewards[agents.clone()])
            {
                *acc += r;
            }
            self.ep_len[i] += 1;
            let done = all_ended(
                &out.terminated[agents.clone()],
                &out.truncated[agents.clone()],
            );
            out.done[row] = done;
            if done {
                out.final_obs[obs.clone()].copy_from_slice(&out.obs[obs.clone()]);
                env.state(&mut out.final_states[row * state_dim..(row + 1) * state_dim]);
                out.final_return[agents].copy_from_slice(&self.ep_return[mine.clone()]);
                out.final_len[row] = self.ep_len[i];
                env.metrics(&mut out.final_metrics[row * nm..(row + 1) * nm]);
                self.ep_return[mine].fill(0.0);
                self.ep_len[i] = 0;
                env.reset(None, &mut out.obs[obs]);
            }
        }
        self.write_states_and_masks(out, at);
        Ok(())
    }

    /// After a reset or restore: no episode has just ended, and the states and masks are the
    /// new ones.
    fn after_reset(&self, out: &mut VecStep, at: usize) {
        out.done[at..at + self.len()].fill(false);
        self.write_states_and_masks(out, at);
    }

    /// Writes the global states and action masks the policy acts on next into rows
    /// `at..at + len()` of `out`, for each that `out` holds.
    fn write_states_and_masks(&self, out: &mut VecStep, at: usize) {
        let n = self.len();
        if !out.states.is_empty() {
            let d = self.spec.state_dim;
            self.states(&mut out.states[at * d..(at + n) * d]);
        }
        if !out.masks.is_empty() {
            let m = self.spec.mask_len();
            self.avail_actions(&mut out.masks[at * m..(at + n) * m]);
        }
    }

    /// Names of the task figures.
    pub fn metric_names(&self) -> &'static [&'static str] {
        self.envs[0].metric_names()
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

    /// Restores what [`snapshot`](Self::snapshot) wrote, writing the restored observations,
    /// states and masks into rows `at..at + len()` of `out`.
    pub fn restore(
        &mut self,
        snapshot: &[u8],
        out: &mut VecStep,
        at: usize,
    ) -> Result<(), EnvError> {
        let mut r = SnapshotReader::new(snapshot, &self.snapshot_tag())?;
        let obs_len = self.spec.obs_len();
        for (i, env) in self.envs.iter_mut().enumerate() {
            env.restore(r.bytes()?)?;
            let row = at + i;
            env.observe(&mut out.obs[row * obs_len..(row + 1) * obs_len]);
        }
        r.f64s_into(&mut self.ep_return)?;
        for l in self.ep_len.iter_mut() {
            *l = r.u64()?;
        }
        r.finish()?;
        self.after_reset(out, at);
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
