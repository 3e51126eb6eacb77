//! The multi-robot warehouse (RWARE), exact to rware 2.0.0.
//!
//! `grid/rware_v2` (every rware keyword argument) and rware's own task ids
//! `rware-{tiny,small,medium,large}-{N}ag{-easy,-hard}-v2` (family `rware/`):
//!
//! | | |
//! |---|---|
//! | Floor | `(column_height + 1) * shelf_rows + 2` rows by `3 * shelf_columns + 1` columns (tiny 11x10, small 20x10, medium 20x16, large 29x16; shelf rows x columns 1x3, 2x3, 2x5, 3x5, column height 8), or a `layout` string; highways where shelves cannot be put down; two goals at the bottom middle |
//! | Agents | `agent_0` .. `agent_{N-1}`, type `agent`: robots on distinct random cells, random directions, carrying nothing |
//! | Actions | `Discrete(5)`: NOOP, FORWARD, LEFT (turn counter-clockwise), RIGHT (clockwise), TOGGLE_LOAD (pick up the shelf underneath / put the carried one down off highways); no masks (an action without effect is a no-op, as in rware) |
//! | Observation (`8 + 7 (2s+1)^2`, 71 for `sensor_range` s = 1) | `x, y, carrying, direction one-hot (up, down, left, right), on highway`, then per cell of the `(2s+1)^2` window, row-major: `has robot, its direction one-hot` (empty: `0, 1, 0, 0, 0`), `has shelf, requested`; off-floor cells are empty |
//! | State (`8N + 2R + H W`) | per robot `x, y, direction one-hot, carrying, carrying a requested shelf`; per request the shelf's `x, y`; per cell 1 where a shelf is |
//! | Reward | a requested shelf on a goal is delivered: `individual` (default) 1 to the robot there, `global` 1 to every robot, `two_stage` 0.5 on delivery and 0.5 when that robot next puts a shelf down; the request is replaced by a shelf drawn uniformly from the unrequested ones |
//! | Request queue | `request_queue_size` shelves (`-easy`: 2N, default: N, `-hard`: N/2 rounded down) drawn without replacement at reset |
//! | Collisions | rware's graph of intended moves: cycles move, swaps do not, otherwise the longest chain into an empty cell moves, ties as networkx breaks them ([`moves`]) |
//! | Episode | truncated after `max_steps` (500) or after `max_inactivity_steps` without a delivery (off by default). rware reports both as `done`; marl bootstraps there. Never terminated |
//! | Randomness | numpy's `Generator(PCG64(SeedSequence(seed)))`, drawn in rware's order: `reset(seed)` gives rware's layout for the same seed, and every replacement request is rware's |

pub mod layout;
pub mod moves;
pub mod python_set;
pub mod render;
pub mod world;

use serde::{Deserialize, Serialize};

use self::layout::Layout;
pub use self::world::RewardType;
use self::world::{Direction, Robot, Rules, Warehouse, N_ACTIONS};
use crate::api::{ActionSpace, AgentSpec, EnvSpec, MultiAgentEnv, StepOut, WorldState};
use crate::error::EnvError;
use crate::numpy_random::{NumpyRng, NumpyRngState};
use crate::params::task_params_with;
use crate::snapshot::{SnapshotReader, SnapshotWriter};

/// Id of the warehouse with every rware parameter.
pub const RWARE_ID: &str = "grid/rware_v2";

/// The EPyMARL benchmark's warehouse tasks, registered by name.
pub const EPYMARL_TASKS: [&str; 3] = [
    "rware-tiny-2ag-v2",
    "rware-tiny-4ag-v2",
    "rware-small-4ag-v2",
];

/// rware's observation types; only the flattened vector is built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservationType {
    /// The default flattened vector.
    #[default]
    #[serde(alias = "FLATTENED")]
    Flattened,
    /// rware's dictionary observation (the same values, nested): not supported.
    #[serde(alias = "DICT")]
    Dict,
    /// Image layers: not supported.
    #[serde(alias = "IMAGE")]
    Image,
    /// Image layers and a feature vector: not supported.
    #[serde(alias = "IMAGE_DICT")]
    ImageDict,
}

