//! The environment API every marl environment implements.
//!
//! An environment is a simultaneous-move game of a fixed set of agents. It writes everything it
//! produces into buffers the caller owns, so a step allocates nothing. Observations of all agents
//! are concatenated in agent order (agents may have different observation sizes: see
//! [`EnvSpec::obs_offset`]); actions are one flat `f32` slice in agent order, one number per
//! discrete agent (the action index) and `dim` numbers per continuous agent.
//!
//! Termination and truncation are kept apart: a time limit is a truncation, after which a learner
//! bootstraps the value; a termination ends the agent's future. The episode is over when every
//! agent is terminated or truncated.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::EnvError;

/// The action space of one agent.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionSpace {
    /// `n` discrete actions `0..n`, passed as the action index in one `f32`.
    Discrete(usize),
    /// A box of `dim` continuous actions, each clipped to `[low, high]` by the environment.
    Box {
        /// Number of action components.
        dim: usize,
        /// Lower bound of every component.
        low: f32,
        /// Upper bound of every component.
        high: f32,
    },
}

impl ActionSpace {
    /// How many `f32` this agent takes in the flat action slice: 1 for discrete (the index),
    /// `dim` for a box. A learner's encoding is wider: [`encoded_width`](Self::encoded_width).
    pub fn width(&self) -> usize {
        match self {
            ActionSpace::Discrete(_) => 1,
            ActionSpace::Box { dim, .. } => *dim,
        }
    }

    /// How many `f32` an action takes as a learner encodes it: a one-hot of `n` for discrete,
    /// the `dim` vector for a box. The width of a policy's output (logits or means) and of
    /// another agent's action in a critic's input; [`width`](Self::width) is the action's
    /// width in the flat action slice.
    pub fn encoded_width(&self) -> usize {
        match self {
            ActionSpace::Discrete(n) => *n,
            ActionSpace::Box { dim, .. } => *dim,
        }
    }

    /// Number of discrete choices (the width of this agent's action mask), 0 for a box.
    pub fn num_choices(&self) -> usize {
        match self {
            ActionSpace::Discrete(n) => *n,
            ActionSpace::Box { .. } => 0,
        }
    }
}

impl fmt::Display for ActionSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionSpace::Discrete(n) => write!(f, "Discrete({n})"),
            ActionSpace::Box { dim, low, high } => write!(f, "Box({low},{high},({dim},))"),
        }
    }
}

/// What the learner needs to know about one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    /// The agent's name as the reference environment spells it (`agent_0`, `adversary_1`, ...).
    pub name: String,
    /// The agent's type (`agent`, `adversary`, `speaker`, ...). Agents of one type share
    /// observation and action spaces; by default each type forms its own group of networks.
    pub agent_type: String,
    /// The agent's team: agents of one team play for each other (learned messages never cross
    /// teams). `team` in cooperative tasks; in adversarial particle tasks `adversaries` and
    /// `good`, mpe2's `agent.adversary`.
    pub team: String,
    /// Length of this agent's observation vector.
    pub obs_dim: usize,
    /// This agent's action space.
    pub action_space: ActionSpace,
}

/// The shape of an environment: its agents, the global state and the episode limit.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSpec {
    /// The registry id the environment was made from (`mpe/simple_spread_v3`).
    pub id: String,
    /// Every agent, in the order of every per-agent buffer.
    pub agents: Vec<AgentSpec>,
    /// Length of the global state vector for a centralized critic.
    pub state_dim: usize,
    /// Steps after which every agent is truncated.
    pub max_steps: usize,
    /// Whether [`MultiAgentEnv::avail_actions`] can mark actions unavailable.
    pub has_action_masks: bool,
    obs_offsets: Vec<usize>,
    action_offsets: Vec<usize>,
    mask_offsets: Vec<usize>,
}

impl EnvSpec {
    /// Builds a spec and its derived offsets.
    pub fn new(
        id: impl Into<String>,
        agents: Vec<AgentSpec>,
        state_dim: usize,
        max_steps: usize,
        has_action_masks: bool,
    ) -> Self {
        let prefix = |f: &dyn Fn(&AgentSpec) -> usize| {
            let mut offsets = Vec::with_capacity(agents.len() + 1);
            let mut acc = 0;
            offsets.push(0);
            for a in &agents {
                acc += f(a);
                offsets.push(acc);
            }
            offsets
        };
        let obs_offsets = prefix(&|a| a.obs_dim);
        let action_offsets = prefix(&|a| a.action_space.width());
        let mask_offsets = prefix(&|a| a.action_space.num_choices());
        Self {
            id: id.into(),
            agents,
            state_dim,
            max_steps,
            has_action_masks,
            obs_offsets,
            action_offsets,
            mask_offsets,
        }
    }

