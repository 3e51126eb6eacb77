//! The minibatch schedule every backend runs under, written once: per epoch a shuffle of the
//! group's samples from the learner's seeded generator, minibatches gathered on the host,
//! advantage normalization (per batch or per minibatch), value-target normalization (updated
//! on every minibatch), the loss and its gradient ([`Backend::accumulate`]), an optimizer step
//! every `grad_accum_steps` minibatches and at the end of each epoch ([`Backend::step`]), and
//! the target-KL stop. Nothing is allocated per minibatch once the first has sized the buffers.

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::algo::ppo::{self, names, LossConfig};
use crate::algo::scalars::Scalars;
use crate::algo::value_norm::ValueNorm;
use crate::backend::{
    Backend, Channels, CriticRows, LossCoefs, Minibatch, RowLayout, RowOutputs, Run, SeqBatch,
    SharedStates,
};
use crate::config::{AdvantageNorm, MinibatchUnit, PpoConfig};
use crate::train::buffer::{CriticForm, GroupBuffer, InputLayout};
use crate::util::parallel;

/// Losses and diagnostics of one group's update.
#[derive(Debug, Clone, Default)]
pub struct GroupStats {
    /// Means over minibatches of the loss terms ([`ppo::names`]: `policy_loss`, `value_loss`,
    /// `entropy`, `approx_kl`, `clipfrac`), then `explained_variance` of the values for the
    /// returns.
    pub terms: Scalars,
    /// Per-agent policy loss over the last epoch (agent order of the group; with
    /// `log_agent_metrics`).
    pub agent_policy_loss: Vec<f64>,
}

/// What the schedule reads of a group.
pub struct GroupBatch<'a> {
    /// The group's name, for errors.
    pub name: &'a str,
    /// The collected rollout, advantages and returns computed.
    pub buf: &'a GroupBuffer,
    /// How its rows are built.
    pub input: &'a InputLayout,
    /// One network per agent on either side: minibatch rows are then sorted by agent.
    pub unshared: bool,
    /// One critic for all the group's agents.
    pub shared_critic: bool,
    /// The actors exchange messages: minibatches then hold whole channels (all the group's
    /// agents of an environment step, or of an environment's chunk).
    pub talks: bool,
}

/// The update's settings.
pub struct Settings<'a> {
    /// PPO's hyper-parameters.
    pub ppo: &'a PpoConfig,
    /// The entropy bonus of this update (it may be scheduled).
    pub entropy_coef: f64,
    /// Per-agent policy losses.
    pub log_agents: bool,
}

/// Buffers of the minibatches, kept between minibatches and updates.
#[derive(Debug, Default)]
pub struct MinibatchScratch {
    /// Samples (or chunks) in the order of this epoch's shuffle.
    order: Vec<usize>,
    /// The batch's advantages (normalized over the batch when so configured).
    batch_advantages: Vec<f32>,
    /// The current minibatch.
    gathered: Gathered,
    /// Per-row outputs of its pass.
    row_logp: Vec<f32>,
    row_values: Vec<f32>,
}

/// One minibatch gathered from the batch.
#[derive(Debug, Default)]
struct Gathered {
    /// Buffer positions of the rows.
    idx: Vec<usize>,
    units: Vec<usize>,
    x_actor: Vec<f32>,
    /// Critic rows without their state.
    critic_rest: Vec<f32>,
    /// The distinct states of the minibatch's rows `[U, state_dim]` (unless they are read in
    /// place), which one each row reads, and per (step, environment) of the rollout its place
    /// among them (`u32::MAX`: not in this minibatch).
    states: Vec<f32>,
    state_of: Vec<u32>,
    state_slot: Vec<u32>,
    /// The rows read the buffer's states in place (`state_of` indexes them).
    states_in_place: bool,
    /// Whole critic rows where the state sits inside them (agent-specific states).
    critic_whole: Vec<f32>,
    actions: Vec<f32>,
    mask_bias: Vec<f32>,
    old_logp: Vec<f32>,
    old_values: Vec<f32>,
    active: Vec<f32>,
    advantages: Vec<f32>,
    targets: Vec<f32>,
    agents: Vec<u32>,
    runs: Vec<Run>,
    starts: Vec<f32>,
    h0_actor: Vec<f32>,
    h0_critic: Vec<f32>,
    /// Communicating actors: the rows of each channel's members, and per (step,
    /// environment) of the rollout its channel (`u32::MAX`: not in this minibatch).
    members: Vec<u32>,
    channel_slot: Vec<u32>,
}