/// Parameters of `grid/rware_v2`, named as rware's `Warehouse` keyword arguments; the defaults
/// are `rware-tiny-2ag-v2`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseParams {
    /// Shelf columns (odd).
    pub shelf_columns: usize,
    /// Shelves per column.
    pub column_height: usize,
    /// Shelf rows.
    pub shelf_rows: usize,
    /// Robots.
    pub n_agents: usize,
    /// Communication bits; only 0 is supported (messages would widen the action space to
    /// rware's MultiDiscrete).
    pub msg_bits: usize,
    /// Observation radius (the window is `2 sensor_range + 1` cells wide).
    pub sensor_range: usize,
    /// Requested shelves at any time (fewer than the shelves).
    pub request_queue_size: usize,
    /// Steps without a delivery that end the episode (a truncation); absent or 0: none.
    pub max_inactivity_steps: Option<usize>,
    /// Steps that end the episode (a truncation); at least 1.
    pub max_steps: usize,
    /// `individual`, `global` or `two_stage`.
    pub reward_type: RewardType,
    /// A custom floor (`x` shelf, `.` corridor, `g` goal, one line per row); replaces
    /// `shelf_columns`, `column_height` and `shelf_rows`.
    pub layout: Option<String>,
    /// Only `flattened`.
    pub observation_type: ObservationType,
    /// Own coordinates divided by the floor's width and height minus one.
    pub normalised_coordinates: bool,
}

impl Default for WarehouseParams {
    fn default() -> Self {
        Self {
            shelf_columns: 3,
            column_height: 8,
            shelf_rows: 1,
            n_agents: 2,
            msg_bits: 0,
            sensor_range: 1,
            request_queue_size: 2,
            max_inactivity_steps: None,
            max_steps: 500,
            reward_type: RewardType::Individual,
            layout: None,
            observation_type: ObservationType::Flattened,
            normalised_coordinates: false,
        }
    }
}

const SIZES: [(&str, usize, usize); 4] = [
    ("tiny", 1, 3),
    ("small", 2, 3),
    ("medium", 2, 5),
    ("large", 3, 5),
];

/// The parameters an rware task id stands for, `None` when `id` is not an rware id (does not
/// start with `rware`), and an error naming the bad part and the valid values when it is one
/// but malformed.
///
/// Besides `rware-{size}-{N}ag{-easy,-hard}-v2`, the ids of rware's `full_registration()` with
/// flattened observations are understood: `rware{-Ks}-{size}-{H}h-{N}ag{-easy,-hard}-v2` and
/// `rware{-Ks}-{R}x{C}-{H}h-{N}ag-{Q}req-{indiv,global,twostage}-v2`.
pub fn task_params(id: &str) -> Option<Result<WarehouseParams, EnvError>> {
    let name = id.strip_prefix("rware/").unwrap_or(id);
    let body = name.strip_prefix("rware")?;
    Some(parse_task(body).map_err(|message| EnvError::invalid_params(id, message)))
}

