//! Level-Based Foraging, exact to lbforaging 2.0.0, and its two-team competitive variant.
//!
//! `grid/foraging_v3` / `lbf/Foraging{-2s}-{S}x{S}-{P}p-{F}f{-coop}-v3`:
//!
//! | | |
//! |---|---|
//! | Agents | `agent_0` .. `agent_{P-1}`, type `agent`, levels drawn in `[min_player_level, max_player_level]` (1..2) |
//! | Food | up to F, never on the border, 3+ cells apart; level up to the sum of the three lowest agent levels (all at that level with `-coop`) |
//! | Actions | `Discrete(6)`: NONE, NORTH, SOUTH, WEST, EAST, LOAD; masks mark invalid moves (border, food) and LOAD away from food; an invalid action is NONE |
//! | Observation (3F + 3P) | F food triples `(row, col, level)`, then P agent triples (self first), relative to the agent's clipped `sight` window, padding `(-1, -1, 0)` |
//! | State (3F + 3P) | full sight, absolute: the episode's foods in row-major order (eaten: `(-1, -1, 0)`), then every agent `(row, col, level)` |
//! | Reward | a successful load pays each loader `level * food / (sum of loader levels * total food at reset)`: a team's best episode return is 1 |
//! | Episode | terminated when all food is loaded; truncated at `max_episode_steps` (50). The reference reports step 50 as a termination; marl bootstraps there |
//!
//! `grid/team_foraging_v1` (two teams compete for the same food):
//!
//! | | |
//! |---|---|
//! | Agents | `team_a` agents `a_0..`, then `team_b` agents `b_0..`; types `team_a`, `team_b` |
//! | Rules | those of Level-Based Foraging; agents of both teams may load together |
//! | Observation (3F + 4P) | as LBF, each agent slot `(row, col, level, team)` with team `+1` own, `-1` other |
//! | Reward | LBF's share for each loader; with `zero_sum` (default) every agent also pays `(food the other team gained) / (own team size)`, so the teams' returns sum to 0 |
//! | Episode | as LBF |

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::world::{Grid, Layout, N_ACTIONS};
use crate::api::{ActionSpace, AgentSpec, EnvSpec, MultiAgentEnv, StepOut, WorldState};
use crate::error::EnvError;
use crate::snapshot::{SnapshotReader, SnapshotWriter};

/// A field size: one number for a square, or `[rows, cols]`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum FieldSize {
    /// A square field.
    Square(usize),
    /// `[rows, cols]`.
    Rect([usize; 2]),
}

impl FieldSize {
    fn dims(self) -> (usize, usize) {
        match self {
            FieldSize::Square(s) => (s, s),
            FieldSize::Rect([r, c]) => (r, c),
        }
    }
}

/// Parameters of `grid/foraging_v3`, named as lbforaging's constructor arguments.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForagingParams {
    /// Number of agents.
    pub players: usize,
    /// Field size: `8` or `[8, 8]`.
    pub field_size: FieldSize,
    /// Foods placed at reset (fewer may fit on small fields).
    pub max_num_food: usize,
    /// Observation radius; `None` (default): the whole field.
    pub sight: Option<usize>,
    /// Every food at the highest level, so that it takes several agents.
    pub force_coop: bool,
    /// Lowest agent level.
    pub min_player_level: u32,
    /// Highest agent level.
    pub max_player_level: u32,
    /// Lowest food level (ignored with `force_coop`).
    pub min_food_level: u32,
    /// Highest food level; default: the sum of the three lowest agent levels.
    pub max_food_level: Option<u32>,
    /// Reward subtracted from every agent of a failed load.
    pub penalty: f64,
    /// Episode limit in steps (a truncation).
    pub max_episode_steps: usize,
    /// Divide rewards by the total food level so that a team's best return is 1.
    pub normalize_reward: bool,
    /// Include agent levels in observations.
    pub observe_agent_levels: bool,
    /// lbforaging's grid observations; not supported (lbforaging 2.0.0 cannot build them
    /// either), refused with an error.
    pub grid_observation: bool,
}

impl Default for ForagingParams {
    fn default() -> Self {
        Self {
            players: 2,
            field_size: FieldSize::Square(8),
            max_num_food: 2,
            sight: None,
            force_coop: false,
            min_player_level: 1,
            max_player_level: 2,
            min_food_level: 1,
            max_food_level: None,
            penalty: 0.0,
            max_episode_steps: 50,
            normalize_reward: true,
            observe_agent_levels: true,
            grid_observation: false,
        }
    }
}