impl Gathered {
    /// Gathers the samples (with `env_steps`, the environment steps `t * n_envs + e`, each
    /// with all the group's agents; for recurrent networks, the chunks of `chunk` steps)
    /// `units` of the batch into the minibatch buffers; returns the rows.
    fn gather(
        &mut self,
        g: &GroupBatch<'_>,
        advantages: &[f32],
        units: &[usize],
        chunk: Option<usize>,
        env_steps: bool,
    ) -> usize {
        let (b, l) = (g.buf, g.input);
        let rl = l.row_layout();
        let agent_of = |i: usize| rl.agent_of(i) as u32;
        self.idx.clear();
        if env_steps {
            env_step_rows(units, rl, &mut self.idx);
        } else if chunk.is_some() && g.talks {
            env_chunk_units(units, rl, &mut self.idx);
        } else {
            self.idx.extend_from_slice(units);
        }
        if g.unshared {
            // Each agent's network then runs on one contiguous run of rows.
            self.idx.sort_by_key(|&i| agent_of(i));
        }
        if let Some(c) = chunk {
            self.sequences(b, c, g.unshared, rl, agent_of);
        }
        let m = self.idx.len();
        let total = b.logp.len();
        let Self {
            idx,
            x_actor,
            critic_rest,
            actions,
            old_logp,
            old_values,
            active,
            advantages: adv,
            targets,
            mask_bias,
            ..
        } = self;
        let idx = &*idx;
        // The actor's columns here, the critic's on the second core (the copies are memory
        // bound: the rows lie all over the rollout).
        let ((), critic_side) = parallel::join(
            || {
                gather(x_actor, &b.actor_in, idx, l.actor_in);
                gather(actions, &b.actions, idx, b.actions.len() / total);
                gather(old_logp, &b.logp, idx, 1);
                gather(active, &b.active, idx, 1);
                gather(adv, advantages, idx, 1);
                if let Some(bias) = &b.mask_bias {
                    gather(mask_bias, bias, idx, l.action_space.num_choices());
                }
            },
            || {
                gather(critic_rest, &b.critic_rest, idx, l.rest_in());
                gather(old_values, &b.values, idx, 1);
                gather(targets, &b.returns, idx, 1);
            },
        );
        if let Err(panic) = critic_side {
            std::panic::resume_unwind(panic);
        }
        self.distinct_states(b, l);
        if g.talks {
            self.channels(b, rl);
        }
        self.agents.clear();
        self.agents.extend(self.idx.iter().map(|&i| agent_of(i)));
        self.runs.clear();
        match chunk {
            // Each agent's sequences are one block (sorted by agent when unshared).
            Some(_) if !g.unshared => self.runs.push(Run {
                agent: 0,
                start: 0,
                len: m,
            }),
            _ => {
                for (pos, &a) in self.agents.iter().enumerate() {
                    match self.runs.last_mut() {
                        Some(run) if run.agent == a as usize => run.len += 1,
                        _ => self.runs.push(Run {
                            agent: a as usize,
                            start: pos,
                            len: 1,
                        }),
                    }
                }
            }
        }
        m
    }

    /// The states of the minibatch's rows and which one each row reads (its step and
    /// environment's); with the state inside the rows (agent-specific states), the whole rows.
    ///
    /// Where the rows read most of the rollout's states (many agents, few minibatches), they
    /// read the buffer's states in place: copying them would cost more than the few absent
    /// states' products, and the memory of a second copy of the states. Otherwise the
    /// distinct states are copied, in order of first appearance.
    fn distinct_states(&mut self, b: &GroupBuffer, l: &InputLayout) {
        self.states.clear();
        self.state_of.clear();
        let sd = l.state_dim;
        if sd == 0 {
            return;
        }
        let rl = l.row_layout();
        // Row `k * n_envs + e` of step `t` reads state `t * n_envs + e`.
        let key = |i: usize| rl.env_step_of(i);
        let all = b.t_len * l.n_envs;
        self.state_slot.clear();
        self.state_slot.resize(all, u32::MAX);
        let mut distinct = 0u32;
        for &i in &self.idx {
            let slot = &mut self.state_slot[key(i)];
            if *slot == u32::MAX {
                *slot = distinct;
                distinct += 1;
            }
        }
        self.states_in_place = 4 * distinct as usize >= 3 * all;
        if self.states_in_place {
            self.state_of
                .extend(self.idx.iter().map(|&i| key(i) as u32));
        } else {
            // Slots were given in order of first appearance: a state is new when its slot is
            // the next one to copy.
            for &i in &self.idx {
                let k = key(i);
                let slot = self.state_slot[k];
                if slot as usize == self.states.len() / sd {
                    self.states
                        .extend_from_slice(&b.states[k * sd..(k + 1) * sd]);
                }
                self.state_of.push(slot);
            }
        }
        if l.critic_form() == CriticForm::WrittenOut {
            let states = if self.states_in_place {
                &b.states
            } else {
                &self.states
            };
            l.critic_input(
                &self.critic_rest,
                states,
                &self.state_of,
                &mut self.critic_whole,
            );
        }
    }

