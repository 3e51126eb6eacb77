//! The particle physics shared by every MPE scenario: a port of mpe2 1.1.1 `_mpe_utils/core.py`.
//!
//! Everything is `f64`, in the reference's order of operations, so replaying a recorded episode
//! gives the recorded bits (see `envs/tests/parity/FORMAT.md`, steps 2 to 5):
//! action force, then a soft contact force for every colliding pair at any distance, then
//! position integrated with the old velocity, damping, force, speed clamp, then the
//! communication state.

/// Fixed properties of one entity (agent or landmark).
#[derive(Debug, Clone, PartialEq)]
pub struct EntityParams {
    /// Name as in the reference (`agent_0`, `landmark 0`).
    pub name: String,
    /// Radius.
    pub size: f64,
    /// Mass.
    pub mass: f64,
    /// Whether the entity integrates forces.
    pub movable: bool,
    /// Whether the entity takes part in contact forces.
    pub collide: bool,
    /// Speed clamp, if any.
    pub max_speed: Option<f64>,
    /// Action scale (agents only); `None` means the reference's 5.0.
    pub accel: Option<f64>,
    /// Whether the agent cannot communicate (agents only; landmarks are silent).
    pub silent: bool,
}

impl EntityParams {
    /// A movable, colliding agent of the given size (mass 1, no clamp, accel 5, silent).
    pub fn agent(name: String, size: f64) -> Self {
        Self {
            name,
            size,
            mass: 1.0,
            movable: true,
            collide: true,
            max_speed: None,
            accel: None,
            silent: true,
        }
    }

    /// A fixed landmark of the given size that does not collide (mpe2's default landmark).
    pub fn landmark(name: String, size: f64) -> Self {
        Self {
            name,
            size,
            mass: 1.0,
            movable: false,
            collide: false,
            max_speed: None,
            accel: None,
            silent: true,
        }
    }
}

/// The world: entities (agents first, then landmarks), their state and the step's scratch space.
#[derive(Debug, Clone)]
pub struct World {
    /// Number of agents; entities `0..n_agents` are agents, the rest landmarks.
    pub n_agents: usize,
    /// Communication channels per agent.
    pub dim_c: usize,
    /// Fixed properties of every entity.
    pub params: Vec<EntityParams>,
    /// Positions of every entity.
    pub pos: Vec<[f64; 2]>,
    /// Velocities of every entity.
    pub vel: Vec<[f64; 2]>,
    /// Communication state of every agent, `[n_agents * dim_c]`.
    pub comm: Vec<f64>,
    /// The physical action of every agent for the coming step (already scaled by accel).
    pub action_u: Vec<[f64; 2]>,
    /// The communication action of every agent for the coming step, `[n_agents * dim_c]`.
    pub action_c: Vec<f64>,
    force: Vec<[f64; 2]>,
    /// Pairs `(a, b)`, `a < b`, that both collide and of which at least one moves, in the
    /// reference's loop order: only these contribute forces.
    pairs: Vec<(usize, usize, f64)>,
}

/// Simulation constants of mpe2's `World`.
const DT: f64 = 0.1;
const DAMPING: f64 = 0.25;
const CONTACT_FORCE: f64 = 100.0;
const CONTACT_MARGIN: f64 = 1e-3;
/// Below this, `exp` underflows to exactly 0, so the penetration is exactly 0 as well and the
/// two libm calls can be skipped without changing a bit.
const EXP_UNDERFLOW: f64 = -746.0;

