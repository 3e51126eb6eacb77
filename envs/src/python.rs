//! Environments written in Python, served by worker processes over pipes.
//!
//! `id = "python"` with `params = { factory = "my_module:make_env", kwargs = { ... }, api =
//! "marl" | "pettingzoo", python = "python3", path = ["dir"], timeout_s = 60, max_steps = 0,
//! state = "auto" | "obs" | "none" }`.
//! A process runs `python/marl_bridge/server.py` (built into this crate, so nothing needs
//! installing) and owns a shard of the environments; each [`PythonEnv`] is a handle to one of
//! them. Requests and replies are length-prefixed binary frames with raw little-endian arrays
//! (the protocol is in the server's docstring); a reader thread turns the child's stdout into
//! frames so that every wait has a timeout. Errors name the factory and carry the Python
//! traceback's last lines; a process that dies is reported with its exit status and stderr.
//!
//! Python environments cannot be snapshotted: a run on one checkpoints its networks, but
//! `--resume` refuses it (the environments could not continue where they stopped).

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use crate::api::{all_ended, ActionSpace, AgentSpec, EnvSpec, MultiAgentEnv, StepOut, WorldState};
use crate::error::EnvError;

/// The registry id of Python environments.
pub const ID: &str = "python";

/// The server, built into the binary.
const SERVER: &str = include_str!("../../python/marl_bridge/server.py");

const OP_SPEC: u8 = 0;
const OP_RESET: u8 = 1;
const OP_STEP: u8 = 2;
const OP_CLOSE: u8 = 3;

/// `params` of `id = "python"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonParams {
    /// `module:function` returning one environment.
    pub factory: String,
    /// Keyword arguments of the factory.
    #[serde(default)]
    pub kwargs: toml::Table,
    /// `marl` (the seed's MultiAgentEnv interface) or `pettingzoo` (ParallelEnv).
    #[serde(default = "default_api")]
    pub api: String,
    /// The interpreter (a virtualenv's `bin/python` to use its packages).
    #[serde(default = "default_python")]
    pub python: String,
    /// Directories prepended to `sys.path` (where the module lives).
    #[serde(default)]
    pub path: Vec<String>,
    /// Longest wait for one reply, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Episode length limit of the spec (0: the env's `max_steps`, `episode_limit` or
    /// `max_cycles` attribute, else 1000).
    #[serde(default)]
    pub max_steps: usize,
    /// The global state for centralized critics: `auto` (the env's `state()`, else the
    /// observations concatenated), `obs`, or `none` (IPPO; saves mpe2 a quarter of a step).
    #[serde(default = "default_state")]
    pub state: String,
}

fn default_state() -> String {
    "auto".into()
}

fn default_api() -> String {
    "marl".into()
}
fn default_python() -> String {
    "python3".into()
}
fn default_timeout() -> f64 {
    60.0
}

/// Reads the params table.
pub fn parse_params(params: &toml::Table) -> Result<PythonParams, EnvError> {
    let p: PythonParams = toml::Value::Table(params.clone())
        .try_into()
        .map_err(|e: toml::de::Error| EnvError::invalid_params(ID, e.message().to_string()))?;
    if !matches!(p.api.as_str(), "marl" | "pettingzoo") {
        return Err(EnvError::invalid_params(
            ID,
            format!("api = `{}`: expected `marl` or `pettingzoo`", p.api),
        ));
    }
    if !matches!(p.state.as_str(), "auto" | "obs" | "none") {
        return Err(EnvError::invalid_params(
            ID,
            format!("state = `{}`: expected `auto`, `obs` or `none`", p.state),
        ));
    }
    if !p.factory.contains(':') {
        return Err(EnvError::invalid_params(
            ID,
            format!("factory = `{}`: expected `module:function`", p.factory),
        ));
    }
    if !p.timeout_s.is_finite() || p.timeout_s <= 0.0 {
        return Err(EnvError::invalid_params(ID, "timeout_s must be positive"));
    }
    Ok(p)
}

/// One worker process and its pipes.
struct Process {
    child: Child,
    stdin: ChildStdin,
    frames: Receiver<std::io::Result<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
    factory: String,
    timeout: Duration,
    buf: Vec<u8>,
}

/// The last lines of a text (a traceback's tail).
fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.trim_end().lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

