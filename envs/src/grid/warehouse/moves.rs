//! Which robots move: rware 2.0.0's resolution over the graph of intended moves, with
//! networkx's tie-breaking reproduced exactly.
//!
//! rware adds one edge per robot, in robot order, from its cell to the cell it wants (its own
//! cell unless it moves forward), splits the graph into weakly connected components and, per
//! component: if `find_cycle` finds a cycle, the robots on it move (rotations, and robots that
//! stay, which are cycles of length 1), unless it has length 2 (two robots swapping: nobody in
//! the component moves); otherwise the robots on `dag_longest_path` move. Every other robot
//! stays.
//!
//! Robots occupy distinct cells, so every cell has at most one outgoing edge: a component holds
//! at most one cycle, and without one it is a tree leading into one empty cell (its sink). The
//! longest path is then the chain from the sink back through, at each cell, the predecessor
//! with the deepest subtree. Ties go to the predecessor that comes first in the component's copy
//! (`G.subgraph(c).copy()`), whose node order is:
//!
//! - when the component has fewer than half of the graph's nodes, the iteration order of
//!   `set(c)`, where `c` is the set `weakly_connected_components` built by breadth-first search
//!   (successor first, then predecessors in robot order) from the component's first node in
//!   graph order: two CPython sets of `(x, y)` tuples ([`super::python_set`]);
//! - otherwise the graph's own node order: cells in order of first appearance as a robot's
//!   start or target, robot by robot.
//!
//! The common case (no ties) costs a few passes over the robots and allocates nothing; the
//! tie-break is computed only when a tie occurs, in preallocated buffers.

use super::python_set::{tuple_hash, PySet};

/// Where a robot's edge leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Into the cell of robot `k` (itself, for a robot that stays).
    Robot(usize),
    /// Into an empty cell.
    Sink,
}

/// What a robot's chain of edges ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Unknown,
    Cycle,
    Sink(usize),
}

/// The resolver, with its buffers sized for a number of robots and cells.
#[derive(Debug, Clone)]
pub struct MoveResolver {
    claim_epoch: u32,
    claimed: Vec<u32>,
    next: Vec<Next>,
    color: Vec<u8>,
    root: Vec<Root>,
    depth: Vec<u32>,
    reach: Vec<u32>,
    path: Vec<usize>,
    sinks: Vec<usize>,
    // Tie-breaking: the graph's nodes in insertion order, one component in BFS order, ranks.
    stamp: u32,
    node_stamp: Vec<u32>,
    node_index: Vec<u32>,
    nodes: Vec<usize>,
    comp_stamp: Vec<u32>,
    comp: Vec<usize>,
    rank: Vec<u32>,
    set_bfs: PySet,
    set_copy: PySet,
}

impl MoveResolver {
    /// Buffers for `robots` robots on a floor of `cells` cells.
    pub fn new(robots: usize, cells: usize) -> Self {
        Self {
            claim_epoch: 0,
            claimed: vec![0; cells],
            next: vec![Next::Sink; robots],
            color: vec![0; robots],
            root: vec![Root::Unknown; robots],
            depth: vec![0; robots],
            reach: vec![0; robots],
            path: Vec::with_capacity(robots),
            sinks: Vec::with_capacity(robots),
            stamp: 0,
            node_stamp: vec![0; cells],
            node_index: vec![0; cells],
            nodes: Vec::with_capacity(2 * robots),
            comp_stamp: vec![0; cells],
            comp: Vec::with_capacity(robots + 1),
            rank: vec![0; cells],
            set_bfs: PySet::with_capacity(robots + 1),
            set_copy: PySet::with_capacity(robots + 1),
        }
    }

