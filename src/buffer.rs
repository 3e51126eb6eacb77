//! A group's rollout storage in flat preallocated arrays, and the builders of actor and critic
//! input rows.
//!
//! # Shapes
//! Per step a group has `R = A_g * n_envs` rows, agent-major (`row = k * n_envs + e`). Arrays
//! are `[T, R, ...]` flat.

use marl_envs::{ActionSpace, EnvSpec};

use crate::config::{action_width, AgentId, CriticState, Group, RawConfig};

/// What a group's actor and critic rows are made of.
#[derive(Debug, Clone)]
pub struct InputLayout {
    /// Agent indices of the group, in order.
    pub agents: Vec<usize>,
    /// Environments per step.
    pub n_envs: usize,
    /// Actor row width on the host (the network's input without a learned embedding).
    pub actor_in: usize,
    /// Critic row width on the host.
    pub critic_in: usize,
    /// Append a one-hot agent id to actor rows.
    pub actor_onehot: bool,
    /// Append a one-hot agent id to critic rows.
    pub critic_onehot: bool,
    /// Critic sees the global state.
    pub centralized: bool,
    /// Critic state choice.
    pub critic_state: CriticState,
    /// Critic sees the other group members' actions.
    pub other_actions: bool,
    /// The group's action space.
    pub action_space: ActionSpace,
}

impl InputLayout {
    /// The layout of `group` under `raw`.
    pub fn new(raw: &RawConfig, group: &Group) -> Self {
        let a = &raw.algo;
        let onehot = a.agent_id == AgentId::Onehot && group.id_dim > 0;
        // A learned embedding is appended inside the network, not in the host rows.
        let emb = if a.agent_id == AgentId::Embedding {
            group.id_dim
        } else {
            0
        };
        Self {
            agents: group.agents.clone(),
            n_envs: raw.env.n_envs,
            actor_in: group.actor_in - if a.share_actor_params { emb } else { 0 },
            critic_in: group.critic_in - if a.share_critic_params { emb } else { 0 },
            actor_onehot: onehot && a.share_actor_params,
            critic_onehot: onehot && a.share_critic_params,
            centralized: a.centralized_training,
            critic_state: a.critic_state,
            other_actions: a.centralized_training && a.critic_other_actions,
            action_space: group.action_space.clone(),
        }
    }

    /// Rows per step.
    pub fn rows(&self) -> usize {
        self.agents.len() * self.n_envs
    }

    /// Writes the actor rows of one step from `obs` (`[n_envs, obs_len]`).
    pub fn actor_rows(&self, spec: &EnvSpec, obs: &[f32], out: &mut [f32]) {
        let n_k = self.agents.len();
        for (k, &agent) in self.agents.iter().enumerate() {
            let r = spec.obs_range(agent);
            for e in 0..self.n_envs {
                let row = &mut out[(k * self.n_envs + e) * self.actor_in..][..self.actor_in];
                row[..r.len()].copy_from_slice(
                    &obs[e * spec.obs_len() + r.start..e * spec.obs_len() + r.end],
                );
                if self.actor_onehot {
                    let id = &mut row[r.len()..r.len() + n_k];
                    id.fill(0.0);
                    id[k] = 1.0;
                }
            }
        }
    }

    /// Writes the critic rows of one step from observations, global states and the joint
    /// actions (`[n_envs, action_len]`, used when the critic sees the others' actions).
    pub fn critic_rows(
        &self,
        spec: &EnvSpec,
        obs: &[f32],
        states: &[f32],
        actions: &[f32],
        out: &mut [f32],
    ) {
        let n_k = self.agents.len();
        let sd = spec.state_dim;
        for (k, &agent) in self.agents.iter().enumerate() {
            let r = spec.obs_range(agent);
            for e in 0..self.n_envs {
                let row = &mut out[(k * self.n_envs + e) * self.critic_in..][..self.critic_in];
                let mut at = 0;
                let own = &obs[e * spec.obs_len() + r.start..e * spec.obs_len() + r.end];
                if !self.centralized {
                    row[..own.len()].copy_from_slice(own);
                    at = own.len();
                } else {
                    if self.critic_state == CriticState::AgentSpecific {
                        row[..own.len()].copy_from_slice(own);
                        at = own.len();
                    }
                    row[at..at + sd].copy_from_slice(&states[e * sd..(e + 1) * sd]);
                    at += sd;
                    if self.other_actions {
                        for &j in self.agents.iter().filter(|&&j| j != agent) {
                            let a = &actions[e * spec.action_len()..][spec.action_range(j)];
                            let w = action_width(&self.action_space);
                            let dst = &mut row[at..at + w];
                            match self.action_space {
                                ActionSpace::Discrete(_) => {
                                    dst.fill(0.0);
                                    dst[a[0] as usize] = 1.0;
                                }
                                ActionSpace::Box { .. } => dst.copy_from_slice(a),
                            }
                            at += w;
                        }
                    }
                }
                if self.critic_onehot {
                    let id = &mut row[at..at + n_k];
                    id.fill(0.0);
                    id[k] = 1.0;
                }
            }
        }
    }
}

