//! Configuration: the TOML file as written ([`raw`]), overrides from the command line, and the
//! resolved, validated configuration with every derived size ([`TrainConfig`]).
//!
//! Errors name the file, the key, the line where there is one, and what was expected; a
//! misspelled key suggests the right one.

pub mod raw;

use std::path::Path;

use anyhow::{bail, Context, Result};
use marl_envs::{registry, ActionSpace, EnvSpec};

pub use raw::*;

/// Reads a config file and applies `--set key=value` overrides (dotted keys, TOML values).
pub fn load(path: &Path, overrides: &[String]) -> Result<RawConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    parse(&text, &path.display().to_string(), overrides)
}

/// Parses config text; `name` names it in errors.
pub fn parse(text: &str, name: &str, overrides: &[String]) -> Result<RawConfig> {
    // The file as written first: toml's errors then carry the line and column.
    let raw: RawConfig = toml::from_str(text).map_err(|e| config_error(name, &e.to_string()))?;
    if overrides.is_empty() {
        return Ok(raw);
    }
    // Overrides go into the table, then the whole is checked again.
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| config_error(name, &e.to_string()))?;
    for pair in overrides {
        let (key, value) = parse_assignment(pair, "--set")?;
        set_dotted(&mut table, &key, value).with_context(|| format!("--set `{pair}`"))?;
    }
    RawConfig::deserialize_table(table)
        .map_err(|e| config_error(&format!("{name} with --set {}", overrides.join(" ")), &e))
}

impl RawConfig {
    fn deserialize_table(table: toml::Table) -> std::result::Result<Self, String> {
        use serde::Deserialize;
        RawConfig::deserialize(toml::Value::Table(table)).map_err(|e| e.to_string())
    }
}

/// One `KEY=VALUE` from the command line (`what` names the flag in errors): the key, and the
/// value in TOML syntax (a bare word that is not TOML is a string).
pub fn parse_assignment(pair: &str, what: &str) -> Result<(String, toml::Value)> {
    let Some((key, value)) = pair.split_once('=') else {
        bail!("{what} `{pair}`: expected KEY=VALUE, e.g. {what} ppo.learning_rate=3e-4");
    };
    let key = key.trim();
    if key.is_empty() {
        bail!("{what} `{pair}`: the key is empty");
    }
    Ok((key.to_string(), parse_value(value)))
}

/// `KEY=VALUE` pairs into a table (keys as written).
pub fn parse_assignments(pairs: &[String], what: &str) -> Result<toml::Table> {
    pairs
        .iter()
        .map(|pair| parse_assignment(pair, what))
        .collect()
}

/// A TOML value from the command line; a bare word that is not TOML is a string.
fn parse_value(text: &str) -> toml::Value {
    let text = text.trim();
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().filter(|s| !s.is_empty()).context("empty key")?;
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .with_context(|| format!("`{p}` is not a table"))?;
    }
    t.insert(last.to_string(), value);
    Ok(())
}

/// Wraps a serde/toml message with the file name and, for unknown keys, the closest valid one.
fn config_error(name: &str, message: &str) -> anyhow::Error {
    let mut msg = format!("invalid config {name}: {}", message.trim());
    if let Some(hint) = suggest(message) {
        msg.push_str(&format!("\n  hint: did you mean `{hint}`?"));
    }
    anyhow::anyhow!(msg)
}

/// From "unknown field `x`, expected one of `a`, `b`", the valid key closest to `x`.
fn suggest(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    registry::closest(unknown, &expected).map(str::to_string)
}

/// One agent group: the agents that share networks, critics and rewards.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The group's name (agent type, or the key in `[agent_groups]`).
    pub name: String,
    /// Agent indices, in the environment's order.
    pub agents: Vec<usize>,
    /// Observation size of every member.
    pub obs_dim: usize,
    /// Action space of every member.
    pub action_space: ActionSpace,
    /// Actor input size (observation plus agent id).
    pub actor_in: usize,
    /// Critic input size.
    pub critic_in: usize,
    /// Size of the agent id appended to actor and critic inputs (one-hot width, embedding
    /// size, or 0).
    pub id_dim: usize,
    /// Whether the group's actors exchange learned messages (its agents form one channel
    /// per environment).
    pub communicates: bool,
    /// Whether the group acts uniformly at random and never trains (`algo.random_groups`).
    pub random: bool,
}