    /// Decides which robots move. Robot `i` stands on cell `start[i]` and wants `target[i]`
    /// (equal for a robot that stays); `robot_at[cell]` is the robot on a cell plus one, 0 for
    /// none; cells are `y * width + x`. Sets `moves[i]` for every robot rware commits.
    pub fn resolve(
        &mut self,
        width: usize,
        start: &[usize],
        target: &[usize],
        robot_at: &[u16],
        moves: &mut [bool],
    ) {
        let n = start.len();
        if self.only_free_targets(start, target, robot_at) {
            // Every edge is a robot staying (a cycle of one) or the only edge into an empty
            // cell (a path of one): everybody commits.
            moves.fill(true);
            return;
        }
        moves.fill(false);
        for i in 0..n {
            self.next[i] = match robot_at[target[i]] {
                0 => Next::Sink,
                k => Next::Robot(usize::from(k) - 1),
            };
        }
        self.color[..n].fill(0);
        self.root[..n].fill(Root::Unknown);
        self.reach[..n].fill(0);

        // Follow every robot's chain to its cycle or its sink.
        for i in 0..n {
            if self.color[i] != 0 {
                continue;
            }
            self.path.clear();
            let mut v = i;
            let (root, base) = loop {
                if self.color[v] == 2 {
                    break (self.root[v], self.depth[v]);
                }
                if self.color[v] == 1 {
                    let at = self.path.iter().position(|&p| p == v).expect("on the path");
                    let cycle = &self.path[at..];
                    if cycle.len() != 2 {
                        for &r in cycle {
                            moves[r] = true;
                        }
                    }
                    break (Root::Cycle, 0);
                }
                self.color[v] = 1;
                self.path.push(v);
                match self.next[v] {
                    Next::Robot(k) => v = k,
                    Next::Sink => break (Root::Sink(target[v]), 0),
                }
            };
            let len = self.path.len();
            for (k, &p) in self.path.iter().enumerate() {
                self.color[p] = 2;
                self.root[p] = root;
                // Edges from p to the sink.
                self.depth[p] = base + (len - k) as u32;
            }
        }

        // The deepest chain below each robot of a tree.
        for i in 0..n {
            if !matches!(self.root[i], Root::Sink(_)) {
                continue;
            }
            let d = self.depth[i];
            let mut j = i;
            while self.reach[j] < d {
                self.reach[j] = d;
                match self.next[j] {
                    Next::Robot(k) => j = k,
                    Next::Sink => break,
                }
            }
        }

        // Per tree, walk back from the sink along the deepest predecessors.
        self.sinks.clear();
        let mut indexed = false;
        for i in 0..n {
            let Root::Sink(sink) = self.root[i] else {
                continue;
            };
            if self.sinks.contains(&sink) {
                continue;
            }
            self.sinks.push(sink);
            // Ranks are computed at this tree's first tie and hold for its whole walk.
            let mut ranked = false;
            let mut cell = sink;
            loop {
                let mut best: Option<usize> = None;
                let mut tie = false;
                for k in predecessors(cell, width, robot_at, target, start) {
                    match best {
                        None => best = Some(k),
                        Some(b) if self.reach[k] > self.reach[b] => {
                            best = Some(k);
                            tie = false;
                        }
                        Some(b) if self.reach[k] == self.reach[b] => tie = true,
                        Some(_) => {}
                    }
                }
                let Some(mut chosen) = best else { break };
                if tie {
                    if !indexed {
                        self.index_graph(start, target);
                        indexed = true;
                    }
                    if !ranked {
                        self.rank_component(sink, width, start, target, robot_at);
                        ranked = true;
                    }
                    let top = self.reach[chosen];
                    chosen = predecessors(cell, width, robot_at, target, start)
                        .filter(|&k| self.reach[k] == top)
                        .min_by_key(|&k| self.rank[start[k]])
                        .expect("a tied predecessor");
                }
                moves[chosen] = true;
                cell = start[chosen];
            }
        }
    }

    /// Whether every moving robot wants an empty cell nobody else wants (the common case).
    fn only_free_targets(&mut self, start: &[usize], target: &[usize], robot_at: &[u16]) -> bool {
        self.claim_epoch = self.claim_epoch.wrapping_add(1);
        if self.claim_epoch == 0 {
            self.claimed.fill(0);
            self.claim_epoch = 1;
        }
        for (&s, &t) in start.iter().zip(target) {
            if s == t {
                continue;
            }
            if robot_at[t] != 0 || self.claimed[t] == self.claim_epoch {
                return false;
            }
            self.claimed[t] = self.claim_epoch;
        }
        true
    }

    /// The graph's nodes in networkx's insertion order: per robot, its start cell, then its
    /// target, each when first seen.
    fn index_graph(&mut self, start: &[usize], target: &[usize]) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.node_stamp.fill(0);
            self.comp_stamp.fill(0);
            self.stamp = 1;
        }
        self.nodes.clear();
        for (&s, &t) in start.iter().zip(target) {
            for cell in [s, t] {
                if self.node_stamp[cell] != self.stamp {
                    self.node_stamp[cell] = self.stamp;
                    self.node_index[cell] = self.nodes.len() as u32;
                    self.nodes.push(cell);
                }
            }
        }
    }

    /// Ranks the cells of the tree draining into `sink` in the order its copy lists them.
    fn rank_component(
        &mut self,
        sink: usize,
        width: usize,
        start: &[usize],
        target: &[usize],
        robot_at: &[u16],
    ) {
        // The component's first node in graph order starts the breadth-first search.
        let mut source = sink;
        for (i, &s) in start.iter().enumerate() {
            if self.root[i] == Root::Sink(sink) && self.node_index[s] < self.node_index[source] {
                source = s;
            }
        }
        self.comp.clear();
        self.comp.push(source);
        self.comp_stamp[source] = self.stamp;
        let mut head = 0;
        while head < self.comp.len() {
            let v = self.comp[head];
            head += 1;
            // Successor first (a robot's target), then predecessors in robot order.
            if let Some(k) = usize::from(robot_at[v]).checked_sub(1) {
                let w = target[k];
                if self.comp_stamp[w] != self.stamp {
                    self.comp_stamp[w] = self.stamp;
                    self.comp.push(w);
                }
            }
            let mut preds = [usize::MAX; 4];
            for (slot, k) in preds
                .iter_mut()
                .zip(predecessors(v, width, robot_at, target, start))
            {
                *slot = k;
            }
            preds.sort_unstable();
            for &k in preds.iter().take_while(|&&k| k != usize::MAX) {
                let w = start[k];
                if self.comp_stamp[w] != self.stamp {
                    self.comp_stamp[w] = self.stamp;
                    self.comp.push(w);
                }
            }
        }
        if 2 * self.comp.len() < self.nodes.len() {
            // networkx iterates `set(c)`, filled in `c`'s own iteration order.
            self.set_bfs.clear();
            for (k, &cell) in self.comp.iter().enumerate() {
                let (x, y) = ((cell % width) as u64, (cell / width) as u64);
                self.set_bfs.insert(k as u32, tuple_hash(x, y));
            }
            self.set_copy.clear();
            for k in self.set_bfs.iter() {
                let cell = self.comp[k as usize];
                let (x, y) = ((cell % width) as u64, (cell / width) as u64);
                self.set_copy.insert(k, tuple_hash(x, y));
            }
            for (r, k) in self.set_copy.iter().enumerate() {
                self.rank[self.comp[k as usize]] = r as u32;
            }
        } else {
            for &cell in &self.comp {
                self.rank[cell] = self.node_index[cell];
            }
        }
    }
}

