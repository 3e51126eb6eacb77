//! Evaluation: the two policies an evaluation can run (greedy or stochastic), which of them a
//! run logged (`logging.eval_mode`), the metric columns that say which one a figure shows, and
//! the one loop that runs evaluation episodes, for training's periodic evaluations and for
//! `marl eval` alike.
//!
//! | seed | what it seeds |
//! |---|---|
//! | `derive_seed(seed, round)` | the environments of round `round` (0, 1, ...), one episode each |
//! | `derive_seed(seed, 7)` | the sampler of stochastic actions (apart from training's) |
//! | `derive_seed(run seed, 0x1_0000_0003)` | the `seed` of training's evaluations, fixed for the run |
//!
//! Episode `k` is therefore the first episode of environment `k mod n` in round `k / n`, and the
//! numbers depend on the policy, the seed and the episode count only: not on the number of
//! worker threads. `eval/return` and `<group>/eval_return` are always the greedy policy's; the
//! stochastic policy's carry `_stochastic` (`eval/return_stochastic`).

use anyhow::{bail, Result};
use marl_envs::derive_seed;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::config::{EvalMode, Group};
use crate::run::metrics;
use crate::train::learner::Learner;
use crate::train::rollout::EnvPool;

/// The policy an evaluation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EvalPolicy {
    /// The most likely action.
    Greedy,
    /// Actions sampled from the policy.
    Stochastic,
}

impl EvalPolicy {
    /// Whether actions are the most likely ones ([`run_episodes`]'s `greedy`).
    pub fn greedy(self) -> bool {
        self == Self::Greedy
    }

    /// `greedy` or `stochastic`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Greedy => "greedy",
            Self::Stochastic => "stochastic",
        }
    }

    /// The metrics column of this policy's figure, given the greedy one's (`eval/return`,
    /// `eval/team_return`, `<group>/eval_return`): that name, or the name with `_stochastic`.
    pub fn column(self, greedy_column: &str) -> String {
        metrics::eval_column(greedy_column, !self.greedy())
    }

    /// The policies a run with `mode` evaluates, in the order it runs them.
    pub fn of_mode(mode: EvalMode) -> &'static [EvalPolicy] {
        match mode {
            EvalMode::Greedy => &[Self::Greedy],
            EvalMode::Stochastic => &[Self::Stochastic],
            EvalMode::Both => &[Self::Greedy, Self::Stochastic],
        }
    }

    /// What a tool shows of a run with `mode` unless told: the greedy figure where the run has
    /// it.
    pub fn default_for(mode: EvalMode) -> Self {
        Self::of_mode(mode)[0]
    }

    /// Fails unless a run with `mode` (`what`: its config) logged this policy's evaluations.
    pub fn check_logged(self, mode: EvalMode, what: &str) -> Result<()> {
        if !Self::of_mode(mode).contains(&self) {
            let has = Self::default_for(mode).name();
            bail!(
                "--eval-mode {}: {what} evaluates with the {has} policy only during training \
                 (logging.eval_mode = \"{has}\"); use --eval-mode {has}, or train with \
                 logging.eval_mode = \"both\"",
                self.name()
            );
        }
        Ok(())
    }
}

/// Whether a metrics column holds an evaluation's figure (`eval/...`, `<group>/eval_...`).
pub fn is_eval_column(column: &str) -> bool {
    column.starts_with("eval/") || column.contains("/eval_")
}

/// The stream of an evaluation seed that samples stochastic actions (its rounds use 0, 1, ...).
const SAMPLER_STREAM: u64 = 7;

/// The stream of a run's seed that seeds its periodic evaluations.
const TRAINING_EVAL_STREAM: u64 = 0x1_0000_0003;

/// The evaluation seed of a training run with seed `seed`: fixed for the run, so curves
/// compare like with like.
pub fn training_eval_seed(seed: u64) -> u64 {
    derive_seed(seed, TRAINING_EVAL_STREAM)
}

/// The generator of evaluation seed `seed`'s sampled actions.
pub fn sampler(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(seed, SAMPLER_STREAM))
}

/// The seed of round `round`'s environments.
pub fn round_seed(seed: u64, round: u64) -> u64 {
    derive_seed(seed, round)
}

/// One finished evaluation episode.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalEpisode {
    /// Per-agent return (raw rewards, summed).
    pub returns: Vec<f64>,
    /// Steps.
    pub length: u64,
    /// The env's task figures (`EnvPool::metric_names`).
    pub metrics: Vec<f64>,
}