    /// Number of agents.
    pub fn num_agents(&self) -> usize {
        self.agents.len()
    }

    /// Total length of the concatenated observations of all agents.
    pub fn obs_len(&self) -> usize {
        self.obs_offsets[self.agents.len()]
    }

    /// Where agent `i`'s observation starts in the concatenated observation buffer.
    pub fn obs_offset(&self, i: usize) -> usize {
        self.obs_offsets[i]
    }

    /// The range of agent `i`'s observation in the concatenated observation buffer.
    pub fn obs_range(&self, i: usize) -> std::ops::Range<usize> {
        self.obs_offsets[i]..self.obs_offsets[i + 1]
    }

    /// Total length of the flat action slice of one joint action.
    pub fn action_len(&self) -> usize {
        self.action_offsets[self.agents.len()]
    }

    /// The range of agent `i`'s action in the flat action slice.
    pub fn action_range(&self, i: usize) -> std::ops::Range<usize> {
        self.action_offsets[i]..self.action_offsets[i + 1]
    }

    /// Total length of the flat action-mask buffer (the discrete agents' choices).
    pub fn mask_len(&self) -> usize {
        self.mask_offsets[self.agents.len()]
    }

    /// The range of agent `i`'s action mask in the flat mask buffer (empty for a box).
    pub fn mask_range(&self, i: usize) -> std::ops::Range<usize> {
        self.mask_offsets[i]..self.mask_offsets[i + 1]
    }

    /// The distinct agent types, in order of first appearance.
    pub fn agent_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = Vec::new();
        for a in &self.agents {
            if !types.contains(&a.agent_type.as_str()) {
                types.push(&a.agent_type);
            }
        }
        types
    }
}

/// The caller-owned buffers a step writes into, for one environment.
///
/// # Shapes
/// - `obs`: `[spec.obs_len()]`, the agents' observations concatenated in agent order
/// - `rewards`, `terminated`, `truncated`: `[num_agents]`
pub struct StepOut<'a> {
    /// Observations after the step.
    pub obs: &'a mut [f32],
    /// Rewards of the step, in the reference's precision (f64).
    pub rewards: &'a mut [f64],
    /// Agents whose episode ended for good (no bootstrapping).
    pub terminated: &'a mut [bool],
    /// Agents cut off by a time limit (bootstrap the value).
    pub truncated: &'a mut [bool],
}

/// Whether the episode is over: every agent terminated or truncated (`terminated` and
/// `truncated` of the agents of one environment).
pub fn all_ended(terminated: &[bool], truncated: &[bool]) -> bool {
    terminated.iter().zip(truncated).all(|(&te, &tr)| te || tr)
}

/// Owned buffers for the steps of one environment, for callers that step a single environment
/// by hand (tests, trace replays, benchmarks): what [`StepOut`] borrows.
#[derive(Debug, Clone, PartialEq)]
pub struct StepBuffers {
    /// Observations after the last step, `[obs_len]`.
    pub obs: Vec<f32>,
    /// Rewards of the last step, `[num_agents]`.
    pub rewards: Vec<f64>,
    /// Terminations of the last step, `[num_agents]`.
    pub terminated: Vec<bool>,
    /// Truncations of the last step, `[num_agents]`.
    pub truncated: Vec<bool>,
}

impl StepBuffers {
    /// Buffers for an environment of `spec`.
    pub fn new(spec: &EnvSpec) -> Self {
        let n = spec.num_agents();
        Self {
            obs: vec![0.0; spec.obs_len()],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
        }
    }

    /// Steps `env` with the joint action `actions` into these buffers.
    pub fn step<E: MultiAgentEnv + ?Sized>(
        &mut self,
        env: &mut E,
        actions: &[f32],
    ) -> Result<(), EnvError> {
        let out = StepOut {
            obs: &mut self.obs,
            rewards: &mut self.rewards,
            terminated: &mut self.terminated,
            truncated: &mut self.truncated,
        };
        env.step(actions, out)
    }

