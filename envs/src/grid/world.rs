//! The Level-Based Foraging rules of lbforaging 2.0.0, on a plain grid (see
//! `tests/parity/FORMAT_LBF.md`, which spells out every rule and its order).
//!
//! Positions are `(row, col)`, row 0 at the top. Actions: NONE 0, NORTH 1 (row - 1), SOUTH 2,
//! WEST 3 (col - 1), EAST 4, LOAD 5. An action that is not valid becomes NONE. Moves are
//! simultaneous: every agent claims its target cell (its own cell for NONE and LOAD), a cell
//! claimed by two or more agents moves none of them, and the rest move. A blocked agent does not
//! re-claim its own cell, so a third agent can move onto it: agents may overlap, as in the
//! reference. Loaders then load the food they are next to, together with every other loader
//! next to the same food; the load succeeds when their levels add up to the food's level.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Number of actions of every agent.
pub const N_ACTIONS: usize = 6;
/// The LOAD action.
pub const LOAD: usize = 5;

/// The grid, its food and its agents.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Food level per cell, row-major (0: no food). Crate-private: the food-left counter and
    /// valid actions derive from it.
    pub(crate) field: Vec<u32>,
    /// Every agent's `(row, col)`.
    pub pos: Vec<(usize, usize)>,
    /// Every agent's level.
    pub level: Vec<u32>,
    /// The foods of the episode in row-major order at its start, `(row, col, level)`; the global
    /// state lists them in this order, eaten ones as absent.
    pub foods: Vec<(usize, usize, u32)>,
    /// Total food level at reset: the reward normaliser (constant over the episode).
    pub food_spawned: u32,
    /// Total food level left.
    left: u32,
    /// Steps taken in this episode.
    pub step: usize,
    valid: Vec<[bool; N_ACTIONS]>,
    claims: Vec<(usize, usize)>,
    loading: Vec<bool>,
}

/// How a reset places agents and food (lbforaging's constructor arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Lowest agent level.
    pub min_player_level: u32,
    /// Highest agent level.
    pub max_player_level: u32,
    /// Lowest food level.
    pub min_food_level: u32,
    /// Highest food level; `None`: the sum of the three lowest agent levels.
    pub max_food_level: Option<u32>,
    /// Foods to place (fewer may fit).
    pub max_num_food: usize,
    /// Every food at the highest level (every food needs several agents).
    pub force_coop: bool,
}

impl Grid {
    /// An empty grid with `players` agents.
    pub fn new(rows: usize, cols: usize, players: usize) -> Self {
        Self {
            rows,
            cols,
            field: vec![0; rows * cols],
            pos: vec![(0, 0); players],
            level: vec![1; players],
            foods: Vec::new(),
            food_spawned: 0,
            left: 0,
            step: 0,
            valid: vec![[true; N_ACTIONS]; players],
            claims: vec![(0, 0); players],
            loading: vec![false; players],
        }
    }

    /// Number of agents.
    pub fn n_agents(&self) -> usize {
        self.pos.len()
    }

    /// Food level at `(r, c)`.
    #[inline]
    pub fn food(&self, r: usize, c: usize) -> u32 {
        self.field[r * self.cols + c]
    }

    /// Total food level left.
    pub fn food_left(&self) -> u32 {
        self.left
    }

    /// Places agents and food as lbforaging's reset does, with our generator. Unlike the
    /// reference, positions from the previous episode never block the new one: a reset with a
    /// seed gives the same layout on a used grid as on a fresh one.
    pub fn reset(&mut self, layout: &Layout, rng: &mut ChaCha8Rng) {
        self.field.fill(0);
        let n = self.n_agents();
        let mut placed = 0;
        for i in 0..n {
            for _ in 0..1000 {
                let r = rng.random_range(0..self.rows);
                let c = rng.random_range(0..self.cols);
                if !self.pos[..placed].contains(&(r, c)) {
                    self.pos[i] = (r, c);
                    self.level[i] =
                        rng.random_range(layout.min_player_level..=layout.max_player_level);
                    placed += 1;
                    break;
                }
            }
        }
        let mut sorted = self.level.clone();
        sorted.sort_unstable();
        let hi = layout
            .max_food_level
            .unwrap_or_else(|| sorted.iter().take(3).sum());
        let lo = if layout.force_coop {
            hi
        } else {
            layout.min_food_level
        };
        let (mut count, mut attempts) = (0, 0);
        while count < layout.max_num_food && attempts < 1000 {
            attempts += 1;
            if self.rows < 3 || self.cols < 3 {
                break;
            }
            let r = rng.random_range(1..self.rows - 1);
            let c = rng.random_range(1..self.cols - 1);
            if self.food_near(r, c) || self.pos.contains(&(r, c)) {
                continue;
            }
            self.field[r * self.cols + c] = if lo == hi {
                lo
            } else {
                rng.random_range(lo..=hi)
            };
            count += 1;
        }
        self.start_episode();
    }

