//! IC3Net's predator-prey, exact to its reference (`ic3net-envs/ic3net_envs/predator_prey_env.py`
//! of github.com/IC3Net/IC3Net, with the episode limit of its trainer): predators that see only a
//! small window around them must find a fixed prey on a square grid. The benchmark of IC3Net
//! (Singh et al., 2019) and of the communication methods that followed it.
//!
//! `ic3net/predator_prey_v0` (every parameter) and the paper's settings
//! `ic3net/predator_prey-{D}x{D}-{N}p-v0`:
//!
//! | id | `dim` | `npredator` | `vision` | `max_steps` |
//! |---|---|---|---|---|
//! | `predator_prey-5x5-3p-v0` (easy; also `predator_prey_v0`'s defaults) | 5 | 3 | 0 | 20 |
//! | `predator_prey-10x10-5p-v0` (medium) | 10 | 5 | 1 | 40 |
//! | `predator_prey-20x20-10p-v0` (hard) | 20 | 10 | 1 | 80 |
//!
//! | | |
//! |---|---|
//! | Agents | `predator_0` .. `predator_{N-1}`, type `predator`; one fixed prey (not an agent) |
//! | Reset | the N predators and the prey on N + 1 distinct cells drawn uniformly (predators first) |
//! | Actions | `Discrete(5)`: UP (row − 1), RIGHT (col + 1), DOWN (row + 1), LEFT (col − 1), STAY; a move off the grid stays; predators may share cells. `no_stay`: `Discrete(4)` without STAY |
//! | Observation ((2v+1)² · (D² + 4)) | for each cell of the `(2v+1) x (2v+1)` window centred on the predator, row-major, a vocabulary of D² + 4: `[r·D + c]` = 1 for grid cell (r, c), `[D²]` always 0 (unused by the reference), `[D² + 1]` = 1 outside the grid, `[D² + 2]` the number of prey on the cell, `[D² + 3]` the number of predators on it (self included) |
//! | State (N·D² + D²) | each predator's cell one-hot, in agent order, then the prey's cell one-hot |
//! | Reward | −0.05 a step; a predator on the prey gets instead `mixed`: 0, `cooperative`: 0.05 · (predators on the prey), `competitive`: 0.05 / (predators on the prey) |
//! | Reached | a predator that steps on the prey stays there: its later actions are ignored |
//! | Episode | `mixed`: a predator that reached the prey is terminated (its every later reward is 0 whatever it does) and the episode ends, all terminated, when every predator has; every mode: truncated after `max_steps` |
//!
//! Parameters: `dim`, `npredator`, `vision` (below `dim`), `max_steps`, `mode` (`mixed`,
//! `cooperative`, `competitive`), `no_stay` (false). The reference's `nenemies` is fixed at 1 (its
//! reward breaks with several prey), and its `moving_prey` and `enemy_comm` are not offered
//! (the first raises `NotImplementedError` there).
//!
//! Metrics: `success` (1 when every predator is on the prey after the last step: the reference's
//! `stat['success']`, which it keeps for `mixed` and `cooperative`) and `reached_fraction` (the
//! fraction of predators that reached the prey).
//!
//! World state fields: `predator_pos` (`2N`: row, col), `prey_pos` (2) and, optional in
//! `set_state` (default: none), `reached` (`N`, 0 or 1).
//!
//! Where marl departs from the reference, and why:
//! - The reference never ends an episode in `cooperative` or `competitive` mode and ends a
//!   `mixed` one with a single episode flag; its trainer cuts every episode at `max_steps`. Here
//!   the time limit is a truncation (bootstrap), the capture a termination.
//! - In `mixed` mode a predator on the prey is frozen (`_take_action` returns early for
//!   `reached_prey[idx] == 1`) and paid `PREY_REWARD = 0` at every later step (it stays in
//!   `on_prey`), so its future return is exactly 0: marl terminates it. In the other modes a
//!   frozen predator is still paid according to how many predators share the prey, so it stays
//!   alive (its actions do nothing).
//! - Reset draws with marl's generator, not numpy's legacy global one; the parity traces load the
//!   reference's start positions instead.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::api::{ActionSpace, AgentSpec, EnvSpec, MultiAgentEnv, StepOut, WorldState};
use crate::error::EnvError;
use crate::params::task_params_with;
use crate::snapshot::{SnapshotReader, SnapshotWriter};

