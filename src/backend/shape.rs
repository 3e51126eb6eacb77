//! What a group's networks and optimizer are: the shapes every backend builds from, and the
//! checkpoint layout ([`super::layout`]) reads. A leaf of the backend: it imports neither the
//! layout nor the backends, so that the layout can depend on it while `backend` depends on
//! both.

use marl_envs::ActionSpace;

use crate::config::{
    Activation, AgentId, CommKind, Group, OptimizerKind, RecurrentKind, TrainConfig,
};
use crate::nn::comm::CommLayers;
use crate::nn::cpu_gru::CpuGru;
use crate::nn::cpu_mlp::CpuMlp;
use crate::nn::cpu_net::{CpuNet, Recurrent};

/// An MLP's shape: input width (the host row, without a learned embedding), hidden widths,
/// output width, activation, LayerNorms, and the gain of the head's initialization.
#[derive(Debug, Clone, PartialEq)]
pub struct NetShape {
    /// Width of a host row.
    pub in_dim: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Output width (actions, or 1 for a value).
    pub out_dim: usize,
    /// ReLU instead of tanh.
    pub relu: bool,
    /// on-policy's LayerNorms.
    pub layer_norm: bool,
    /// Orthogonal gain of the head (0.01 for a policy, 1 for a value).
    pub head_gain: f64,
    /// A GRU after the hidden layers (then more dense layers and the head).
    pub recurrent: Option<Recurrence>,
}

/// The recurrent part of a network: `hidden` layers -> GRU -> `after` layers -> head.
#[derive(Debug, Clone, PartialEq)]
pub struct Recurrence {
    /// The GRU's width (its state's size).
    pub width: usize,
    /// Dense layers between the GRU and the head.
    pub after: Vec<usize>,
}

/// One side of a group: its actor(s) or its critic(s).
#[derive(Debug, Clone, PartialEq)]
pub struct SideShape {
    /// `{group}.actor` or `{group}.critic`: the checkpoint prefix.
    pub prefix: String,
    /// One shared network, or one per agent.
    pub n_nets: usize,
    /// Each network's shape.
    pub net: NetShape,
    /// A learned agent embedding appended to a shared network's input: (agents, size).
    pub embedding: Option<(usize, usize)>,
    /// Gaussian actors: the action size of each network's state-independent log-std.
    pub log_std: Option<usize>,
    /// Actors that communicate: the message layers in front of the networks (their encoder is
    /// the first hidden layer), whose final hidden state each network reads instead of the
    /// host row; one set per group (its agents speak one language).
    pub comm: Option<CommLayers>,
}

impl SideShape {
    /// Width of the MLP's input: the host row (or the communicated state) and the embedding.
    pub fn mlp_in(&self) -> usize {
        self.net.in_dim + self.embedding.map_or(0, |(_, d)| d)
    }

    /// Width of a host row: the network's input, or the message layers' with communication.
    pub fn host_in(&self) -> usize {
        self.comm.as_ref().map_or(self.net.in_dim, |c| c.in_dim)
    }

    /// One network, computed by hand.
    pub fn net(&self) -> CpuNet {
        let n = &self.net;
        let mut dims = vec![self.mlp_in()];
        dims.extend(&n.hidden);
        let Some(rec) = &n.recurrent else {
            dims.push(n.out_dim);
            return CpuNet::Mlp(Box::new(CpuMlp::new(&dims, n.relu, n.layer_norm, false)));
        };
        let gru_in = *dims.last().unwrap_or(&self.mlp_in());
        let base = (dims.len() > 1).then(|| CpuMlp::new(&dims, n.relu, n.layer_norm, true));
        let mut top = vec![rec.width];
        top.extend(&rec.after);
        top.push(n.out_dim);
        CpuNet::Recurrent(Box::new(Recurrent {
            base,
            gru: CpuGru::new(gru_in, rec.width),
            top: CpuMlp::new(&top, n.relu, n.layer_norm, false),
        }))
    }

    /// The width of a network's recurrent state (None: feed-forward).
    pub fn state_width(&self) -> Option<usize> {
        self.net.recurrent.as_ref().map(|r| r.width)
    }
}

