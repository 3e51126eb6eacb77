//! The backend suite, written once and run against every backend on every device
//! (`backend_suite!` below: the hand-written backend on the CPU; candle's autograd per device,
//! CPU and, in the `cuda` build, CUDA): one whole update agrees with the reference (candle's
//! autograd on the CPU) for every network variant the config allows; gradients agree with
//! finite differences; acting and the minibatch pass see the same numbers; state and
//! checkpoint names round-trip bit for bit; bf16 passes agree with f32 to bf16's rounding.

use candle_core::{Device, Tensor};
use marl::algo::ppo::{names, LossConfig};
use marl::backend::candle::CandleBackend;
use marl::backend::layout::{GroupLayout, SavedOptimizer};
use marl::backend::{
    self, ActorOut, Backend, BackendKind, Channels, CriticRows, GroupShape, GroupState, LossCoefs,
    MessageMode, Minibatch, NetShape, OptimShape, Precision, Recurrence, RowOutputs, Run, SeqBatch,
    SharedStates, SideShape, StepInputs,
};
use marl::config::{CommKind, OptimizerKind, ValueLoss};
use marl::nn::comm::CommLayers;
use marl::nn::dist::MASKED_LOGIT;
use marl::train::learner::{EpisodeStats, GroupStats, Learner};
use marl_envs::ActionSpace;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{self, smoke};

/// The config knob that selects a backend on the CPU.
fn knob(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Cpu => "network.cpu_fast_path=true",
        BackendKind::Candle => "network.cpu_fast_path=false",
    }
}

type Update = (Vec<GroupStats>, Vec<(String, Tensor)>);

/// One collect-and-update of the smoke config with `sets` on backend `kind` on `dev`: the
/// statistics and the networks after it.
fn one_update(sets: &[&str], kind: BackendKind, dev: &Device) -> Update {
    let mut all = vec!["network.layer_norm=false", "ppo.ppo_epochs=2"];
    // Later sets win: a variant may turn the LayerNorms back on.
    all.extend_from_slice(sets);
    all.push(knob(kind));
    let cfg = smoke(&all);
    let mut l = Learner::for_training(cfg.clone(), dev.clone()).expect("learner");
    for gi in 0..cfg.groups.len() {
        assert_eq!(l.backend_kind(gi), Some(kind), "{sets:?}: group {gi}");
    }
    l.reset_envs(cfg.seed()).expect("reset");
    let mut stats = EpisodeStats::of_agents(cfg.spec.num_agents());
    l.collect(&mut stats).expect("collect");
    l.advantages();
    let st = l.update(0.01).expect("update");
    let ck = l.checkpoint(1, 200, 0).expect("checkpoint");
    (st, ck.model)
}

/// Every network the config allows, each on top of a plain MAPPO smoke run.
const VARIANTS: &[&[&str]] = &[
    // Communicating actors: CommNet's mean over 2 rounds; TarMAC's attention over 3 rounds,
    // per agent, Gaussian; one round in two groups (tag: the adversaries talk); recurrent
    // over chunks (whole environment chunks per minibatch).
    &["algo.enable_communication=true"],
    &[
        "algo.enable_communication=true",
        "algo.communication=\"attention\"",
        "algo.communication_rounds=3",
        "algo.communication_dim=8",
        "algo.share_actor_params=false",
        "env.params.continuous_actions=true",
    ],
    &[
        "algo.enable_communication=true",
        "algo.communication_rounds=1",
        "env.id=\"mpe/simple_tag_v3\"",
    ],
    &[
        "algo.enable_communication=true",
        "algo.communication=\"attention\"",
        "network.recurrent=\"gru\"",
        "network.hidden=[16]",
        "network.recurrent_hidden=16",
        "network.data_chunk_length=5",
        "env.params.max_cycles=10",
    ],
    // MAPPO: clipped Huber on normalized values, separate Adams, batch advantage norm.
    &["ppo.clip_value_loss=true"],
    // on-policy's MLP with LayerNorms.
    &["network.layer_norm=true"],
    // IPPO (JaxMARL): MSE, one joint Adam, per-minibatch advantage norm, no value norm.
    &[
        "algo.centralized_training=false",
        "ppo.optimizer=\"joint\"",
        "ppo.value_loss=\"mse\"",
        "ppo.advantage_norm=\"minibatch\"",
        "ppo.value_norm=false",
        "ppo.max_grad_norm=0.5",
    ],
    // Action masks (LBF) and ReLU.
    &[
        "env.id=\"lbf/Foraging-5x5-2p-1f-coop-v3\"",
        "network.activation=\"relu\"",
    ],
    // Two groups (tag: adversaries and prey).
    &["env.id=\"mpe/simple_tag_v3\""],
    // Gaussian actors.
    &["env.params.continuous_actions=true"],
    // One actor and one critic per agent.
    &[
        "algo.share_actor_params=false",
        "algo.share_critic_params=false",
    ],
    // Per-agent Gaussian actors with LayerNorms and a joint optimizer.
    &[
        "algo.share_actor_params=false",
        "algo.share_critic_params=false",
        "env.params.continuous_actions=true",
        "network.layer_norm=true",
        "ppo.optimizer=\"joint\"",
    ],
    // Learned agent embeddings, also through an input LayerNorm.
    &["algo.agent_id=\"embedding\""],
    &["algo.agent_id=\"embedding\"", "network.layer_norm=true"],
    // No agent id (shared rewards).
    &["algo.agent_id=\"none\"", "algo.reward_sharing=\"shared\""],
    // Gradient accumulation, shared and per agent.
    &["ppo.grad_accum_steps=2"],
    &["ppo.grad_accum_steps=2", "algo.share_actor_params=false"],
    // Critics on agent-specific states (the state after the own observation, written out).
    &["algo.critic_state=\"agent_specific\""],
    // Per-agent loss metrics and critics that see the others' actions.
    &[
        "logging.log_agent_metrics=true",
        "algo.critic_other_actions=true",
    ],
    // Heterogeneous groups with Gaussian actors.
    &[
        "env.id=\"mpe/simple_speaker_listener_v4\"",
        "env.params.continuous_actions=true",
    ],
    // Recurrent (JaxMARL's Dense -> GRU -> Dense): chunks of 5 steps, episodes of 10.
    &[
        "network.recurrent=\"gru\"",
        "network.hidden=[16]",
        "network.recurrent_hidden=16",
        "network.hidden_after=[16]",
        "network.data_chunk_length=5",
        "env.params.max_cycles=10",
    ],
    // Recurrent (on-policy's MLP -> GRU -> LayerNorm), embeddings, the whole rollout as one
    // sequence.
    &[
        "network.recurrent=\"gru\"",
        "network.layer_norm=true",
        "network.recurrent_hidden=16",
        "network.data_chunk_length=0",
        "algo.agent_id=\"embedding\"",
    ],
    // Recurrent per-agent Gaussian actors, gradient accumulation.
    &[
        "network.recurrent=\"gru\"",
        "network.hidden=[]",
        "network.recurrent_hidden=8",
        "algo.share_actor_params=false",
        "algo.share_critic_params=false",
        "env.params.continuous_actions=true",
        "ppo.grad_accum_steps=2",
        "network.data_chunk_length=25",
    ],
];

