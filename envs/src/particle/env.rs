//! `ParticleEnv`: one MPE scenario on the shared physics, behind the [`MultiAgentEnv`] API.
//!
//! The scenario decides the world, the reset, the observations and the rewards; this file does
//! what mpe2's `SimpleEnv` does around it: action decoding (discrete `move + 5 * say`, or the
//! continuous `(a2 - a1, a4 - a3)` in `f32`), the step counter and truncation at `max_cycles`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::core::World;
use crate::api::{ActionSpace, AgentSpec, EnvSpec, MultiAgentEnv, StepOut, WorldState};
use crate::error::EnvError;
use crate::snapshot::{SnapshotReader, SnapshotWriter};

/// What a particle scenario adds to the shared physics.
pub trait Scenario: Clone + Send + 'static {
    /// The world with its entities at rest.
    fn make_world(&self) -> World;

    /// The type of each agent (`agent`, `adversary`, ...), one per agent.
    fn agent_types(&self, world: &World) -> Vec<String>;

    /// Whether each agent is an adversary (mpe2's `agent.adversary`): adversaries and the
    /// others are opposing teams. None by default.
    fn adversaries(&self, world: &World) -> Vec<bool> {
        vec![false; world.n_agents]
    }

    /// The observation size of each agent.
    fn obs_dims(&self, world: &World) -> Vec<usize>;

    /// Draws a new episode's initial state (the reference's `reset_world`, with our generator).
    fn reset(&mut self, world: &mut World, rng: &mut ChaCha8Rng);

    /// Writes agent `i`'s observation, computed in `f64` and cast to `f32` as mpe2's API does.
    fn observe(&self, world: &World, i: usize, out: &mut [f32]);

    /// Writes every agent's reward for the current (post-step) state.
    fn rewards(&self, world: &World, out: &mut [f64]);

    /// Names of the scenario's own state fields (goal indices, ...), beyond the physics.
    fn extra_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Adds the scenario's own state fields.
    fn get_extra(&self, _state: &mut WorldState) {}

    /// Loads the scenario's own state fields.
    fn set_extra(&mut self, _state: &WorldState, _world: &World) -> Result<(), EnvError> {
        Ok(())
    }

    /// The scenario's own state as plain numbers, for snapshots.
    fn extra_values(&self) -> Vec<f64> {
        Vec::new()
    }

    /// Restores what [`extra_values`](Self::extra_values) returned.
    fn set_extra_values(&mut self, _values: &[f64]) {}

    /// Names of the episode figures [`add_metrics`](Self::add_metrics) keeps.
    fn metric_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// Updates the episode figures after a step (a count adds, a final figure overwrites).
    fn add_metrics(&self, _world: &World, _acc: &mut [f64]) {}
}

/// The discrete movement actions: no-op, -x, +x, -y, +y.
const MOVES: [[f64; 2]; 5] = [[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]];

/// How to read one agent's part of the flat action slice (derived once from the spec).
#[derive(Debug, Clone)]
struct Decode {
    offset: usize,
    width: usize,
    choices: usize,
    movable: bool,
    silent: bool,
    accel: f64,
}

/// One MPE scenario as a [`MultiAgentEnv`].
#[derive(Clone)]
pub struct ParticleEnv<S: Scenario> {
    spec: EnvSpec,
    /// The world; public for inspection and rendering.
    pub world: World,
    scenario: S,
    decode: Vec<Decode>,
    rng: ChaCha8Rng,
    max_cycles: usize,
    continuous: bool,
    steps: usize,
    done: bool,
    /// The episode's task figures so far (see [`Scenario::metric_names`]).
    metrics: Vec<f64>,
    /// Identifies the id and parameters in snapshots.
    tag: String,
}

