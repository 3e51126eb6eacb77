//! A group's rollout storage in flat preallocated arrays, and the builders of actor and critic
//! input rows.
//!
//! # Shapes
//! Per step a group has `R = A_g * n_envs` rows, agent-major (`row = k * n_envs + e`, see
//! [`RowLayout`]). Arrays
//! are `[T, R, ...]` flat, except the global states: `[T, n_envs, state_dim]`, once per
//! environment and step whatever the number of agents. A critic row is stored without its
//! state (its "rest"), and the state is joined to it only where a backend needs whole rows
//! (see [`CriticForm`]): with N agents on spread's `6 N^2`-float state, rows holding the state
//! would make the buffer grow as N^3.

use marl_envs::{ActionSpace, EnvSpec};

use crate::backend::{CriticRows, RowLayout, SharedStates};
use crate::config::{AgentId, CriticState, Group, TrainConfig};

/// How a group's critic rows reach the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriticForm {
    /// No state: the stored rows are whole (decentralized critics).
    Whole,
    /// The global state first, shared by the rows of an environment and step, which the
    /// backend may compute once ([`CriticRows::states`]).
    SharedState,
    /// The state inside each row (after the agent's own observation): written out per row.
    WrittenOut,
}

/// What a group's actor and critic rows are made of.
#[derive(Debug, Clone)]
pub struct InputLayout {
    /// Agent indices of the group, in order.
    pub agents: Vec<usize>,
    /// The group's observation width: each agent's observation, padded with zeros to it where
    /// a communication channel joined groups of different sizes.
    pub obs_dim: usize,
    /// Some agents have fewer choices than the group's (joined groups): their extra actions
    /// are masked.
    pub padded_actions: bool,
    /// Environments per step.
    pub n_envs: usize,
    /// Actor row width on the host (the network's input without a learned embedding).
    pub actor_in: usize,
    /// Critic row width on the host.
    pub critic_in: usize,
    /// The global state's width in critic rows (0: decentralized critics).
    pub state_dim: usize,
    /// Where the state sits in a critic row (after the own observation of agent-specific
    /// states).
    pub state_at: usize,
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
    /// The layout of `group` under `cfg`.
    pub fn new(cfg: &TrainConfig, group: &Group) -> Self {
        let a = cfg.algo();
        let state_dim = cfg.spec.state_dim;
        let onehot = a.agent_id == AgentId::Onehot && group.id_dim > 0;
        // A learned embedding is appended inside the network, not in the host rows.
        let emb = if a.agent_id == AgentId::Embedding {
            group.id_dim
        } else {
            0
        };
        let n_choices = group.action_space.num_choices();
        Self {
            agents: group.agents.clone(),
            obs_dim: group.obs_dim,
            padded_actions: group
                .agents
                .iter()
                .any(|&i| cfg.spec.agents[i].action_space.num_choices() != n_choices),
            n_envs: cfg.env().n_envs,
            actor_in: group.actor_in - if a.share_actor_params { emb } else { 0 },
            critic_in: group.critic_in - if a.share_critic_params { emb } else { 0 },
            state_dim: if a.centralized_training { state_dim } else { 0 },
            state_at: match a.critic_state {
                CriticState::AgentSpecific if a.centralized_training => group.obs_dim,
                _ => 0,
            },
            actor_onehot: onehot && a.share_actor_params,
            critic_onehot: onehot && a.share_critic_params,
            centralized: a.centralized_training,
            critic_state: a.critic_state,
            other_actions: a.centralized_training && a.critic_other_actions,
            action_space: group.action_space.clone(),
        }
    }

    /// The order of the group's rows.
    pub fn row_layout(&self) -> RowLayout {
        RowLayout {
            n_envs: self.n_envs,
            n_agents: self.agents.len(),
        }
    }

    /// Rows per step.
    pub fn rows(&self) -> usize {
        self.row_layout().rows()
    }

    /// Whether the group's discrete actions are masked: by the environment, or where joined
    /// groups' agents have fewer choices than the group.
    pub fn masked(&self, spec: &EnvSpec) -> bool {
        spec.has_action_masks || self.padded_actions
    }

    /// Writes the actor rows of one step from `obs` (`[n_envs, obs_len]`).
    pub fn actor_rows(&self, spec: &EnvSpec, obs: &[f32], out: &mut [f32]) {
        let (n_k, rl) = (self.agents.len(), self.row_layout());
        for (k, &agent) in self.agents.iter().enumerate() {
            let r = spec.obs_range(agent);
            for e in 0..self.n_envs {
                let row = &mut out[rl.row(k, e) * self.actor_in..][..self.actor_in];
                row[..r.len()].copy_from_slice(
                    &obs[e * spec.obs_len() + r.start..e * spec.obs_len() + r.end],
                );
                row[r.len()..self.obs_dim].fill(0.0);
                if self.actor_onehot {
                    let id = &mut row[self.obs_dim..self.obs_dim + n_k];
                    id.fill(0.0);
                    id[k] = 1.0;
                }
            }
        }
    }