/// One update of every variant on `kind` on `dev` against the reference: the same losses and
/// (to float rounding, amplified a little by Adam) the same weights.
fn agreement(kind: BackendKind, dev: &Device) {
    for sets in VARIANTS {
        let (sa, ma) = one_update(sets, kind, dev);
        let (sb, mb) = one_update(sets, BackendKind::Candle, &Device::Cpu);
        for (a, b) in sa.iter().zip(&sb) {
            for (name, y) in b.terms.iter() {
                let x = a.terms.get(name).expect("the same terms");
                assert!(
                    (x - y).abs() <= 1e-4 * (1.0 + y.abs()) || (x.is_nan() && y.is_nan()),
                    "{sets:?} {name}: {x} vs {y}"
                );
            }
            for (x, y) in a.agent_policy_loss.iter().zip(&b.agent_policy_loss) {
                assert!(
                    (x - y).abs() <= 1e-4 * (1.0 + y.abs()) || (x.is_nan() && y.is_nan()),
                    "{sets:?} agent loss: {x} vs {y}"
                );
            }
        }
        assert_eq!(ma.len(), mb.len());
        for ((na, ta), (nb, tb)) in ma.iter().zip(&mb) {
            assert_eq!(na, nb);
            let a: Vec<f32> = ta.flatten_all().expect("t").to_vec1().expect("v");
            let b: Vec<f32> = tb.flatten_all().expect("t").to_vec1().expect("v");
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-4, "{sets:?} {na}: weights differ by {worst}");
        }
    }
}

/// How a small group is built.
#[derive(Debug, Clone, Copy)]
struct Small {
    discrete: bool,
    shared: bool,
    embedding: bool,
    ln: bool,
    /// A GRU between the hidden layers and (with `after`) more dense layers.
    recurrent: bool,
    /// Actors that talk: aggregation and rounds (width 7, messages of 3, keys of 2).
    comm: Option<(CommKind, usize)>,
}

/// A small group: 3 agents, shared or per-agent networks, an optional learned embedding,
/// LayerNorms or not, categorical (4 actions) or Gaussian (2) actors, feed-forward or
/// recurrent.
fn small_shape(c: Small) -> GroupShape {
    let emb = (c.shared && c.embedding).then_some((3, 2));
    let side = |kind: &str, in_dim, out_dim, head_gain, log_std| SideShape {
        prefix: format!("g.{kind}"),
        n_nets: if c.shared { 1 } else { 3 },
        net: NetShape {
            in_dim,
            hidden: if c.recurrent { vec![7] } else { vec![7, 5] },
            out_dim,
            relu: false,
            layer_norm: c.ln,
            head_gain,
            recurrent: c.recurrent.then(|| Recurrence {
                width: 6,
                after: vec![5],
            }),
        },
        embedding: emb,
        log_std,
        comm: None,
    };
    let (space, out, log_std) = if c.discrete {
        (ActionSpace::Discrete(4), 4, None)
    } else {
        (
            ActionSpace::Box {
                dim: 2,
                low: 0.0,
                high: 1.0,
            },
            2,
            Some(2),
        )
    };
    let mut actor = side("actor", 6, out, 0.5, log_std);
    actor.comm = c.comm.map(|(kind, rounds)| CommLayers {
        in_dim: 6,
        width: 7,
        dim: 3,
        rounds,
        kind,
        key_dim: if kind == CommKind::Attention { 2 } else { 0 },
    });
    if c.comm.is_some() {
        // The first hidden layer is the messages' encoder; the network reads its state.
        actor.net.in_dim = 7;
        actor.net.hidden.remove(0);
    }
    GroupShape {
        name: "g".into(),
        n_agents: 3,
        action_space: space,
        actor,
        critic: side("critic", 9, 1, 1.0, None),
        log_std_init: -0.5,
        optim: OptimShape {
            kind: OptimizerKind::Separate,
            learning_rate: 1e-2,
            critic_learning_rate: 1e-2,
            adam_eps: 1e-5,
            max_grad_norm: 0.0,
        },
        precision: Precision::F32,
    }
}

/// A random starting point: the initialization with noise on every parameter (so that
/// LayerNorm scales, embeddings and log-stds are away from their initial values).
fn noisy_init(shape: &GroupShape, rng: &mut ChaCha8Rng) -> GroupState {
    let mut s = shape.init(rng);
    for v in s.actor.values.iter_mut().chain(s.critic.values.iter_mut()) {
        *v += rng.random_range(-0.3f32..0.3);
    }
    s
}

/// Owned minibatch data.
#[derive(Clone)]
struct Data {
    rows: usize,
    x_actor: Vec<f32>,
    x_critic: Vec<f32>,
    actions: Vec<f32>,
    mask_bias: Option<Vec<f32>>,
    old_logp: Vec<f32>,
    old_values: Vec<f32>,
    active: Vec<f32>,
    advantages: Vec<f32>,
    targets: Vec<f32>,
    agents: Vec<u32>,
    runs: Vec<Run>,
    /// Recurrent: steps per sequence, reset flags, initial states.
    seq: Option<Seqs>,
    /// Critic rows given as shared states (the rows `x_critic` writes out).
    shared: Option<Shared>,
    /// Communicating actors: each channel's rows (the agents of one environment step).
    members: Option<Vec<u32>>,
}