fn number(token: &str, suffix: &str) -> Option<usize> {
    let digits = token.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_task(body: &str) -> Result<WarehouseParams, String> {
    let body = body
        .strip_suffix("-v2")
        .ok_or("rware task ids end in `-v2` (rware 2.0.0)")?;
    let mut tokens = body.split('-').peekable();
    if tokens.next() != Some("") {
        return Err("rware task ids start with `rware-`".into());
    }
    if let Some(kind) = tokens.next_if(|t| ["img", "imgdict", "Nd"].contains(t)) {
        return Err(format!(
            "`-{kind}-` (image observations) is not supported: marl builds rware's flattened \
             observation (ids `rware-...` and `rware-Ks-...`)"
        ));
    }
    let mut p = WarehouseParams::default();
    if let Some(k) = tokens.peek().and_then(|t| number(t, "s")) {
        if !(2..=5).contains(&k) {
            return Err(format!("sensor range `{k}s`: valid 2s..5s (or none for 1)"));
        }
        p.sensor_range = k;
        tokens.next();
    }
    let size = tokens.next().ok_or("missing the size")?;
    let custom = size.split_once('x').and_then(|(r, c)| {
        let (r, c) = (number(r, "")?, number(c, "")?);
        Some((r, c))
    });
    match (SIZES.iter().find(|s| s.0 == size), custom) {
        (Some(&(_, rows, cols)), _) => (p.shelf_rows, p.shelf_columns) = (rows, cols),
        (None, Some((rows, cols))) => {
            if !(1..=4).contains(&rows) || ![3, 5, 7, 9].contains(&cols) {
                return Err(format!(
                    "shelf layout `{size}`: valid rows 1..4 by columns 3, 5, 7 or 9"
                ));
            }
            (p.shelf_rows, p.shelf_columns) = (rows, cols);
        }
        (None, None) => {
            return Err(format!(
                "unknown size `{size}`: valid tiny, small, medium, large (or `RxC` with a column height)"
            ))
        }
    }
    if let Some(h) = tokens.peek().and_then(|t| number(t, "h")) {
        if !(1..=15).contains(&h) {
            return Err(format!("column height `{h}h`: valid 1h..15h"));
        }
        p.column_height = h;
        tokens.next();
    } else if custom.is_some() {
        return Err(format!("`{size}` ids need a column height (`-8h-`)"));
    }
    let agents = tokens.next().ok_or("missing the agent count (`-2ag`)")?;
    p.n_agents = number(agents, "ag")
        .filter(|n| (1..=19).contains(n))
        .ok_or_else(|| format!("agent count `{agents}`: valid 1ag..19ag"))?;
    if custom.is_some() {
        let req = tokens.next().unwrap_or_default();
        p.request_queue_size = number(req, "req")
            .filter(|q| (1..=19).contains(q))
            .ok_or_else(|| format!("request queue `{req}`: valid 1req..19req"))?;
        let rew = tokens.next().unwrap_or_default();
        p.reward_type = match rew {
            "indiv" => RewardType::Individual,
            "global" => RewardType::Global,
            "twostage" => RewardType::TwoStage,
            other => {
                return Err(format!(
                    "reward type `{other}`: valid indiv, global, twostage"
                ))
            }
        };
    } else {
        // rware: request_queue_size = int(n_agents * {easy: 2, normal: 1, hard: 0.5}).
        p.request_queue_size = match tokens.next() {
            None => p.n_agents,
            Some("easy") => 2 * p.n_agents,
            Some("hard") => p.n_agents / 2,
            Some(other) => {
                return Err(format!(
                    "unknown difficulty `-{other}`: valid -easy, none (normal), -hard"
                ))
            }
        };
    }
    if let Some(extra) = tokens.next() {
        return Err(format!("unexpected `-{extra}`"));
    }
    Ok(p)
}

/// Makes an rware task by its id, with `overrides` on top of the parameters it stands for.
pub fn make_task(id: &str, overrides: &toml::Table) -> Result<WarehouseEnv, EnvError> {
    let base = task_params(id).ok_or_else(|| {
        EnvError::invalid_params(
            id,
            "not an rware task id `rware-{size}-{N}ag{-easy,-hard}-v2`",
        )
    })??;
    let (params, full): (WarehouseParams, _) = task_params_with(id, "rware", &base, overrides)?;
    WarehouseEnv::new(&full, &params)
}

/// The warehouse as a [`MultiAgentEnv`].
#[derive(Debug, Clone)]
pub struct WarehouseEnv {
    spec: EnvSpec,
    /// The world; public for inspection, rendering and scripted policies.
    pub world: Warehouse,
    actions: Vec<usize>,
    done: bool,
    tag: String,
}

impl WarehouseEnv {
    /// The warehouse with the given parameters; `id` is the id it was made from.
    pub fn new(id: &str, p: &WarehouseParams) -> Result<Self, EnvError> {
        if p.msg_bits != 0 {
            return Err(EnvError::invalid_params(
                id,
                format!("`msg_bits = {}` is not supported: only 0 (no communication; rware's messages make the action space MultiDiscrete)", p.msg_bits),
            ));
        }
        if p.observation_type != ObservationType::Flattened {
            return Err(EnvError::invalid_params(
                id,
                format!(
                    "`observation_type = {:?}` is not supported: only `flattened`, rware's default",
                    p.observation_type
                ),
            ));
        }
        let layout = match &p.layout {
            Some(s) => Layout::from_text(s),
            None => Layout::from_params(p.shelf_columns, p.shelf_rows, p.column_height),
        }
        .map_err(|m| EnvError::invalid_params(id, m))?;
        let cells = layout.cells();
        if p.n_agents == 0 || p.n_agents > cells.min(u16::MAX as usize - 1) {
            return Err(EnvError::invalid_params(
                id,
                format!(
                    "`n_agents` must be in 1..={} (one robot per cell), got {}",
                    cells.min(u16::MAX as usize - 1),
                    p.n_agents
                ),
            ));
        }
        let shelves = layout.shelf_home.len();
        if p.request_queue_size >= shelves.max(1) && p.request_queue_size > 0 {
            return Err(EnvError::invalid_params(
                id,
                format!(
                    "`request_queue_size` must be below the number of shelves ({shelves}), got {} (rware fails at the first delivery otherwise)",
                    p.request_queue_size
                ),
            ));
        }
        if p.max_steps == 0 {
            return Err(EnvError::invalid_params(
                id,
                "`max_steps` must be at least 1 (rware's unlimited episodes are not supported)",
            ));
        }
        if p.normalised_coordinates && (layout.width < 2 || layout.height < 2) {
            return Err(EnvError::invalid_params(
                id,
                "`normalised_coordinates` needs a floor of at least 2x2 cells",
            ));
        }
        let rules = Rules {
            sensor_range: p.sensor_range,
            request_queue_size: p.request_queue_size,
            reward_type: p.reward_type,
            max_inactivity_steps: p.max_inactivity_steps,
            max_steps: p.max_steps,
            normalised_coordinates: p.normalised_coordinates,
        };
        let obs_dim = Warehouse::obs_dim(p.sensor_range);
        let agents = (0..p.n_agents)
            .map(|i| AgentSpec {
                name: format!("agent_{i}"),
                agent_type: "agent".to_string(),
                team: "team".to_string(),
                obs_dim,
                action_space: ActionSpace::Discrete(N_ACTIONS),
            })
            .collect();
        let world = Warehouse::new(layout, rules, p.n_agents);
        let spec = EnvSpec::new(id, agents, world.state_dim(), p.max_steps, false);
        Ok(Self {
            spec,
            world,
            actions: vec![0; p.n_agents],
            done: false,
            tag: format!("{id} {p:?}"),
        })
    }

    /// Puts the generator in a recorded state (numpy's `bit_generator.state`).
    pub fn set_rng_state(&mut self, state: NumpyRngState) {
        self.world.rng = NumpyRng::from_state(state);
    }

    /// The generator's state.
    pub fn rng_state(&self) -> NumpyRngState {
        self.world.rng.state()
    }
}

impl MultiAgentEnv for WarehouseEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.world.rng = NumpyRng::from_seed(seed);
        }
        self.world.reset();
        self.done = false;
        self.observe(obs);
    }

    fn step(&mut self, actions: &[f32], out: StepOut<'_>) -> Result<(), EnvError> {
        if self.done {
            return Err(EnvError::EpisodeOver);
        }
        super::decode_actions(&self.spec, N_ACTIONS, actions, &mut self.actions)?;
        let over = self.world.step(&self.actions, out.rewards);
        out.terminated.fill(false);
        out.truncated.fill(over);
        self.done = over;
        self.observe(out.obs);
        Ok(())
    }

    fn observe(&self, obs: &mut [f32]) {
        for i in 0..self.world.n_robots() {
            self.world.observe(i, &mut obs[self.spec.obs_range(i)]);
        }
    }

    fn state(&self, out: &mut [f32]) {
        self.world.global_state(out);
    }

    /// Fields (rware's conventions: `x` column, `y` row, ids from 1): `agent_pos` `[x, y]` per
    /// robot, `agent_dir` (0 up, 1 down, 2 left, 3 right), `agent_carrying` (shelf id, 0 for
    /// none), `agent_has_delivered` (0/1), `shelf_pos` `[x, y]` per shelf, `request_queue`
    /// (shelf ids in queue order).
    fn get_state(&self) -> WorldState {
        let w = &self.world;
        let mut s = WorldState::default();
        let robots = || w.robots.iter();
        s.insert(
            "agent_pos",
            robots().flat_map(|r| [r.x as f64, r.y as f64]).collect(),
        );
        s.insert(
            "agent_dir",
            robots().map(|r| r.dir as usize as f64).collect(),
        );
        s.insert(
            "agent_carrying",
            robots()
                .map(|r| r.carrying.map_or(0.0, |k| (k + 1) as f64))
                .collect(),
        );
        s.insert(
            "agent_has_delivered",
            robots()
                .map(|r| f64::from(u8::from(r.has_delivered)))
                .collect(),
        );
        s.insert(
            "shelf_pos",
            w.shelves
                .iter()
                .flat_map(|&(x, y)| [x as f64, y as f64])
                .collect(),
        );
        s.insert(
            "request_queue",
            w.request_queue.iter().map(|&k| (k + 1) as f64).collect(),
        );
        s
    }

    fn set_state(&mut self, state: &WorldState) -> Result<(), EnvError> {
        const KEYS: [&str; 6] = [
            "agent_pos",
            "agent_dir",
            "agent_carrying",
            "agent_has_delivered",
            "shelf_pos",
            "request_queue",
        ];
        state.reject_unknown(&KEYS)?;
        let mut w = self.world.clone();
        let (n, n_shelves) = (w.n_robots(), w.shelves.len());
        let (width, height) = (w.layout.width, w.layout.height);
        let int = |key: &str, v: f64, bound: usize| -> Result<usize, EnvError> {
            if v >= 0.0 && v < bound as f64 && v.fract() == 0.0 {
                Ok(v as usize)
            } else {
                Err(EnvError::InvalidState {
                    message: format!(
                        "field `{key}` holds {v}, expected an integer in [0, {bound})"
                    ),
                })
            }
        };
        let pos = state.get("agent_pos", 2 * n)?;
        let dir = state.get("agent_dir", n)?;
        let carrying = state.get("agent_carrying", n)?;
        let delivered = state.get("agent_has_delivered", n)?;
        for i in 0..n {
            w.robots[i] = Robot {
                x: int("agent_pos", pos[2 * i], width)?,
                y: int("agent_pos", pos[2 * i + 1], height)?,
                dir: Direction::from_index(int("agent_dir", dir[i], 4)?).expect("checked"),
                carrying: int("agent_carrying", carrying[i], n_shelves + 1)?.checked_sub(1),
                has_delivered: int("agent_has_delivered", delivered[i], 2)? == 1,
            };
        }
        for (k, p) in state
            .get("shelf_pos", 2 * n_shelves)?
            .chunks_exact(2)
            .enumerate()
        {
            w.shelves[k] = (
                int("shelf_pos", p[0], width)?,
                int("shelf_pos", p[1], height)?,
            );
        }
        let queue = state.get("request_queue", w.request_queue.len())?;
        for (slot, &q) in w.request_queue.iter_mut().zip(queue) {
            *slot = int("request_queue", q - 1.0, n_shelves)?;
        }
        check_consistent(&w)?;
        w.steps = 0;
        w.inactive_steps = 0;
        w.deliveries = 0;
        w.recalc();
        self.world = w;
        self.done = false;
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        let w = &self.world;
        let mut s = SnapshotWriter::new(&self.tag);
        for r in &w.robots {
            s.u64(r.x as u64);
            s.u64(r.y as u64);
            s.u64(r.dir as u64);
            s.u64(r.carrying.map_or(0, |k| k as u64 + 1));
            s.u64(u64::from(r.has_delivered));
        }
        for &(x, y) in &w.shelves {
            s.u64(x as u64);
            s.u64(y as u64);
        }
        for &k in &w.request_queue {
            s.u64(k as u64);
        }
        s.u64(w.steps as u64);
        s.u64(w.inactive_steps as u64);
        s.u64(w.deliveries as u64);
        s.u64(u64::from(self.done));
        let rng = w.rng.state();
        s.u128(rng.state);
        s.u128(rng.inc);
        s.u64(u64::from(rng.has_uint32));
        s.u64(u64::from(rng.uinteger));
        s.finish()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), EnvError> {
        let mut r = SnapshotReader::new(snapshot, &self.tag)?;
        let mut w = self.world.clone();
        let bad = |what: &str| EnvError::Snapshot {
            message: format!("bad {what}"),
        };
        let (width, height, n_shelves) = (w.layout.width, w.layout.height, w.shelves.len());
        let mut int = |bound: usize, what: &str| -> Result<usize, EnvError> {
            let v = r.u64()? as usize;
            if v < bound {
                Ok(v)
            } else {
                Err(bad(what))
            }
        };
        for i in 0..w.n_robots() {
            w.robots[i] = Robot {
                x: int(width, "robot position")?,
                y: int(height, "robot position")?,
                dir: Direction::from_index(int(4, "direction")?).expect("checked"),
                carrying: int(n_shelves + 1, "carried shelf")?.checked_sub(1),
                has_delivered: int(2, "flag")? == 1,
            };
        }
        for k in 0..n_shelves {
            w.shelves[k] = (
                int(width, "shelf position")?,
                int(height, "shelf position")?,
            );
        }
        for k in 0..w.request_queue.len() {
            w.request_queue[k] = int(n_shelves, "request")?;
        }
        w.steps = int(usize::MAX, "steps")?;
        w.inactive_steps = int(usize::MAX, "steps")?;
        w.deliveries = int(usize::MAX, "deliveries")?;
        let done = int(2, "flag")? == 1;
        let state = r.u128()?;
        let inc = r.u128()?;
        let has_uint32 = r.u64()? != 0;
        let uinteger = r.u64()? as u32;
        r.finish()?;
        check_consistent(&w).map_err(|e| EnvError::Snapshot {
            message: e.to_string(),
        })?;
        w.rng = NumpyRng::from_state(NumpyRngState {
            state,
            inc,
            has_uint32,
            uinteger,
        });
        w.recalc();
        self.world = w;
        self.done = done;
        Ok(())
    }

    fn render_ascii(&self) -> String {
        render::ascii(&self.world)
    }

    fn render_svg(&self) -> Option<String> {
        let title = format!("{}  step {}", self.spec.id, self.world.steps);
        Some(render::svg(&self.world, &title))
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["deliveries"]
    }

    /// Requested shelves delivered so far in the episode.
    fn metrics(&self, out: &mut [f64]) {
        out[0] = self.world.deliveries as f64;
    }
}