/// One group's rollout storage.
#[derive(Debug, Clone)]
pub struct GroupBuffer {
    /// Steps per rollout.
    pub t_len: usize,
    /// Rows per step.
    pub rows: usize,
    /// Actor inputs `[T, R, actor_in]`.
    pub actor_in: Vec<f32>,
    /// Critic inputs `[T, R, critic_in]`.
    pub critic_in: Vec<f32>,
    /// Actions as the policy produced them `[T, R, width]` (index, or the unclipped sample).
    pub actions: Vec<f32>,
    /// Additive logit masks `[T, R, n]` (discrete groups of environments with masks).
    pub mask_bias: Option<Vec<f32>>,
    /// Log-probabilities at collection `[T, R]`.
    pub logp: Vec<f32>,
    /// Critic outputs at collection (normalized scale) `[T, R]`.
    pub values: Vec<f32>,
    /// Rewards after sharing `[T, R]`.
    pub rewards: Vec<f32>,
    /// Value of the next state (normalized scale until GAE; 0 after termination) `[T, R]`.
    pub next_values: Vec<f32>,
    /// Whether the next value is 0 because the agent terminated `[T, R]`.
    pub terminal: Vec<bool>,
    /// Whether the stream ends at this step (episode end or agent termination) `[T, R]`.
    pub ended: Vec<bool>,
    /// 1 where the agent was still in its episode `[T, R]`.
    pub active: Vec<f32>,
    /// GAE advantages `[T, R]`.
    pub advantages: Vec<f32>,
    /// Value targets `[T, R]`.
    pub returns: Vec<f32>,
    /// Recurrent networks: 1 where the state was zeroed before the step (an episode began
    /// there) `[T, R]`.
    pub starts: Vec<f32>,
    /// Recurrent networks: steps per training sequence (a divisor of `t_len`).
    pub chunk: usize,
    /// The actor's state at the start of every chunk `[T / chunk, R, H]` (empty: feed-forward).
    pub h0_actor: Vec<f32>,
    /// The critic's, likewise.
    pub h0_critic: Vec<f32>,
}

impl GroupBuffer {
    /// Storage for `t_len` steps of a group with layout `l`; recurrent networks of state
    /// widths `(actor, critic)` are trained on chunks of `chunk` steps.
    pub fn new(
        t_len: usize,
        l: &InputLayout,
        masked: bool,
        recurrent: Option<(usize, usize)>,
        chunk: usize,
    ) -> Self {
        let r = l.rows();
        let n = t_len * r;
        let width = action_width(&l.action_space);
        let act_w = match l.action_space {
            ActionSpace::Discrete(_) => 1,
            ActionSpace::Box { dim, .. } => dim,
        };
        let mask_bias = match l.action_space {
            ActionSpace::Discrete(_) if masked => Some(vec![0.0; n * width]),
            _ => None,
        };
        Self {
            t_len,
            rows: r,
            actor_in: vec![0.0; n * l.actor_in],
            critic_in: vec![0.0; n * l.critic_in],
            actions: vec![0.0; n * act_w],
            mask_bias,
            logp: vec![0.0; n],
            values: vec![0.0; n],
            rewards: vec![0.0; n],
            next_values: vec![0.0; n],
            terminal: vec![false; n],
            ended: vec![false; n],
            active: vec![1.0; n],
            advantages: vec![0.0; n],
            returns: vec![0.0; n],
            starts: vec![0.0; if recurrent.is_some() { n } else { 0 }],
            chunk,
            h0_actor: vec![0.0; recurrent.map_or(0, |(a, _)| t_len / chunk * r * a)],
            h0_critic: vec![0.0; recurrent.map_or(0, |(_, c)| t_len / chunk * r * c)],
        }
    }
}
