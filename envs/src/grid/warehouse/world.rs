//! The warehouse's rules, as rware 2.0.0's `Warehouse.reset`, `step` and `_make_obs` apply them,
//! in their order (`envs/tests/parity/FORMAT_RWARE.md` spells out each rule).
//!
//! Robots sit on distinct cells, face a [`Direction`] and carry at most one shelf; shelves stand
//! on cells, at most one per cell. A step: every robot's intended cell (FORWARD: the next cell
//! ahead, clamped to the floor; otherwise its own); a robot carrying a shelf into a standing
//! shelf is cancelled to NOOP unless a robot carrying a shelf stands there; [`super::moves`]
//! decides who moves; robots that do not become NOOP. Then in robot order: FORWARD moves (with
//! the carried shelf), LEFT/RIGHT turn, TOGGLE_LOAD picks up the shelf underneath or puts the
//! carried one down (never on a highway). Then each goal, in order, holding a requested shelf
//! delivers it: the shelf is replaced in the request queue by one drawn uniformly from the
//! shelves not requested (`np_random.choice(candidates)`), and the robot there is rewarded.

use super::layout::Layout;
use super::moves::MoveResolver;
use crate::numpy_random::NumpyRng;

/// Number of actions: NOOP, FORWARD, LEFT, RIGHT, TOGGLE_LOAD.
pub const N_ACTIONS: usize = 5;
/// Stay.
pub const NOOP: usize = 0;
/// One cell ahead.
pub const FORWARD: usize = 1;
/// Turn counter-clockwise.
pub const LEFT: usize = 2;
/// Turn clockwise.
pub const RIGHT: usize = 3;
/// Pick up the shelf underneath, or put the carried one down.
pub const TOGGLE_LOAD: usize = 4;

/// Values per cell of a sensor window.
const CELL_CODE: usize = 7;
/// An empty (or off-floor) cell: no robot, direction "up", no shelf.
const EMPTY_CELL: [f32; CELL_CODE] = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];

/// Where a robot faces, with rware's values (`Direction` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Towards row 0.
    Up = 0,
    /// Towards the last row.
    Down = 1,
    /// Towards column 0.
    Left = 2,
    /// Towards the last column.
    Right = 3,
}

impl Direction {
    /// From rware's value.
    pub fn from_index(d: usize) -> Option<Self> {
        [Self::Up, Self::Down, Self::Left, Self::Right]
            .get(d)
            .copied()
    }

    /// rware's `req_direction` for RIGHT (clockwise) or LEFT.
    fn turned(self, clockwise: bool) -> Self {
        match (self, clockwise) {
            (Self::Up, true) | (Self::Down, false) => Self::Right,
            (Self::Right, true) | (Self::Left, false) => Self::Down,
            (Self::Down, true) | (Self::Up, false) => Self::Left,
            (Self::Left, true) | (Self::Right, false) => Self::Up,
        }
    }
}

/// How deliveries are rewarded (rware's `RewardType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardType {
    /// Every robot gets 1 per delivery by anyone.
    #[serde(alias = "GLOBAL")]
    Global,
    /// The delivering robot gets 1 (rware's default for every registered id).
    #[default]
    #[serde(alias = "INDIVIDUAL")]
    Individual,
    /// The delivering robot gets 0.5, and 0.5 more when it next puts a shelf down.
    #[serde(alias = "TWO_STAGE", alias = "twostage")]
    TwoStage,
}

/// One robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Robot {
    /// Column.
    pub x: usize,
    /// Row.
    pub y: usize,
    /// Facing.
    pub dir: Direction,
    /// The carried shelf's index (rware's id minus one).
    pub carrying: Option<usize>,
    /// Delivered since it last put a shelf down (two-stage rewards).
    pub has_delivered: bool,
}

/// The cell ahead of a robot, clamped to a `width x height` floor (rware's `req_location`).
fn ahead(r: &Robot, width: usize, height: usize) -> (usize, usize) {
    match r.dir {
        Direction::Up => (r.x, r.y.saturating_sub(1)),
        Direction::Down => (r.x, (r.y + 1).min(height - 1)),
        Direction::Left => (r.x.saturating_sub(1), r.y),
        Direction::Right => ((r.x + 1).min(width - 1), r.y),
    }
}