    /// The channel of each of the minibatch's rows: its step and environment; its place in
    /// the channel: its agent. Every channel is whole (the units are whole steps or chunks of
    /// environments, or the whole rollout).
    fn channels(&mut self, b: &GroupBuffer, rl: RowLayout) {
        let n = rl.n_agents;
        self.channel_slot.clear();
        self.channel_slot.resize(b.t_len * rl.n_envs, u32::MAX);
        self.members.clear();
        self.members.resize(self.idx.len(), u32::MAX);
        let mut next = 0u32;
        for (pos, &i) in self.idx.iter().enumerate() {
            let slot = &mut self.channel_slot[rl.env_step_of(i)];
            if *slot == u32::MAX {
                *slot = next;
                next += 1;
            }
            self.members[*slot as usize * n + rl.agent_of(i)] = pos as u32;
        }
        debug_assert!(
            self.members.iter().all(|&m| m != u32::MAX),
            "a minibatch holds part of a channel"
        );
    }

    /// The gathered minibatch.
    fn minibatch<'a>(
        &'a self,
        b: &'a GroupBuffer,
        l: &InputLayout,
        chunk: Option<usize>,
    ) -> Minibatch<'a> {
        let x_critic = match l.critic_form() {
            CriticForm::WrittenOut => CriticRows::whole(&self.critic_whole),
            CriticForm::Whole => CriticRows::whole(&self.critic_rest),
            CriticForm::SharedState => CriticRows {
                own: &self.critic_rest,
                states: Some(SharedStates {
                    values: if self.states_in_place {
                        &b.states
                    } else {
                        &self.states
                    },
                    dim: l.state_dim,
                    of_row: &self.state_of,
                }),
            },
        };
        Minibatch {
            rows: self.idx.len(),
            x_actor: &self.x_actor,
            x_critic,
            actions: &self.actions,
            mask_bias: b.mask_bias.as_ref().map(|_| self.mask_bias.as_slice()),
            old_logp: &self.old_logp,
            old_values: &self.old_values,
            active: &self.active,
            advantages: &self.advantages,
            targets: &self.targets,
            agents: &self.agents,
            runs: &self.runs,
            seq: chunk.map(|len| SeqBatch {
                len,
                starts: &self.starts,
                h0_actor: &self.h0_actor,
                h0_critic: &self.h0_critic,
            }),
            channels: (!self.members.is_empty()).then(|| Channels {
                members: &self.members,
                n_members: l.agents.len(),
                live: &self.active,
            }),
        }
    }

    /// Turns the minibatch's chunks (in `idx`; sorted by agent when `unshared`) into rows,
    /// time-major within each block of sequences (`row = start + t * S + s`; one block per
    /// agent when `unshared`, else one), with the sequences' reset flags and initial states.
    fn sequences(
        &mut self,
        b: &GroupBuffer,
        chunk: usize,
        unshared: bool,
        rl: RowLayout,
        agent_of: impl Fn(usize) -> u32,
    ) {
        let r_step = rl.rows();
        let n_units = b.t_len / chunk * r_step;
        let (wa, wc) = (b.h0_actor.len() / n_units, b.h0_critic.len() / n_units);
        std::mem::swap(&mut self.units, &mut self.idx);
        self.h0_actor.clear();
        self.h0_critic.clear();
        for &u in &self.units {
            self.h0_actor
                .extend_from_slice(&b.h0_actor[u * wa..(u + 1) * wa]);
            self.h0_critic
                .extend_from_slice(&b.h0_critic[u * wc..(u + 1) * wc]);
        }
        self.idx.clear();
        let mut start = 0;
        while start < self.units.len() {
            let first = agent_of(self.units[start]);
            let end = if unshared {
                start
                    + self.units[start..]
                        .iter()
                        .take_while(|&&u| agent_of(u) == first)
                        .count()
            } else {
                self.units.len()
            };
            for t in 0..chunk {
                for &u in &self.units[start..end] {
                    let (c, r) = (u / r_step, u % r_step);
                    self.idx.push(rl.at(c * chunk + t, r));
                }
            }
            start = end;
        }
        gather(&mut self.starts, &b.starts, &self.idx, 1);
    }
}

