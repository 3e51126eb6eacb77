//! The one error type of the environment crate.

use thiserror::Error;

/// Everything that can go wrong when making, stepping or restoring an environment.
#[derive(Debug, Error)]
pub enum EnvError {
    /// The id is not in the registry.
    #[error("unknown environment `{id}`{}; valid ids: {}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), valid.join(", "))]
    UnknownEnv {
        /// The id asked for.
        id: String,
        /// The closest registered id, if one is close.
        suggestion: Option<String>,
        /// Every registered id.
        valid: Vec<String>,
    },
    /// A parameter is unknown, of the wrong type or out of range.
    #[error("invalid parameters for `{env}`: {message}")]
    InvalidParams {
        /// The environment id.
        env: String,
        /// What is wrong, naming the parameter.
        message: String,
    },
    /// An action is outside its agent's action space.
    #[error("invalid action for agent {agent} (`{name}`): {message}")]
    InvalidAction {
        /// The agent's index.
        agent: usize,
        /// The agent's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// `step` was called after every agent was done, without a reset.
    #[error("step called on a finished episode: call reset first")]
    EpisodeOver,
    /// A world state given to `set_state` does not fit the environment.
    #[error("invalid world state: {message}")]
    InvalidState {
        /// What is wrong.
        message: String,
    },
    /// A snapshot cannot be restored into this environment.
    #[error("cannot restore snapshot: {message}")]
    Snapshot {
        /// What is wrong.
        message: String,
    },
}

impl EnvError {
    /// [`EnvError::InvalidParams`] for the environment `env`: the one constructor for a
    /// rejected parameter, so every environment words the error the same way.
    pub fn invalid_params(env: &str, message: impl Into<String>) -> Self {
        Self::InvalidParams {
            env: env.to_string(),
            message: message.into(),
        }
    }
}
