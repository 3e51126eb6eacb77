//! Where a row of a group's rollout lives: the one definition of the agent-major row order
//! that acting, the rollout buffer, the minibatch gather and every backend share, and the runs
//! of one agent's rows a backend computes each agent's network on.
//!
//! A step has `n_agents * n_envs` rows, agent-major: row `k * n_envs + e` is agent `k` of the
//! group in environment `e`; step `t`'s rows follow step `t - 1`'s, so buffer position
//! `t * rows + k * n_envs + e`. A leaf: it imports nothing of the crate.

/// The row order of a group's steps: `n_agents` agents in `n_envs` environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLayout {
    /// Environments per step.
    pub n_envs: usize,
    /// Agents of the group.
    pub n_agents: usize,
}

impl RowLayout {
    /// Rows per step.
    #[inline]
    pub fn rows(self) -> usize {
        self.n_agents * self.n_envs
    }

    /// The row of agent `k` in environment `e` within a step.
    #[inline]
    pub fn row(self, k: usize, e: usize) -> usize {
        k * self.n_envs + e
    }

    /// The buffer position of agent `k` in environment `e` at step `t`.
    #[inline]
    pub fn index(self, t: usize, k: usize, e: usize) -> usize {
        self.at(t, self.row(k, e))
    }

    /// The buffer position of row `row` of step `t`.
    #[inline]
    pub fn at(self, t: usize, row: usize) -> usize {
        t * self.rows() + row
    }

    /// Step `t`'s part of a buffer of `width` floats per row.
    #[inline]
    pub fn step_span(self, t: usize, width: usize) -> std::ops::Range<usize> {
        let per_step = self.rows() * width;
        t * per_step..(t + 1) * per_step
    }

    /// The agent of buffer position (or step row) `i`.
    #[inline]
    pub fn agent_of(self, i: usize) -> usize {
        i % self.rows() / self.n_envs
    }

    /// The environment of buffer position (or step row) `i`.
    #[inline]
    pub fn env_of(self, i: usize) -> usize {
        i % self.n_envs
    }

    /// The environment step `t * n_envs + e` of buffer position `i`: where its global state
    /// is stored, once for all the group's agents.
    #[inline]
    pub fn env_step_of(self, i: usize) -> usize {
        i / self.rows() * self.n_envs + self.env_of(i)
    }

    /// One run per agent over a step's rows (agent-major: each agent's rows are contiguous).
    pub fn step_runs(self) -> impl Iterator<Item = Run> {
        (0..self.n_agents).map(move |k| Run {
            agent: k,
            start: self.row(k, 0),
            len: self.n_envs,
        })
    }
}

/// A contiguous run of one agent's rows of a step or minibatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The agent (index in the group).
    pub agent: usize,
    /// Its first row.
    pub start: usize,
    /// How many rows.
    pub len: usize,
}

impl Run {
    /// The rows of the run.
    #[inline]
    pub fn range(self) -> std::ops::Range<usize> {
        self.start..self.start + self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_decompose_into_step_agent_and_environment() {
        let l = RowLayout {
            n_envs: 4,
            n_agents: 3,
        };
        for t in 0..2 {
            for k in 0..3 {
                for e in 0..4 {
                    let i = l.index(t, k, e);
                    assert_eq!(i, t * 12 + k * 4 + e);
                    assert!(l.step_span(t, 1).contains(&i));
                    assert_eq!(l.step_span(t, 5), t * 60..(t + 1) * 60);
                    assert_eq!((l.agent_of(i), l.env_of(i)), (k, e));
                    assert_eq!(l.env_step_of(i), t * 4 + e);
                }
            }
        }
        let runs: Vec<_> = l.step_runs().map(|r| (r.agent, r.range())).collect();
        assert_eq!(runs, [(0, 0..4), (1, 4..8), (2, 8..12)]);
    }
}
