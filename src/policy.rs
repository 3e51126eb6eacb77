//! One agent group's networks: actor(s), critic(s), Gaussian log-stds, agent embeddings, and
//! their optimizers and value normalizer.
//!
//! Rows of a group's batch are ordered agent-major (`[agent k][env e]`), so an unshared network
//! per agent runs on a contiguous slice of rows.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand_chacha::ChaCha8Rng;

use crate::algo::value_norm::ValueNorm;
use crate::config::{AgentId, Group, OptimizerKind, TrainConfig};
use crate::nn::mlp::Mlp;
use crate::optim::Adam;
use marl_envs::ActionSpace;

/// A network with an optional learned agent embedding appended to its input.
pub struct Net {
    mlp: Mlp,
    embedding: Option<Var>,
}

impl Net {
    /// The MLP.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// Whether a learned agent embedding is appended to the input.
    pub fn has_embedding(&self) -> bool {
        self.embedding.is_some()
    }

    fn forward(&self, x: &Tensor, ids: Option<&Tensor>) -> Result<Tensor> {
        match (&self.embedding, ids) {
            (Some(e), Some(ids)) => {
                let emb = e.as_tensor().index_select(ids, 0)?;
                self.mlp.forward(&Tensor::cat(&[x, &emb], 1)?)
            }
            _ => self.mlp.forward(x),
        }
    }

    fn vars(&self) -> Vec<Var> {
        let mut v = self.mlp.vars();
        v.extend(self.embedding.clone());
        v
    }

    fn export(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) -> Result<()> {
        self.mlp.export(prefix, out)?;
        if let Some(e) = &self.embedding {
            out.push((format!("{prefix}.embedding"), e.as_tensor().clone()));
        }
        Ok(())
    }

    fn import(&self, prefix: &str, map: &HashMap<String, Tensor>) -> Result<()> {
        self.mlp.import(prefix, map)?;
        if let Some(e) = &self.embedding {
            let name = format!("{prefix}.embedding");
            let t = map
                .get(&name)
                .with_context(|| format!("checkpoint has no tensor `{name}`"))?;
            anyhow::ensure!(
                t.dims() == e.dims(),
                "tensor `{name}` has shape {:?}, expected {:?}",
                t.dims(),
                e.dims()
            );
            e.set(&t.to_device(e.device())?)?;
        }
        Ok(())
    }
}

/// The networks and learner state of one group.
pub struct GroupPolicy {
    /// The group.
    pub group: Group,
    /// One actor (shared) or one per agent.
    pub actors: Vec<Net>,
    /// One critic (shared) or one per agent.
    pub critics: Vec<Net>,
    /// Gaussian actors' log standard deviations, one per actor.
    pub log_std: Vec<Var>,
    /// Actor optimizer (the joint one with `optimizer = "joint"`).
    pub actor_opt: Adam,
    /// Critic optimizer (None with the joint optimizer).
    pub critic_opt: Option<Adam>,
    /// Value-target statistics.
    pub value_norm: ValueNorm,
    /// Agent index within the group for every row of a step (`[A_g * n_envs]`), for embeddings.
    pub ids: Option<Tensor>,
    /// Number of environments the rows of one step span.
    pub n_envs: usize,
}

/// Width of the network output for an action space.
fn out_dim(space: &ActionSpace) -> usize {
    match space {
        ActionSpace::Discrete(n) => *n,
        ActionSpace::Box { dim, .. } => *dim,
    }
}