/// The rules' settings that do not change the floor.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Observation radius.
    pub sensor_range: usize,
    /// Requested shelves at any time.
    pub request_queue_size: usize,
    /// How deliveries pay.
    pub reward_type: RewardType,
    /// Steps without a delivery that end an episode (`None` or 0: no limit).
    pub max_inactivity_steps: Option<usize>,
    /// Steps that end an episode.
    pub max_steps: usize,
    /// Own coordinates divided by the floor's size minus one.
    pub normalised_coordinates: bool,
}

/// The whole state of a warehouse and the buffers its step uses.
#[derive(Debug, Clone)]
pub struct Warehouse {
    /// The floor.
    pub layout: Layout,
    /// The settings.
    pub rules: Rules,
    /// Every robot, in rware's order (robot `i` has id `i + 1`).
    pub robots: Vec<Robot>,
    /// Every shelf's `(x, y)`.
    pub shelves: Vec<(usize, usize)>,
    /// The requested shelves, in queue order.
    pub request_queue: Vec<usize>,
    /// Steps taken in this episode.
    pub steps: usize,
    /// Steps since the last delivery.
    pub inactive_steps: usize,
    /// Deliveries in this episode.
    pub deliveries: usize,
    /// The generator, numpy's, drawn in rware's order.
    pub rng: NumpyRng,
    requested: Vec<bool>,
    robot_at: Vec<u16>,
    shelf_at: Vec<u32>,
    /// What each cell shows a sensor (7 values), on the floor padded by `sensor_range` empty
    /// cells on every side: a window is then `2 s + 1` contiguous runs.
    sensor: Vec<f32>,
    /// Width of the padded floor.
    sensor_width: usize,
    start: Vec<usize>,
    target: Vec<usize>,
    /// Where each robot stood before the step, and whether what sensors see of it changed.
    before: Vec<(usize, usize)>,
    changed: Vec<bool>,
    intent: Vec<usize>,
    moves: Vec<bool>,
    resolver: MoveResolver,
}

impl Warehouse {
    /// A warehouse with `robots` robots, all at the origin until the first reset.
    pub fn new(layout: Layout, rules: Rules, robots: usize) -> Self {
        let cells = layout.cells();
        let n_shelves = layout.shelf_home.len();
        let robot = Robot {
            x: 0,
            y: 0,
            dir: Direction::Up,
            carrying: None,
            has_delivered: false,
        };
        let pad = rules.sensor_range;
        let sensor_width = layout.width + 2 * pad;
        let sensor = EMPTY_CELL.repeat(sensor_width * (layout.height + 2 * pad));
        Self {
            sensor,
            sensor_width,
            shelves: layout.shelf_home.clone(),
            request_queue: vec![0; rules.request_queue_size],
            requested: vec![false; n_shelves],
            robot_at: vec![0; cells],
            shelf_at: vec![0; cells],
            robots: vec![robot; robots],
            steps: 0,
            inactive_steps: 0,
            deliveries: 0,
            rng: NumpyRng::from_seed(0),
            start: vec![0; robots],
            target: vec![0; robots],
            before: vec![(0, 0); robots],
            changed: vec![false; robots],
            intent: vec![0; robots],
            moves: vec![false; robots],
            resolver: MoveResolver::new(robots, cells),
            layout,
            rules,
        }
    }

    /// Number of robots.
    pub fn n_robots(&self) -> usize {
        self.robots.len()
    }

    /// Whether shelf `k` is requested.
    pub fn is_requested(&self, k: usize) -> bool {
        self.requested[k]
    }

    /// The robot on cell `(x, y)`, if any.
    pub fn robot_at(&self, x: usize, y: usize) -> Option<usize> {
        usize::from(self.robot_at[self.layout.cell(x, y)]).checked_sub(1)
    }

    /// The shelf on cell `(x, y)` (standing or carried), if any.
    pub fn shelf_at(&self, x: usize, y: usize) -> Option<usize> {
        (self.shelf_at[self.layout.cell(x, y)] as usize).checked_sub(1)
    }