/// The resolved configuration of a training run.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Everything as written, defaults filled in.
    pub raw: RawConfig,
    /// The environment's spec.
    pub spec: EnvSpec,
    /// The agent groups.
    pub groups: Vec<Group>,
    /// Environment steps per update.
    pub batch_size: usize,
    /// Updates in the run.
    pub num_updates: u64,
}

/// The typed sections each module is handed: a module reads the section it needs, never the
/// file as written (`raw`, kept for writing the run's config.toml and for `config` itself).
impl TrainConfig {
    /// `seed`: the master seed every generator of the run derives from.
    pub fn seed(&self) -> u64 {
        self.raw.seed
    }

    /// `device`: where the networks train (`cpu`, `cuda`, `cuda:N`).
    pub fn device(&self) -> &str {
        &self.raw.device
    }

    /// `num_workers`: threads stepping the environments.
    pub fn num_workers(&self) -> usize {
        self.raw.num_workers
    }

    /// `out_dir`: where new run directories go.
    pub fn out_dir(&self) -> &str {
        &self.raw.out_dir
    }

    /// `[env]`.
    pub fn env(&self) -> &EnvConfig {
        &self.raw.env
    }

    /// `[algo]`.
    pub fn algo(&self) -> &AlgoConfig {
        &self.raw.algo
    }

    /// `[ppo]`.
    pub fn ppo(&self) -> &PpoConfig {
        &self.raw.ppo
    }

    /// `[network]`.
    pub fn network(&self) -> &NetworkConfig {
        &self.raw.network
    }

    /// `[logging]`.
    pub fn logging(&self) -> &LoggingConfig {
        &self.raw.logging
    }

    /// The config as a run directory keeps it (config.toml): as written, defaults filled in.
    pub fn to_toml(&self) -> Result<String> {
        to_toml(&self.raw)
    }
}

impl TrainConfig {
    /// Validates `raw` against the environment it names and derives every size.
    pub fn resolve(raw: RawConfig) -> Result<Self> {
        let env = registry::make(&raw.env.id, &raw.env.params).context("[env]")?;
        let spec = env.spec().clone();
        let a = &raw.algo;
        let p = &raw.ppo;
        let e = &raw.env;
        if e.n_envs == 0 || e.rollout_length == 0 {
            bail!("env.n_envs and env.rollout_length must be at least 1");
        }
        let batch_size = e.n_envs * e.rollout_length;
        if let Some(b) = e.batch_size {
            if b != batch_size {
                bail!("env.batch_size = {b}, but n_envs x rollout_length = {batch_size}: drop batch_size or make them agree");
            }
        }
        if raw.total_timesteps < batch_size as u64 {
            bail!(
                "total_timesteps = {} is less than one batch ({batch_size} environment steps)",
                raw.total_timesteps
            );
        }
        if p.ppo_epochs == 0 || p.num_minibatches == 0 || p.grad_accum_steps == 0 {
            bail!(
                "ppo.ppo_epochs, ppo.num_minibatches and ppo.grad_accum_steps must be at least 1"
            );
        }
        if p.num_minibatches > batch_size {
            bail!(
                "ppo.num_minibatches = {} exceeds the batch of {batch_size} steps",
                p.num_minibatches
            );
        }
        for (key, v) in [
            ("learning_rate", p.learning_rate),
            ("critic_learning_rate", p.critic_learning_rate),
        ] {
            if v.is_nan() || v <= 0.0 || v.is_infinite() {
                bail!("ppo.{key} = {v}: expected a positive number");
            }
        }
        if !(0.0..=1.0).contains(&p.gamma) || !(0.0..=1.0).contains(&p.gae_lambda) {
            bail!("ppo.gamma and ppo.gae_lambda must be in [0, 1]");
        }
        if p.clip_epsilon.is_nan() || p.clip_epsilon <= 0.0 {
            bail!("ppo.clip_epsilon must be positive");
        }
        if !(0.0..=1.0).contains(&a.reward_sharing_weight) {
            bail!("algo.reward_sharing_weight must be in [0, 1]");
        }
        let nw = &raw.network;
        if nw.hidden.contains(&0) || nw.hidden_after.contains(&0) {
            bail!("network.hidden and network.hidden_after cannot hold a layer of size 0");
        }
        if nw.recurrent == RecurrentKind::None {
            if nw.hidden.is_empty() {
                bail!("network.hidden must list at least one layer size");
            }
            if !nw.hidden_after.is_empty() {
                bail!(
                    "network.hidden_after = {:?} is for the layers after a GRU; set \
                     network.recurrent = \"gru\" or move them into network.hidden",
                    nw.hidden_after
                );
            }
        } else {
            if nw.recurrent_hidden == 0 {
                bail!("network.recurrent_hidden must be at least 1");
            }
            let chunk = nw.data_chunk_length;
            if chunk > 0 && !e.rollout_length.is_multiple_of(chunk) {
                bail!(
                    "network.data_chunk_length = {chunk} does not divide env.rollout_length = {}: \
                     training sequences are whole chunks of the rollout (0: the whole rollout)",
                    e.rollout_length
                );
            }
            let per_env = e.rollout_length.checked_div(chunk).unwrap_or(1);
            if p.num_minibatches > e.n_envs * per_env {
                bail!(
                    "ppo.num_minibatches = {} exceeds the {} training sequences of one agent's \
                     rollouts (n_envs x rollout_length / network.data_chunk_length)",
                    p.num_minibatches,
                    e.n_envs * per_env
                );
            }
        }
        if p.use_mixed_precision && !raw.device.starts_with("cuda") {
            bail!(
                "ppo.use_mixed_precision = true trains in bf16 on CUDA only (device = \"{}\"): \
                 set it to false, or train with --device cuda (bf16 gives no speed on the CPU)",
                raw.device
            );
        }
        let groups = resolve_groups(&raw, &spec)?;
        let num_updates = raw.total_timesteps / batch_size as u64;
        Ok(Self {
            raw,
            spec,
            groups,
            batch_size,
            num_updates,
        })
    }
}