/// Critic rows as shared states: the distinct states, their width, each row's state, each
/// row's own columns.
#[derive(Clone)]
struct Shared {
    states: Vec<f32>,
    dim: usize,
    of_row: Vec<u32>,
    own: Vec<f32>,
}

/// Steps per sequence, reset flags per row, the actor's and the critic's initial states.
type Seqs = (usize, Vec<f32>, Vec<f32>, Vec<f32>);

/// Steps per sequence and sequences per agent of the recurrent minibatches.
const SEQ_LEN: usize = 4;
const SEQS_PER_AGENT: usize = 2;

impl Data {
    /// Random rows: feed-forward, `rows` rows, agent-major (sorted) or shuffled; recurrent,
    /// `SEQS_PER_AGENT` sequences of `SEQ_LEN` steps per agent (owned in order when sorted, or
    /// by random agents), one time-major block per agent for per-agent networks or one block of
    /// all, with resets inside.
    fn random(shape: &GroupShape, rows: usize, sorted: bool, rng: &mut ChaCha8Rng) -> Self {
        let uni = |n: usize, rng: &mut ChaCha8Rng| -> Vec<f32> {
            (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
        };
        let recurrent = shape.actor.state_width().is_some();
        let (rows, agents, runs) = if recurrent {
            let (l, s) = (SEQ_LEN, SEQS_PER_AGENT * shape.n_agents);
            let rows = l * s;
            // Sequence j belongs to agent j / SEQS_PER_AGENT (sorted), or a random one.
            let owner: Vec<u32> = (0..s)
                .map(|j| {
                    if sorted {
                        (j / SEQS_PER_AGENT) as u32
                    } else {
                        rng.random_range(0..shape.n_agents as u32)
                    }
                })
                .collect();
            let mut agents = vec![0u32; rows];
            let mut runs = Vec::new();
            if shape.actor.n_nets > 1 {
                // One block per agent, each time-major.
                for k in 0..shape.n_agents {
                    let start = k * l * SEQS_PER_AGENT;
                    runs.push(Run {
                        agent: k,
                        start,
                        len: l * SEQS_PER_AGENT,
                    });
                    agents[start..start + l * SEQS_PER_AGENT].fill(k as u32);
                }
            } else {
                runs.push(Run {
                    agent: 0,
                    start: 0,
                    len: rows,
                });
                for t in 0..l {
                    agents[t * s..(t + 1) * s].copy_from_slice(&owner);
                }
            }
            (rows, agents, runs)
        } else {
            let per = rows / shape.n_agents;
            let agents: Vec<u32> = if sorted {
                (0..rows).map(|r| (r / per) as u32).collect()
            } else {
                (0..rows)
                    .map(|_| rng.random_range(0..shape.n_agents as u32))
                    .collect()
            };
            let mut runs: Vec<Run> = Vec::new();
            for (pos, &a) in agents.iter().enumerate() {
                match runs.last_mut() {
                    Some(r) if r.agent == a as usize => r.len += 1,
                    _ => runs.push(Run {
                        agent: a as usize,
                        start: pos,
                        len: 1,
                    }),
                }
            }
            (rows, agents, runs)
        };
        let (actions, mask_bias) = match shape.action_space {
            ActionSpace::Discrete(n) => {
                let acts: Vec<f32> = (0..rows).map(|_| rng.random_range(0..n) as f32).collect();
                // Mask one action (never the one taken) in every other row.
                let mut bias = vec![0.0f32; rows * n];
                for r in (0..rows).step_by(2) {
                    let masked = (acts[r] as usize + 1) % n;
                    bias[r * n + masked] = MASKED_LOGIT;
                }
                (acts, Some(bias))
            }
            ActionSpace::Box { dim, .. } => (uni(rows * dim, rng), None),
        };
        let seq = recurrent.then(|| {
            let n_seq = rows / SEQ_LEN;
            let starts = (0..rows)
                .map(|_| {
                    if rng.random_range(0..5) == 0 {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let wa = shape.actor.state_width().unwrap_or(0);
            let wc = shape.critic.state_width().unwrap_or(0);
            (SEQ_LEN, starts, uni(n_seq * wa, rng), uni(n_seq * wc, rng))
        });
        let mut active = vec![1.0f32; rows];
        active[1] = 0.0;
        Self {
            rows,
            x_actor: uni(rows * shape.actor.host_in(), rng),
            x_critic: uni(rows * shape.critic.net.in_dim, rng),
            actions,
            mask_bias,
            old_logp: vec![0.0; rows],
            old_values: uni(rows, rng),
            active,
            advantages: uni(rows, rng),
            targets: uni(rows, rng),
            agents,
            runs,
            members: shape
                .actor
                .comm
                .is_some()
                .then(|| channel_members(shape, rows, sorted)),
            seq,
            shared: None,
        }
    }

    /// The critic rows as the backend gets them.
    fn critic_rows(&self) -> CriticRows<'_> {
        match &self.shared {
            Some(s) => CriticRows {
                own: &s.own,
                states: Some(SharedStates {
                    values: &s.states,
                    dim: s.dim,
                    of_row: &s.of_row,
                }),
            },
            None => CriticRows::whole(&self.x_critic),
        }
    }

    fn minibatch(&self) -> Minibatch<'_> {
        Minibatch {
            rows: self.rows,
            x_actor: &self.x_actor,
            x_critic: self.critic_rows(),
            actions: &self.actions,
            mask_bias: self.mask_bias.as_deref(),
            old_logp: &self.old_logp,
            old_values: &self.old_values,
            active: &self.active,
            advantages: &self.advantages,
            targets: &self.targets,
            agents: &self.agents,
            runs: &self.runs,
            seq: self.seq.as_ref().map(|(len, starts, ha, hc)| SeqBatch {
                len: *len,
                starts,
                h0_actor: ha,
                h0_critic: hc,
            }),
            channels: self.members.as_ref().map(|m| Channels {
                members: m,
                n_members: 3,
                live: &self.active,
            }),
        }
    }
}

/// The channels of sorted rows (agent-major, as a rollout step's; recurrent: sequence `s` of
/// each agent at step `t` is one channel): member `k` of a channel is agent `k`'s row.
fn channel_members(shape: &GroupShape, rows: usize, sorted: bool) -> Vec<u32> {
    assert!(sorted, "channels need whole environment steps: sorted rows");
    let n = shape.n_agents;
    let mut members = Vec::new();
    match shape.actor.state_width() {
        None => {
            let per = rows / n;
            for e in 0..per {
                members.extend((0..n).map(|k| (k * per + e) as u32));
            }
        }
        Some(_) => {
            let (l, spa) = (SEQ_LEN, SEQS_PER_AGENT);
            let s_all = spa * n;
            for t in 0..l {
                for s in 0..spa {
                    members.extend((0..n).map(|k| {
                        if shape.actor.n_nets > 1 {
                            k * l * spa + t * spa + s
                        } else {
                            t * s_all + k * spa + s
                        }
                    } as u32));
                }
            }
        }
    }
    members
}

const COEFS: LossCoefs = LossCoefs {
    // No value clipping: its max() has a kink exactly where finite differences would probe.
    loss: LossConfig {
        clip_epsilon: 0.2,
        clip_value_loss: false,
        value_loss: ValueLoss::Huber,
        huber_delta: 10.0,
    },
    entropy_coef: 0.01,
    value_coef: 0.5,
};

/// The total loss the gradient is of.
fn total_loss(b: &mut dyn Backend, d: &Data) -> f64 {
    let t = b.accumulate(&d.minibatch(), &COEFS, None).expect("loss");
    let get = |n: &str| t.get(n).expect("term");
    get(names::POLICY_LOSS) - COEFS.entropy_coef * get(names::ENTROPY)
        + COEFS.value_coef * get(names::VALUE_LOSS)
}

/// The accumulated gradient equals central finite differences of the loss, for every
/// parameter of small networks of every kind (categorical and Gaussian, shared with an
/// embedding and per agent, with and without LayerNorms, feed-forward and recurrent with
/// resets inside the sequences).
fn finite_differences(kind: BackendKind, dev: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mean, attention) = (Some((CommKind::Mean, 2)), Some((CommKind::Attention, 2)));
    for (discrete, shared, ln, recurrent, comm) in [
        (true, true, false, false, None),
        (true, true, true, false, None),
        (true, false, false, false, None),
        (false, true, true, false, None),
        (false, false, false, false, None),
        (true, true, false, true, None),
        (true, false, true, true, None),
        (false, true, true, true, None),
        // Through the message path: every sender's layers get each receiver's loss.
        (true, true, false, false, mean),
        (true, true, false, false, attention),
        (false, false, true, false, Some((CommKind::Mean, 1))),
        (true, false, false, false, Some((CommKind::Attention, 3))),
        (true, true, false, true, mean),
        (false, false, false, true, attention),
    ] {
        let c = Small {
            discrete,
            shared,
            embedding: shared,
            ln,
            recurrent,
            comm,
        };
        let shape = small_shape(c);
        let state = noisy_init(&shape, &mut rng);
        let mut d = Data::random(&shape, 12, !shared || comm.is_some(), &mut rng);
        let build = |s: &GroupState| backend::build(kind, &shape, s, dev, 1).expect("backend");
        // Old log-probabilities near the current ones: ratios inside the clip range.
        let mut b = build(&state);
        let (mut logp, mut values) = (vec![0.0; d.rows], vec![0.0; d.rows]);
        let rows = RowOutputs {
            logp: &mut logp,
            values: &mut values,
        };
        b.accumulate(&d.minibatch(), &COEFS, Some(rows))
            .expect("loss");
        for (old, new) in d.old_logp.iter_mut().zip(&logp) {
            *old = new + rng.random_range(-0.05f32..0.05);
        }
        let mut b = build(&state);
        b.accumulate(&d.minibatch(), &COEFS, None).expect("loss");
        let [ga, gc] = b.pending_gradient().expect("gradient");
        // Small steps: a Gaussian's ratio moves fast and must not cross the clip's kink.
        let h = 2e-3f32;
        let mut prober = build(&state);
        let mut moved = state.clone();
        for (side, grad) in [(0, &ga), (1, &gc)] {
            let n = grad.len();
            for j in 0..n {
                let mut probe = |delta: f32| {
                    let v = if side == 0 {
                        &mut moved.actor.values
                    } else {
                        &mut moved.critic.values
                    };
                    let kept = v[j];
                    v[j] += delta;
                    prober.load_state(&moved, false).expect("load");
                    let v = if side == 0 {
                        &mut moved.actor.values
                    } else {
                        &mut moved.critic.values
                    };
                    v[j] = kept;
                    total_loss(prober.as_mut(), &d)
                };
                let fd = (probe(h) - probe(-h)) / (2.0 * f64::from(h));
                let g = f64::from(grad[j]);
                assert!(
                    (fd - g).abs() <= 2e-3 + 2e-2 * g.abs(),
                    "{kind:?} {c:?}: side {side} param {j}/{n}: finite difference {fd} vs \
                     gradient {g}"
                );
            }
        }
    }
}

/// The log-probability of `actions` under an actor output, as the rollout computes it.
fn acted_logp(
    space: &ActionSpace,
    out: &ActorOut,
    mask: Option<&[f32]>,
    actions: &[f32],
) -> Vec<f32> {
    match *space {
        ActionSpace::Discrete(n) => {
            let mut lp = Vec::new();
            marl::nn::dist::log_softmax_rows(&out.out, mask, n, &mut lp);
            (0..lp.len() / n)
                .map(|r| lp[r * n + actions[r] as usize])
                .collect()
        }
        ActionSpace::Box { dim, .. } => (0..out.out.len() / dim)
            .map(|r| {
                let (mu, ls) = (&out.out[r * dim..][..dim], &out.log_std[r * dim..][..dim]);
                let a = &actions[r * dim..][..dim];
                let mut sq = 0.0f32;
                let mut ls_sum = 0.0f32;
                for j in 0..dim {
                    let z = (a[j] - mu[j]) * (-ls[j]).exp();
                    sq += z * z;
                    ls_sum += ls[j];
                }
                -0.5 * sq - (ls_sum + dim as f32 * 0.918_938_5)
            })
            .collect(),
    }
}

/// A policy stepped one step at a time, as a rollout does, gives the log-probabilities and
/// values that the training pass computes for the same rows: equal on the CPU backend (the
/// same arithmetic), to rounding on candle; for recurrent networks over whole sequences from
/// their initial states, with resets inside.
fn acting_and_training_agree(kind: BackendKind, dev: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let tol = if kind == BackendKind::Cpu { 0.0 } else { 1e-5 };
    let (mean, attention) = (Some((CommKind::Mean, 2)), Some((CommKind::Attention, 3)));
    for (discrete, shared, embedding, recurrent, comm) in [
        (true, true, true, false, None),
        (true, false, false, false, None),
        (false, true, false, false, None),
        (true, true, true, true, None),
        (true, false, false, true, None),
        (false, true, false, true, None),
        // Messages exchanged while acting equal those recomputed in training (an agent done
        // early, row 1, neither sends nor receives in both).
        (true, true, true, false, mean),
        (true, false, false, false, attention),
        (false, true, false, true, attention),
        (true, false, false, true, mean),
    ] {
        let c = Small {
            discrete,
            shared,
            embedding,
            ln: true,
            recurrent,
            comm,
        };
        let shape = small_shape(c);
        let state = noisy_init(&shape, &mut rng);
        let mut b = backend::build(kind, &shape, &state, dev, 2).expect("backend");
        // Sorted data: sequence (or row) j belongs to agent j / per-agent count, which is the
        // agent-major order of a rollout step's rows.
        let d = Data::random(&shape, 12, true, &mut rng);
        let (len, per_step) = match &d.seq {
            Some((len, ..)) => (*len, d.rows / len),
            None => (1, d.rows),
        };
        // Row of the minibatch for step t, rollout row j (blocks per agent when unshared).
        let per_agent = per_step / shape.n_agents;
        let mb_row = |t: usize, j: usize| {
            if shared {
                t * per_step + j
            } else {
                let k = j / per_agent;
                k * len * per_agent + t * per_agent + j % per_agent
            }
        };
        let (wa, wc) = (
            shape.actor.state_width().unwrap_or(0),
            shape.critic.state_width().unwrap_or(0),
        );
        let (mut ha, mut hc) = match &d.seq {
            Some((_, _, h0a, h0c)) => (h0a.clone(), h0c.clone()),
            None => (Vec::new(), Vec::new()),
        };
        let (mut acted, mut valued) = (vec![0.0f32; d.rows], vec![0.0f32; d.rows]);
        for t in 0..len {
            let rows: Vec<usize> = (0..per_step).map(|j| mb_row(t, j)).collect();
            let pick = |src: &[f32], w: usize| -> Vec<f32> {
                rows.iter()
                    .flat_map(|&r| src[r * w..(r + 1) * w].iter().copied())
                    .collect()
            };
            if let Some((_, starts, ..)) = &d.seq {
                for (j, &r) in rows.iter().enumerate() {
                    if starts[r] == 1.0 {
                        ha[j * wa..(j + 1) * wa].fill(0.0);
                        hc[j * wc..(j + 1) * wc].fill(0.0);
                    }
                }
            }
            let (xa, xc) = (pick(&d.x_actor, 6), pick(&d.x_critic, 9));
            let live = pick(&d.active, 1);
            let mut out = ActorOut::default();
            let mut values = vec![0.0; per_step];
            let step = StepInputs {
                rows: per_step,
                x_actor: &xa,
                live: &live,
                x_critic: CriticRows::whole(&xc),
                actor_state: &mut ha,
                critic_state: &mut hc,
            };
            b.act_and_values(step, &mut out, &mut values).expect("act");
            let aw = d.actions.len() / d.rows;
            let mask = d.mask_bias.as_ref().map(|m| pick(m, m.len() / d.rows));
            let logp = acted_logp(
                &shape.action_space,
                &out,
                mask.as_deref(),
                &pick(&d.actions, aw),
            );
            for (j, &r) in rows.iter().enumerate() {
                acted[r] = logp[j];
                valued[r] = values[j];
            }
        }
        let (mut logp, mut values) = (vec![0.0; d.rows], vec![0.0; d.rows]);
        let rows = RowOutputs {
            logp: &mut logp,
            values: &mut values,
        };
        b.accumulate(&d.minibatch(), &COEFS, Some(rows))
            .expect("loss");
        for r in 0..d.rows {
            for (what, a, t) in [
                ("log-prob", acted[r], logp[r]),
                ("value", valued[r], values[r]),
            ] {
                assert!(
                    (a - t).abs() <= tol * (1.0 + t.abs()),
                    "{kind:?} {c:?} row {r} {what}: acting {a}, training {t}"
                );
            }
        }
    }
}

/// What a backend acts and values on `rows` rows of `d` (zero recurrent states).
fn step_outputs(b: &mut dyn Backend, shape: &GroupShape, d: &Data, rows: usize) -> Vec<f32> {
    let (wa, wc) = (
        shape.actor.state_width().unwrap_or(0),
        shape.critic.state_width().unwrap_or(0),
    );
    let (mut ha, mut hc) = (vec![0.0; rows * wa], vec![0.0; rows * wc]);
    let mut out = ActorOut::default();
    let mut values = vec![0.0; rows];
    let step = StepInputs {
        rows,
        x_actor: &d.x_actor[..rows * 6],
        live: &[],
        x_critic: CriticRows::whole(&d.x_critic[..rows * 9]),
        actor_state: &mut ha,
        critic_state: &mut hc,
    };
    b.act_and_values(step, &mut out, &mut values).expect("act");
    [out.out, out.log_std, values, ha, hc].concat()
}

/// After an optimizer step or a loaded state, acting reads the new parameters: what a
/// backend that acted before gives equals what a fresh backend built from the same state
/// gives (the CPU backend keeps packed weights between a rollout's steps).
fn acting_follows_the_parameters(kind: BackendKind, dev: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for (discrete, shared, recurrent, comm) in [
        (true, true, false, None),
        (false, false, false, None),
        (true, true, true, None),
        (true, true, false, Some((CommKind::Attention, 2))),
    ] {
        let shape = small_shape(Small {
            discrete,
            shared,
            embedding: false,
            ln: false,
            recurrent,
            comm,
        });
        let state = noisy_init(&shape, &mut rng);
        let mut b = backend::build(kind, &shape, &state, dev, 1).expect("backend");
        let d = Data::random(&shape, 12, !shared || comm.is_some(), &mut rng);
        let rows = 2 * shape.n_agents;
        let before = step_outputs(b.as_mut(), &shape, &d, rows);
        b.accumulate(&d.minibatch(), &COEFS, None).expect("loss");
        b.step(1).expect("step");
        let stepped = step_outputs(b.as_mut(), &shape, &d, rows);
        let fresh_state = b.state().expect("state");
        let mut fresh = backend::build(kind, &shape, &fresh_state, dev, 1).expect("backend");
        assert_ne!(before, stepped, "{kind:?}: the step changed nothing");
        assert_eq!(
            stepped,
            step_outputs(fresh.as_mut(), &shape, &d, rows),
            "{kind:?} discrete {discrete} shared {shared} recurrent {recurrent}: after a step"
        );
        b.load_state(&state, false).expect("load");
        assert_eq!(
            before,
            step_outputs(b.as_mut(), &shape, &d, rows),
            "{kind:?} discrete {discrete} shared {shared} recurrent {recurrent}: after a load"
        );
    }
}

/// What receivers get when acting (`marl eval --messages`): zeros give exactly what agents
/// that hear nobody act on (every other agent not live); shuffled aggregates come from another
/// environment, so where every environment holds the same rows they change nothing; and the
/// messages matter (zeros act otherwise than the messages as sent).
fn message_modes(kind: BackendKind, dev: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for comm in [(CommKind::Mean, 2), (CommKind::Attention, 3)] {
        let shape = small_shape(Small {
            discrete: true,
            shared: true,
            embedding: false,
            ln: false,
            recurrent: false,
            comm: Some(comm),
        });
        let state = noisy_init(&shape, &mut rng);
        let n_envs = 4;
        let rows = n_envs * shape.n_agents;
        let x: Vec<f32> = (0..rows * 6)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let act = |mode: MessageMode, x: &[f32], live: &[f32]| {
            let mut b = backend::build(kind, &shape, &state, dev, 1).expect("backend");
            b.set_message_mode(mode);
            let mut out = ActorOut::default();
            b.act(x, rows, live, &mut out, &mut []).expect("act");
            out.out
        };
        let sent = act(MessageMode::Sent, &x, &[]);
        let zero = act(MessageMode::Zero, &x, &[]);
        let alone = act(MessageMode::Sent, &x, &vec![0.0; rows]);
        assert_ne!(sent, zero, "{kind:?} {comm:?}: the messages change nothing");
        let tol = if kind == BackendKind::Cpu { 0.0 } else { 1e-6 };
        for (a, b) in zero.iter().zip(&alone) {
            assert!(
                (a - b).abs() <= tol,
                "{kind:?} {comm:?}: zeros {a}, alone {b}"
            );
        }
        // Every environment the same (rows agent-major: agent k's rows k * n_envs + e).
        let same: Vec<f32> = (0..rows)
            .flat_map(|r| {
                let k = r / n_envs;
                x[k * n_envs * 6..k * n_envs * 6 + 6].to_vec()
            })
            .collect();
        let shuffled = act(MessageMode::Shuffle, &same, &[]);
        let sent_same = act(MessageMode::Sent, &same, &[]);
        for (a, b) in shuffled.iter().zip(&sent_same) {
            assert!(
                (a - b).abs() <= tol,
                "{kind:?} {comm:?}: shuffled {a}, sent {b}"
            );
        }
        let shuffled = act(MessageMode::Shuffle, &x, &[]);
        assert_ne!(
            shuffled, sent,
            "{kind:?} {comm:?}: shuffling changes nothing"
        );
    }
}

/// Parameters and optimizer state survive `state` -> checkpoint names -> `load_state` bit for
/// bit, after a few optimizer steps.
fn state_round_trips(kind: BackendKind, dev: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (discrete, shared, joint, recurrent, comm) in [
        (true, true, false, false, None),
        (false, false, true, false, None),
        (true, true, true, false, None),
        (true, false, false, true, None),
        (true, true, false, false, Some((CommKind::Attention, 2))),
        (false, false, true, true, Some((CommKind::Mean, 2))),
    ] {
        let mut shape = small_shape(Small {
            discrete,
            shared,
            embedding: shared,
            ln: true,
            recurrent,
            comm,
        });
        if joint {
            shape.optim.kind = OptimizerKind::Joint;
        }
        let state = noisy_init(&shape, &mut rng);
        let mut b = backend::build(kind, &shape, &state, dev, 1).expect("backend");
        let d = Data::random(&shape, 12, !shared || comm.is_some(), &mut rng);
        for _ in 0..3 {
            b.accumulate(&d.minibatch(), &COEFS, None).expect("loss");
            b.step(1).expect("step");
        }
        let before = b.state().expect("state");
        let layout = GroupLayout::of(&shape);
        let (mut model, mut opt) = (Vec::new(), Vec::new());
        let steps = layout
            .export(&before, &mut model, &mut opt)
            .expect("export");
        if recurrent {
            // PyTorch's nn.GRU names and shapes.
            let names: Vec<&str> = model.iter().map(|(n, _)| n.as_str()).collect();
            for name in ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"] {
                assert!(
                    names.iter().any(|n| n.ends_with(&format!("gru.{name}"))),
                    "{names:?}"
                );
            }
        }
        if let Some((kind, _)) = comm {
            // The message layers' documented names.
            let names: Vec<&str> = model.iter().map(|(n, _)| n.as_str()).collect();
            let sender = match kind {
                CommKind::Mean => "message",
                CommKind::Attention => "key",
            };
            for name in [
                "g.actor.comm.encoder.weight".to_string(),
                format!("g.actor.comm.rounds.1.{sender}.bias"),
                "g.actor.comm.rounds.1.update.weight".to_string(),
            ] {
                assert!(names.contains(&name.as_str()), "{name} in {names:?}");
            }
        }
        let model = model.into_iter().collect();
        let opt = opt.into_iter().collect();
        let saved = SavedOptimizer {
            tensors: &opt,
            steps,
        };
        let back = layout.import(&model, Some(saved)).expect("import");
        let mut fresh =
            backend::build(kind, &shape, &shape.init(&mut rng), dev, 1).expect("backend");
        fresh.load_state(&back, true).expect("load");
        assert_eq!(
            fresh.state().expect("state"),
            before,
            "{kind:?} joint {joint} recurrent {recurrent}"
        );
    }
}