    /// rware's `reset` after seeding: shelves home, robots on `choice(H*W, n, replace=False)`
    /// cells facing `choice(Direction, n)`, then the queue `choice(shelves, R, replace=False)`.
    pub fn reset(&mut self) {
        let n = self.n_robots();
        self.shelves.copy_from_slice(&self.layout.shelf_home);
        self.rng
            .choice_without_replacement(self.layout.cells(), &mut self.start);
        for i in 0..n {
            let dir = Direction::from_index(self.rng.integers(4)).expect("4 directions");
            let cell = self.start[i];
            self.robots[i] = Robot {
                x: cell % self.layout.width,
                y: cell / self.layout.width,
                dir,
                carrying: None,
                has_delivered: false,
            };
        }
        let n_shelves = self.shelves.len();
        self.rng
            .choice_without_replacement(n_shelves, &mut self.request_queue);
        self.steps = 0;
        self.inactive_steps = 0;
        self.deliveries = 0;
        self.recalc();
    }

    /// Rebuilds the robot and shelf layers and the request flags from the state, as rware's
    /// `_recalc_grid` (later ids overwrite earlier ones on a shared cell).
    pub fn recalc(&mut self) {
        self.robot_at.fill(0);
        self.shelf_at.fill(0);
        for (k, &(x, y)) in self.shelves.iter().enumerate() {
            self.shelf_at[y * self.layout.width + x] = k as u32 + 1;
        }
        for (i, r) in self.robots.iter().enumerate() {
            self.robot_at[r.y * self.layout.width + r.x] = i as u16 + 1;
        }
        self.requested.fill(false);
        for &k in &self.request_queue {
            self.requested[k] = true;
        }
        for y in 0..self.layout.height {
            for x in 0..self.layout.width {
                self.code_cell(x, y);
            }
        }
    }

    /// Writes what cell `cell` shows a sensor: `has robot, its direction one-hot` (none: `0,
    /// 1, 0, 0, 0`), `has shelf, requested`.
    fn code_cell(&mut self, x: usize, y: usize) {
        let cell = y * self.layout.width + x;
        let pad = self.rules.sensor_range;
        let at = ((y + pad) * self.sensor_width + x + pad) * CELL_CODE;
        let code = &mut self.sensor[at..at + CELL_CODE];
        code.copy_from_slice(&EMPTY_CELL);
        if let Some(k) = usize::from(self.robot_at[cell]).checked_sub(1) {
            code[0] = 1.0;
            code[1] = 0.0;
            code[1 + self.robots[k].dir as usize] = 1.0;
        }
        if let Some(k) = (self.shelf_at[cell] as usize).checked_sub(1) {
            code[5] = 1.0;
            code[6] = f32::from(u8::from(self.requested[k]));
        }
    }

