//! The TOML file as written: every key, its type and its default, nothing derived.
//!
//! Unknown keys are errors (`deny_unknown_fields`), so a misspelled key never silently falls
//! back to a default. Defaults follow the reference MAPPO implementation for MPE (on-policy's
//! scripts); see docs/design.md section 3.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A whole training configuration (`MultiAgentConfig`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Master seed: environments, weights, sampling and shuffles all derive from it.
    pub seed: u64,
    /// `"cpu"`, `"cuda"` or `"cuda:N"`.
    pub device: String,
    /// Environment-stepping threads; 0 steps the environments on the learner's thread. The
    /// default is 0: stepping is synchronous today, and handing a step to a worker and back
    /// costs more (thread wake-ups) than the step itself (README, Performance).
    pub num_workers: usize,
    /// Environment steps to train for (one step of one environment, all agents).
    pub total_timesteps: u64,
    /// Where run directories are created.
    pub out_dir: String,
    /// The environment.
    pub env: EnvConfig,
    /// Who learns what: critics, sharing, groups, rewards.
    pub algo: AlgoConfig,
    /// PPO hyper-parameters.
    pub ppo: PpoConfig,
    /// Network shapes.
    pub network: NetworkConfig,
    /// Agent groups: group name to agent indices (default: one group per agent type).
    pub agent_groups: BTreeMap<String, Vec<usize>>,
    /// Logging, evaluation and checkpoints.
    pub logging: LoggingConfig,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            device: "cpu".into(),
            num_workers: 0,
            total_timesteps: 2_000_000,
            out_dir: "runs".into(),
            env: EnvConfig::default(),
            algo: AlgoConfig::default(),
            ppo: PpoConfig::default(),
            network: NetworkConfig::default(),
            agent_groups: BTreeMap::new(),
            logging: LoggingConfig::default(),
        }
    }
}

/// `[env]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnvConfig {
    /// Registry id (`marl envs` lists them).
    pub id: String,
    /// The environment's own parameters (checked by the environment).
    pub params: toml::Table,
    /// Parallel environments.
    pub n_envs: usize,
    /// Steps per environment per update.
    pub rollout_length: usize,
    /// Environment steps per update (`n_envs * rollout_length`); derived, and checked if given.
    pub batch_size: Option<usize>,
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self {
            id: "mpe/simple_spread_v3".into(),
            params: toml::Table::new(),
            n_envs: 128,
            rollout_length: 25,
            batch_size: None,
        }
    }
}

/// How rewards are shared within a group.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RewardSharing {
    /// Each agent learns from its own reward.
    Individual,
    /// Each agent learns from the mean reward of its group.
    Shared,
    /// `w * shared + (1 - w) * individual`.
    Mixed,
}

/// How a shared network tells agents apart.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AgentId {
    /// Nothing is appended.
    None,
    /// A one-hot of the agent's index within its group is appended.
    Onehot,
    /// A learned embedding of `agent_embedding_dim` is appended.
    Embedding,
}

/// What a centralized critic sees.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CriticState {
    /// The environment's global state.
    Global,
    /// The agent's own observation followed by the global state.
    AgentSpecific,
}

/// `[algo]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlgoConfig {
    /// MAPPO (true: critics see the global state) or IPPO (false: each critic sees its
    /// agent's observation).
    pub centralized_training: bool,
    /// One actor for all agents of a group.
    pub share_actor_params: bool,
    /// One critic for all agents of a group.
    pub share_critic_params: bool,
    /// How rewards are shared within a group.
    pub reward_sharing: RewardSharing,
    /// `w` of `mixed` reward sharing.
    pub reward_sharing_weight: f64,
    /// How shared networks tell agents apart.
    pub agent_id: AgentId,
    /// Size of the learned agent embedding (`agent_id = "embedding"`).
    pub agent_embedding_dim: usize,
    /// What a centralized critic sees.
    pub critic_state: CriticState,
    /// Centralized critics also see the other agents' actions (one-hot) of their group.
    pub critic_other_actions: bool,
    /// Learned messages between the actors of a channel, exchanged within each step and
    /// trained end to end (README, "Learned communication").
    pub enable_communication: bool,
    /// Message size.
    pub communication_dim: usize,
    /// Message rounds per step.
    pub communication_rounds: usize,
    /// How a receiver aggregates the others' messages.
    pub communication: CommKind,
    /// Query and key size of `communication = "attention"`.
    pub communication_key_dim: usize,
    /// Who hears whom: lists of groups, each list one channel. Empty: every group with
    /// more than one agent is a channel of its own.
    pub communication_channels: Vec<Vec<String>>,
    /// Groups that act uniformly at random (masked) and never train: a fixed random
    /// opponent, such as simple_tag's prey (`marl eval --policy NAME=random` at evaluation).
    /// Left out of the resolved TOML when empty, so that a run resolved before the key existed
    /// keeps its sweep run id (a hash of that TOML).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub random_groups: Vec<String>,
}