/// The loss terms and the gradient of one minibatch.
fn loss_and_gradient(b: &mut dyn Backend, d: &Data) -> (Vec<(String, f64)>, Vec<f32>) {
    let terms = b.accumulate(&d.minibatch(), &COEFS, None).expect("loss");
    let terms = terms.iter().map(|(n, v)| (n.to_string(), v)).collect();
    let [ga, gc] = b.pending_gradient().expect("gradient");
    (terms, [ga, gc].concat())
}

/// bf16 passes (`ppo.use_mixed_precision`) give the f32 loss and gradient to bf16's rounding
/// and keep the parameters and Adam's moments f32. On CUDA through `backend::build`; on the
/// CPU, where `build` refuses bf16, through the candle backend itself (candle computes bf16 on
/// the CPU too, slowly), which is how the path is tested without a GPU.
fn bf16_agrees_with_f32(dev: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for (discrete, shared, ln, recurrent) in [
        (true, true, false, false),
        (false, false, true, false),
        (true, true, true, true),
    ] {
        let c = Small {
            discrete,
            shared,
            embedding: shared,
            ln,
            recurrent,
            comm: None,
        };
        let shape = small_shape(c);
        let bf16 = GroupShape {
            precision: Precision::Bf16,
            ..shape.clone()
        };
        let state = noisy_init(&shape, &mut rng);
        let d = Data::random(&shape, 48, !shared, &mut rng);
        let f32_ref = backend::build(BackendKind::Candle, &shape, &state, &Device::Cpu, 1);
        let (t32, g32) = loss_and_gradient(f32_ref.expect("f32 backend").as_mut(), &d);
        let mut b: Box<dyn Backend> = if dev.is_cpu() {
            Box::new(CandleBackend::new(&bf16, &state, dev).expect("bf16 candle backend"))
        } else {
            backend::build(BackendKind::Candle, &bf16, &state, dev, 1).expect("bf16 backend")
        };
        let (t16, g16) = loss_and_gradient(b.as_mut(), &d);
        for ((name, x), (_, y)) in t16.iter().zip(&t32) {
            assert!(
                (x - y).abs() <= 0.03 * (1.0 + y.abs()),
                "{c:?} {name}: bf16 {x} vs f32 {y}"
            );
        }
        assert_ne!(g16, g32, "{c:?}: the bf16 pass must round differently");
        // The gradient's direction and size, to bf16's rounding of every pass.
        let dot: f64 = g16.iter().zip(&g32).map(|(a, b)| f64::from(a * b)).sum();
        let norm = |g: &[f32]| g.iter().map(|x| f64::from(x * x)).sum::<f64>().sqrt();
        let cos = dot / (norm(&g16) * norm(&g32));
        assert!(cos > 0.995, "{c:?}: cosine of the gradients {cos}");
        assert!(
            (norm(&g16) / norm(&g32) - 1.0).abs() < 0.03,
            "{c:?}: gradient norms {} vs {}",
            norm(&g16),
            norm(&g32)
        );
        // f32 master weights and moments: after a step they hold bits bf16 cannot (its
        // values are f32s whose low 16 bits are zero), and moved by about the learning rate.
        b.step(1).expect("step");
        let after = b.state().expect("state");
        let f32_only = |v: &[f32]| v.iter().filter(|x| x.to_bits() & 0xffff != 0).count();
        for (what, v) in [
            ("parameters", &after.actor.values),
            ("first moments", &after.actor.m),
            ("second moments", &after.actor.v),
            ("critic parameters", &after.critic.values),
        ] {
            assert!(f32_only(v) > v.len() / 2, "{c:?}: {what} are not f32");
        }
        let moved = after.actor.values.iter().zip(&state.actor.values);
        assert!(
            moved.clone().any(|(a, b)| a != b) && moved.clone().all(|(a, b)| (a - b).abs() < 2e-2),
            "{c:?}: one step of learning rate 1e-2"
        );
    }
}