/// The agent groups: `[agent_groups]` (or one per agent type), with the groups a
/// communication channel joins merged into one.
fn resolve_groups(raw: &RawConfig, spec: &EnvSpec) -> Result<Vec<Group>> {
    let named = named_groups(raw, spec)?;
    let random = random_groups(&raw.algo, &named)?;
    let channels = resolve_communication(&raw.algo, spec, &named, &random)?;
    let mut groups = Vec::new();
    for (gi, (name, agents)) in named.iter().enumerate() {
        match channels.iter().find(|c| c.groups.contains(&gi)) {
            // A channel joining groups is one group, at its first member's place.
            Some(c) if c.groups.len() > 1 => {
                if c.groups[0] != gi {
                    continue;
                }
                let mut agents: Vec<usize> = c
                    .groups
                    .iter()
                    .flat_map(|&g| named[g].1.iter().copied())
                    .collect();
                agents.sort_unstable();
                let names: Vec<&str> = c.groups.iter().map(|&g| named[g].0.as_str()).collect();
                let mut g = group(raw, spec, &names.join("+"), &agents, true)?;
                g.communicates = true;
                groups.push(g);
            }
            c => {
                let mut g = group(raw, spec, name, agents, false)?;
                g.communicates = c.is_some();
                g.random = random[gi];
                groups.push(g);
            }
        }
    }
    Ok(groups)
}

/// Which named groups `algo.random_groups` fixes to uniformly random actions, with one line per
/// bad setting.
fn random_groups(a: &AlgoConfig, named: &[(String, Vec<usize>)]) -> Result<Vec<bool>> {
    let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    let mut random = vec![false; named.len()];
    for name in &a.random_groups {
        let Some(gi) = names.iter().position(|n| n == name) else {
            let hint = registry::closest(name, &names)
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            bail!(
                "algo.random_groups names group `{name}`, which does not exist; {hint}the groups \
                 are: {}",
                names.join(", ")
            );
        };
        random[gi] = true;
    }
    if !random.contains(&false) {
        bail!(
            "algo.random_groups = {:?} fixes every group to random actions: nothing would learn; \
             list only the opponents that should stay random",
            a.random_groups
        );
    }
    Ok(random)
}