/// Appends to `rows` the buffer positions of environment steps `units` (`t * n_envs + e`):
/// each step's rows for its agents, agent-major as a step's rows are stored.
fn env_step_rows(units: &[usize], rl: RowLayout, rows: &mut Vec<usize>) {
    for &u in units {
        let (t, e) = (u / rl.n_envs, u % rl.n_envs);
        rows.extend((0..rl.n_agents).map(|k| rl.index(t, k, e)));
    }
}

/// Appends to `out` the units of environment chunks `units` (`c * n_envs + e`: chunk `c` of
/// environment `e`): chunk `c` of each of the environment's rows, in agent order.
fn env_chunk_units(units: &[usize], rl: RowLayout, out: &mut Vec<usize>) {
    let r_step = rl.rows();
    for &u in units {
        let (c, e) = (u / rl.n_envs, u % rl.n_envs);
        out.extend((0..rl.n_agents).map(|k| c * r_step + rl.index(0, k, e)));
    }
}

fn gather(dst: &mut Vec<f32>, src: &[f32], idx: &[usize], w: usize) {
    // Every value is written below: a buffer of the right length is reused as it is.
    dst.resize(idx.len() * w, 0.0);
    match w {
        0 => {}
        1 => {
            for (d, &i) in dst.iter_mut().zip(idx) {
                *d = src[i];
            }
        }
        _ => {
            for (d, &i) in dst.chunks_exact_mut(w).zip(idx) {
                d.copy_from_slice(&src[i * w..(i + 1) * w]);
            }
        }
    }
}