/// Runs `episodes` evaluation episodes of evaluation seed `seed` on `pool` (greedy, or sampled
/// with `greedy = false`); the groups flagged in `random_groups` act uniformly at random.
/// Sampled actions come from the seed's own generator, put in place of the learner's for the
/// duration, so training's numbers do not depend on whether (or how) it evaluates.
pub fn run_episodes(
    learner: &mut Learner,
    pool: &mut EnvPool,
    seed: u64,
    episodes: usize,
    greedy: bool,
    random_groups: &[bool],
) -> Result<Vec<EvalEpisode>> {
    let training = learner.swap_sampler(sampler(seed));
    let mut out = Vec::new();
    let mut round = 0u64;
    let result = loop {
        if out.len() >= episodes {
            break Ok(());
        }
        match play_round(
            learner,
            pool,
            round_seed(seed, round),
            greedy,
            random_groups,
        ) {
            Ok(r) => out.extend(r),
            Err(e) => break Err(e),
        }
        round += 1;
    };
    learner.swap_sampler(training);
    result?;
    out.truncate(episodes);
    Ok(out)
}

/// One round: every environment of `pool` reset from `seed` and played until its first episode
/// ends; returns those episodes in environment order.
fn play_round(
    learner: &mut Learner,
    pool: &mut EnvPool,
    seed: u64,
    greedy: bool,
    random_groups: &[bool],
) -> Result<Vec<EvalEpisode>> {
    let n = pool.len();
    let spec = &learner.config().spec;
    anyhow::ensure!(
        n == learner.config().env().n_envs,
        "evaluation pool must have n_envs environments"
    );
    let n_agents = spec.num_agents();
    let mut joint = vec![0.0f32; n * spec.action_len()];
    pool.reset(seed)?;
    let n_metrics = pool.metric_names().len();
    let mut results: Vec<Option<EvalEpisode>> = vec![None; n];
    // Random groups draw from a generator of the round's own.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut first = vec![true; n];
    // Agents done before their episode ends, as the rollout marks them.
    let mut dead = vec![false; n * n_agents];
    while results.iter().any(Option::is_none) {
        let data = &pool.data;
        learner.policy_actions(
            &data.obs,
            &data.masks,
            &first,
            &dead,
            greedy,
            random_groups,
            &mut rng,
            &mut joint,
        )?;
        pool.step(&joint)?;
        let data = &pool.data;
        first.copy_from_slice(&data.done);
        for e in 0..n {
            for a in 0..n_agents {
                let d = &mut dead[e * n_agents + a];
                *d = !data.done[e] && (*d || data.terminated[e * n_agents + a]);
            }
            if data.done[e] && results[e].is_none() {
                results[e] = Some(EvalEpisode {
                    returns: data.final_return[e * n_agents..(e + 1) * n_agents].to_vec(),
                    length: data.final_len[e],
                    metrics: data.final_metrics[e * n_metrics..(e + 1) * n_metrics].to_vec(),
                });
            }
        }
    }
    Ok(results.into_iter().flatten().collect())
}

/// What an evaluation's episodes come to: mean per-agent return, mean team return, and each
/// group's mean per-agent return.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalFigures {
    /// Mean per-agent return.
    pub per_agent: f64,
    /// Mean team return (sum over agents).
    pub team: f64,
    /// Each group's mean per-agent return, in the config's group order.
    pub groups: Vec<f64>,
}

impl EvalFigures {
    /// The figures of `episodes` for agent groups `groups` of `n_agents` agents.
    pub fn of(episodes: &[EvalEpisode], groups: &[Group], n_agents: usize) -> Self {
        let n = episodes.len().max(1) as f64;
        let team = episodes
            .iter()
            .map(|e| e.returns.iter().sum::<f64>())
            .sum::<f64>()
            / n;
        let groups = groups
            .iter()
            .map(|g| {
                episodes
                    .iter()
                    .map(|e| {
                        g.agents.iter().map(|&a| e.returns[a]).sum::<f64>() / g.agents.len() as f64
                    })
                    .sum::<f64>()
                    / n
            })
            .collect();
        Self {
            per_agent: team / n_agents as f64,
            team,
            groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stochastic_columns_carry_a_suffix_and_greedy_ones_keep_their_names() {
        assert_eq!(EvalPolicy::Greedy.column("eval/return"), "eval/return");
        assert_eq!(
            EvalPolicy::Stochastic.column("agent/eval_return"),
            "agent/eval_return_stochastic"
        );
        assert!(is_eval_column("eval/team_return") && is_eval_column("a/eval_return"));
        assert!(!is_eval_column("charts/episodic_return"));
    }

    #[test]
    fn tools_show_greedy_unless_the_run_has_only_stochastic() {
        assert_eq!(EvalPolicy::default_for(EvalMode::Both), EvalPolicy::Greedy);
        assert_eq!(
            EvalPolicy::default_for(EvalMode::Stochastic),
            EvalPolicy::Stochastic
        );
        let err = EvalPolicy::Stochastic
            .check_logged(EvalMode::Greedy, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("eval_mode = \"both\""), "{err}");
        assert!(EvalPolicy::Greedy
            .check_logged(EvalMode::Both, "c.toml")
            .is_ok());
    }
}