/// Width of the global state in the shared-state critics below.
const STATE_DIM: usize = 6;

/// A critic on shared global states, computed from each distinct state once (the factored
/// first layer), gives the values and gradients of the same rows written out whole: to f32
/// rounding, for critics whose rows end with one-hot ids, with a learned embedding and no
/// other columns, with the others' one-hot actions and ids, recurrent (dense layers before the
/// GRU), and under LayerNorms (written out by the backend). A rollout step's values from
/// shared states equal the training pass's (bit for bit on the CPU).
fn shared_states_match_whole_rows(kind: BackendKind, dev: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    // (own columns: one-hot ids, the others' 4-action one-hots, embedding, recurrent, LN)
    for (ids, others, embedding, recurrent, ln) in [
        (true, false, false, false, false),
        (false, false, true, false, false),
        (true, true, false, false, false),
        (false, true, true, false, false),
        (true, false, false, true, false),
        (true, true, false, false, true),
    ] {
        let mut shape = small_shape(Small {
            discrete: true,
            shared: true,
            embedding,
            ln,
            recurrent,
            comm: None,
        });
        let own_w = if ids { 3 } else { 0 } + if others { 2 * 4 } else { 0 };
        shape.critic.net.in_dim = STATE_DIM + own_w;
        let state = noisy_init(&shape, &mut rng);
        // Agent-major rows, as a rollout step's.
        let mut d = Data::random(&shape, 12, true, &mut rng);
        // Four distinct states, in random rows; own columns as the learner writes them.
        let n_states = 4;
        let states: Vec<f32> = (0..n_states * STATE_DIM)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let of_row: Vec<u32> = (0..d.rows)
            .map(|_| rng.random_range(0..n_states as u32))
            .collect();
        let mut own = vec![0.0f32; d.rows * own_w];
        for (r, row) in own.chunks_exact_mut(own_w.max(1)).enumerate().take(d.rows) {
            let mut at = 0;
            if others {
                for _ in 0..2 {
                    row[at + rng.random_range(0..4)] = 1.0;
                    at += 4;
                }
            }
            if ids {
                row[at + d.agents[r] as usize] = 1.0;
            }
        }
        let shared = Shared {
            states,
            dim: STATE_DIM,
            of_row,
            own,
        };
        let mut whole = Vec::new();
        d.shared = Some(shared.clone());
        d.critic_rows().write_out(d.rows, &mut whole);
        let case = format!("{kind:?} ids {ids} others {others} emb {embedding} rnn {recurrent}");

        // The minibatch pass: values and the critic's gradient.
        let pass = |d: &Data| {
            let mut b = backend::build(kind, &shape, &state, dev, 1).expect("backend");
            let (mut logp, mut values) = (vec![0.0; d.rows], vec![0.0; d.rows]);
            let rows = RowOutputs {
                logp: &mut logp,
                values: &mut values,
            };
            b.accumulate(&d.minibatch(), &COEFS, Some(rows))
                .expect("loss");
            let [_, gc] = b.pending_gradient().expect("gradient");
            (values, gc)
        };
        let (v_shared, g_shared) = pass(&d);
        let mut d_whole = d.clone();
        d_whole.shared = None;
        d_whole.x_critic = whole;
        let (v_whole, g_whole) = pass(&d_whole);
        for (r, (a, b)) in v_shared.iter().zip(&v_whole).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{case} row {r}: value {a} from shared states, {b} from whole rows"
            );
        }
        let scale = g_whole.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        for (j, (a, b)) in g_shared.iter().zip(&g_whole).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + scale),
                "{case} param {j}: gradient {a} from shared states, {b} from whole rows"
            );
        }
        assert!(scale > 0.0, "{case}: no gradient");

        // A rollout step: every row of the minibatch valued from shared states in one step.
        if !recurrent {
            let mut b = backend::build(kind, &shape, &state, dev, 1).expect("backend");
            let mut stepped = vec![0.0; d.rows];
            b.values(d.critic_rows(), d.rows, &mut stepped, &mut [])
                .expect("values");
            let tol = if kind == BackendKind::Cpu { 0.0 } else { 1e-5 };
            for (r, (a, t)) in stepped.iter().zip(&v_shared).enumerate() {
                assert!(
                    (a - t).abs() <= tol * (1.0 + t.abs()),
                    "{case} row {r}: stepped {a}, trained {t}"
                );
            }
        }
    }
}