impl World {
    /// Builds a world with every entity at rest at the origin.
    pub fn new(n_agents: usize, dim_c: usize, params: Vec<EntityParams>) -> Self {
        let n = params.len();
        let mut pairs = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                let (pa, pb) = (&params[a], &params[b]);
                if pa.collide && pb.collide && (pa.movable || pb.movable) {
                    pairs.push((a, b, pa.size + pb.size));
                }
            }
        }
        Self {
            n_agents,
            dim_c,
            params,
            pos: vec![[0.0; 2]; n],
            vel: vec![[0.0; 2]; n],
            comm: vec![0.0; n_agents * dim_c],
            action_u: vec![[0.0; 2]; n_agents],
            action_c: vec![0.0; n_agents * dim_c],
            force: vec![[0.0; 2]; n],
            pairs,
        }
    }

    /// Number of landmarks.
    pub fn n_landmarks(&self) -> usize {
        self.params.len() - self.n_agents
    }

    /// Index of landmark `l` among the entities.
    pub fn landmark(&self, l: usize) -> usize {
        self.n_agents + l
    }

    /// Agent `i`'s communication state.
    pub fn comm_of(&self, i: usize) -> &[f64] {
        &self.comm[i * self.dim_c..(i + 1) * self.dim_c]
    }

    /// Advances the world by one step with the actions already in `action_u` / `action_c`.
    pub fn step(&mut self) {
        // Action force: F = u + noise, noise = 0.0 (u_noise is None in every scenario).
        for i in 0..self.params.len() {
            self.force[i] = if i < self.n_agents && self.params[i].movable {
                let u = self.action_u[i];
                [u[0] + 0.0, u[1] + 0.0]
            } else {
                [0.0, 0.0]
            };
        }

        // Contact forces, for every colliding pair regardless of distance.
        for &(a, b, dist_min) in &self.pairs {
            let dx = self.pos[a][0] - self.pos[b][0];
            let dy = self.pos[a][1] - self.pos[b][1];
            let dist = (dx * dx + dy * dy).sqrt();
            let z = -(dist - dist_min) / CONTACT_MARGIN;
            let penetration = logaddexp0(z) * CONTACT_MARGIN;
            let fx = CONTACT_FORCE * dx / dist * penetration;
            let fy = CONTACT_FORCE * dy / dist * penetration;
            if self.params[a].movable {
                self.force[a][0] += fx;
                self.force[a][1] += fy;
            }
            if self.params[b].movable {
                self.force[b][0] += -fx;
                self.force[b][1] += -fy;
            }
        }

        // Integrate: position first with the old velocity, then damping, force and clamp.
        for i in 0..self.params.len() {
            let p = &self.params[i];
            if !p.movable {
                continue;
            }
            let v = self.vel[i];
            self.pos[i][0] += v[0] * DT;
            self.pos[i][1] += v[1] * DT;
            let f = self.force[i];
            let mut vx = v[0] * (1.0 - DAMPING) + (f[0] / p.mass) * DT;
            let mut vy = v[1] * (1.0 - DAMPING) + (f[1] / p.mass) * DT;
            if let Some(max_speed) = p.max_speed {
                let speed = (vx * vx + vy * vy).sqrt();
                if speed > max_speed {
                    vx = vx / speed * max_speed;
                    vy = vy / speed * max_speed;
                }
            }
            self.vel[i] = [vx, vy];
        }

        // Communication state: silent agents say nothing, the others say their action.
        let dim_c = self.dim_c;
        for i in 0..self.n_agents {
            let c = &mut self.comm[i * dim_c..(i + 1) * dim_c];
            if self.params[i].silent {
                // Already zero unless a loaded state said otherwise: skip the write.
                if c.iter().any(|&x| x != 0.0) {
                    c.fill(0.0);
                }
            } else {
                for (dst, &src) in c.iter_mut().zip(&self.action_c[i * dim_c..]) {
                    *dst = src + 0.0;
                }
            }
        }
    }

    /// Euclidean distance between entities `a` and `b`, as mpe2 computes it.
    #[inline]
    pub fn dist(&self, a: usize, b: usize) -> f64 {
        let dx = self.pos[a][0] - self.pos[b][0];
        let dy = self.pos[a][1] - self.pos[b][1];
        (dx * dx + dy * dy).sqrt()
    }

    /// mpe2's `is_collision`: strictly closer than the sum of the radii.
    #[inline]
    pub fn is_collision(&self, a: usize, b: usize) -> bool {
        self.dist(a, b) < self.params[a].size + self.params[b].size
    }

    /// Sets every entity at rest and clears communication (the common part of a reset).
    pub fn clear_motion(&mut self) {
        self.vel.iter_mut().for_each(|v| *v = [0.0; 2]);
        self.comm.fill(0.0);
        self.action_u.iter_mut().for_each(|u| *u = [0.0; 2]);
        self.action_c.fill(0.0);
    }
}

/// numpy's `logaddexp(0, z)` = softplus(z), branch for branch, with glibc's `exp` and `log1p`.
#[inline]
fn logaddexp0(z: f64) -> f64 {
    if z == 0.0 {
        std::f64::consts::LN_2
    } else if z < 0.0 {
        if z < EXP_UNDERFLOW {
            0.0
        } else {
            0.0 + z.exp().ln_1p()
        }
    } else {
        z + (-z).exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logaddexp_matches_the_closed_form_and_underflows_to_zero() {
        assert_eq!(logaddexp0(0.0), 2f64.ln());
        assert_eq!(logaddexp0(-800.0), 0.0);
        assert_eq!(logaddexp0(-745.0), (-745f64).exp().ln_1p());
        assert!((logaddexp0(3.0) - (1.0 + 3f64.exp()).ln()).abs() < 1e-15);
        // The shortcut is exact: just above the cut-off exp is already 0.
        assert_eq!((EXP_UNDERFLOW + 0.5).exp(), 0.0);
    }

    #[test]
    fn position_moves_with_the_old_velocity() {
        let mut w = World::new(1, 0, vec![EntityParams::agent("a".into(), 0.1)]);
        w.vel[0] = [1.0, 0.0];
        w.action_u[0] = [5.0, 0.0];
        w.step();
        assert_eq!(w.pos[0], [0.1, 0.0]);
        assert_eq!(w.vel[0], [0.75 + 0.5, 0.0]);
    }
}