    /// Width of a critic row without its state.
    pub fn rest_in(&self) -> usize {
        self.critic_in - self.state_dim
    }

    /// How the critic rows reach the backend.
    pub fn critic_form(&self) -> CriticForm {
        match (self.state_dim, self.state_at) {
            (0, _) => CriticForm::Whole,
            (_, 0) => CriticForm::SharedState,
            _ => CriticForm::WrittenOut,
        }
    }

    /// Writes the critic rows of one step without their state (the state is kept once per
    /// environment) from observations and the joint actions (`[n_envs, action_len]`, used when
    /// the critic sees the others' actions): the own observation (decentralized critics or
    /// agent-specific states), the others' actions, the one-hot id, in the order of the whole
    /// row.
    pub fn critic_rest_rows(&self, spec: &EnvSpec, obs: &[f32], actions: &[f32], out: &mut [f32]) {
        let (n_k, rl) = (self.agents.len(), self.row_layout());
        let w = self.rest_in();
        let own_obs = !self.centralized || self.critic_state == CriticState::AgentSpecific;
        for (k, &agent) in self.agents.iter().enumerate() {
            let r = spec.obs_range(agent);
            for e in 0..self.n_envs {
                let row = &mut out[rl.row(k, e) * w..][..w];
                let mut at = 0;
                if own_obs {
                    let own = &obs[e * spec.obs_len() + r.start..e * spec.obs_len() + r.end];
                    row[..own.len()].copy_from_slice(own);
                    row[own.len()..self.obs_dim].fill(0.0);
                    at = self.obs_dim;
                }
                if self.other_actions {
                    for &j in self.agents.iter().filter(|&&j| j != agent) {
                        let a = &actions[e * spec.action_len()..][spec.action_range(j)];
                        let aw = self.action_space.encoded_width();
                        let dst = &mut row[at..at + aw];
                        match self.action_space {
                            ActionSpace::Discrete(_) => {
                                dst.fill(0.0);
                                dst[a[0] as usize] = 1.0;
                            }
                            ActionSpace::Box { .. } => dst.copy_from_slice(a),
                        }
                        at += aw;
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

    /// The critic rows of a step or a minibatch for the backend, from the rows without their
    /// state (`rest`), states (`[U, state_dim]`) and which one each row reads (`of_row`);
    /// [`CriticForm::WrittenOut`] rows are written whole into `whole`.
    pub fn critic_input<'a>(
        &self,
        rest: &'a [f32],
        states: &'a [f32],
        of_row: &'a [u32],
        whole: &'a mut Vec<f32>,
    ) -> CriticRows<'a> {
        match self.critic_form() {
            CriticForm::Whole => CriticRows::whole(rest),
            CriticForm::SharedState => CriticRows {
                own: rest,
                states: Some(SharedStates {
                    values: states,
                    dim: self.state_dim,
                    of_row,
                }),
            },
            CriticForm::WrittenOut => {
                let (w, sd, at) = (self.rest_in(), self.state_dim, self.state_at);
                whole.clear();
                for (row, &st) in rest.chunks_exact(w).zip(of_row) {
                    let st = st as usize;
                    whole.extend_from_slice(&row[..at]);
                    whole.extend_from_slice(&states[st * sd..(st + 1) * sd]);
                    whole.extend_from_slice(&row[at..]);
                }
                CriticRows::whole(whole)
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
    /// Critic rows without their state `[T, R, critic_in - state_dim]`.
    pub critic_rest: Vec<f32>,
    /// Global states `[T, n_envs, state_dim]` (empty without a centralized critic).
    pub states: Vec<f32>,
    /// Actions as the policy produced them `[T, R, ActionSpace::width]` (index, or the
    /// unclipped sample).
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
        // Actions as stored: the index (discrete) or the vector (box).
        let act_w = l.action_space.width();
        let mask_bias = match l.action_space {
            ActionSpace::Discrete(_) if masked => Some(vec![0.0; n * l.action_space.num_choices()]),
            _ => None,
        };
        Self {
            t_len,
            rows: r,
            actor_in: vec![0.0; n * l.actor_in],
            critic_rest: vec![0.0; n * l.rest_in()],
            states: vec![0.0; t_len * l.n_envs * l.state_dim],
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
