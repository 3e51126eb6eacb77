//! A scripted Level-Based Foraging policy that solves the cooperative tasks: every agent heads
//! for the same food (the one nearest to the group, ties broken by the caller's seeded
//! generator), waits next to it with LOAD until the others arrive, then the group moves on.
//!
//! Agents that each go for their own nearest food deadlock in `-coop` tasks, where every food
//! needs all of them. The policy reads only the world state, so it also serves as a baseline
//! for any environment built on the foraging rules.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::world::{Grid, LOAD};

/// The group policy. It remembers its target food until that food is loaded, so that agents
/// do not turn back and forth between foods at equal cost.
#[derive(Debug, Clone, Default)]
pub struct GroupPolicy {
    target: Option<(usize, usize)>,
}

impl GroupPolicy {
    /// Writes one joint action for `grid` into `out` (one action index per agent).
    pub fn act(&mut self, grid: &Grid, rng: &mut ChaCha8Rng, out: &mut [f32]) {
        let alive = |t: (usize, usize)| grid.food(t.0, t.1) > 0;
        if !self.target.is_some_and(alive) {
            self.target = pick_target(grid, rng);
        }
        match self.target {
            Some(t) => act_on(grid, t, rng, out),
            None => out[..grid.n_agents()].fill(0.0),
        }
    }
}

/// The food with the least total distance to the agents, ties broken by `rng`.
fn pick_target(grid: &Grid, rng: &mut ChaCha8Rng) -> Option<(usize, usize)> {
    let foods: Vec<(usize, usize)> = (0..grid.rows)
        .flat_map(|r| (0..grid.cols).map(move |c| (r, c)))
        .filter(|&(r, c)| grid.food(r, c) > 0)
        .collect();
    if foods.is_empty() {
        return None;
    }
    let cost = |f: (usize, usize)| -> usize {
        grid.pos
            .iter()
            .map(|&(r, c)| r.abs_diff(f.0) + c.abs_diff(f.1))
            .sum()
    };
    let best = foods.iter().map(|&f| cost(f)).min().unwrap_or(0);
    let ties: Vec<(usize, usize)> = foods.into_iter().filter(|&f| cost(f) == best).collect();
    Some(ties[rng.random_range(0..ties.len())])
}

fn act_on(grid: &Grid, target: (usize, usize), rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let n = grid.n_agents();
    // The free cells next to the food; each agent takes the nearest one nobody took yet.
    let (fr, fc) = target;
    let mut spots: Vec<(usize, usize)> = [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)]
        .iter()
        .filter_map(|&(dr, dc)| {
            let (r, c) = (fr as i64 + dr, fc as i64 + dc);
            let inside = r >= 0 && c >= 0 && (r as usize) < grid.rows && (c as usize) < grid.cols;
            (inside && grid.food(r as usize, c as usize) == 0).then_some((r as usize, c as usize))
        })
        .collect();
    let adjacent = |i: usize| grid.pos[i].0.abs_diff(fr) + grid.pos[i].1.abs_diff(fc) == 1;
    spots.retain(|s| !(0..n).any(|i| adjacent(i) && grid.pos[i] == *s));
    for i in 0..n {
        let (r, c) = grid.pos[i];
        let action = if adjacent(i) {
            LOAD
        } else if spots.is_empty() {
            0
        } else {
            let k = (0..spots.len())
                .min_by_key(|&k| spots[k].0.abs_diff(r) + spots[k].1.abs_diff(c))
                .unwrap_or(0);
            let goal = spots.swap_remove(k);
            step_toward(grid, i, goal, rng)
        };
        out[i] = action as f32;
    }
}

/// A move that brings agent `i` closer to `goal`: along the longer axis first, the other axis
/// when food or another agent is in the way, a random free move when both are, and now and then
/// (1 in 10) a random valid move so that agents blocking each other get unstuck.
fn step_toward(grid: &Grid, i: usize, goal: (usize, usize), rng: &mut ChaCha8Rng) -> usize {
    let (r, c) = grid.pos[i];
    let valid = grid.valid(i);
    let target = |a: usize| match a {
        1 => (r.wrapping_sub(1), c),
        2 => (r + 1, c),
        3 => (r, c.wrapping_sub(1)),
        _ => (r, c + 1),
    };
    let free = |a: usize| valid[a] && !grid.pos.contains(&target(a));
    let random_move = |rng: &mut ChaCha8Rng, ok: &dyn Fn(usize) -> bool| {
        let moves: Vec<usize> = (1..5).filter(|&a| ok(a)).collect();
        (!moves.is_empty()).then(|| moves[rng.random_range(0..moves.len())])
    };
    if rng.random_range(0..10) == 0 {
        if let Some(a) = random_move(rng, &|a| valid[a]) {
            return a;
        }
    }
    let vertical = if goal.0 < r {
        Some(1)
    } else if goal.0 > r {
        Some(2)
    } else {
        None
    };
    let horizontal = if goal.1 < c {
        Some(3)
    } else if goal.1 > c {
        Some(4)
    } else {
        None
    };
    let order = if r.abs_diff(goal.0) >= c.abs_diff(goal.1) {
        [vertical, horizontal]
    } else {
        [horizontal, vertical]
    };
    order
        .into_iter()
        .flatten()
        .find(|&a| free(a))
        .or_else(|| random_move(rng, &free))
        .unwrap_or(0)
}