impl GroupPolicy {
    /// Builds a group's networks from the seeded generator.
    pub fn new(
        cfg: &TrainConfig,
        group: &Group,
        rng: &mut ChaCha8Rng,
        dev: &Device,
    ) -> Result<Self> {
        let a = &cfg.raw.algo;
        let nw = &cfg.raw.network;
        let n_agents = group.agents.len();
        let n_actors = if a.share_actor_params { 1 } else { n_agents };
        let n_critics = if a.share_critic_params { 1 } else { n_agents };
        let emb = a.agent_id == AgentId::Embedding && group.id_dim > 0;
        let make = |count: usize,
                    in_dim: usize,
                    shared: bool,
                    out: usize,
                    gain: f64,
                    rng: &mut ChaCha8Rng|
         -> Result<Vec<Net>> {
            (0..count)
                .map(|_| {
                    let with_emb = emb && shared;
                    let mlp = Mlp::new(
                        in_dim,
                        &nw.hidden,
                        out,
                        nw.activation,
                        nw.layer_norm,
                        gain,
                        rng,
                        dev,
                    )?;
                    let embedding = if with_emb {
                        let vals: Vec<f32> = (0..n_agents * group.id_dim)
                            .map(|_| crate::nn::init::normal(rng) as f32)
                            .collect();
                        Some(Var::from_tensor(&Tensor::from_vec(
                            vals,
                            (n_agents, group.id_dim),
                            dev,
                        )?)?)
                    } else {
                        None
                    };
                    Ok(Net { mlp, embedding })
                })
                .collect()
        };
        let actors = make(
            n_actors,
            group.actor_in,
            a.share_actor_params,
            out_dim(&group.action_space),
            0.01,
            rng,
        )?;
        let critics = make(
            n_critics,
            group.critic_in,
            a.share_critic_params,
            1,
            1.0,
            rng,
        )?;
        let log_std = match group.action_space {
            ActionSpace::Box { dim, .. } => (0..n_actors)
                .map(|_| {
                    Ok(Var::from_tensor(&Tensor::full(
                        nw.log_std_init as f32,
                        dim,
                        dev,
                    )?)?)
                })
                .collect::<Result<Vec<_>>>()?,
            ActionSpace::Discrete(_) => Vec::new(),
        };
        let mut actor_vars: Vec<Var> = actors.iter().flat_map(Net::vars).collect();
        actor_vars.extend(log_std.iter().cloned());
        let critic_vars: Vec<Var> = critics.iter().flat_map(Net::vars).collect();
        let p = &cfg.raw.ppo;
        let (actor_opt, critic_opt) = match p.optimizer {
            OptimizerKind::Separate => (
                Adam::new(actor_vars, p.learning_rate, p.adam_eps)?,
                Some(Adam::new(critic_vars, p.critic_learning_rate, p.adam_eps)?),
            ),
            OptimizerKind::Joint => {
                let mut all = actor_vars;
                all.extend(critic_vars);
                (Adam::new(all, p.learning_rate, p.adam_eps)?, None)
            }
        };
        let ids = if emb {
            let v: Vec<u32> = (0..n_agents)
                .flat_map(|k| std::iter::repeat_n(k as u32, cfg.raw.env.n_envs))
                .collect();
            Some(Tensor::from_vec(v, n_agents * cfg.raw.env.n_envs, dev)?)
        } else {
            None
        };
        Ok(Self {
            group: group.clone(),
            actors,
            critics,
            log_std,
            actor_opt,
            critic_opt,
            value_norm: ValueNorm::default(),
            ids,
            n_envs: cfg.raw.env.n_envs,
        })
    }