    /// One step with actions in `0..5` (checked by the caller). Writes each robot's reward and
    /// returns whether the episode is over (`max_steps` or `max_inactivity_steps` reached).
    pub fn step(&mut self, actions: &[usize], rewards: &mut [f64]) -> bool {
        let n = self.n_robots();
        let w = self.layout.width;

        // ── intended moves ──
        for i in 0..n {
            let r = self.robots[i];
            let start = r.y * w + r.x;
            let (tx, ty) = if actions[i] == FORWARD {
                ahead(&r, w, self.layout.height)
            } else {
                (r.x, r.y)
            };
            let mut target = ty * w + tx;
            self.intent[i] = actions[i];
            if r.carrying.is_some() && target != start && self.shelf_at[target] != 0 {
                let carrier_there = usize::from(self.robot_at[target])
                    .checked_sub(1)
                    .is_some_and(|k| self.robots[k].carrying.is_some());
                if !carrier_there {
                    // A carried shelf cannot pass a standing one: rware cancels the move.
                    self.intent[i] = NOOP;
                    target = start;
                }
            }
            self.start[i] = start;
            self.target[i] = target;
            self.before[i] = (r.x, r.y);
        }
        self.resolver.resolve(
            w,
            &self.start,
            &self.target,
            &self.robot_at,
            &mut self.moves,
        );

        // ── actions, in robot order, against the grid as it was ──
        rewards.fill(0.0);
        for i in 0..n {
            let action = if self.moves[i] { self.intent[i] } else { NOOP };
            let highway = self.layout.highway[self.start[i]];
            let r = &mut self.robots[i];
            self.changed[i] = false;
            match action {
                FORWARD => {
                    let (x, y) = ahead(r, w, self.layout.height);
                    self.changed[i] = (x, y) != (r.x, r.y);
                    (r.x, r.y) = (x, y);
                    if let Some(k) = r.carrying {
                        self.shelves[k] = (r.x, r.y);
                    }
                }
                LEFT | RIGHT => {
                    r.dir = r.dir.turned(action == RIGHT);
                    self.changed[i] = true;
                }
                TOGGLE_LOAD => match r.carrying {
                    None => {
                        r.carrying = (self.shelf_at[self.start[i]] as usize).checked_sub(1);
                    }
                    Some(_) if !highway => {
                        r.carrying = None;
                        if r.has_delivered && self.rules.reward_type == RewardType::TwoStage {
                            rewards[i] += 0.5;
                        }
                        r.has_delivered = false;
                    }
                    Some(_) => {}
                },
                _ => {}
            }
        }
        // The layers follow the robots that moved and the shelves they carried (no two robots
        // or shelves ever share a cell, so this equals rware's full `_recalc_grid`).
        for i in 0..n {
            if self.moves[i] && self.intent[i] == FORWARD && self.start[i] != self.target[i] {
                self.robot_at[self.start[i]] = 0;
                if self.robots[i].carrying.is_some() {
                    self.shelf_at[self.start[i]] = 0;
                }
            }
        }
        for i in 0..n {
            if self.moves[i] && self.intent[i] == FORWARD && self.start[i] != self.target[i] {
                self.robot_at[self.target[i]] = i as u16 + 1;
                if let Some(k) = self.robots[i].carrying {
                    self.shelf_at[self.target[i]] = k as u32 + 1;
                }
            }
        }

        // ── deliveries, goal by goal ──
        let mut delivered = false;
        for g in 0..self.layout.goals.len() {
            let (gx, gy) = self.layout.goals[g];
            let cell = gy * w + gx;
            let Some(shelf) = (self.shelf_at[cell] as usize).checked_sub(1) else {
                continue;
            };
            if !self.requested[shelf] {
                continue;
            }
            delivered = true;
            self.deliveries += 1;
            // np_random.choice([s for s in shelfs if s not in request_queue]).
            let candidates = self.shelves.len() - self.request_queue.len();
            let mut pick = self.rng.integers(candidates);
            let new = (0..self.shelves.len())
                .find(|&k| {
                    let free = !self.requested[k];
                    if free && pick == 0 {
                        return true;
                    }
                    pick -= usize::from(free);
                    false
                })
                .expect("a shelf outside the queue");
            let slot = self
                .request_queue
                .iter()
                .position(|&k| k == shelf)
                .expect("requested shelves are queued");
            self.request_queue[slot] = new;
            self.requested[shelf] = false;
            self.requested[new] = true;
            self.code_cell(gx, gy);
            let (nx, ny) = self.shelves[new];
            self.code_cell(nx, ny);
            // A shelf on a goal is always carried (goals are highways), but rware indexes with
            // `agent_id - 1` and would wrap to the last robot: keep that.
            let robot = (usize::from(self.robot_at[cell]) + n - 1) % n;
            match self.rules.reward_type {
                RewardType::Global => rewards.iter_mut().for_each(|r| *r += 1.0),
                RewardType::Individual => rewards[robot] += 1.0,
                RewardType::TwoStage => {
                    self.robots[robot].has_delivered = true;
                    rewards[robot] += 0.5;
                }
            }
        }
        // What sensors see changed only where robots moved or turned, and at the shelves whose
        // request changed (done above).
        for i in 0..n {
            if self.changed[i] {
                let ((x0, y0), r) = (self.before[i], self.robots[i]);
                self.code_cell(x0, y0);
                self.code_cell(r.x, r.y);
            }
        }
        if delivered {
            self.inactive_steps = 0;
        } else {
            self.inactive_steps += 1;
        }
        self.steps += 1;
        let inactive = self
            .rules
            .max_inactivity_steps
            .is_some_and(|m| m > 0 && self.inactive_steps >= m);
        inactive || self.steps >= self.rules.max_steps
    }