/// Everything a backend needs to know about one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupShape {
    /// The group's name (checkpoint prefix, error messages).
    pub name: String,
    /// Agents in the group.
    pub n_agents: usize,
    /// Their action space.
    pub action_space: ActionSpace,
    /// Actor side.
    pub actor: SideShape,
    /// Critic side.
    pub critic: SideShape,
    /// Initial log-std of Gaussian actors.
    pub log_std_init: f64,
    /// Optimizer settings.
    pub optim: OptimShape,
    /// The arithmetic of the networks' passes.
    pub precision: Precision,
}

/// The arithmetic of the networks' forward and backward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 throughout.
    #[default]
    F32,
    /// bf16 passes on CUDA (`ppo.use_mixed_precision`): the candle backend casts the f32
    /// parameters and inputs to bf16 for the forward pass (LayerNorms, the log-softmax and the
    /// loss in f32) and the gradients back to f32; parameters and Adam's moments stay f32.
    Bf16,
}

/// Adam and clipping settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimShape {
    /// Separate Adams for actor and critic (each clipped on its own) or one joint Adam.
    pub kind: OptimizerKind,
    /// Actor (or joint) learning rate.
    pub learning_rate: f64,
    /// Critic learning rate (separate optimizers).
    pub critic_learning_rate: f64,
    /// Adam's epsilon.
    pub adam_eps: f64,
    /// Global gradient-norm clip per optimizer (0: none).
    pub max_grad_norm: f64,
}

impl GroupShape {
    /// The shape of `group` under `cfg`.
    pub fn of(cfg: &TrainConfig, group: &Group) -> Self {
        let a = cfg.algo();
        let nw = cfg.network();
        let p = cfg.ppo();
        let n_agents = group.agents.len();
        let emb = a.agent_id == AgentId::Embedding && group.id_dim > 0;
        let side = |kind: &str, shared: bool, in_dim: usize, out_dim, head_gain, log_std| {
            let embedding = (emb && shared).then_some((n_agents, group.id_dim));
            let host_in = in_dim - embedding.map_or(0, |(_, d)| d);
            let comm = (kind == "actor" && group.communicates).then(|| CommLayers {
                in_dim: host_in,
                width: nw.hidden.first().copied().unwrap_or(nw.recurrent_hidden),
                dim: a.communication_dim,
                rounds: a.communication_rounds,
                kind: a.communication,
                key_dim: match a.communication {
                    CommKind::Mean => 0,
                    CommKind::Attention => a.communication_key_dim,
                },
            });
            // With messages, the first hidden layer is their encoder: the network reads the
            // communicated state through the other layers.
            let (net_in, hidden) = match &comm {
                Some(c) => (c.width, nw.hidden.get(1..).unwrap_or_default().to_vec()),
                None => (host_in, nw.hidden.clone()),
            };
            SideShape {
                prefix: format!("{}.{kind}", group.name),
                n_nets: if shared { 1 } else { n_agents },
                net: NetShape {
                    // A learned embedding is appended inside the network, not in host rows.
                    in_dim: net_in,
                    hidden,
                    out_dim,
                    relu: nw.activation == Activation::Relu,
                    layer_norm: nw.layer_norm,
                    head_gain,
                    recurrent: (nw.recurrent == RecurrentKind::Gru).then(|| Recurrence {
                        width: nw.recurrent_hidden,
                        after: nw.hidden_after.clone(),
                    }),
                },
                embedding,
                log_std,
                comm,
            }
        };
        let (out, log_std) = match group.action_space {
            ActionSpace::Discrete(n) => (n, None),
            ActionSpace::Box { dim, .. } => (dim, Some(dim)),
        };
        Self {
            name: group.name.clone(),
            n_agents,
            action_space: group.action_space.clone(),
            actor: side(
                "actor",
                a.share_actor_params,
                group.actor_in,
                out,
                0.01,
                log_std,
            ),
            critic: side(
                "critic",
                a.share_critic_params,
                group.critic_in,
                1,
                1.0,
                None,
            ),
            log_std_init: nw.log_std_init,
            optim: OptimShape {
                kind: p.optimizer,
                learning_rate: p.learning_rate,
                critic_learning_rate: p.critic_learning_rate,
                adam_eps: p.adam_eps,
                max_grad_norm: p.max_grad_norm,
            },
            precision: if p.use_mixed_precision {
                Precision::Bf16
            } else {
                Precision::F32
            },
        }
    }
}