    /// Whether a food lies in the 3x3 box around `(r, c)` or within 2 cells along its row or
    /// column (the reference's spacing rule, which keeps foods 3 or more cells apart).
    fn food_near(&self, r: usize, c: usize) -> bool {
        let box_rows = r.saturating_sub(1)..(r + 2).min(self.rows);
        for rr in box_rows {
            for cc in c.saturating_sub(1)..(c + 2).min(self.cols) {
                if self.food(rr, cc) > 0 {
                    return true;
                }
            }
        }
        let col_hit = (r.saturating_sub(2)..(r + 3).min(self.rows)).any(|rr| self.food(rr, c) > 0);
        let row_hit = (c.saturating_sub(2)..(c + 3).min(self.cols)).any(|cc| self.food(r, cc) > 0);
        col_hit || row_hit
    }

    /// Recomputes what derives from the field and positions (food left, valid actions), for a
    /// restored snapshot.
    pub fn refresh_derived(&mut self) {
        self.left = self.field.iter().sum();
        self.refresh_valid();
    }

    /// Records the episode's foods and normaliser, zeroes the counter and refreshes the valid
    /// actions: the end of a reset or of loading a state.
    pub fn start_episode(&mut self) {
        self.foods.clear();
        for r in 0..self.rows {
            for c in 0..self.cols {
                if self.food(r, c) > 0 {
                    self.foods.push((r, c, self.food(r, c)));
                }
            }
        }
        self.left = self.field.iter().sum();
        self.food_spawned = self.left;
        self.step = 0;
        self.refresh_valid();
    }

    /// Sum of the food in the 4 neighbours, with the reference's clamped indices (at a border
    /// the clamped index is the agent's own cell).
    fn adjacent_food(&self, r: usize, c: usize) -> u32 {
        self.food(r.saturating_sub(1), c)
            + self.food((r + 1).min(self.rows - 1), c)
            + self.food(r, c.saturating_sub(1))
            + self.food(r, (c + 1).min(self.cols - 1))
    }

    /// Recomputes which actions each agent may take. Other agents never make a move invalid.
    pub(crate) fn refresh_valid(&mut self) {
        for i in 0..self.n_agents() {
            let (r, c) = self.pos[i];
            self.valid[i] = [
                true,
                r > 0 && self.food(r - 1, c) == 0,
                r + 1 < self.rows && self.food(r + 1, c) == 0,
                c > 0 && self.food(r, c - 1) == 0,
                c + 1 < self.cols && self.food(r, c + 1) == 0,
                self.adjacent_food(r, c) > 0,
            ];
        }
    }

    /// The valid actions of agent `i` (its action mask).
    pub fn valid(&self, i: usize) -> &[bool; N_ACTIONS] {
        &self.valid[i]
    }

    /// The food a loader at `(r, c)` loads: the first of N, S, W, E holding food. The reference
    /// checks N only below row 1 and W only right of column 1 (harmless: food is never on
    /// row 0 or column 0).
    fn adjacent_food_location(&self, r: usize, c: usize) -> Option<(usize, usize)> {
        if r > 1 && self.food(r - 1, c) > 0 {
            Some((r - 1, c))
        } else if r + 1 < self.rows && self.food(r + 1, c) > 0 {
            Some((r + 1, c))
        } else if c > 1 && self.food(r, c - 1) > 0 {
            Some((r, c - 1))
        } else if c + 1 < self.cols && self.food(r, c + 1) > 0 {
            Some((r, c + 1))
        } else {
            None
        }
    }

    /// One step of the rules. `actions` are indices in `0..6` (checked by the caller); invalid
    /// ones become NONE. Writes each agent's reward share `level * food / (L * T)` (or
    /// `level * food` without normalisation) into `rewards`, minus `penalty` on a failed load.
    pub fn step(&mut self, actions: &[usize], penalty: f64, normalize: bool, rewards: &mut [f64]) {
        let n = self.n_agents();
        self.step += 1;
        rewards.fill(0.0);

        // Claims: the target cell of a move, the agent's own cell otherwise.
        for i in 0..n {
            let a = if self.valid[i][actions[i]] {
                actions[i]
            } else {
                0
            };
            let (r, c) = self.pos[i];
            self.claims[i] = match a {
                1 => (r - 1, c),
                2 => (r + 1, c),
                3 => (r, c - 1),
                4 => (r, c + 1),
                _ => (r, c),
            };
            self.loading[i] = a == LOAD;
        }
        for i in 0..n {
            let target = self.claims[i];
            if self.claims.iter().filter(|&&t| t == target).count() == 1 {
                self.pos[i] = target;
            }
        }

        // Loads, in agent order: the groups partition the loaders by food, so the order does
        // not change the outcome (the reference pops them from a set).
        for i in 0..n {
            if !self.loading[i] {
                continue;
            }
            let (r, c) = self.pos[i];
            let Some((fr, fc)) = self.adjacent_food_location(r, c) else {
                self.loading[i] = false;
                continue;
            };
            let food = self.food(fr, fc);
            let adjacent = |p: (usize, usize)| {
                (p.0.abs_diff(fr) == 1 && p.1 == fc) || (p.1.abs_diff(fc) == 1 && p.0 == fr)
            };
            let group: u64 = (0..n)
                .filter(|&j| (j == i || self.loading[j]) && adjacent(self.pos[j]))
                .fold(0, |acc, j| acc | (1 << j));
            let in_group = |j: usize| group & (1 << j) != 0;
            let total: u32 = (0..n).filter(|&j| in_group(j)).map(|j| self.level[j]).sum();
            for j in (0..n).filter(|&j| in_group(j)) {
                self.loading[j] = false;
            }
            if total < food {
                for j in (0..n).filter(|&j| in_group(j)) {
                    rewards[j] -= penalty;
                }
                continue;
            }
            for j in (0..n).filter(|&j| in_group(j)) {
                let share = f64::from(self.level[j] * food);
                rewards[j] = if normalize {
                    share / f64::from(total * self.food_spawned)
                } else {
                    share
                };
            }
            self.field[fr * self.cols + fc] = 0;
            self.left -= food;
        }
        self.refresh_valid();
    }