/// How a receiver aggregates the messages of the others in its channel.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CommKind {
    /// CommNet: the mean of the others' messages.
    Mean,
    /// TarMAC: the others' messages weighted by a softmax over query-key products.
    Attention,
}

impl Default for AlgoConfig {
    fn default() -> Self {
        Self {
            centralized_training: true,
            share_actor_params: true,
            share_critic_params: true,
            reward_sharing: RewardSharing::Individual,
            reward_sharing_weight: 0.5,
            agent_id: AgentId::Onehot,
            agent_embedding_dim: 8,
            critic_state: CriticState::Global,
            critic_other_actions: false,
            enable_communication: false,
            communication_dim: 32,
            communication_rounds: 2,
            communication: CommKind::Mean,
            communication_key_dim: 16,
            communication_channels: Vec::new(),
            random_groups: Vec::new(),
        }
    }
}

/// A schedule over training progress.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The initial value throughout.
    Constant,
    /// Linear from the initial to the final value.
    Linear,
    /// Cosine from the initial to the final value.
    Cosine,
}

/// One or two Adam optimizers.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Separate Adam for actor and critic, each clipped on its own (on-policy MAPPO).
    Separate,
    /// One Adam over actor and critic, one global clip (JaxMARL, CleanRL).
    Joint,
}

/// The value loss.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ValueLoss {
    /// Huber with `huber_delta` (on-policy).
    Huber,
    /// `0.5 * (v - target)^2` (JaxMARL, CleanRL).
    Mse,
}

/// Where advantages are normalized.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AdvantageNorm {
    /// Over the group's whole batch (on-policy).
    Batch,
    /// Over each minibatch (JaxMARL, CleanRL).
    Minibatch,
    /// Not at all.
    None,
}

/// What the minibatches of a feed-forward group are drawn in (recurrent networks train on
/// chunks of `network.data_chunk_length` steps).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MinibatchUnit {
    /// Environment steps where the critic shares the global state across the group's agents
    /// (centralized, shared, `critic_state = "global"`): the state's part of its first layer is
    /// then computed once per environment step and epoch instead of once per minibatch that
    /// holds one of its agents. Samples otherwise.
    Auto,
    /// Every agent's step on its own (on-policy's and CleanRL's shuffle).
    Sample,
    /// Environment steps: all the group's agents of one step in the same minibatch.
    EnvStep,
}

/// `[ppo]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Actor learning rate (the joint optimizer's with `optimizer = "joint"`).
    pub learning_rate: f64,
    /// Critic learning rate (separate optimizers).
    pub critic_learning_rate: f64,
    /// Learning-rate schedule (to 0 for linear and cosine).
    pub lr_schedule: Schedule,
    /// Separate or joint Adam.
    pub optimizer: OptimizerKind,
    /// Adam epsilon.
    pub adam_eps: f64,
    /// Passes over each batch.
    pub ppo_epochs: usize,
    /// Minibatches per pass.
    pub num_minibatches: usize,
    /// What minibatches are drawn in: `"auto"`, `"sample"` or `"env_step"`.
    pub minibatch_unit: MinibatchUnit,
    /// Minibatches whose gradients are summed before one optimizer step.
    pub grad_accum_steps: usize,
    /// PPO's ratio clip, also the value clip.
    pub clip_epsilon: f64,
    /// Clip the value loss around the old values.
    pub clip_value_loss: bool,
    /// Entropy bonus weight.
    pub entropy_coef: f64,
    /// Entropy bonus at the end of training (with a non-constant schedule).
    pub entropy_coef_final: f64,
    /// Entropy schedule.
    pub entropy_schedule: Schedule,
    /// Value loss weight.
    pub value_coef: f64,
    /// Huber or MSE.
    pub value_loss: ValueLoss,
    /// Huber's delta.
    pub huber_delta: f64,
    /// Global gradient-norm clip per optimizer (0: none).
    pub max_grad_norm: f64,
    /// Discount.
    pub gamma: f64,
    /// GAE's lambda.
    pub gae_lambda: f64,
    /// At a time limit, bootstrap from the value of the final observation (true), or end the
    /// return there as at a termination (false: JaxMARL's and on-policy's scripts).
    pub bootstrap_truncation: bool,
    /// Where advantages are normalized.
    pub advantage_norm: AdvantageNorm,
    /// Normalize value targets with running statistics (per group).
    pub value_norm: bool,
    /// Stop the epochs early when the approximate KL exceeds this.
    pub target_kl: Option<f64>,
    /// bf16 forward and backward passes on CUDA, f32 parameters and Adam moments (refused on
    /// the CPU).
    pub use_mixed_precision: bool,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            learning_rate: 7e-4,
            critic_learning_rate: 7e-4,
            lr_schedule: Schedule::Constant,
            optimizer: OptimizerKind::Separate,
            adam_eps: 1e-5,
            ppo_epochs: 10,
            num_minibatches: 1,
            minibatch_unit: MinibatchUnit::Auto,
            grad_accum_steps: 1,
            clip_epsilon: 0.2,
            clip_value_loss: true,
            entropy_coef: 0.01,
            entropy_coef_final: 0.0,
            entropy_schedule: Schedule::Constant,
            value_coef: 1.0,
            value_loss: ValueLoss::Huber,
            huber_delta: 10.0,
            max_grad_norm: 10.0,
            gamma: 0.99,
            gae_lambda: 0.95,
            bootstrap_truncation: true,
            advantage_norm: AdvantageNorm::Batch,
            value_norm: true,
            target_kl: None,
            use_mixed_precision: false,
        }
    }
}