/// `[agent_groups]` as written, or one group per agent type; every agent in exactly one.
fn named_groups(raw: &RawConfig, spec: &EnvSpec) -> Result<Vec<(String, Vec<usize>)>> {
    let n = spec.num_agents();
    let named: Vec<(String, Vec<usize>)> = if raw.agent_groups.is_empty() {
        spec.agent_types()
            .into_iter()
            .map(|t| {
                let members = (0..n).filter(|&i| spec.agents[i].agent_type == t).collect();
                (t.to_string(), members)
            })
            .collect()
    } else {
        raw.agent_groups
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut seen = vec![false; n];
    for (name, agents) in &named {
        if agents.is_empty() {
            bail!("agent_groups.{name} is empty");
        }
        for &i in agents {
            if i >= n {
                bail!(
                    "agent_groups.{name} names agent {i}, but `{}` has agents 0..{}",
                    spec.id,
                    n - 1
                );
            }
            if std::mem::replace(&mut seen[i], true) {
                bail!("agent {i} is in two agent groups");
            }
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        bail!("agent {i} ({}) is in no agent group", spec.agents[i].name);
    }
    Ok(named)
}

/// The group `name` of `agents`. Agents of one group share observation size and action space,
/// unless a communication channel `joined` their groups: then observations are padded with
/// zeros to the widest and discrete actions to the most choices (the extra ones masked), as
/// PettingZoo's SuperSuit pads mixed agents for shared networks.
fn group(
    raw: &RawConfig,
    spec: &EnvSpec,
    name: &str,
    agents: &[usize],
    joined: bool,
) -> Result<Group> {
    let a = &raw.algo;
    let first = &spec.agents[agents[0]];
    let mut obs_dim = first.obs_dim;
    let mut action_space = first.action_space.clone();
    for &i in agents {
        let ag = &spec.agents[i];
        if ag.obs_dim == first.obs_dim && ag.action_space == first.action_space {
            continue;
        }
        match (&action_space, &ag.action_space) {
            (ActionSpace::Discrete(n), ActionSpace::Discrete(m)) if joined => {
                obs_dim = obs_dim.max(ag.obs_dim);
                action_space = ActionSpace::Discrete(*n.max(m));
            }
            (x, y) if joined && x == y => obs_dim = obs_dim.max(ag.obs_dim),
            _ if joined => bail!(
                "algo.communication_channels joins `{}` ({}) and `{}` ({}): agents of joined \
                 groups need discrete actions (padded to the most choices) or the same action space",
                first.name,
                first.action_space,
                ag.name,
                ag.action_space
            ),
            _ => bail!(
                "agent_groups.{name}: agents {} ({}, obs {}, {}) and {} ({}, obs {}, {}) differ; \
                 agents of one group need the same observation size and action space",
                agents[0], first.name, first.obs_dim, first.action_space, i, ag.name, ag.obs_dim, ag.action_space
            ),
        }
    }
    let shared = a.share_actor_params || a.share_critic_params;
    let id_dim = match a.agent_id {
        AgentId::None => 0,
        _ if agents.len() == 1 || !shared => 0,
        AgentId::Onehot => agents.len(),
        AgentId::Embedding => a.agent_embedding_dim,
    };
    // A shared critic over one global state cannot tell agents apart: with individual or
    // mixed rewards it needs the agent id.
    if a.centralized_training
        && a.share_critic_params
        && agents.len() > 1
        && id_dim == 0
        && a.reward_sharing != RewardSharing::Shared
        && a.critic_state == CriticState::Global
    {
        bail!(
            "group `{name}`: a shared centralized critic over the global state cannot tell its \
             {} agents apart, but their rewards differ (reward_sharing = {:?}); set \
             algo.agent_id = \"onehot\" or \"embedding\", critic_state = \"agent_specific\", \
             or reward_sharing = \"shared\"",
            agents.len(),
            a.reward_sharing
        );
    }
    let mut critic_in = if a.centralized_training {
        match a.critic_state {
            CriticState::Global => spec.state_dim,
            CriticState::AgentSpecific => obs_dim + spec.state_dim,
        }
    } else {
        obs_dim
    };
    if a.centralized_training && a.critic_other_actions {
        critic_in += (agents.len() - 1) * action_space.encoded_width();
    }
    let critic_id = if a.share_critic_params { id_dim } else { 0 };
    let actor_id = if a.share_actor_params { id_dim } else { 0 };
    Ok(Group {
        name: name.to_string(),
        obs_dim,
        actor_in: obs_dim + actor_id,
        critic_in: critic_in + critic_id,
        action_space,
        id_dim,
        agents: agents.to_vec(),
        communicates: false,
        random: false,
    })
}

/// One communication channel: the (named) groups whose agents hear each other.
struct Channel {
    groups: Vec<usize>,
}

/// The channels of `algo.enable_communication` and `communication_channels` over the named
/// groups, with one line per bad setting.
fn resolve_communication(
    a: &AlgoConfig,
    spec: &EnvSpec,
    named: &[(String, Vec<usize>)],
    random: &[bool],
) -> Result<Vec<Channel>> {
    if !a.enable_communication {
        return Ok(Vec::new());
    }
    if a.communication_dim == 0 {
        bail!("algo.communication_dim = 0: a message needs at least one number (default 32)");
    }
    if a.communication_rounds == 0 {
        bail!(
            "algo.communication_rounds = 0: communication needs at least one round of messages \
             per step (default 2); to train without it set algo.enable_communication = false"
        );
    }
    if a.communication == CommKind::Attention && a.communication_key_dim == 0 {
        bail!("algo.communication_key_dim = 0: attention needs keys of at least one number (default 16)");
    }
    let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    if a.communication_channels.is_empty() {
        let channels: Vec<Channel> = (0..named.len())
            .filter(|&g| named[g].1.len() > 1 && !random[g])
            .map(|g| Channel { groups: vec![g] })
            .collect();
        if channels.is_empty() {
            bail!(
                "algo.enable_communication = true, but no agent group has two agents that learn \
                 (groups: {}): nobody could hear anybody; group agents with [agent_groups], or \
                 join groups with algo.communication_channels",
                names.join(", ")
            );
        }
        for c in &channels {
            same_team(spec, named, c, "algo.enable_communication")?;
        }
        return Ok(channels);
    }
    let mut chosen = vec![false; named.len()];
    let mut channels = Vec::new();
    for (ci, channel) in a.communication_channels.iter().enumerate() {
        let key = format!("algo.communication_channels[{ci}]");
        let mut members = Vec::new();
        for name in channel {
            let Some(gi) = names.iter().position(|n| n == name) else {
                let hint = registry::closest(name, &names)
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                bail!(
                    "{key} names group `{name}`, which does not exist; {hint}the groups are: {}",
                    names.join(", ")
                );
            };
            if !members.contains(&gi) {
                members.push(gi);
            }
        }
        if members.is_empty() {
            bail!("{key} is empty: list the groups whose agents talk to each other");
        }
        if let [gi] = members.as_slice() {
            if named[*gi].1.len() < 2 {
                bail!(
                    "{key}: group `{}` has one agent, so nobody in the channel can hear it; \
                     a channel needs two agents that meet (join it with another group)",
                    names[*gi]
                );
            }
        }
        for &gi in &members {
            if std::mem::replace(&mut chosen[gi], true) {
                bail!("{key}: group `{}` is already in another channel", names[gi]);
            }
            if random[gi] {
                bail!(
                    "{key}: group `{}` acts at random (algo.random_groups) and has no network to \
                     talk with; leave it out of the channel",
                    names[gi]
                );
            }
        }
        let channel = Channel { groups: members };
        same_team(spec, named, &channel, &key)?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Refuses a channel (set by `key`) whose agents are not all of one team: messages never
/// cross teams, or opponents would hear each other's plans.
fn same_team(
    spec: &EnvSpec,
    named: &[(String, Vec<usize>)],
    channel: &Channel,
    key: &str,
) -> Result<()> {
    let first = &spec.agents[named[channel.groups[0]].1[0]];
    for &gi in &channel.groups {
        let (name, agents) = &named[gi];
        let Some(other) = agents
            .iter()
            .map(|&i| &spec.agents[i])
            .find(|o| o.team != first.team)
        else {
            continue;
        };
        if gi == channel.groups[0] {
            bail!(
                "{key}: group `{name}` mixes teams (`{}` plays for `{}`, `{}` for `{}`) and would \
                 talk across them; group each team's agents apart with [agent_groups]",
                first.name,
                first.team,
                other.name,
                other.team
            );
        }
        bail!(
            "{key} joins group `{}` (team `{}`) and group `{name}` (team `{}`): messages never \
             cross teams; give each team a channel of its own",
            named[channel.groups[0]].0,
            first.team,
            other.team
        );
    }
    Ok(())
}

/// The resolved config as TOML, every default filled in (`marl config show`, `config.toml`).
pub fn to_toml(raw: &RawConfig) -> Result<String> {
    toml::to_string_pretty(raw).context("cannot serialize the config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_name_the_file_line_and_suggest() {
        let err = parse("[ppo]\nlerning_rate = 3e-4\n", "x.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml") && err.contains("line 2"), "{err}");
        assert!(err.contains("did you mean `learning_rate`"), "{err}");
    }

    #[test]
    fn wrong_types_are_reported_with_the_key() {
        let err = parse("[ppo]\nppo_epochs = \"ten\"\n", "x.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ppo_epochs") || err.contains("line 2"),
            "{err}"
        );
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn overrides_apply_dotted_keys() {
        let c = parse(
            "seed = 1\n",
            "x.toml",
            &[
                "ppo.learning_rate=3e-4".into(),
                "seed=7".into(),
                "env.params.N=4".into(),
            ],
        )
        .expect("parse");
        assert_eq!(c.ppo.learning_rate, 3e-4);
        assert_eq!(c.seed, 7);
        assert_eq!(c.env.params.get("N").and_then(|v| v.as_integer()), Some(4));
        let err = parse("", "x.toml", &["ppo.lerning_rate=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `learning_rate`"), "{err}");
    }

    #[test]
    fn mixed_precision_is_refused_on_the_cpu_and_taken_on_cuda() {
        let mut raw = RawConfig::default();
        raw.ppo.use_mixed_precision = true;
        let err = TrainConfig::resolve(raw.clone()).unwrap_err().to_string();
        assert!(
            err.contains("use_mixed_precision") && err.contains("CUDA only"),
            "{err}"
        );
        raw.device = "cuda".into();
        TrainConfig::resolve(raw).expect("bf16 on CUDA resolves");
    }

    #[test]
    fn communication_joins_the_agents_of_each_group_by_default() {
        let mut raw = RawConfig::default();
        raw.algo.enable_communication = true;
        let c = TrainConfig::resolve(raw).expect("resolve");
        assert!(c.groups[0].communicates);
        let mut raw = RawConfig::default();
        raw.env.id = "mpe/simple_tag_v3".into();
        raw.env.params.insert("num_good".into(), 1.into());
        raw.algo.enable_communication = true;
        let c = TrainConfig::resolve(raw).expect("resolve");
        // Three adversaries talk; the one good agent has nobody to talk to.
        let talk: Vec<_> = c.groups.iter().map(|g| g.communicates).collect();
        assert_eq!(talk, [true, false]);
    }

    #[test]
    fn a_channel_joining_groups_trains_them_as_one_padded_group() {
        let mut raw = RawConfig::default();
        raw.env.id = "mpe/simple_speaker_listener_v4".into();
        raw.algo.enable_communication = true;
        raw.algo.communication_channels = vec![vec!["speaker".into(), "listener".into()]];
        let c = TrainConfig::resolve(raw.clone()).expect("resolve");
        assert_eq!(c.groups.len(), 1);
        let g = &c.groups[0];
        // Speaker: obs 3, Discrete(3); listener: obs 11, Discrete(5).
        assert_eq!(g.name, "speaker+listener");
        assert_eq!(g.agents, [0, 1]);
        assert_eq!(
            (g.obs_dim, &g.action_space),
            (11, &ActionSpace::Discrete(5))
        );
        assert_eq!(g.actor_in, 11 + 2, "padded observation and the one-hot id");
        assert!(g.communicates);
        // Without the channel the two types stay apart, unpadded.
        raw.algo.enable_communication = false;
        let c = TrainConfig::resolve(raw.clone()).expect("resolve");
        let dims: Vec<_> = c.groups.iter().map(|g| (g.obs_dim, g.actor_in)).collect();
        assert_eq!(dims, [(3, 3), (11, 11)]);
        // Continuous speaker (3 numbers) and listener (5): no common space to pad to.
        raw.algo.enable_communication = true;
        raw.env
            .params
            .insert("continuous_actions".into(), true.into());
        let e = TrainConfig::resolve(raw).unwrap_err().to_string();
        assert!(e.contains("need discrete actions"), "{e}");
    }

    #[test]
    fn random_groups_fix_named_groups_and_refuse_bad_names() {
        let mut raw = RawConfig::default();
        raw.env.id = "mpe/simple_tag_v3".into();
        raw.algo.random_groups = vec!["agent".into()];
        let c = TrainConfig::resolve(raw.clone()).expect("resolve");
        let random: Vec<_> = c.groups.iter().map(|g| g.random).collect();
        assert_eq!(random, [false, true]);
        // Unset, the key stays out of the resolved TOML: sweep run ids (its hash) of configs
        // resolved before it existed do not change.
        let text = to_toml(&RawConfig::default()).expect("toml");
        assert!(!text.contains("random_groups"), "{text}");
        assert!(to_toml(&raw)
            .expect("toml")
            .contains("random_groups = [\"agent\"]"));
        let err = |f: &dyn Fn(&mut RawConfig)| {
            let mut r = raw.clone();
            f(&mut r);
            let e = TrainConfig::resolve(r).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e}");
            e
        };
        let e = err(&|r| r.algo.random_groups = vec!["agnt".into()]);
        assert!(
            e.contains("`agnt`") && e.contains("did you mean `agent`"),
            "{e}"
        );
        let e = err(&|r| r.algo.random_groups = vec!["agent".into(), "adversary".into()]);
        assert!(e.contains("nothing would learn"), "{e}");
        let e = err(&|r| {
            r.algo.random_groups = vec!["adversary".into()];
            r.algo.enable_communication = true;
            r.algo.communication_channels = vec![vec!["adversary".into()]];
        });
        assert!(e.contains("acts at random"), "{e}");
        // By default a random group is in no channel.
        let mut r = raw.clone();
        r.algo.random_groups = vec!["adversary".into()];
        r.env.params.insert("num_good".into(), 2.into());
        r.algo.enable_communication = true;
        let c = TrainConfig::resolve(r).expect("resolve");
        let talk: Vec<_> = c.groups.iter().map(|g| g.communicates).collect();
        assert_eq!(talk, [false, true]);
    }

    #[test]
    fn bad_communication_settings_get_one_clear_line_each() {
        let err = |f: &dyn Fn(&mut RawConfig)| {
            let mut raw = RawConfig::default();
            raw.env.id = "mpe/simple_tag_v3".into();
            raw.env.params.insert("num_good".into(), 1.into());
            raw.algo.enable_communication = true;
            f(&mut raw);
            let e = TrainConfig::resolve(raw).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e}");
            e
        };
        let e = err(&|r| r.algo.communication_dim = 0);
        assert!(e.contains("communication_dim = 0"), "{e}");
        let e = err(&|r| r.algo.communication_rounds = 0);
        assert!(e.contains("communication_rounds = 0"), "{e}");
        let e = err(&|r| {
            r.algo.communication = CommKind::Attention;
            r.algo.communication_key_dim = 0;
        });
        assert!(e.contains("communication_key_dim = 0"), "{e}");
        let e = err(&|r| r.algo.communication_channels = vec![vec!["adversry".into()]]);
        assert!(
            e.contains("`adversry`") && e.contains("did you mean `adversary`"),
            "{e}"
        );
        let e = err(&|r| r.algo.communication_channels = vec![vec!["agent".into()]]);
        assert!(e.contains("has one agent"), "{e}");
        let e = err(&|r| {
            r.algo.communication_channels = vec![vec!["adversary".into(), "agent".into()]]
        });
        assert!(
            e.contains(
                "joins group `adversary` (team `adversaries`) and group `agent` (team `good`)"
            ) && e.contains("never cross teams"),
            "{e}"
        );
        let e = err(&|r| {
            r.algo.communication_channels = vec![vec!["adversary".into()], vec!["adversary".into()]]
        });
        assert!(
            e.contains("group `adversary` is already in another channel"),
            "{e}"
        );
        let mut raw = RawConfig::default();
        raw.env.id = "mpe/simple_tag_v3".into();
        raw.env.params.insert("num_good".into(), 1.into());
        raw.env.params.insert("num_adversaries".into(), 1.into());
        raw.algo.enable_communication = true;
        let e = TrainConfig::resolve(raw).unwrap_err().to_string();
        assert!(e.contains("no agent group has two agents"), "{e}");
    }

    #[test]
    fn groups_default_to_agent_types() {
        let mut raw = RawConfig::default();
        raw.env.id = "mpe/simple_tag_v3".into();
        let c = TrainConfig::resolve(raw).expect("resolve");
        let names: Vec<_> = c.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["adversary", "agent"]);
        assert_eq!(c.groups[0].agents, [0, 1, 2]);
        assert_eq!(c.groups[0].critic_in, 62 + 3);
        assert_eq!(c.groups[1].critic_in, 62);
    }

    #[test]
    fn a_shared_global_critic_without_ids_is_refused_for_individual_rewards() {
        let mut raw = RawConfig::default();
        raw.algo.agent_id = AgentId::None;
        let err = TrainConfig::resolve(raw).unwrap_err().to_string();
        assert!(err.contains("cannot tell its 3 agents apart"), "{err}");
    }
}