/// `NAME => BODY` over backend `kind`, as [`common::per_device!`] or [`common::cpu_only!`]
/// expands them.
macro_rules! backend_suite {
    ($($name:ident => $kind:expr, $devices:ident);* $(;)?) => {$(
        mod $name {
            use super::*;

            common::$devices! {
                one_update_matches_the_reference_for_every_network_variant =>
                    |dev| agreement($kind, dev),
                gradients_equal_finite_differences => |dev| finite_differences($kind, dev),
                acting_and_training_see_the_same_log_probabilities =>
                    |dev| acting_and_training_agree($kind, dev),
                acting_after_a_step_or_a_load_reads_the_new_parameters =>
                    |dev| acting_follows_the_parameters($kind, dev),
                parameters_and_optimizer_state_round_trip_through_checkpoint_names =>
                    |dev| state_round_trips($kind, dev),
                a_critic_on_shared_states_matches_the_same_rows_written_out =>
                    |dev| shared_states_match_whole_rows($kind, dev),
                zeroed_or_shuffled_messages_reach_the_receivers_as_told =>
                    |dev| message_modes($kind, dev),
            }
        }
    )*};
}

// The hand-written backend is the CPU's; candle's autograd runs on every device.
backend_suite!(cpu => BackendKind::Cpu, cpu_only; candle => BackendKind::Candle, per_device);