/// Parameters of `grid/team_foraging_v1`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TeamForagingParams {
    /// Agents per team.
    pub team_size: usize,
    /// Field size.
    pub field_size: FieldSize,
    /// Foods placed at reset.
    pub max_num_food: usize,
    /// Observation radius; `None`: the whole field.
    pub sight: Option<usize>,
    /// Every food at the highest level.
    pub force_coop: bool,
    /// Lowest agent level.
    pub min_player_level: u32,
    /// Highest agent level.
    pub max_player_level: u32,
    /// Episode limit in steps.
    pub max_episode_steps: usize,
    /// Each team also pays for what the other team gains.
    pub zero_sum: bool,
}

impl Default for TeamForagingParams {
    fn default() -> Self {
        Self {
            team_size: 2,
            field_size: FieldSize::Square(10),
            max_num_food: 4,
            sight: None,
            force_coop: false,
            min_player_level: 1,
            max_player_level: 2,
            max_episode_steps: 50,
            zero_sum: true,
        }
    }
}

/// Id of the general Level-Based Foraging environment.
pub const FORAGING_ID: &str = "grid/foraging_v3";
/// Id of the two-team variant.
pub const TEAM_FORAGING_ID: &str = "grid/team_foraging_v1";

/// The EPyMARL benchmark's Level-Based Foraging tasks, registered by name.
pub const EPYMARL_TASKS: [&str; 7] = [
    "Foraging-8x8-2p-2f-coop-v3",
    "Foraging-2s-8x8-2p-2f-coop-v3",
    "Foraging-10x10-3p-3f-v3",
    "Foraging-2s-10x10-3p-3f-v3",
    "Foraging-15x15-3p-5f-v3",
    "Foraging-15x15-4p-3f-v3",
    "Foraging-15x15-4p-5f-v3",
];

/// The parameters an lbforaging task id stands for (`Foraging{-2s}-{S}x{S}-{P}p-{F}f{-coop}-v3`),
/// or `None` if `id` is not of that form.
pub fn task_params(id: &str) -> Option<ForagingParams> {
    let rest = id
        .strip_prefix("lbf/")
        .unwrap_or(id)
        .strip_prefix("Foraging-")?;
    let rest = rest.strip_suffix("-v3")?;
    let (sight, rest) = match rest.strip_prefix("2s-") {
        Some(r) => (Some(2), r),
        None => (None, rest),
    };
    let (rest, coop) = match rest.strip_suffix("-coop") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let mut parts = rest.split('-');
    let (size, players, foods) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (a, b) = size.split_once('x')?;
    let (s, s2): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
    if s != s2 {
        return None;
    }
    Some(ForagingParams {
        players: players.strip_suffix('p')?.parse().ok()?,
        field_size: FieldSize::Square(s),
        max_num_food: foods.strip_suffix('f')?.parse().ok()?,
        sight: sight.or(Some(s)),
        force_coop: coop,
        ..ForagingParams::default()
    })
}

/// How rewards are shared between two teams.
#[derive(Debug, Clone, PartialEq)]
struct Teams {
    /// Team of each agent (0 or 1).
    team: Vec<usize>,
    zero_sum: bool,
}

/// Level-Based Foraging (and its team variant) as a [`MultiAgentEnv`].
#[derive(Debug, Clone)]
pub struct ForagingEnv {
    spec: EnvSpec,
    /// The grid; public for inspection and rendering.
    pub grid: Grid,
    layout: Layout,
    sight: usize,
    penalty: f64,
    normalize: bool,
    agent_width: usize,
    teams: Option<Teams>,
    max_steps: usize,
    rng: ChaCha8Rng,
    actions: Vec<usize>,
    done: bool,
    tag: String,
}