/// Id of the predator-prey environment with every parameter.
pub const PREDATOR_PREY_ID: &str = "ic3net/predator_prey_v0";

/// The reference's `TIMESTEP_PENALTY`.
pub const TIMESTEP_PENALTY: f64 = -0.05;
/// The reference's `POS_PREY_REWARD` (cooperative and competitive modes).
pub const POS_PREY_REWARD: f64 = 0.05;
/// The reference's `PREY_REWARD` (mixed mode).
pub const PREY_REWARD: f64 = 0.0;

/// The paper's settings as task ids (without the `ic3net/` family) and what they stand for:
/// `(id, dim, npredator, vision, max_steps)`.
pub const TASKS: [(&str, usize, usize, usize, usize); 3] = [
    ("predator_prey-5x5-3p-v0", 5, 3, 0, 20),
    ("predator_prey-10x10-5p-v0", 10, 5, 1, 40),
    ("predator_prey-20x20-10p-v0", 20, 10, 1, 80),
];

/// How predators on the prey are paid (the reference's `--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 0 for a predator on the prey, which is then done; the episode ends when all are.
    Mixed,
    /// 0.05 times the number of predators on the prey, for each of them.
    Cooperative,
    /// 0.05 shared among the predators on the prey.
    Competitive,
}

/// Parameters of `ic3net/predator_prey_v0`, named as the reference's arguments (`npredator` is
/// its `nfriendly`, the trainer's `--nagents`). The defaults are the easy setting.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PredatorPreyParams {
    /// Side of the square grid.
    pub dim: usize,
    /// Number of predators (the agents).
    pub npredator: usize,
    /// Radius of the observation window (0: the predator's own cell); below `dim`.
    pub vision: usize,
    /// Steps after which every agent still in the episode is truncated.
    pub max_steps: usize,
    /// `mixed`, `cooperative` or `competitive`.
    pub mode: Mode,
    /// Leave out the STAY action (4 actions).
    pub no_stay: bool,
}

impl Default for PredatorPreyParams {
    fn default() -> Self {
        let (_, dim, npredator, vision, max_steps) = TASKS[0];
        Self {
            dim,
            npredator,
            vision,
            max_steps,
            mode: Mode::Mixed,
            no_stay: false,
        }
    }
}

/// The parameters a task id of [`TASKS`] stands for (with or without the `ic3net/` family).
pub fn task_params(id: &str) -> Option<PredatorPreyParams> {
    let short = id.strip_prefix("ic3net/").unwrap_or(id);
    TASKS
        .iter()
        .find(|t| t.0 == short)
        .map(
            |&(_, dim, npredator, vision, max_steps)| PredatorPreyParams {
                dim,
                npredator,
                vision,
                max_steps,
                ..PredatorPreyParams::default()
            },
        )
}

/// Makes a task of [`TASKS`] by its id, with `overrides` on top of the parameters it stands for.
pub fn make_task(id: &str, overrides: &toml::Table) -> Result<PredatorPreyEnv, EnvError> {
    let base = task_params(id).ok_or_else(|| {
        let known: Vec<&str> = TASKS.iter().map(|t| t.0).collect();
        EnvError::invalid_params(
            id,
            format!("not a predator-prey task id (known: {})", known.join(", ")),
        )
    })?;
    let (params, full): (PredatorPreyParams, _) = task_params_with(id, "ic3net", &base, overrides)?;
    PredatorPreyEnv::new(&full, &params)
}

/// A cell `(row, col)`.
type Cell = (usize, usize);

/// The predator-prey grid as a [`MultiAgentEnv`].
#[derive(Debug, Clone)]
pub struct PredatorPreyEnv {
    spec: EnvSpec,
    dim: usize,
    vision: usize,
    mode: Mode,
    n_actions: usize,
    max_steps: usize,
    /// Each predator's cell.
    predators: Vec<Cell>,
    /// The prey's cell.
    prey: Cell,
    /// Whether each predator has reached the prey (it stays there).
    reached: Vec<bool>,
    /// Predators on the prey after the last step (reset: 0).
    on_prey: usize,
    steps: usize,
    done: bool,
    rng: ChaCha8Rng,
    /// Scratch: the cells drawn from at reset.
    cells: Vec<usize>,
    /// Scratch: one step's decoded actions.
    actions: Vec<usize>,
    tag: String,
}