    /// Length of one robot's observation: 8 own values, 7 per cell of its window.
    pub fn obs_dim(sensor_range: usize) -> usize {
        8 + 7 * (2 * sensor_range + 1).pow(2)
    }

    /// Robot `i`'s flattened observation (rware's `_get_default_obs` with `fast_obs`):
    /// `x, y, carrying, direction one-hot (4), on highway`, then for each cell of the
    /// `(2 s + 1)^2` window in row-major order: `has robot, its direction one-hot` (an empty or
    /// off-floor cell writes `0, 1, 0, 0, 0`: "up"), `has shelf, shelf requested`. The robot's
    /// own cell is the window's centre, carried shelves count, and off-floor cells are empty.
    pub fn observe(&self, i: usize, out: &mut [f32]) {
        let r = &self.robots[i];
        let (h, w) = (self.layout.height, self.layout.width);
        if self.rules.normalised_coordinates {
            out[0] = (r.x as f64 / (w - 1) as f64) as f32;
            out[1] = (r.y as f64 / (h - 1) as f64) as f32;
        } else {
            out[0] = r.x as f32;
            out[1] = r.y as f32;
        }
        out[2] = f32::from(u8::from(r.carrying.is_some()));
        out[3..7].fill(0.0);
        out[3 + r.dir as usize] = 1.0;
        out[7] = f32::from(u8::from(self.layout.is_highway(r.x, r.y)));
        // The window's rows are contiguous runs of the padded sensor grid.
        let side = 2 * self.rules.sensor_range + 1;
        let run = side * CELL_CODE;
        for dy in 0..side {
            let at = ((r.y + dy) * self.sensor_width + r.x) * CELL_CODE;
            out[8 + dy * run..8 + (dy + 1) * run].copy_from_slice(&self.sensor[at..at + run]);
        }
    }

    /// Length of the global state.
    pub fn state_dim(&self) -> usize {
        8 * self.n_robots() + 2 * self.rules.request_queue_size + self.layout.cells()
    }