/// Hidden activation.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// tanh (orthogonal gain 5/3).
    Tanh,
    /// ReLU (orthogonal gain sqrt 2).
    Relu,
}

/// A recurrent layer in the networks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecurrentKind {
    /// Feed-forward networks.
    None,
    /// A GRU after the `hidden` layers (PyTorch's `nn.GRU` equations).
    Gru,
}

/// `[network]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Hidden layer sizes (with a GRU: the layers before it).
    pub hidden: Vec<usize>,
    /// A recurrent layer after the hidden layers: `"none"` or `"gru"` (on-policy's rMAPPO,
    /// JaxMARL's MAPPO-RNN).
    pub recurrent: RecurrentKind,
    /// The GRU's width.
    pub recurrent_hidden: usize,
    /// Dense layers between the GRU and the head (JaxMARL: `[128]`; on-policy: none).
    pub hidden_after: Vec<usize>,
    /// Steps per training sequence (on-policy's BPTT chunks; 0: the whole rollout of each
    /// environment and agent, JaxMARL's scheme). Must divide `env.rollout_length`.
    pub data_chunk_length: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// on-policy's LayerNorms (input, and after each hidden activation).
    pub layer_norm: bool,
    /// Initial log standard deviation of Gaussian actors.
    pub log_std_init: f64,
    /// On the CPU, every group's networks run on the hand-written backend (forward and
    /// backward by hand, 2 to 3x faster than candle's autograd); false: candle's autograd on
    /// the CPU, the reference implementation.
    pub cpu_fast_path: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            recurrent: RecurrentKind::None,
            recurrent_hidden: 64,
            hidden_after: Vec::new(),
            data_chunk_length: 10,
            activation: Activation::Tanh,
            layer_norm: true,
            log_std_init: -0.5,
            cpu_fast_path: true,
        }
    }
}

/// Which policy the periodic evaluation runs.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EvalMode {
    /// The most likely action (`eval/return`): what MAPPO and JaxMARL report on the particle
    /// worlds.
    Greedy,
    /// Sampled actions (`eval/return_stochastic`): what EPyMARL reports on Level-Based
    /// Foraging, where greedy play can get stuck.
    Stochastic,
    /// Both, one after the other from the same seed.
    Both,
}

/// `[logging]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// Per-agent returns and losses in the metrics.
    pub log_agent_metrics: bool,
    /// Evaluation every this many environment steps (0: never).
    pub eval_interval: u64,
    /// The evaluation's policy: `greedy`, `stochastic` or `both`.
    pub eval_mode: EvalMode,
    /// Episodes per evaluation.
    pub eval_episodes: usize,
    /// Checkpoint every this many environment steps (0: only at the end).
    pub checkpoint_interval: u64,
    /// Checkpoints kept (the newest).
    pub keep_checkpoints: usize,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            log_agent_metrics: false,
            eval_interval: 100_000,
            eval_mode: EvalMode::Greedy,
            eval_episodes: 32,
            checkpoint_interval: 500_000,
            keep_checkpoints: 3,
        }
    }
}