impl ForagingEnv {
    /// Level-Based Foraging with the given parameters; `id` is the id it was made from.
    pub fn new(id: &str, p: &ForagingParams) -> Result<Self, EnvError> {
        if p.grid_observation {
            return Err(EnvError::invalid_params(id, "`grid_observation = true` is not supported: marl observes \
                 foods and agents as triples (lbforaging 2.0.0 cannot build grid observations either)"));
        }
        let layout = Layout {
            min_player_level: p.min_player_level,
            max_player_level: p.max_player_level,
            min_food_level: p.min_food_level,
            max_food_level: p.max_food_level,
            max_num_food: p.max_num_food,
            force_coop: p.force_coop,
        };
        let agent_width = if p.observe_agent_levels { 3 } else { 2 };
        let names: Vec<(String, String)> = (0..p.players)
            .map(|i| (format!("agent_{i}"), "agent".to_string()))
            .collect();
        Self::build(
            id,
            format!("{id} {p:?}"),
            p.field_size,
            p.players,
            p.sight,
            layout,
            names,
            agent_width,
            None,
            p,
        )
    }

    /// The two-team variant with the given parameters.
    pub fn teams(p: &TeamForagingParams) -> Result<Self, EnvError> {
        let id = TEAM_FORAGING_ID;
        let layout = Layout {
            min_player_level: p.min_player_level,
            max_player_level: p.max_player_level,
            min_food_level: 1,
            max_food_level: None,
            max_num_food: p.max_num_food,
            force_coop: p.force_coop,
        };
        let n = 2 * p.team_size;
        let names = (0..n)
            .map(|i| {
                let (t, k) = (i / p.team_size.max(1), i % p.team_size.max(1));
                let (prefix, ty) = if t == 0 {
                    ("a", "team_a")
                } else {
                    ("b", "team_b")
                };
                (format!("{prefix}_{k}"), ty.to_string())
            })
            .collect();
        let teams = Teams {
            team: (0..n).map(|i| i / p.team_size.max(1)).collect(),
            zero_sum: p.zero_sum,
        };
        let common = ForagingParams {
            players: n,
            field_size: p.field_size,
            max_num_food: p.max_num_food,
            sight: p.sight,
            max_episode_steps: p.max_episode_steps,
            ..ForagingParams::default()
        };
        Self::build(
            id,
            format!("{id} {p:?}"),
            p.field_size,
            n,
            p.sight,
            layout,
            names,
            4,
            Some(teams),
            &common,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        id: &str,
        tag: String,
        field_size: FieldSize,
        players: usize,
        sight: Option<usize>,
        layout: Layout,
        names: Vec<(String, String)>,
        agent_width: usize,
        teams: Option<Teams>,
        p: &ForagingParams,
    ) -> Result<Self, EnvError> {
        let (rows, cols) = field_size.dims();
        if rows < 3 || cols < 3 {
            return Err(EnvError::invalid_params(
                id,
                format!("`field_size` must be at least 3x3, got {rows}x{cols}"),
            ));
        }
        if players == 0 || players > 64 {
            return Err(EnvError::invalid_params(
                id,
                format!("the number of agents must be in 1..=64, got {players}"),
            ));
        }
        if layout.max_num_food == 0 {
            return Err(EnvError::invalid_params(
                id,
                "`max_num_food` must be at least 1",
            ));
        }
        if layout.min_player_level == 0 || layout.min_player_level > layout.max_player_level {
            return Err(EnvError::invalid_params(
                id,
                "agent levels need 1 <= `min_player_level` <= `max_player_level`",
            ));
        }
        if layout
            .max_food_level
            .is_some_and(|m| m < layout.min_food_level.max(1))
        {
            return Err(EnvError::invalid_params(
                id,
                "`max_food_level` must be at least `min_food_level` and 1",
            ));
        }
        if p.max_episode_steps == 0 {
            return Err(EnvError::invalid_params(
                id,
                "`max_episode_steps` must be at least 1",
            ));
        }
        if !p.penalty.is_finite() {
            return Err(EnvError::invalid_params(id, "`penalty` must be finite"));
        }
        let sight = sight.unwrap_or(rows.max(cols));
        let obs_dim = 3 * layout.max_num_food + agent_width * players;
        let agents = names
            .into_iter()
            .map(|(name, agent_type)| AgentSpec {
                name,
                agent_type,
                team: "team".into(),
                obs_dim,
                action_space: ActionSpace::Discrete(N_ACTIONS),
            })
            .collect();
        let state_dim = 3 * layout.max_num_food + 3 * players;
        let spec = EnvSpec::new(id, agents, state_dim, p.max_episode_steps, true);
        Ok(Self {
            spec,
            grid: Grid::new(rows, cols, players),
            layout,
            sight,
            penalty: p.penalty,
            normalize: p.normalize_reward,
            agent_width,
            teams,
            max_steps: p.max_episode_steps,
            rng: ChaCha8Rng::seed_from_u64(0),
            actions: vec![0; players],
            done: false,
            tag,
        })
    }

    fn share_between_teams(&self, rewards: &mut [f64]) {
        let Some(teams) = &self.teams else { return };
        if !teams.zero_sum {
            return;
        }
        let mut gain = [0.0f64; 2];
        let mut size = [0usize; 2];
        for (i, &t) in teams.team.iter().enumerate() {
            gain[t] += rewards[i];
            size[t] += 1;
        }
        for (i, &t) in teams.team.iter().enumerate() {
            rewards[i] -= gain[1 - t] / size[t] as f64;
        }
    }
}

impl MultiAgentEnv for ForagingEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.grid.reset(&self.layout, &mut self.rng);
        self.done = false;
        self.observe(obs);
    }

    fn step(&mut self, actions: &[f32], out: StepOut<'_>) -> Result<(), EnvError> {
        if self.done {
            return Err(EnvError::EpisodeOver);
        }
        super::decode_actions(&self.spec, N_ACTIONS, actions, &mut self.actions)?;
        self.grid
            .step(&self.actions, self.penalty, self.normalize, out.rewards);
        self.share_between_teams(out.rewards);
        let all_loaded = self.grid.food_left() == 0;
        let truncated = !all_loaded && self.grid.step >= self.max_steps;
        out.terminated.fill(all_loaded);
        out.truncated.fill(truncated);
        self.done = all_loaded || truncated;
        self.observe(out.obs);
        Ok(())
    }

    fn observe(&self, obs: &mut [f32]) {
        let f = self.layout.max_num_food;
        for i in 0..self.grid.n_agents() {
            let team_flag = |j: usize, slot: &mut [f32]| {
                if let Some(t) = &self.teams {
                    slot[0] = if t.team[j] == t.team[i] { 1.0 } else { -1.0 };
                }
            };
            let out = &mut obs[self.spec.obs_range(i)];
            self.grid
                .observe(i, self.sight, f, self.agent_width, &team_flag, out);
        }
    }

    fn state(&self, out: &mut [f32]) {
        let g = &self.grid;
        let f = self.layout.max_num_food;
        for k in 0..f {
            let triple = match g.foods.get(k) {
                Some(&(r, c, _)) if g.food(r, c) > 0 => [r as f32, c as f32, g.food(r, c) as f32],
                _ => [-1.0, -1.0, 0.0],
            };
            out[3 * k..3 * k + 3].copy_from_slice(&triple);
        }
        for (j, &(r, c)) in g.pos.iter().enumerate() {
            out[3 * f + 3 * j..3 * f + 3 * j + 3].copy_from_slice(&[
                r as f32,
                c as f32,
                g.level[j] as f32,
            ]);
        }
    }

    fn avail_actions(&self, out: &mut [bool]) {
        for (i, chunk) in out.chunks_exact_mut(N_ACTIONS).enumerate() {
            chunk.copy_from_slice(self.grid.valid(i));
        }
    }

    fn get_state(&self) -> WorldState {
        let g = &self.grid;
        let mut s = WorldState::default();
        s.insert(
            "agent_pos",
            g.pos
                .iter()
                .flat_map(|&(r, c)| [r as f64, c as f64])
                .collect(),
        );
        s.insert(
            "agent_level",
            g.level.iter().map(|&l| f64::from(l)).collect(),
        );
        s.insert("field", g.field.iter().map(|&f| f64::from(f)).collect());
        s.insert("food_spawned", vec![f64::from(g.food_spawned)]);
        s
    }

    fn set_state(&mut self, state: &WorldState) -> Result<(), EnvError> {
        state.reject_unknown(&["agent_pos", "agent_level", "field", "food_spawned"])?;
        let n = self.grid.n_agents();
        let (rows, cols) = (self.grid.rows, self.grid.cols);
        let as_int = |key: &str, v: f64, bound: f64| -> Result<u32, EnvError> {
            if v >= 0.0 && v < bound && v.fract() == 0.0 {
                Ok(v as u32)
            } else {
                Err(EnvError::InvalidState {
                    message: format!(
                        "field `{key}` holds {v}, expected an integer in [0, {bound})"
                    ),
                })
            }
        };
        let mut grid = self.grid.clone();
        let pos = state.get("agent_pos", 2 * n)?;
        for (j, p) in pos.chunks_exact(2).enumerate() {
            grid.pos[j] = (
                as_int("agent_pos", p[0], rows as f64)? as usize,
                as_int("agent_pos", p[1], cols as f64)? as usize,
            );
        }
        for (j, &l) in state.get("agent_level", n)?.iter().enumerate() {
            grid.level[j] = as_int("agent_level", l, 1e6)?;
        }
        for (dst, &f) in grid.field.iter_mut().zip(state.get("field", rows * cols)?) {
            *dst = as_int("field", f, 1e6)?;
        }
        grid.start_episode();
        if let Some(spawned) = state.fields.get("food_spawned") {
            grid.food_spawned = as_int(
                "food_spawned",
                spawned.first().copied().unwrap_or(-1.0),
                1e9,
            )?;
        }
        self.grid = grid;
        self.done = false;
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        let g = &self.grid;
        let mut w = SnapshotWriter::new(&self.tag);
        w.f64s(&g.field.iter().map(|&f| f64::from(f)).collect::<Vec<_>>());
        w.f64s(
            &g.pos
                .iter()
                .flat_map(|&(r, c)| [r as f64, c as f64])
                .collect::<Vec<_>>(),
        );
        w.f64s(&g.level.iter().map(|&l| f64::from(l)).collect::<Vec<_>>());
        w.f64s(
            &g.foods
                .iter()
                .flat_map(|&(r, c, l)| [r as f64, c as f64, f64::from(l)])
                .collect::<Vec<_>>(),
        );
        w.u64(u64::from(g.food_spawned));
        w.u64(g.step as u64);
        w.u64(self.done as u64);
        w.rng(&self.rng);
        w.finish()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), EnvError> {
        let mut r = SnapshotReader::new(snapshot, &self.tag)?;
        let mut g = self.grid.clone();
        let n = g.n_agents();
        let mut field = vec![0.0; g.field.len()];
        let mut pos = vec![0.0; 2 * n];
        let mut level = vec![0.0; n];
        r.f64s_into(&mut field)?;
        r.f64s_into(&mut pos)?;
        r.f64s_into(&mut level)?;
        let foods_len = r.u64()? as usize;
        if !foods_len.is_multiple_of(3) || foods_len > 3 * g.field.len() {
            return Err(EnvError::Snapshot {
                message: "bad food list".into(),
            });
        }
        let foods: Vec<f64> = (0..foods_len).map(|_| r.f64()).collect::<Result<_, _>>()?;
        let food_spawned = r.u64()? as u32;
        let step = r.u64()? as usize;
        let done = r.u64()? != 0;
        let rng = r.rng()?;
        r.finish()?;
        for (d, s) in g.field.iter_mut().zip(&field) {
            *d = *s as u32;
        }
        for j in 0..n {
            g.pos[j] = (pos[2 * j] as usize, pos[2 * j + 1] as usize);
            g.level[j] = level[j] as u32;
        }
        g.foods = foods
            .chunks_exact(3)
            .map(|f| (f[0] as usize, f[1] as usize, f[2] as u32))
            .collect();
        g.food_spawned = food_spawned;
        g.step = step;
        g.refresh_derived();
        self.grid = g;
        self.done = done;
        self.rng = rng;
        Ok(())
    }

    fn render_ascii(&self) -> String {
        self.grid.render_ascii()
    }

    fn render_svg(&self) -> Option<String> {
        let title = format!("{}  step {}", self.spec.id, self.grid.step);
        let colour = |j: usize| match &self.teams {
            Some(t) => t.team[j],
            None => j,
        };
        Some(super::svg::grid_svg(&self.grid, &title, &colour))
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["food_collected", "food_fraction"]
    }

    /// Foods loaded so far, and the fraction of the episode's foods they are.
    fn metrics(&self, out: &mut [f64]) {
        let g = &self.grid;
        let total = g.foods.len();
        let collected = g
            .foods
            .iter()
            .filter(|&&(r, c, _)| g.food(r, c) == 0)
            .count();
        out[0] = collected as f64;
        out[1] = if total == 0 {
            0.0
        } else {
            collected as f64 / total as f64
        };
    }
}