/// The PPO epochs of one group.
pub fn run_epochs(
    g: &GroupBatch<'_>,
    backend: &mut dyn Backend,
    value_norm: &mut ValueNorm,
    s: &Settings<'_>,
    rng: &mut ChaCha8Rng,
    mb: &mut MinibatchScratch,
) -> Result<GroupStats> {
    let p = s.ppo;
    let (b, l) = (g.buf, g.input);
    let total = b.logp.len();
    let rows_per_step = b.rows;
    let n_agents = l.agents.len();
    let coefs = LossCoefs {
        loss: LossConfig {
            clip_epsilon: p.clip_epsilon,
            clip_value_loss: p.clip_value_loss,
            value_loss: p.value_loss,
            huber_delta: p.huber_delta,
        },
        entropy_coef: s.entropy_coef,
        value_coef: p.value_coef,
    };

    mb.batch_advantages.clear();
    mb.batch_advantages.extend_from_slice(&b.advantages);
    if p.advantage_norm == AdvantageNorm::Batch {
        normalize_masked(&mut mb.batch_advantages, &b.active);
    }
    // What a minibatch is made of: samples, environment steps (all agents of a step, so
    // that a critic on the shared state computes the state's part once per step and epoch),
    // or (recurrent networks) whole chunks of the rollout, unit `c * R + r` being chunk `c`
    // of row `r`.
    // Communicating actors always train on whole environment steps (or chunks).
    let chunk = (!b.starts.is_empty()).then_some(b.chunk);
    let env_steps = chunk.is_none()
        && n_agents > 1
        && (g.talks
            || match p.minibatch_unit {
                MinibatchUnit::Auto => {
                    g.shared_critic && l.critic_form() == CriticForm::SharedState
                }
                MinibatchUnit::Sample => false,
                MinibatchUnit::EnvStep => true,
            });
    let units = match chunk {
        None if env_steps => b.t_len * l.n_envs,
        None => total,
        Some(c) if g.talks => l.n_envs * (b.t_len / c),
        Some(c) => rows_per_step * (b.t_len / c),
    };
    let mb_size = units / p.num_minibatches;
    let mut sums = Scalars::new();
    let mut count = 0.0f64;
    let mut agent_loss = vec![0.0; n_agents];
    let mut agent_count = vec![0.0; n_agents];
    let mut pending = 0;
    mb.order.clear();
    mb.order.extend(0..units);
    'epochs: for epoch in 0..p.ppo_epochs {
        mb.order.shuffle(rng);
        let last_epoch = epoch + 1 == p.ppo_epochs;
        let (mut epoch_kl, mut epoch_mbs) = (0.0, 0.0f64);
        for k in 0..p.num_minibatches {
            // ── gather ──
            let units = &mb.order[k * mb_size..(k + 1) * mb_size];
            let m = mb
                .gathered
                .gather(g, &mb.batch_advantages, units, chunk, env_steps);
            mb.row_logp.resize(m, 0.0);
            mb.row_values.resize(m, 0.0);
            let gm = &mut mb.gathered;
            if p.advantage_norm == AdvantageNorm::Minibatch {
                normalize_masked(&mut gm.advantages, &gm.active);
            }
            if p.value_norm {
                value_norm.update(&gm.targets);
                for x in gm.targets.iter_mut() {
                    *x = value_norm.normalize(*x);
                }
            }
            let want_rows = s.log_agents && last_epoch;

            // ── loss and gradient ──
            let terms = backend.accumulate(
                &mb.gathered.minibatch(b, l, chunk),
                &coefs,
                want_rows.then_some(RowOutputs {
                    logp: &mut mb.row_logp,
                    values: &mut mb.row_values,
                }),
            )?;
            if let Some((name, value)) = terms.first_non_finite() {
                bail!(
                    "non-finite loss in group `{}` ({name} = {value}; {terms}): training \
                     stopped; the last good checkpoint is kept",
                    g.name
                );
            }
            sums.add_all(&terms);
            count += 1.0;
            epoch_kl += terms.get(names::APPROX_KL).unwrap_or(0.0);
            epoch_mbs += 1.0;
            if want_rows {
                per_agent_policy_loss(mb, p.clip_epsilon, &mut agent_loss, &mut agent_count);
            }

            // ── optimizer step ──
            pending += 1;
            if pending == p.grad_accum_steps || k + 1 == p.num_minibatches {
                backend.step(pending)?;
                pending = 0;
            }
        }
        if let Some(target) = p.target_kl {
            if epoch_kl / epoch_mbs.max(1.0) > target {
                break 'epochs;
            }
        }
    }
    sums.scale(count.max(1.0));
    sums.set(
        names::EXPLAINED_VARIANCE,
        explained_variance_of(b, value_norm, p),
    );
    let agent_policy_loss = agent_loss
        .iter()
        .zip(&agent_count)
        .map(|(s, n)| if *n > 0.0 { s / n } else { f64::NAN })
        .collect();
    Ok(GroupStats {
        terms: sums,
        agent_policy_loss,
    })
}

/// Runs the training pass over the whole rollout, every sample (or chunk) in order, and
/// returns each buffer position's new log-probability and value: what the rollout recorded,
/// if training replays it right.
#[cfg(test)]
pub(super) fn replay(
    g: &GroupBatch<'_>,
    backend: &mut dyn Backend,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let b = g.buf;
    let chunk = (!b.starts.is_empty()).then_some(b.chunk);
    let units = match chunk {
        None => b.logp.len(),
        Some(c) if g.talks => g.input.n_envs * (b.t_len / c),
        Some(c) => b.rows * (b.t_len / c),
    };
    let mut gathered = Gathered::default();
    let all: Vec<usize> = (0..units).collect();
    let m = gathered.gather(g, &b.advantages, &all, chunk, false);
    let (mut logp, mut values) = (vec![0.0; m], vec![0.0; m]);
    let coefs = LossCoefs {
        loss: LossConfig {
            clip_epsilon: 0.2,
            clip_value_loss: false,
            value_loss: crate::config::ValueLoss::Mse,
            huber_delta: 1.0,
        },
        entropy_coef: 0.0,
        value_coef: 1.0,
    };
    let rows = RowOutputs {
        logp: &mut logp,
        values: &mut values,
    };
    backend.accumulate(&gathered.minibatch(b, g.input, chunk), &coefs, Some(rows))?;
    let (mut by_pos_logp, mut by_pos_values) = (vec![0.0; m], vec![0.0; m]);
    for (r, &pos) in gathered.idx.iter().enumerate() {
        by_pos_logp[pos] = logp[r];
        by_pos_values[pos] = values[r];
    }
    Ok((by_pos_logp, by_pos_values))
}