impl Process {
    fn start(p: &PythonParams, n: usize) -> Result<Self, EnvError> {
        let kwargs = serde_json::to_string(&p.kwargs)
            .map_err(|e| EnvError::invalid_params(ID, format!("kwargs: {e}")))?;
        let mut cmd = Command::new(&p.python);
        cmd.arg("-u")
            .arg("-c")
            .arg(SERVER)
            .args([
                "--factory",
                &p.factory,
                "--kwargs",
                &kwargs,
                "--api",
                &p.api,
            ])
            .args([
                "--n",
                &n.to_string(),
                "--max-steps",
                &p.max_steps.to_string(),
            ])
            .args(["--state", &p.state]);
        for d in &p.path {
            cmd.args(["--path", d]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                EnvError::invalid_params(ID, format!("cannot start `{}`: {e}", p.python))
            })?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| EnvError::invalid_params(ID, "no stdin"))?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| EnvError::invalid_params(ID, "no stdout"))?;
        let mut err_pipe = child
            .stderr
            .take()
            .ok_or_else(|| EnvError::invalid_params(ID, "no stderr"))?;
        let (tx, rx) = sync_channel(1);
        std::thread::Builder::new()
            .name("python-env-reader".into())
            .spawn(move || loop {
                let mut head = [0u8; 4];
                let frame = stdout.read_exact(&mut head).and_then(|()| {
                    let mut body = vec![0u8; u32::from_le_bytes(head) as usize];
                    stdout.read_exact(&mut body).map(|()| body)
                });
                let end = frame.is_err();
                if tx.send(frame).is_err() || end {
                    return;
                }
            })
            .map_err(|e| {
                EnvError::invalid_params(ID, format!("cannot start a reader thread: {e}"))
            })?;
        // The env's prints and Python's own messages, kept for error reports.
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::Builder::new()
            .name("python-env-stderr".into())
            .spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(k) = err_pipe.read(&mut chunk) {
                    if k == 0 {
                        return;
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&String::from_utf8_lossy(&chunk[..k]));
                        if s.len() > 64 * 1024 {
                            let cut = s.len() - 32 * 1024;
                            s.replace_range(..cut, "");
                        }
                    }
                }
            })
            .map_err(|e| {
                EnvError::invalid_params(ID, format!("cannot start a reader thread: {e}"))
            })?;
        Ok(Self {
            child,
            stdin,
            frames: rx,
            stderr,
            factory: p.factory.clone(),
            timeout: Duration::from_secs_f64(p.timeout_s),
            buf: Vec::new(),
        })
    }

    fn died(&mut self, what: &str) -> EnvError {
        // Give the process a moment to finish writing stderr and exit.
        std::thread::sleep(Duration::from_millis(100));
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!("exited with {s}"),
            _ => "stopped answering".to_string(),
        };
        let err = self.stderr.lock().map(|s| tail(&s, 8)).unwrap_or_default();
        EnvError::invalid_params(
            ID,
            format!(
                "the Python worker of `{}` {status} ({what}){}",
                self.factory,
                if err.is_empty() {
                    String::new()
                } else {
                    format!("; its stderr ends:\n{err}")
                }
            ),
        )
    }

    /// Sends one request and waits for its reply's payload.
    fn request(&mut self, op: u8, env: u32, payload: &[u8]) -> Result<Vec<u8>, EnvError> {
        self.buf.clear();
        self.buf
            .extend_from_slice(&(5 + payload.len() as u32).to_le_bytes());
        self.buf.push(op);
        self.buf.extend_from_slice(&env.to_le_bytes());
        self.buf.extend_from_slice(payload);
        if self
            .stdin
            .write_all(&self.buf)
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return Err(self.died("its input pipe closed"));
        }
        let frame = match self.frames.recv_timeout(self.timeout) {
            Ok(Ok(f)) => f,
            Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => {
                return Err(self.died("its output ended"))
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                return Err(EnvError::invalid_params(ID, format!(
                    "the Python worker of `{}` did not answer within {:.0} s (timeout_s); stopped it",
                    self.factory,
                    self.timeout.as_secs_f64()
                )));
            }
        };
        match frame.split_first() {
            Some((0, rest)) => Ok(rest.to_vec()),
            Some((_, rest)) => Err(EnvError::invalid_params(
                ID,
                format!(
                    "`{}` raised: {}",
                    self.factory,
                    tail(&String::from_utf8_lossy(rest), 12)
                ),
            )),
            None => Err(self.died("an empty reply")),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.request(OP_CLOSE, 0, &[]);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Deserialize)]