impl<S: Scenario> ParticleEnv<S> {
    /// Wraps a scenario; `tag` identifies the id and parameters (checked when restoring).
    pub fn new(id: &str, tag: String, scenario: S, max_cycles: usize, continuous: bool) -> Self {
        let world = scenario.make_world();
        let types = scenario.agent_types(&world);
        let adversaries = scenario.adversaries(&world);
        let obs_dims = scenario.obs_dims(&world);
        let agents: Vec<AgentSpec> = (0..world.n_agents)
            .map(|i| {
                let p = &world.params[i];
                let (moves, says) = (p.movable, !p.silent);
                let action_space = if continuous {
                    let dim = if moves { 5 } else { 0 } + if says { world.dim_c } else { 0 };
                    ActionSpace::Box {
                        dim,
                        low: 0.0,
                        high: 1.0,
                    }
                } else {
                    ActionSpace::Discrete(
                        if moves { 5 } else { 1 } * if says { world.dim_c } else { 1 },
                    )
                };
                AgentSpec {
                    name: p.name.clone(),
                    agent_type: types[i].clone(),
                    team: match (adversaries[i], adversaries.contains(&true)) {
                        (true, _) => "adversaries",
                        (false, true) => "good",
                        (false, false) => "team",
                    }
                    .into(),
                    obs_dim: obs_dims[i],
                    action_space,
                }
            })
            .collect();
        let state_dim = obs_dims.iter().sum();
        let spec = EnvSpec::new(id, agents, state_dim, max_cycles, false);
        let decode = (0..world.n_agents)
            .map(|i| {
                let p = &world.params[i];
                Decode {
                    offset: spec.action_range(i).start,
                    width: spec.agents[i].action_space.width(),
                    choices: spec.agents[i].action_space.num_choices(),
                    movable: p.movable,
                    silent: p.silent,
                    accel: p.accel.unwrap_or(5.0),
                }
            })
            .collect();
        let n_metrics = scenario.metric_names().len();
        Self {
            spec,
            world,
            scenario,
            decode,
            rng: ChaCha8Rng::seed_from_u64(0),
            max_cycles,
            continuous,
            steps: 0,
            done: false,
            metrics: vec![0.0; n_metrics],
            tag,
        }
    }

    /// The scenario.
    pub fn scenario(&self) -> &S {
        &self.scenario
    }

    fn decode_actions(&mut self, actions: &[f32]) -> Result<(), EnvError> {
        let dim_c = self.world.dim_c;
        for (i, d) in self.decode.iter().enumerate() {
            let a = &actions[d.offset..d.offset + d.width];
            let mut u = [0.0f64; 2];
            if self.continuous {
                let clip = |x: f32| x.clamp(0.0, 1.0);
                let mut rest = a;
                if d.movable {
                    // mpe2 subtracts in the action's own precision (f32) and only then widens.
                    u[0] = (clip(a[2]) - clip(a[1])) as f64;
                    u[1] = (clip(a[4]) - clip(a[3])) as f64;
                    rest = &a[5..];
                }
                if !d.silent {
                    let c = &mut self.world.action_c[i * dim_c..(i + 1) * dim_c];
                    for (dst, &src) in c.iter_mut().zip(rest) {
                        *dst = clip(src) as f64;
                    }
                }
            } else {
                let x = a[0];
                // `as` saturates (negatives and NaN to 0), so the round trip rejects them too.
                let mut index = x as usize;
                if index as f32 != x || index >= d.choices {
                    return Err(EnvError::InvalidAction {
                        agent: i,
                        name: self.world.params[i].name.clone(),
                        message: format!("{x} is not an action of Discrete({})", d.choices),
                    });
                }
                if d.movable {
                    u = MOVES[index % 5];
                    index /= 5;
                }
                if !d.silent {
                    let c = &mut self.world.action_c[i * dim_c..(i + 1) * dim_c];
                    c.fill(0.0);
                    c[index] = 1.0;
                }
            }
            self.world.action_u[i] = [u[0] * d.accel, u[1] * d.accel];
        }
        Ok(())
    }

    fn physics_fields(&self) -> [(&'static str, usize); 5] {
        let (na, nl) = (self.world.n_agents, self.world.n_landmarks());
        [
            ("agent_pos", 2 * na),
            ("agent_vel", 2 * na),
            ("agent_c", self.world.dim_c * na),
            ("landmark_pos", 2 * nl),
            ("landmark_vel", 2 * nl),
        ]
    }
}

impl<S: Scenario> MultiAgentEnv for ParticleEnv<S> {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.world.clear_motion();
        self.scenario.reset(&mut self.world, &mut self.rng);
        self.steps = 0;
        self.done = false;
        self.metrics.fill(0.0);
        self.observe(obs);
    }

    fn step(&mut self, actions: &[f32], out: StepOut<'_>) -> Result<(), EnvError> {
        if self.done {
            return Err(EnvError::EpisodeOver);
        }
        debug_assert_eq!(actions.len(), self.spec.action_len());
        self.decode_actions(actions)?;
        self.world.step();
        self.scenario.rewards(&self.world, out.rewards);
        self.scenario.add_metrics(&self.world, &mut self.metrics);
        self.steps += 1;
        let truncated = self.steps >= self.max_cycles;
        self.done = truncated;
        out.terminated.fill(false);
        out.truncated.fill(truncated);
        self.observe(out.obs);
        Ok(())
    }