    /// The global state for a centralized critic: per robot `x, y, direction one-hot (4),
    /// carrying, carrying a requested shelf`; per queue slot the requested shelf's `x, y`; then
    /// one value per cell, 1 where a shelf is (standing or carried).
    pub fn global_state(&self, out: &mut [f32]) {
        let mut o = 0;
        for r in &self.robots {
            let slot = &mut out[o..o + 8];
            slot.fill(0.0);
            slot[0] = r.x as f32;
            slot[1] = r.y as f32;
            slot[2 + r.dir as usize] = 1.0;
            if let Some(k) = r.carrying {
                slot[6] = 1.0;
                slot[7] = f32::from(u8::from(self.requested[k]));
            }
            o += 8;
        }
        for &k in &self.request_queue {
            let (x, y) = self.shelves[k];
            out[o] = x as f32;
            out[o + 1] = y as f32;
            o += 2;
        }
        for (dst, &s) in out[o..].iter_mut().zip(&self.shelf_at) {
            *dst = f32::from(u8::from(s != 0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn tiny(robots: usize) -> Warehouse {
        let rules = Rules {
            sensor_range: 1,
            request_queue_size: robots,
            reward_type: RewardType::Individual,
            max_inactivity_steps: None,
            max_steps: 500,
            normalised_coordinates: false,
        };
        Warehouse::new(Layout::from_params(3, 1, 8).expect("tiny"), rules, robots)
    }

    /// The step updates the robot and shelf layers incrementally; rware recomputes them from
    /// scratch. On crowded floors with random loading they must stay equal.
    #[test]
    fn incremental_layers_equal_rwares_recalc() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for robots in [2, 8, 16] {
            let mut w = tiny(robots);
            w.rng = NumpyRng::from_seed(robots as u64);
            w.reset();
            let mut rewards = vec![0.0; robots];
            let mut actions = vec![0; robots];
            for _ in 0..2000 {
                for a in actions.iter_mut() {
                    *a = rng.random_range(0..N_ACTIONS);
                }
                if w.step(&actions, &mut rewards) {
                    w.reset();
                }
                let mut fresh = w.clone();
                fresh.recalc();
                assert_eq!(fresh.robot_at, w.robot_at);
                assert_eq!(fresh.shelf_at, w.shelf_at);
                assert_eq!(fresh.requested, w.requested);
                assert_eq!(fresh.sensor, w.sensor);
            }
        }
    }

    /// rware's `_get_default_obs` cell by cell, straight from the layers (what the padded
    /// sensor grid must reproduce).
    fn observe_directly(w: &Warehouse, i: usize, out: &mut [f32]) {
        let r = &w.robots[i];
        let (h, wd) = (w.layout.height as isize, w.layout.width as isize);
        let s = w.rules.sensor_range as isize;
        let mut o = 8;
        for y in r.y as isize - s..=r.y as isize + s {
            for x in r.x as isize - s..=r.x as isize + s {
                let slot = &mut out[o..o + 7];
                slot.copy_from_slice(&EMPTY_CELL);
                if (0..wd).contains(&x) && (0..h).contains(&y) {
                    let (x, y) = (x as usize, y as usize);
                    if let Some(k) = w.robot_at(x, y) {
                        slot[0] = 1.0;
                        slot[1] = 0.0;
                        slot[1 + w.robots[k].dir as usize] = 1.0;
                    }
                    if let Some(k) = w.shelf_at(x, y) {
                        slot[5] = 1.0;
                        slot[6] = f32::from(u8::from(w.is_requested(k)));
                    }
                }
                o += 7;
            }
        }
    }

    #[test]
    fn the_sensor_grid_shows_what_the_layers_hold() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        for (robots, range) in [(2, 0), (4, 1), (8, 2), (3, 3)] {
            let mut w = tiny(robots);
            w = Warehouse::new(
                w.layout.clone(),
                Rules {
                    sensor_range: range,
                    ..w.rules.clone()
                },
                robots,
            );
            w.rng = NumpyRng::from_seed(range as u64);
            w.reset();
            let dim = Warehouse::obs_dim(range);
            let (mut fast, mut direct) = (vec![0.0; dim], vec![0.0; dim]);
            let mut rewards = vec![0.0; robots];
            let mut actions = vec![0; robots];
            for _ in 0..1500 {
                for a in actions.iter_mut() {
                    *a = rng.random_range(0..N_ACTIONS);
                }
                if w.step(&actions, &mut rewards) {
                    w.reset();
                }
                for i in 0..robots {
                    w.observe(i, &mut fast);
                    observe_directly(&w, i, &mut direct);
                    assert_eq!(fast[8..], direct[8..]);
                }
            }
        }
    }

    #[test]
    fn turning_follows_rwares_wraplist() {
        use Direction::*;
        for (d, right, left) in [
            (Up, Right, Left),
            (Right, Down, Up),
            (Down, Left, Right),
            (Left, Up, Down),
        ] {
            assert_eq!((d.turned(true), d.turned(false)), (right, left));
        }
    }

    #[test]
    fn an_empty_cell_reads_as_facing_up_and_a_carried_shelf_is_seen_underneath() {
        let mut w = tiny(1);
        w.reset();
        w.robots[0] = Robot {
            x: 1,
            y: 1,
            dir: Direction::Left,
            carrying: None,
            has_delivered: false,
        };
        w.recalc();
        w.step(&[TOGGLE_LOAD], &mut [0.0]);
        assert_eq!(w.robots[0].carrying, Some(0));
        let mut obs = vec![0.0; Warehouse::obs_dim(1)];
        w.observe(0, &mut obs);
        assert_eq!(obs[..8], [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        // Top-left cell of the window, (0, 0): a highway, empty: 0, "up", no shelf.
        assert_eq!(obs[8..15], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        // The centre: the robot itself facing left, over its carried shelf.
        let centre = 8 + 7 * 4;
        assert_eq!(obs[centre..centre + 6], [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
    }
}