struct WireSpace {
    kind: String,
    #[serde(default)]
    n: usize,
    #[serde(default)]
    dim: usize,
    #[serde(default)]
    low: f32,
    #[serde(default)]
    high: f32,
}

#[derive(Deserialize)]
struct WireAgent {
    name: String,
    obs_dim: usize,
    action_space: WireSpace,
}

#[derive(Deserialize)]
struct WireSpec {
    agents: Vec<WireAgent>,
    state_dim: usize,
    max_steps: usize,
    has_action_masks: bool,
}

/// One environment of a Python worker process.
pub struct PythonEnv {
    proc: Arc<Mutex<Process>>,
    index: u32,
    spec: EnvSpec,
    obs: Vec<f32>,
    state: Vec<f32>,
    masks: Vec<bool>,
    done: bool,
    /// Why the last reset failed (reported by the next step: `reset` cannot fail).
    failed: Option<String>,
    actions: Vec<u8>,
}

fn f32s(bytes: &[u8], out: &mut [f32]) {
    for (d, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

impl PythonEnv {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Process>, EnvError> {
        self.proc.lock().map_err(|_| {
            EnvError::invalid_params(ID, "a Python worker's handle was poisoned by a panic")
        })
    }

    /// Reads an OBS_BLOCK.
    fn read_block(&mut self, bytes: &[u8]) -> Result<(), EnvError> {
        let (o, s, m) = (
            self.spec.obs_len(),
            self.spec.state_dim,
            self.spec.mask_len(),
        );
        if bytes.len() != 4 * (o + s) + m {
            let got = bytes.len();
            let factory = self.lock()?.factory.clone();
            return Err(EnvError::invalid_params(
                ID,
                format!(
                    "`{factory}` sent {got} bytes of observation, state and masks; expected {} \
                 (observations {o} + state {s} floats, {m} mask bytes): its observation or \
                 state size changed",
                    4 * (o + s) + m
                ),
            ));
        }
        f32s(&bytes[..4 * o], &mut self.obs);
        f32s(&bytes[4 * o..4 * (o + s)], &mut self.state);
        for (d, &b) in self.masks.iter_mut().zip(&bytes[4 * (o + s)..]) {
            *d = b != 0;
        }
        Ok(())
    }
}

/// Starts one process serving `n` environments and returns a handle to each.
pub fn make_envs(params: &toml::Table, n: usize) -> Result<Vec<PythonEnv>, EnvError> {
    let p = parse_params(params)?;
    let proc = Arc::new(Mutex::new(Process::start(&p, n.max(1))?));
    let spec_bytes = proc
        .lock()
        .map_err(|_| EnvError::invalid_params(ID, "poisoned"))?
        .request(OP_SPEC, 0, &[])?;
    let wire: WireSpec = serde_json::from_slice(&spec_bytes).map_err(|e| {
        EnvError::invalid_params(ID, format!("`{}`: unreadable spec: {e}", p.factory))
    })?;
    if wire.agents.is_empty() {
        return Err(EnvError::invalid_params(
            ID,
            format!("`{}` has no agents", p.factory),
        ));
    }
    let mut agents = Vec::new();
    for a in wire.agents {
        let action_space = match a.action_space.kind.as_str() {
            "discrete" if a.action_space.n > 0 => ActionSpace::Discrete(a.action_space.n),
            "box" if a.action_space.dim > 0 => ActionSpace::Box {
                dim: a.action_space.dim,
                low: a.action_space.low,
                high: a.action_space.high,
            },
            other => {
                return Err(EnvError::invalid_params(
                    ID,
                    format!(
                        "`{}`: agent `{}` has an empty or unknown action space `{other}`",
                        p.factory, a.name
                    ),
                ))
            }
        };
        agents.push(AgentSpec {
            name: a.name,
            agent_type: String::new(),
            // The bridge's interfaces declare no teams: the user's agents play for each other.
            team: "team".into(),
            obs_dim: a.obs_dim,
            action_space,
        });
    }
    // The seed's interface has no agent names (the server numbers them): only spaces tell.
    let types = agent_types(&agents, p.api == "pettingzoo");
    for (a, t) in agents.iter_mut().zip(types) {
        a.agent_type = t;
    }
    let spec = EnvSpec::new(
        ID,
        agents,
        wire.state_dim,
        wire.max_steps,
        wire.has_action_masks,
    );
    Ok((0..n as u32)
        .map(|index| PythonEnv {
            proc: proc.clone(),
            index,
            obs: vec![0.0; spec.obs_len()],
            state: vec![0.0; spec.state_dim],
            masks: vec![true; spec.mask_len()],
            actions: Vec::with_capacity(4 * spec.action_len()),
            spec: spec.clone(),
            done: true,
            failed: None,
        })
        .collect())
}

/// The role in an agent's name: the name without its trailing index (`leadadversary_0` ->
/// `leadadversary`, `player1` -> `player`, `speaker` -> `speaker`); `None` when what is left
/// does not start with a letter or holds more than letters, digits, `_` and `-` (it names
/// groups, metric columns and checkpoint tensors).
fn role(name: &str) -> Option<&str> {
    let stem = name
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches(['_', '-']);
    let fits = stem.starts_with(|c: char| c.is_ascii_alphabetic())
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    fits.then_some(stem)
}

/// The spaces of an agent as a type name (`34_discrete_5_`).
fn spaces_type(a: &AgentSpec) -> String {
    format!("{}_{}", a.obs_dim, a.action_space)
        .replace(['(', ')', ',', '.'], "_")
        .to_lowercase()
}

/// The agent types of a Python environment, which are its default agent groups. With names
/// (`named`: PettingZoo), an agent's type is its role ([`role`]); an agent whose name carries
/// no role, or whose role's agents differ in observation size or action space, is typed by its
/// spaces instead. Without names, every agent is typed by its spaces. Agents that all fall back
/// to one spaces type are called `agent`, as in the built-in cooperative environments.
fn agent_types(agents: &[AgentSpec], named: bool) -> Vec<String> {
    let roles: Vec<Option<&str>> = agents
        .iter()
        .map(|a| if named { role(&a.name) } else { None })
        .collect();
    let alike = |r: &str, a: &AgentSpec| {
        agents.iter().zip(&roles).all(|(b, rb)| {
            *rb != Some(r) || (b.obs_dim == a.obs_dim && b.action_space == a.action_space)
        })
    };
    let types: Vec<String> = agents
        .iter()
        .zip(&roles)
        .map(|(a, r)| match r {
            Some(r) if alike(r, a) => (*r).to_string(),
            _ => spaces_type(a),
        })
        .collect();
    let by_spaces = roles
        .iter()
        .zip(&types)
        .all(|(r, t)| r.is_none_or(|r| r != t));
    let distinct: std::collections::BTreeSet<&String> = types.iter().collect();
    if by_spaces && distinct.len() == 1 {
        return vec!["agent".into(); types.len()];
    }
    types
}

/// One Python environment in its own process (the registry's factory).
pub fn make(params: &toml::Table) -> Result<Box<dyn MultiAgentEnv>, EnvError> {
    let mut v = make_envs(params, 1)?;
    Ok(Box::new(v.remove(0)))
}

impl MultiAgentEnv for PythonEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        let s = seed.map_or(-1i64, |s| (s & (i64::MAX as u64)) as i64);
        let reply = self
            .lock()
            .and_then(|mut p| p.request(OP_RESET, self.index, &s.to_le_bytes()));
        // reset() cannot fail in the trait; a broken worker surfaces at the next step.
        match reply.and_then(|r| self.read_block(&r)) {
            Ok(()) => {
                self.done = false;
                self.failed = None;
            }
            Err(e) => {
                self.done = true;
                self.failed = Some(format!("reset failed: {e}"));
            }
        }
        obs.copy_from_slice(&self.obs);
    }

    fn step(&mut self, actions: &[f32], out: StepOut<'_>) -> Result<(), EnvError> {
        if let Some(why) = &self.failed {
            return Err(EnvError::invalid_params(ID, why.clone()));
        }
        if self.done {
            return Err(EnvError::EpisodeOver);
        }
        self.actions.clear();
        for a in actions {
            self.actions.extend_from_slice(&a.to_le_bytes());
        }
        let reply = self
            .proc
            .lock()
            .map_err(|_| {
                EnvError::invalid_params(ID, "a Python worker's handle was poisoned by a panic")
            })?
            .request(OP_STEP, self.index, &self.actions)?;
        let n = self.spec.num_agents();
        if reply.len() < 10 * n {
            return Err(EnvError::invalid_params(
                ID,
                "a step reply too short for the agents",
            ));
        }
        for (k, r) in out.rewards.iter_mut().enumerate() {
            let c = &reply[8 * k..8 * k + 8];
            *r = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        }
        for k in 0..n {
            out.terminated[k] = reply[8 * n + k] != 0;
            out.truncated[k] = reply[9 * n + k] != 0;
        }
        self.read_block(&reply[10 * n..])?;
        out.obs.copy_from_slice(&self.obs);
        self.done = all_ended(out.terminated, out.truncated);
        Ok(())
    }

    fn observe(&self, obs: &mut [f32]) {
        obs.copy_from_slice(&self.obs);
    }

    fn state(&self, out: &mut [f32]) {
        out.copy_from_slice(&self.state);
    }

    fn avail_actions(&self, out: &mut [bool]) {
        out.copy_from_slice(&self.masks);
    }

    fn get_state(&self) -> WorldState {
        let mut s = WorldState::default();
        s.insert("obs", self.obs.iter().map(|&x| f64::from(x)).collect());
        s
    }

    fn set_state(&mut self, _state: &WorldState) -> Result<(), EnvError> {
        Err(EnvError::InvalidState {
            message: "a Python environment's state cannot be set from marl".into(),
        })
    }

    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    fn restore(&mut self, _snapshot: &[u8]) -> Result<(), EnvError> {
        Err(EnvError::Snapshot {
            message: "Python environments cannot be snapshotted, so a run on one cannot be \
                      resumed exactly; start a new run (its checkpoints still load in marl eval)"
                .into(),
        })
    }

    fn render_ascii(&self) -> String {
        format!("python env {} observations {:?}", self.index, self.obs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, obs_dim: usize, actions: usize) -> AgentSpec {
        AgentSpec {
            name: name.into(),
            agent_type: String::new(),
            team: "team".into(),
            obs_dim,
            action_space: ActionSpace::Discrete(actions),
        }
    }

    #[test]
    fn roles_are_names_without_their_index() {
        assert_eq!(role("leadadversary_0"), Some("leadadversary"));
        assert_eq!(role("adversary_12"), Some("adversary"));
        assert_eq!(role("player1"), Some("player"));
        assert_eq!(role("speaker"), Some("speaker"));
        assert_eq!(role("team-a_3"), Some("team-a"));
        assert_eq!(role("0"), None);
        assert_eq!(role("_1"), None);
        assert_eq!(role("agent.0"), None);
        assert_eq!(role("red team_0"), None);
    }

    #[test]
    fn pettingzoo_agents_are_typed_by_role() {
        // mpe2's simple_world_comm: a leader, three adversaries, two good agents.
        let agents = [
            agent("leadadversary_0", 34, 20),
            agent("adversary_0", 34, 5),
            agent("adversary_1", 34, 5),
            agent("adversary_2", 34, 5),
            agent("agent_0", 28, 5),
            agent("agent_1", 28, 5),
        ];
        let types = agent_types(&agents, true);
        assert_eq!(
            types,
            [
                "leadadversary",
                "adversary",
                "adversary",
                "adversary",
                "agent",
                "agent"
            ]
        );
    }

    #[test]
    fn a_role_whose_agents_differ_falls_back_to_their_spaces() {
        let agents = [
            agent("agent_0", 10, 5),
            agent("agent_1", 12, 5),
            agent("boss_0", 12, 3),
            agent("7", 12, 3),
        ];
        let types = agent_types(&agents, true);
        assert_eq!(
            types,
            ["10_discrete_5_", "12_discrete_5_", "boss", "12_discrete_3_"]
        );
    }

    #[test]
    fn without_names_agents_are_typed_by_spaces_or_all_agent() {
        let alike = [agent("agent_0", 4, 3), agent("agent_1", 4, 3)];
        assert_eq!(agent_types(&alike, false), ["agent", "agent"]);
        let unlike = [agent("agent_0", 4, 3), agent("agent_1", 6, 3)];
        assert_eq!(
            agent_types(&unlike, false),
            ["4_discrete_3_", "6_discrete_3_"]
        );
        // Named agents without roles, all alike: `agent` too.
        let numbered = [agent("0", 4, 3), agent("1", 4, 3)];
        assert_eq!(agent_types(&numbered, true), ["agent", "agent"]);
        // One role for all: the role.
        let pursuers = [agent("pursuer_0", 4, 3), agent("pursuer_1", 4, 3)];
        assert_eq!(agent_types(&pursuers, true), ["pursuer", "pursuer"]);
    }
}