/// Adds each active row's policy loss, minus its clipped surrogate (without gradient), to its
/// agent's sum.
fn per_agent_policy_loss(mb: &MinibatchScratch, eps: f64, sums: &mut [f64], counts: &mut [f64]) {
    let g = &mb.gathered;
    for r in 0..g.agents.len() {
        if g.active[r] == 0.0 {
            continue;
        }
        let ratio = f64::from(mb.row_logp[r] - g.old_logp[r]).exp();
        let loss = -ppo::surrogate(ratio, f64::from(g.advantages[r]), eps);
        let k = g.agents[r] as usize;
        sums[k] += loss;
        counts[k] += 1.0;
    }
}

/// Normalizes `x` to zero mean and unit std over the active entries.
fn normalize_masked(x: &mut [f32], active: &[f32]) {
    let n: f64 = active.iter().map(|&a| f64::from(a)).sum();
    if n < 2.0 {
        return;
    }
    let mean = x
        .iter()
        .zip(active)
        .map(|(&v, &a)| f64::from(v * a))
        .sum::<f64>()
        / n;
    let var = x
        .iter()
        .zip(active)
        .map(|(&v, &a)| f64::from(a) * (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let std = var.sqrt() + 1e-8;
    x.iter_mut()
        .for_each(|v| *v = ((f64::from(*v) - mean) / std) as f32);
}

/// Explained variance of the collected values for the returns, in the reward scale.
fn explained_variance_of(b: &GroupBuffer, vn: &ValueNorm, p: &PpoConfig) -> f64 {
    let vals: Vec<f64> = b
        .values
        .iter()
        .map(|&v| f64::from(if p.value_norm { vn.denormalize(v) } else { v }))
        .collect();
    let rets: Vec<f64> = b.returns.iter().map(|&x| f64::from(x)).collect();
    explained_variance(&vals, &rets)
}

/// `1 - Var(returns - values) / Var(returns)`.
pub fn explained_variance(values: &[f64], returns: &[f64]) -> f64 {
    let n = returns.len() as f64;
    let mean = |x: &dyn Fn(usize) -> f64| (0..returns.len()).map(x).sum::<f64>() / n;
    let mr = mean(&|i| returns[i]);
    let var_r = mean(&|i| (returns[i] - mr).powi(2));
    let md = mean(&|i| returns[i] - values[i]);
    let var_d = mean(&|i| (returns[i] - values[i] - md).powi(2));
    if var_r == 0.0 {
        f64::NAN
    } else {
        1.0 - var_d / var_r
    }
}

#[cfg(test)]
mod unit_tests {
    use rand::SeedableRng;

    use super::*;

    /// Minibatches of shuffled environment steps: each holds all agents of its steps and
    /// nothing else, and an epoch's minibatches together hold every sample exactly once.
    #[test]
    fn env_step_minibatches_hold_whole_steps_and_cover_the_batch_once() {
        let (t_len, n_envs, n_agents, n_minibatches) = (5, 4, 3, 4);
        let mut order: Vec<usize> = (0..t_len * n_envs).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(7));
        let per = order.len() / n_minibatches;
        let mut seen = vec![0; t_len * n_envs * n_agents];
        for units in order.chunks(per) {
            let mut rows = Vec::new();
            let rl = RowLayout { n_envs, n_agents };
            env_step_rows(units, rl, &mut rows);
            assert_eq!(rows.len(), units.len() * n_agents);
            for (&u, agents) in units.iter().zip(rows.chunks(n_agents)) {
                for (k, &row) in agents.iter().enumerate() {
                    // Row `k * n_envs + e` of step `t` is agent `k` in environment `e`.
                    let (t, within) = (row / (n_envs * n_agents), row % (n_envs * n_agents));
                    assert_eq!((t * n_envs + within % n_envs, within / n_envs), (u, k));
                    seen[row] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
    }
}