    fn observe(&self, obs: &mut [f32]) {
        for i in 0..self.world.n_agents {
            self.scenario
                .observe(&self.world, i, &mut obs[self.spec.obs_range(i)]);
        }
    }

    fn state(&self, out: &mut [f32]) {
        // mpe2's state(): every agent's observation, concatenated in agent order.
        self.observe(out);
    }

    fn get_state(&self) -> WorldState {
        let w = &self.world;
        let na = w.n_agents;
        let flat =
            |r: std::ops::Range<usize>, v: &[[f64; 2]]| v[r].iter().flatten().copied().collect();
        let mut s = WorldState::default();
        s.insert("agent_pos", flat(0..na, &w.pos));
        s.insert("agent_vel", flat(0..na, &w.vel));
        s.insert("agent_c", w.comm.clone());
        s.insert("landmark_pos", flat(na..w.params.len(), &w.pos));
        s.insert("landmark_vel", flat(na..w.params.len(), &w.vel));
        self.scenario.get_extra(&mut s);
        s
    }

    fn set_state(&mut self, state: &WorldState) -> Result<(), EnvError> {
        let mut allowed: Vec<&str> = self.physics_fields().iter().map(|f| f.0).collect();
        allowed.extend_from_slice(self.scenario.extra_fields());
        state.reject_unknown(&allowed)?;
        let na = self.world.n_agents;
        let mut world = self.world.clone();
        for (key, len) in self.physics_fields() {
            let values = state.get(key, len)?;
            if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
                return Err(EnvError::InvalidState {
                    message: format!("field `{key}` holds {bad}"),
                });
            }
            let pairs = values.chunks_exact(2).map(|c| [c[0], c[1]]);
            match key {
                "agent_pos" => world.pos[..na]
                    .iter_mut()
                    .zip(pairs)
                    .for_each(|(d, s)| *d = s),
                "agent_vel" => world.vel[..na]
                    .iter_mut()
                    .zip(pairs)
                    .for_each(|(d, s)| *d = s),
                "landmark_pos" => world.pos[na..]
                    .iter_mut()
                    .zip(pairs)
                    .for_each(|(d, s)| *d = s),
                "landmark_vel" => world.vel[na..]
                    .iter_mut()
                    .zip(pairs)
                    .for_each(|(d, s)| *d = s),
                _ => world.comm.copy_from_slice(values),
            }
        }
        self.scenario.set_extra(state, &world)?;
        self.world = world;
        self.steps = 0;
        self.done = false;
        self.metrics.fill(0.0);
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut w = SnapshotWriter::new(&self.tag);
        let flat = |v: &[[f64; 2]]| v.iter().flatten().copied().collect::<Vec<f64>>();
        w.f64s(&flat(&self.world.pos));
        w.f64s(&flat(&self.world.vel));
        w.f64s(&self.world.comm);
        w.f64s(&self.scenario.extra_values());
        w.u64(self.steps as u64);
        w.u64(self.done as u64);
        w.f64s(&self.metrics);
        w.rng(&self.rng);
        w.finish()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), EnvError> {
        let mut r = SnapshotReader::new(snapshot, &self.tag)?;
        let n = self.world.params.len();
        let mut pos = vec![0.0; 2 * n];
        let mut vel = vec![0.0; 2 * n];
        let mut comm = vec![0.0; self.world.comm.len()];
        let mut extra = self.scenario.extra_values();
        r.f64s_into(&mut pos)?;
        r.f64s_into(&mut vel)?;
        r.f64s_into(&mut comm)?;
        r.f64s_into(&mut extra)?;
        let steps = r.u64()? as usize;
        let done = r.u64()? != 0;
        let mut metrics = vec![0.0; self.metrics.len()];
        r.f64s_into(&mut metrics)?;
        let rng = r.rng()?;
        r.finish()?;
        for i in 0..n {
            self.world.pos[i] = [pos[2 * i], pos[2 * i + 1]];
            self.world.vel[i] = [vel[2 * i], vel[2 * i + 1]];
        }
        self.world.comm = comm;
        self.scenario.set_extra_values(&extra);
        self.steps = steps;
        self.done = done;
        self.metrics = metrics;
        self.rng = rng;
        Ok(())
    }

    fn render_ascii(&self) -> String {
        render_ascii(&self.world, self.steps)
    }

    fn metric_names(&self) -> &'static [&'static str] {
        self.scenario.metric_names()
    }

    fn metrics(&self, out: &mut [f64]) {
        out.copy_from_slice(&self.metrics);
    }

    fn render_svg(&self) -> Option<String> {
        let types = self.spec.agent_types();
        let colour = |i: usize| {
            types
                .iter()
                .position(|t| *t == self.spec.agents[i].agent_type)
                .unwrap_or(0)
        };
        Some(render_svg(
            &self.world,
            &format!("{}  step {}", self.spec.id, self.steps),
            &colour,
        ))
    }
}