    /// Writes agent `i`'s observation as lbforaging does: `max_num_food` food triples
    /// `(row, col, level)` then one triple per agent slot (self first, then the others in index
    /// order), coordinates relative to the agent's clipped window corner, unused slots
    /// `(-1, -1, 0)`. `extra(j)` appends values per agent slot (team flags).
    pub fn observe(
        &self,
        i: usize,
        sight: usize,
        max_num_food: usize,
        agent_width: usize,
        extra: &dyn Fn(usize, &mut [f32]),
        out: &mut [f32],
    ) {
        let (r, c) = self.pos[i];
        let (or, oc) = (r - r.min(sight), c - c.min(sight));
        let mut k = 0;
        // The episode's foods are listed in row-major order, the reference's np.nonzero order
        // over the (clipped) window; scanning them beats scanning the window's cells.
        let (end_r, end_c) = (
            (r + sight + 1).min(self.rows),
            (c + sight + 1).min(self.cols),
        );
        for &(fr, fc, _) in &self.foods {
            let f = self.food(fr, fc);
            if f > 0 && (or..end_r).contains(&fr) && (oc..end_c).contains(&fc) && k < max_num_food {
                out[3 * k..3 * k + 3].copy_from_slice(&[
                    (fr - or) as f32,
                    (fc - oc) as f32,
                    f as f32,
                ]);
                k += 1;
            }
        }
        for slot in k..max_num_food {
            out[3 * slot..3 * slot + 3].copy_from_slice(&[-1.0, -1.0, 0.0]);
        }
        let base = 3 * max_num_food;
        let with_level = agent_width >= 3;
        let mut s = 0;
        // Visibility is the reference's unclipped test: 0 <= p - origin <= 2 sight.
        let visible = |p: (usize, usize)| {
            p.0 >= or && p.1 >= oc && p.0 - or <= 2 * sight && p.1 - oc <= 2 * sight
        };
        for j in std::iter::once(i).chain((0..self.n_agents()).filter(|&j| j != i)) {
            let p = self.pos[j];
            if !visible(p) {
                continue;
            }
            let slot = &mut out[base + agent_width * s..base + agent_width * (s + 1)];
            slot[0] = (p.0 - or) as f32;
            slot[1] = (p.1 - oc) as f32;
            let mut at = 2;
            if with_level {
                slot[2] = self.level[j] as f32;
                at = 3;
            }
            extra(j, &mut slot[at..]);
            s += 1;
        }
        for slot in s..self.n_agents() {
            let slot = &mut out[base + agent_width * slot..base + agent_width * (slot + 1)];
            slot.fill(0.0);
            slot[0] = -1.0;
            slot[1] = -1.0;
        }
    }

    /// The terminal view: `.` empty, food as its level, agents as letters (`A` = agent 0;
    /// lower case when two agents share a cell), then a legend with levels.
    pub fn render_ascii(&self) -> String {
        let mut s = format!("step {}  food left {}\n", self.step, self.food_left());
        for r in 0..self.rows {
            for c in 0..self.cols {
                let here: Vec<usize> = (0..self.n_agents())
                    .filter(|&j| self.pos[j] == (r, c))
                    .collect();
                let ch = match here.as_slice() {
                    [] if self.food(r, c) > 0 => {
                        std::char::from_digit(self.food(r, c).min(35), 36).unwrap_or('#')
                    }
                    [] => '.',
                    [j] => (b'A' + (*j % 26) as u8) as char,
                    [j, ..] => (b'a' + (*j % 26) as u8) as char,
                };
                s.push(ch);
                s.push(' ');
            }
            s.push('\n');
        }
        let legend: Vec<String> = (0..self.n_agents())
            .map(|j| format!("{}=L{}", (b'A' + (j % 26) as u8) as char, self.level[j]))
            .collect();
        s.push_str(&legend.join(" "));
        s.push('\n');
        s
    }
}