/// The robots whose edge leads into `cell` from another cell: only neighbours can.
fn predecessors<'a>(
    cell: usize,
    width: usize,
    robot_at: &'a [u16],
    target: &'a [usize],
    start: &'a [usize],
) -> impl Iterator<Item = usize> + 'a {
    let (x, y) = (cell % width, cell / width);
    let cells = robot_at.len();
    let up = (y > 0).then(|| cell - width);
    let down = (cell + width < cells).then_some(cell + width);
    let left = (x > 0).then(|| cell - 1);
    let right = (x + 1 < width).then_some(cell + 1);
    [up, down, left, right]
        .into_iter()
        .flatten()
        .filter_map(move |c| usize::from(robot_at[c]).checked_sub(1))
        .filter(move |&k| target[k] == cell && start[k] != cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A robot's cell and the cell it wants, `(x, y)`.
    type Move = ((usize, usize), (usize, usize));

    /// Resolves robots given as `((x, y), (tx, ty))` on a `width x height` floor.
    fn resolve(width: usize, height: usize, robots: &[Move]) -> Vec<bool> {
        let mut at = vec![0u16; width * height];
        let start: Vec<usize> = robots.iter().map(|&((x, y), _)| y * width + x).collect();
        let target: Vec<usize> = robots.iter().map(|&(_, (x, y))| y * width + x).collect();
        for (i, &s) in start.iter().enumerate() {
            at[s] = i as u16 + 1;
        }
        let mut r = MoveResolver::new(robots.len(), width * height);
        let mut moves = vec![false; robots.len()];
        r.resolve(width, &start, &target, &at, &mut moves);
        moves
    }

    #[test]
    fn a_swap_moves_nobody_and_a_rotation_moves_everybody() {
        assert_eq!(
            resolve(3, 3, &[((0, 0), (1, 0)), ((1, 0), (0, 0))]),
            [false, false]
        );
        let square = [
            ((0, 0), (1, 0)),
            ((1, 0), (1, 1)),
            ((1, 1), (0, 1)),
            ((0, 1), (0, 0)),
        ];
        assert_eq!(resolve(3, 3, &square), [true; 4]);
    }

    #[test]
    fn a_robot_that_stays_blocks_the_ones_behind_it() {
        let line = [((0, 0), (1, 0)), ((1, 0), (1, 0)), ((2, 0), (2, 1))];
        assert_eq!(resolve(3, 3, &line), [false, true, true]);
    }

    #[test]
    fn the_longer_chain_wins_a_contested_cell() {
        // (1,1) is wanted from the left (a chain of two) and from above (one robot).
        let robots = [((0, 1), (1, 1)), ((1, 0), (1, 1)), ((0, 2), (0, 1))];
        assert_eq!(resolve(3, 3, &robots), [true, false, true]);
    }

    /// Ties decided as rware does (recorded with rware 2.0.0 / networkx 3.6.1): two robots
    /// want the empty cell between them; the graph has 3 nodes, the component all 3, so the
    /// graph's insertion order decides and robot 0 wins.
    #[test]
    fn ties_follow_networkx_node_order() {
        assert_eq!(
            resolve(3, 1, &[((0, 0), (1, 0)), ((2, 0), (1, 0))]),
            [true, false]
        );
        assert_eq!(
            resolve(3, 1, &[((2, 0), (1, 0)), ((0, 0), (1, 0))]),
            [true, false]
        );
    }
}
