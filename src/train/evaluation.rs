//! Greedy or stochastic evaluation: the two policies an evaluation can run, which of them a run
//! logged (`logging.eval_mode`), and the metric columns and labels that say which one a table
//! or figure shows. `eval/return` and `<group>/eval_return` are always the greedy policy's;
//! the stochastic policy's carry `_stochastic` (`eval/return_stochastic`).

use anyhow::{bail, Result};
use serde::Serialize;

use crate::config::EvalMode;

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
    /// Whether actions are the most likely ones (`Learner::evaluate`'s `greedy`).
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
        match self {
            Self::Greedy => greedy_column.to_string(),
            Self::Stochastic => format!("{greedy_column}_stochastic"),
        }
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