    /// Whether the last step ended the episode (see [`all_ended`]).
    pub fn ended(&self) -> bool {
        all_ended(&self.terminated, &self.truncated)
    }
}

/// A named, documented set of `f64` arrays that fully describes a world's physical state.
///
/// Each environment documents its keys (for the particle worlds: `agent_pos`, `agent_vel`,
/// `agent_c`, `landmark_pos`, `landmark_vel` and scenario extras such as `goal_landmark`).
/// Used to load a recorded state ([`MultiAgentEnv::set_state`]) and to inspect or render one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorldState {
    /// Array name to values.
    pub fields: BTreeMap<String, Vec<f64>>,
}

impl WorldState {
    /// Adds or replaces one field.
    pub fn insert(&mut self, key: &str, values: Vec<f64>) {
        self.fields.insert(key.to_string(), values);
    }

    /// The field `key`, checked to hold exactly `len` values.
    pub fn get(&self, key: &str, len: usize) -> Result<&[f64], EnvError> {
        let values = self.fields.get(key).ok_or_else(|| EnvError::InvalidState {
            message: format!(
                "missing field `{key}` (fields given: {})",
                self.fields.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })?;
        if values.len() != len {
            return Err(EnvError::InvalidState {
                message: format!("field `{key}` has {} values, expected {len}", values.len()),
            });
        }
        Ok(values)
    }

    /// Fails on fields outside `allowed`, so that a misspelled key is not silently ignored.
    pub fn reject_unknown(&self, allowed: &[&str]) -> Result<(), EnvError> {
        for key in self.fields.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(EnvError::InvalidState {
                    message: format!(
                        "unknown field `{key}`, expected one of {}",
                        allowed.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A multi-agent environment.
///
/// Implementations must be deterministic given the seed and actions, allocate nothing in
/// [`step`](Self::step), and keep all randomness in their own seeded generator, which
/// [`snapshot`](Self::snapshot) captures.
pub trait MultiAgentEnv: Send {
    /// The environment's shape.
    fn spec(&self) -> &EnvSpec;

    /// Starts a new episode and writes every agent's observation into `obs`.
    /// `Some(seed)` reseeds the environment's generator; `None` continues its stream.
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]);

    /// Applies one joint action (see the module docs for its layout) and writes the outcome.
    ///
    /// Stepping after the episode is over is an error, as is an action outside its space.
    fn step(&mut self, actions: &[f32], out: StepOut<'_>) -> Result<(), EnvError>;

    /// Writes the current observation of every agent (what the last reset or step returned).
    fn observe(&self, obs: &mut [f32]);

    /// Writes the global state for a centralized critic, `[spec.state_dim]`.
    fn state(&self, out: &mut [f32]);

    /// Writes which discrete actions are available, `[spec.mask_len()]`. Every action is
    /// available unless the environment says otherwise.
    fn avail_actions(&self, out: &mut [bool]) {
        out.fill(true);
    }

    /// The current world state, in the environment's documented fields.
    fn get_state(&self) -> WorldState;

    /// Loads a world state (a recorded one, for parity checks and debugging) and restarts the
    /// step counter at 0. The generator is untouched.
    fn set_state(&mut self, state: &WorldState) -> Result<(), EnvError>;

    /// The whole environment (world, generator, counters) as bytes, for exact resume.
    fn snapshot(&self) -> Vec<u8>;

    /// Restores what [`snapshot`](Self::snapshot) wrote; the snapshot must come from the same
    /// environment id and parameters.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), EnvError>;

    /// Draws the environment as text, one line per row (grid worlds; particle worlds print
    /// their entities' positions).
    fn render_ascii(&self) -> String;

    /// Draws the current state as an SVG picture, where the environment can.
    fn render_svg(&self) -> Option<String> {
        None
    }

    /// Names of the task's own episode figures beyond the return (`catches`,
    /// `food_collected`, ...), fixed for the environment.
    fn metric_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// Writes the current episode's figures so far, in the order of
    /// [`metric_names`](Self::metric_names); read at the last step they describe the episode.
    fn metrics(&self, _out: &mut [f64]) {}
}

/// Derives the seed of stream `index` from a master seed (splitmix64 over both), so every
/// environment of a run gets its own independent generator whatever the thread that owns it.
pub fn derive_seed(seed: u64, index: u64) -> u64 {
    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    splitmix(splitmix(seed) ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93))
}