impl PredatorPreyEnv {
    /// Predator-prey with the given parameters; `id` is the id it was made from.
    pub fn new(id: &str, p: &PredatorPreyParams) -> Result<Self, EnvError> {
        if !(1..=256).contains(&p.dim) {
            return Err(EnvError::invalid_params(
                id,
                format!("`dim` must be in 1..=256, got {}", p.dim),
            ));
        }
        let cells = p.dim * p.dim;
        if p.npredator == 0 || p.npredator >= cells {
            return Err(EnvError::invalid_params(
                id,
                format!(
                    "`npredator` must be in 1..={} (the predators and the prey start on distinct \
                     cells of the {d}x{d} grid), got {}",
                    cells - 1,
                    p.npredator,
                    d = p.dim
                ),
            ));
        }
        if p.vision >= p.dim {
            return Err(EnvError::invalid_params(
                id,
                format!(
                    "`vision` must be below `dim` ({}), got {}: a radius of dim - 1 already sees \
                     the whole grid from any cell, and beyond it the reference's RIGHT and DOWN \
                     never move",
                    p.dim, p.vision
                ),
            ));
        }
        if p.max_steps == 0 {
            return Err(EnvError::invalid_params(
                id,
                "`max_steps` must be at least 1",
            ));
        }
        let window = 2 * p.vision + 1;
        let obs_dim = window * window * (cells + 4);
        let n_actions = if p.no_stay { 4 } else { 5 };
        let agents = (0..p.npredator)
            .map(|i| AgentSpec {
                name: format!("predator_{i}"),
                agent_type: "predator".into(),
                team: "team".into(),
                obs_dim,
                action_space: ActionSpace::Discrete(n_actions),
            })
            .collect();
        let state_dim = (p.npredator + 1) * cells;
        let spec = EnvSpec::new(id, agents, state_dim, p.max_steps, false);
        Ok(Self {
            spec,
            dim: p.dim,
            vision: p.vision,
            mode: p.mode,
            n_actions,
            max_steps: p.max_steps,
            predators: vec![(0, 0); p.npredator],
            prey: (0, 0),
            reached: vec![false; p.npredator],
            on_prey: 0,
            steps: 0,
            done: false,
            rng: ChaCha8Rng::seed_from_u64(0),
            cells: (0..cells).collect(),
            actions: vec![0; p.npredator],
            tag: format!("{id} {p:?}"),
        })
    }

    /// Each predator's cell `(row, col)`.
    pub fn predators(&self) -> &[(usize, usize)] {
        &self.predators
    }

    /// The prey's cell `(row, col)`.
    pub fn prey(&self) -> (usize, usize) {
        self.prey
    }

    /// Whether each predator has reached the prey.
    pub fn reached(&self) -> &[bool] {
        &self.reached
    }

    fn n(&self) -> usize {
        self.predators.len()
    }

    /// Moves predator `i` by action `a` (the reference's `_take_action`): off-grid moves stay,
    /// STAY and a predator that reached the prey do not move.
    fn take_action(&mut self, i: usize, a: usize) {
        if self.reached[i] {
            return;
        }
        let last = self.dim - 1;
        let (r, c) = &mut self.predators[i];
        match a {
            0 => *r = r.saturating_sub(1),
            1 => *c = (*c + 1).min(last),
            2 => *r = (*r + 1).min(last),
            3 => *c = c.saturating_sub(1),
            _ => {}
        }
    }

    /// The reference's `_get_reward` for the current positions, which also marks the predators
    /// on the prey as reached.
    fn reward(&mut self, rewards: &mut [f64]) {
        let prey = self.prey;
        let on = self.predators.iter().filter(|&&p| p == prey).count();
        for (i, r) in rewards.iter_mut().enumerate() {
            *r = TIMESTEP_PENALTY;
            if self.predators[i] == prey {
                *r = match self.mode {
                    Mode::Mixed => PREY_REWARD,
                    Mode::Cooperative => POS_PREY_REWARD * on as f64,
                    Mode::Competitive => POS_PREY_REWARD / on as f64,
                };
                self.reached[i] = true;
            }
        }
        self.on_prey = on;
    }