/// What rware's rules keep true, checked on a loaded state: robots on distinct cells, shelves
/// on distinct cells, a carried shelf under its robot and carried by no other, distinct
/// requests.
fn check_consistent(w: &Warehouse) -> Result<(), EnvError> {
    let err = |message: String| EnvError::InvalidState { message };
    let cell = |x: usize, y: usize| y * w.layout.width + x;
    let mut robot_cells: Vec<usize> = w.robots.iter().map(|r| cell(r.x, r.y)).collect();
    robot_cells.sort_unstable();
    if robot_cells.windows(2).any(|p| p[0] == p[1]) {
        return Err(err("two robots on one cell".into()));
    }
    let mut shelf_cells: Vec<usize> = w.shelves.iter().map(|&(x, y)| cell(x, y)).collect();
    shelf_cells.sort_unstable();
    if shelf_cells.windows(2).any(|p| p[0] == p[1]) {
        return Err(err("two shelves on one cell".into()));
    }
    for (i, r) in w.robots.iter().enumerate() {
        if let Some(k) = r.carrying {
            if w.shelves[k] != (r.x, r.y) {
                return Err(err(format!(
                    "robot {} carries shelf {} from elsewhere",
                    i + 1,
                    k + 1
                )));
            }
            if w.robots[..i].iter().any(|o| o.carrying == Some(k)) {
                return Err(err(format!("shelf {} carried twice", k + 1)));
            }
        }
    }
    let mut queue = w.request_queue.clone();
    queue.sort_unstable();
    if queue.windows(2).any(|p| p[0] == p[1]) {
        return Err(err("a shelf requested twice".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    fn err(id: &str, params: &str) -> String {
        let table: toml::Table = toml::from_str(params).expect("toml");
        registry::make(id, &table)
            .err()
            .expect("must fail")
            .to_string()
    }

    #[test]
    fn task_ids_stand_for_rwares_registered_kwargs() {
        let p = |id: &str| task_params(id).expect("an rware id").expect("valid");
        let tiny4 = p("rware-tiny-4ag-v2");
        assert_eq!(
            (
                tiny4.shelf_rows,
                tiny4.shelf_columns,
                tiny4.column_height,
                tiny4.n_agents
            ),
            (1, 3, 8, 4)
        );
        assert_eq!(tiny4.request_queue_size, 4);
        assert_eq!(p("rware-tiny-4ag-easy-v2").request_queue_size, 8);
        assert_eq!(p("rware-tiny-5ag-hard-v2").request_queue_size, 2);
        assert_eq!(p("rware-tiny-1ag-hard-v2").request_queue_size, 0);
        let large = p("rware/rware-large-19ag-v2");
        assert_eq!(
            (large.shelf_rows, large.shelf_columns, large.n_agents),
            (3, 5, 19)
        );
        let full = p("rware-3s-medium-6h-7ag-hard-v2");
        assert_eq!(
            (
                full.sensor_range,
                full.shelf_rows,
                full.shelf_columns,
                full.column_height
            ),
            (3, 2, 5, 6)
        );
        let custom = p("rware-2x7-4h-3ag-5req-twostage-v2");
        assert_eq!(
            (
                custom.shelf_rows,
                custom.shelf_columns,
                custom.request_queue_size
            ),
            (2, 7, 5)
        );
        assert_eq!(custom.reward_type, RewardType::TwoStage);
        assert!(task_params("Foraging-8x8-2p-2f-coop-v3").is_none());
    }

    #[test]
    fn every_size_agent_count_and_difficulty_builds() {
        for size in ["tiny", "small", "medium", "large"] {
            for n in 1..=19 {
                for diff in ["", "-easy", "-hard"] {
                    let id = format!("rware-{size}-{n}ag{diff}-v2");
                    let made = registry::make(&id, &toml::Table::new());
                    if size == "tiny" && diff == "-easy" && n >= 16 {
                        // 2N requests of 32 shelves: rware cannot replace a delivered request
                        // (16) or even reset (17..19).
                        let msg = made.err().expect("refused").to_string();
                        assert!(msg.contains("request_queue_size"), "{msg}");
                        continue;
                    }
                    let env = made.unwrap_or_else(|e| panic!("{id}: {e}"));
                    assert_eq!(env.spec().num_agents(), n, "{id}");
                    assert_eq!(env.spec().agents[0].obs_dim, 71, "{id}");
                }
            }
        }
    }

    #[test]
    fn an_unknown_size_names_it_and_the_valid_ones() {
        let msg = err("rware-huge-2ag-v2", "");
        assert!(
            msg.contains("`huge`") && msg.contains("tiny, small, medium, large"),
            "{msg}"
        );
    }

    #[test]
    fn an_unknown_agent_count_or_difficulty_names_it_and_the_valid_ones() {
        let msg = err("rware-tiny-20ag-v2", "");
        assert!(msg.contains("`20ag`") && msg.contains("1ag..19ag"), "{msg}");
        let msg = err("rware-tiny-0ag-v2", "");
        assert!(msg.contains("`0ag`"), "{msg}");
        let msg = err("rware-tiny-2ag-medium-v2", "");
        assert!(
            msg.contains("`-medium`") && msg.contains("-easy") && msg.contains("-hard"),
            "{msg}"
        );
        let msg = err("rware-tiny-2ag-v1", "");
        assert!(msg.contains("-v2"), "{msg}");
        let msg = err("rware-img-tiny-2ag-v2", "");
        assert!(msg.contains("not supported"), "{msg}");
    }

    #[test]
    fn an_unknown_parameter_names_it_and_the_valid_ones() {
        let msg = err("rware-tiny-2ag-v2", "sensor_rang = 2");
        assert!(
            msg.contains("sensor_rang") && msg.contains("sensor_range"),
            "{msg}"
        );
        assert!(
            msg.contains("request_queue_size") && msg.contains("reward_type"),
            "{msg}"
        );
        let msg = err(RWARE_ID, "reward_type = \"shared\"");
        assert!(
            msg.contains("shared") && msg.contains("individual"),
            "{msg}"
        );
    }

    #[test]
    fn unsupported_and_impossible_parameters_are_refused() {
        assert!(err(RWARE_ID, "msg_bits = 2").contains("msg_bits"));
        assert!(err(RWARE_ID, "observation_type = \"image\"").contains("flattened"));
        assert!(err(RWARE_ID, "shelf_columns = 4").contains("odd"));
        assert!(err(RWARE_ID, "request_queue_size = 32").contains("below the number of shelves"));
        assert!(err(RWARE_ID, "n_agents = 0").contains("n_agents"));
        assert!(err(RWARE_ID, "max_steps = 0").contains("max_steps"));
        assert!(err(RWARE_ID, "layout = \"x.\\n..\"").contains("goal"));
    }

    #[test]
    fn parameters_override_a_task() {
        let table: toml::Table = toml::from_str("sensor_range = 2").expect("toml");
        let env = registry::make("rware-tiny-2ag-v2", &table).expect("make");
        assert_eq!(env.spec().agents[0].obs_dim, 8 + 7 * 25);
        assert_eq!(env.spec().id, "rware/rware-tiny-2ag-v2");
    }

    #[test]
    fn the_step_limit_is_a_truncation() {
        let table: toml::Table = toml::from_str("max_steps = 3").expect("toml");
        let mut env = registry::make(RWARE_ID, &table).expect("make");
        let spec = env.spec().clone();
        let mut obs = vec![0.0; spec.obs_len()];
        let (mut r, mut te, mut tr) = (vec![0.0; 2], vec![false; 2], vec![false; 2]);
        env.reset(Some(1), &mut obs);
        for t in 1..=3 {
            let out = StepOut {
                obs: &mut obs,
                rewards: &mut r,
                terminated: &mut te,
                truncated: &mut tr,
            };
            env.step(&[1.0, 2.0], out).expect("step");
            assert_eq!((te[0], tr[0]), (false, t == 3));
        }
    }

    #[test]
    fn render_draws_the_floor_robots_and_requests() {
        let mut env = make_task("rware-tiny-2ag-v2", &toml::Table::new()).expect("make");
        let mut obs = vec![0.0; env.spec().obs_len()];
        env.reset(Some(0), &mut obs);
        let text = env.render_ascii();
        assert_eq!(text.lines().count(), 1 + 11, "{text}");
        assert!(text.contains('X') && text.contains('G'), "{text}");
        assert!(text.chars().any(|c| c == 'A' || c == 'a'), "{text}");
        let svg = env.render_svg().expect("svg");
        assert!(svg.starts_with("<svg") && svg.matches("<circle").count() == 2);
    }
}