/// The CPU backend hands part of a communicating actor's backward to the second core (each
/// layer's weight and input gradients side by side, from batches of a few thousand rows):
/// the loss terms and gradients equal one core's bit for bit.
mod two_cores {
    use super::*;

    #[test]
    fn a_talking_actors_gradient_on_two_cores_equals_one_cores() {
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        for (shared, comm) in [
            (true, (CommKind::Mean, 2)),
            (false, (CommKind::Attention, 2)),
            (true, (CommKind::Attention, 3)),
        ] {
            let shape = small_shape(Small {
                discrete: true,
                shared,
                embedding: false,
                ln: false,
                recurrent: false,
                comm: Some(comm),
            });
            let state = noisy_init(&shape, &mut rng);
            // 2,400 rows: every layer's products are past the size the split starts at.
            let d = Data::random(&shape, 2400, true, &mut rng);
            let [one, two] = [1, 2].map(|threads| {
                let mut b = backend::build(BackendKind::Cpu, &shape, &state, &Device::Cpu, threads)
                    .expect("backend");
                loss_and_gradient(b.as_mut(), &d)
            });
            assert!(two.1.iter().any(|&g| g != 0.0), "{comm:?}: no gradient");
            assert_eq!(one, two, "{comm:?} shared {shared}");
        }
    }
}

mod mixed_precision {
    use super::*;

    common::per_device! {
        bf16_passes_agree_with_f32_to_bf16_rounding => bf16_agrees_with_f32,
    }

    /// Both backends refuse bf16 off CUDA, naming the key and CUDA.
    #[test]
    fn bf16_is_refused_on_the_cpu() {
        let shape = GroupShape {
            precision: Precision::Bf16,
            ..small_shape(Small {
                discrete: true,
                shared: true,
                embedding: false,
                ln: false,
                recurrent: false,
                comm: None,
            })
        };
        let state = shape.init(&mut ChaCha8Rng::seed_from_u64(1));
        for kind in [BackendKind::Cpu, BackendKind::Candle] {
            let e = backend::build(kind, &shape, &state, &Device::Cpu, 1)
                .err()
                .expect("bf16 refused on the CPU");
            let e = e.to_string();
            assert!(
                e.contains("use_mixed_precision") && e.contains("CUDA only"),
                "{e}"
            );
        }
    }
}