    /// Whether predator `i`'s episode is over for good (see the module docs).
    fn terminated(&self, i: usize) -> bool {
        self.mode == Mode::Mixed && self.reached[i]
    }

    /// Writes the observation of a predator at `at` (see the module docs).
    fn observe_at(&self, at: Cell, out: &mut [f32]) {
        let (d, v) = (self.dim, self.vision);
        let base = d * d;
        let vocab = base + 4;
        out.fill(0.0);
        let window = 2 * v + 1;
        for wr in 0..window {
            for wc in 0..window {
                let cell = &mut out[(wr * window + wc) * vocab..][..vocab];
                // Padded coordinates `at + w`, grid coordinates `at + w - v`.
                let (pr, pc) = (at.0 + wr, at.1 + wc);
                if pr < v || pc < v || pr - v >= d || pc - v >= d {
                    cell[base + 1] = 1.0;
                    continue;
                }
                let here = (pr - v, pc - v);
                cell[here.0 * d + here.1] = 1.0;
                if self.prey == here {
                    cell[base + 2] = 1.0;
                }
                let predators = self.predators.iter().filter(|&&p| p == here).count();
                cell[base + 3] = predators as f32;
            }
        }
    }

    fn parse_cells(&self, key: &str, values: &[f64]) -> Result<Vec<Cell>, EnvError> {
        let d = self.dim;
        let coord = |v: f64| -> Result<usize, EnvError> {
            if v >= 0.0 && v < d as f64 && v.fract() == 0.0 {
                Ok(v as usize)
            } else {
                Err(EnvError::InvalidState {
                    message: format!(
                        "field `{key}` holds {v}, expected a coordinate in 0..{d} (integer)"
                    ),
                })
            }
        };
        values
            .chunks_exact(2)
            .map(|p| Ok((coord(p[0])?, coord(p[1])?)))
            .collect()
    }
}

/// Writes a cell as `(row, col)` into a world-state field.
fn flat_cells(cells: &[Cell]) -> Vec<f64> {
    cells
        .iter()
        .flat_map(|&(r, c)| [r as f64, c as f64])
        .collect()
}