/// The arena [-1.5, 1.5]^2 seen from above: landmarks grey, agents coloured by type, each drawn
/// at its true size with its index.
fn render_svg(world: &World, title: &str, colour: &dyn Fn(usize) -> usize) -> String {
    const PX: f64 = 400.0 / 3.0;
    const PALETTE: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    let to_px = |p: [f64; 2]| ((p[0] + 1.5) * PX, 24.0 + (1.5 - p[1]) * PX);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"424\" \
         font-family=\"DejaVu Sans, Arial, sans-serif\">\n<rect width=\"400\" height=\"424\" \
         fill=\"white\"/>\n<text x=\"4\" y=\"17\" font-size=\"14\">{title}</text>\n\
         <rect x=\"{0}\" y=\"{1}\" width=\"{2}\" height=\"{2}\" fill=\"none\" stroke=\"#bbb\"/>\n",
        0.5 * PX,
        24.0 + 0.5 * PX,
        2.0 * PX
    );
    for (e, &p) in world.pos.iter().enumerate() {
        let (x, y) = to_px(p);
        let r = world.params[e].size * PX;
        if e < world.n_agents {
            let fill = PALETTE[colour(e) % PALETTE.len()];
            s += &format!(
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\" fill=\"{fill}\" fill-opacity=\"0.8\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"white\" text-anchor=\"middle\">{e}</text>\n",
                y + 4.0
            );
        } else {
            s += &format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\" fill=\"#555\"/>\n");
        }
    }
    s += "</svg>\n";
    s
}

/// A coarse top view of the arena [-1.5, 1.5]^2: agents as digits (letters past 9), landmarks
/// as `*`.
fn render_ascii(world: &World, step: usize) -> String {
    const W: usize = 41;
    const H: usize = 21;
    let mut grid = vec![vec!['.'; W]; H];
    let cell = |p: [f64; 2]| -> Option<(usize, usize)> {
        let x = ((p[0] + 1.5) / 3.0 * (W - 1) as f64).round();
        let y = ((1.5 - p[1]) / 3.0 * (H - 1) as f64).round();
        (x >= 0.0 && y >= 0.0 && x < W as f64 && y < H as f64).then_some((y as usize, x as usize))
    };
    for (i, &p) in world.pos.iter().enumerate() {
        let glyph = if i < world.n_agents {
            std::char::from_digit((i % 36) as u32, 36).unwrap_or('?')
        } else {
            '*'
        };
        if let Some((r, c)) = cell(p) {
            grid[r][c] = glyph;
        }
    }
    let mut s = format!("step {step}\n");
    for row in grid {
        s.extend(row);
        s.push('\n');
    }
    s
}

/// Writes `(a - b)` as two `f32`, the reference's relative position cast to its public dtype.
#[inline]
pub(crate) fn put_rel(out: &mut [f32], k: &mut usize, a: [f64; 2], b: [f64; 2]) {
    out[*k] = (a[0] - b[0]) as f32;
    out[*k + 1] = (a[1] - b[1]) as f32;
    *k += 2;
}

/// Writes a pair of `f64` as two `f32`.
#[inline]
pub(crate) fn put2(out: &mut [f32], k: &mut usize, a: [f64; 2]) {
    out[*k] = a[0] as f32;
    out[*k + 1] = a[1] as f32;
    *k += 2;
}

/// Draws a point uniformly in `[low, high)^2`, as numpy's `uniform(low, high, 2)`.
pub(crate) fn uniform2(rng: &mut ChaCha8Rng, low: f64, high: f64) -> [f64; 2] {
    use rand::Rng;
    let mut draw = || low + (high - low) * rng.random::<f64>();
    [draw(), draw()]
}

/// Reads an index field (goal landmark, ...) of a world state, checked against `bound`.
pub(crate) fn get_indices(
    state: &WorldState,
    key: &str,
    len: usize,
    bound: usize,
) -> Result<Vec<usize>, EnvError> {
    state
        .get(key, len)?
        .iter()
        .map(|&v| {
            if v >= 0.0 && v < bound as f64 && v.fract() == 0.0 {
                Ok(v as usize)
            } else {
                Err(EnvError::InvalidState {
                    message: format!("field `{key}` holds {v}, expected an index below {bound}"),
                })
            }
        })
        .collect()
}