    /// Runs `nets` over rows ordered agent-major; `agent_of_rows` says which agent each
    /// contiguous chunk of rows belongs to (`(agent, start, len)`), `ids` the agent per row.
    fn run(
        nets: &[Net],
        x: &Tensor,
        chunks: &[(usize, usize, usize)],
        ids: Option<&Tensor>,
    ) -> Result<Tensor> {
        if nets.len() == 1 {
            return nets[0].forward(x, ids);
        }
        let outs = chunks
            .iter()
            .map(|&(k, start, len)| nets[k].forward(&x.narrow(0, start, len)?, None))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&outs, 0)?)
    }

    /// Actor outputs (logits or Gaussian means) for `x` (`[rows, actor_in]`).
    pub fn actor_out(
        &self,
        x: &Tensor,
        chunks: &[(usize, usize, usize)],
        ids: Option<&Tensor>,
    ) -> Result<Tensor> {
        Self::run(&self.actors, x, chunks, ids)
    }

    /// Critic values (`[rows]`, normalized scale) for `x` (`[rows, critic_in]`).
    pub fn values(
        &self,
        x: &Tensor,
        chunks: &[(usize, usize, usize)],
        ids: Option<&Tensor>,
    ) -> Result<Tensor> {
        Ok(Self::run(&self.critics, x, chunks, ids)?.squeeze(1)?)
    }

    /// The log-std rows for Gaussian actors (`[rows, d]`), following the chunks.
    pub fn log_std_rows(
        &self,
        chunks: &[(usize, usize, usize)],
        rows: usize,
    ) -> Result<Option<Tensor>> {
        if self.log_std.is_empty() {
            return Ok(None);
        }
        let clamp = |v: &Var| v.as_tensor().clamp(-5.0, 2.0);
        if self.log_std.len() == 1 {
            let ls = clamp(&self.log_std[0])?;
            return Ok(Some(
                ls.unsqueeze(0)?
                    .broadcast_as((rows, ls.dim(0)?))?
                    .contiguous()?,
            ));
        }
        let parts = chunks
            .iter()
            .map(|&(k, _, len)| {
                let ls = clamp(&self.log_std[k])?;
                Ok(ls.unsqueeze(0)?.broadcast_as((len, ls.dim(0)?))?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Tensor::cat(&parts, 0)?.contiguous()?))
    }

    /// Chunks of a full step's rows: agent `k` owns rows `k * n_envs .. (k + 1) * n_envs`.
    pub fn step_chunks(&self) -> Vec<(usize, usize, usize)> {
        (0..self.group.agents.len())
            .map(|k| (k, k * self.n_envs, self.n_envs))
            .collect()
    }

    /// `{group}.{kind}` for a shared network, `{group}.{kind}.{i}` for agent `i`'s own.
    fn prefix(&self, kind: &str, i: usize, n: usize) -> String {
        if n == 1 {
            format!("{}.{kind}", self.group.name)
        } else {
            format!("{}.{kind}.{i}", self.group.name)
        }
    }

    /// Names and tensors in the frozen checkpoint layout.
    pub fn export(&self, out: &mut Vec<(String, Tensor)>) -> Result<()> {
        let name = |kind: &str, i: usize, n: usize| self.prefix(kind, i, n);
        for (i, net) in self.actors.iter().enumerate() {
            net.export(&name("actor", i, self.actors.len()), out)?;
        }
        for (i, ls) in self.log_std.iter().enumerate() {
            out.push((
                format!("{}.log_std", name("actor", i, self.log_std.len())),
                ls.as_tensor().clone(),
            ));
        }
        for (i, net) in self.critics.iter().enumerate() {
            net.export(&name("critic", i, self.critics.len()), out)?;
        }
        Ok(())
    }

    /// Loads what [`export`](Self::export) wrote.
    pub fn import(&self, map: &HashMap<String, Tensor>) -> Result<()> {
        let name = |kind: &str, i: usize, n: usize| self.prefix(kind, i, n);
        for (i, net) in self.actors.iter().enumerate() {
            net.import(&name("actor", i, self.actors.len()), map)?;
        }
        for (i, ls) in self.log_std.iter().enumerate() {
            let key = format!("{}.log_std", name("actor", i, self.log_std.len()));
            let t = map
                .get(&key)
                .with_context(|| format!("checkpoint has no tensor `{key}`"))?;
            ls.set(&t.to_dtype(DType::F32)?.to_device(ls.device())?)?;
        }
        for (i, net) in self.critics.iter().enumerate() {
            net.import(&name("critic", i, self.critics.len()), map)?;
        }
        Ok(())
    }
}