impl MultiAgentEnv for PredatorPreyEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        // N + 1 distinct cells (the reference's `choice(D², N + 1, replace=False)`): a partial
        // Fisher-Yates shuffle of the cell indices.
        let total = self.cells.len();
        for (k, cell) in self.cells.iter_mut().enumerate() {
            *cell = k;
        }
        let n = self.n();
        for k in 0..=n {
            let j = self.rng.random_range(k..total);
            self.cells.swap(k, j);
        }
        let d = self.dim;
        for (p, &cell) in self.predators.iter_mut().zip(&self.cells) {
            *p = (cell / d, cell % d);
        }
        self.prey = (self.cells[n] / d, self.cells[n] % d);
        self.reached.fill(false);
        self.on_prey = 0;
        self.steps = 0;
        self.done = false;
        self.observe(obs);
    }

    fn step(&mut self, actions: &[f32], out: StepOut<'_>) -> Result<(), EnvError> {
        if self.done {
            return Err(EnvError::EpisodeOver);
        }
        super::decode_actions(&self.spec, self.n_actions, actions, &mut self.actions)?;
        for i in 0..self.n() {
            self.take_action(i, self.actions[i]);
        }
        self.reward(out.rewards);
        self.steps += 1;
        let limit = self.steps >= self.max_steps;
        for i in 0..self.n() {
            out.terminated[i] = self.terminated(i);
            out.truncated[i] = limit && !out.terminated[i];
        }
        self.done = crate::api::all_ended(out.terminated, out.truncated);
        self.observe(out.obs);
        Ok(())
    }

    fn observe(&self, obs: &mut [f32]) {
        for (i, &at) in self.predators.iter().enumerate() {
            self.observe_at(at, &mut obs[self.spec.obs_range(i)]);
        }
    }

    fn state(&self, out: &mut [f32]) {
        let d = self.dim;
        let base = d * d;
        out.fill(0.0);
        for (k, &(r, c)) in self.predators.iter().chain([&self.prey]).enumerate() {
            out[k * base + r * d + c] = 1.0;
        }
    }

    fn get_state(&self) -> WorldState {
        let mut s = WorldState::default();
        s.insert("predator_pos", flat_cells(&self.predators));
        s.insert("prey_pos", flat_cells(&[self.prey]));
        s.insert(
            "reached",
            self.reached
                .iter()
                .map(|&r| f64::from(u8::from(r)))
                .collect(),
        );
        s
    }

    fn set_state(&mut self, state: &WorldState) -> Result<(), EnvError> {
        state.reject_unknown(&["predator_pos", "prey_pos", "reached"])?;
        let n = self.n();
        let predators = self.parse_cells("predator_pos", state.get("predator_pos", 2 * n)?)?;
        let prey = self.parse_cells("prey_pos", state.get("prey_pos", 2)?)?[0];
        let reached = match state.fields.get("reached") {
            None => vec![false; n],
            Some(_) => state
                .get("reached", n)?
                .iter()
                .map(|&v| {
                    if v == 0.0 || v == 1.0 {
                        Ok(v == 1.0)
                    } else {
                        Err(EnvError::InvalidState {
                            message: format!("field `reached` holds {v}, expected 0 or 1"),
                        })
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        if let Some(i) = (0..n).find(|&i| reached[i] && predators[i] != prey) {
            return Err(EnvError::InvalidState {
                message: format!("predator {i} is marked as reached but is not on the prey"),
            });
        }
        self.predators = predators;
        self.prey = prey;
        self.reached = reached;
        self.on_prey = self.predators.iter().filter(|&&p| p == prey).count();
        self.steps = 0;
        self.done = false;
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut w = SnapshotWriter::new(&self.tag);
        w.f64s(&flat_cells(&self.predators));
        w.f64s(&flat_cells(&[self.prey]));
        w.f64s(
            &self
                .reached
                .iter()
                .map(|&r| f64::from(u8::from(r)))
                .collect::<Vec<_>>(),
        );
        w.u64(self.steps as u64);
        w.u64(u64::from(self.done));
        w.rng(&self.rng);
        w.finish()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), EnvError> {
        let mut r = SnapshotReader::new(snapshot, &self.tag)?;
        let n = self.n();
        let mut predators = vec![0.0; 2 * n];
        let mut prey = [0.0; 2];
        let mut reached = vec![0.0; n];
        r.f64s_into(&mut predators)?;
        r.f64s_into(&mut prey)?;
        r.f64s_into(&mut reached)?;
        let steps = r.u64()? as usize;
        let done = r.u64()? != 0;
        let rng = r.rng()?;
        r.finish()?;
        let bad = |e: EnvError| EnvError::Snapshot {
            message: e.to_string(),
        };
        self.predators = self.parse_cells("predator_pos", &predators).map_err(bad)?;
        self.prey = self.parse_cells("prey_pos", &prey).map_err(bad)?[0];
        self.reached = reached.iter().map(|&v| v != 0.0).collect();
        let prey = self.prey;
        self.on_prey = self.predators.iter().filter(|&&p| p == prey).count();
        self.steps = steps;
        self.done = done;
        self.rng = rng;
        Ok(())
    }

    /// One character a cell: `.` empty, `P` the prey, `*` the prey with predators on it, the
    /// predator's index (base 36) where one stands, `+` where several do.
    fn render_ascii(&self) -> String {
        let d = self.dim;
        let mut s = format!("step {}\n", self.steps);
        for r in 0..d {
            for c in 0..d {
                let mut here = self
                    .predators
                    .iter()
                    .enumerate()
                    .filter(|(_, &p)| p == (r, c));
                let glyph = match (here.next(), here.next(), self.prey == (r, c)) {
                    (Some(_), _, true) => '*',
                    (None, _, true) => 'P',
                    (Some((i, _)), None, false) => {
                        std::char::from_digit((i % 36) as u32, 36).unwrap_or('?')
                    }
                    (Some(_), Some(_), false) => '+',
                    (None, _, false) => '.',
                };
                s.push(glyph);
            }
            s.push('\n');
        }
        s
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["success", "reached_fraction"]
    }

    /// Whether every predator is on the prey, and the fraction that reached it.
    fn metrics(&self, out: &mut [f64]) {
        let n = self.n();
        out[0] = f64::from(u8::from(self.on_prey == n));
        out[1] = self.reached.iter().filter(|&&r| r).count() as f64 / n as f64;
    }
}
