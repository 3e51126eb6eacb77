//! The backend suite, written once and run against every backend (`backend_suite!` below):
//! one whole update agrees with the reference (candle's autograd on the CPU) for every network
//! variant the config allows; gradients agree with finite differences; acting and the
//! minibatch pass see the same numbers; state and checkpoint names round-trip bit for bit.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use marl::algo::ppo::LossConfig;
use marl::backend::layout::{GroupLayout, SavedOptimizer};
use marl::backend::{
    self, ActorOut, Backend, BackendKind, GroupShape, GroupState, LossCoefs, Minibatch, NetShape,
    OptimShape, SideShape,
};
use marl::config::{self, OptimizerKind, TrainConfig, ValueLoss};
use marl::learner::{EpisodeStats, GroupStats};
use marl::nn::dist::MASKED_LOGIT;
use marl::trainer;
use marl_envs::ActionSpace;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn smoke(overrides: &[&str]) -> TrainConfig {
    let sets: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    TrainConfig::resolve(config::load(&repo("configs/smoke.toml"), &sets).expect("smoke config"))
        .expect("resolve")
}

/// The config knob that selects a backend on the CPU.
fn knob(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Cpu => "network.cpu_fast_path=true",
        BackendKind::Candle => "network.cpu_fast_path=false",
    }
}

type Update = (Vec<GroupStats>, Vec<(String, Tensor)>);

/// One collect-and-update of the smoke config with `sets` on backend `kind`: the statistics
/// and the networks after it.
fn one_update(sets: &[&str], kind: BackendKind) -> Update {
    let mut all = vec!["network.layer_norm=false", "ppo.ppo_epochs=2"];
    // Later sets win: a variant may turn the LayerNorms back on.
    all.extend_from_slice(sets);
    all.push(knob(kind));
    let cfg = smoke(&all);
    let mut l = trainer::build_learner(cfg.clone(), Device::Cpu).expect("learner");
    for gi in 0..cfg.groups.len() {
        assert_eq!(l.backend_kind(gi), Some(kind), "{sets:?}: group {gi}");
    }
    l.reset_envs(cfg.raw.seed).expect("reset");
    let mut stats = EpisodeStats {
        agent_return_sum: vec![0.0; cfg.spec.num_agents()],
        ..Default::default()
    };
    l.collect(&mut stats).expect("collect");
    l.advantages();
    let st = l.update(0.01).expect("update");
    let ck = l.checkpoint(1, 200, 0).expect("checkpoint");
    (st, ck.model)
}

/// Every network the config allows, each on top of a plain MAPPO smoke run.
const VARIANTS: &[&[&str]] = &[
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
];

/// One update of every variant on `kind` against the reference: the same losses and (to
/// float rounding, amplified a little by Adam) the same weights.
fn agreement(kind: BackendKind) {
    for sets in VARIANTS {
        let (sa, ma) = one_update(sets, kind);
        let (sb, mb) = one_update(sets, BackendKind::Candle);
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

/// A small group: 3 agents, shared or per-agent networks, an optional learned embedding,
/// LayerNorms or not, categorical (4 actions) or Gaussian (2) actors.
fn small_shape(discrete: bool, shared: bool, embedding: bool, ln: bool) -> GroupShape {
    let emb = (shared && embedding).then_some((3, 2));
    let side = |kind: &str, in_dim, out_dim, head_gain, log_std| SideShape {
        prefix: format!("g.{kind}"),
        n_nets: if shared { 1 } else { 3 },
        net: NetShape {
            in_dim,
            hidden: vec![7, 5],
            out_dim,
            relu: false,
            layer_norm: ln,
            head_gain,
        },
        embedding: emb,
        log_std,
    };
    let (space, out, log_std) = if discrete {
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
    GroupShape {
        name: "g".into(),
        n_agents: 3,
        action_space: space,
        actor: side("actor", 6, out, 0.5, log_std),
        critic: side("critic", 9, 1, 1.0, None),
        log_std_init: -0.5,
        optim: OptimShape {
            kind: OptimizerKind::Separate,
            learning_rate: 1e-2,
            critic_learning_rate: 1e-2,
            adam_eps: 1e-5,
            max_grad_norm: 0.0,
        },
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
    runs: Vec<(usize, usize, usize)>,
}

impl Data {
    /// `rows` random rows; agent-major (sorted) when `sorted`, else shuffled agents.
    fn random(shape: &GroupShape, rows: usize, sorted: bool, rng: &mut ChaCha8Rng) -> Self {
        let uni = |n: usize, rng: &mut ChaCha8Rng| -> Vec<f32> {
            (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
        };
        let per = rows / shape.n_agents;
        let agents: Vec<u32> = if sorted {
            (0..rows).map(|r| (r / per) as u32).collect()
        } else {
            (0..rows)
                .map(|_| rng.random_range(0..shape.n_agents as u32))
                .collect()
        };
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for (pos, &a) in agents.iter().enumerate() {
            match runs.last_mut() {
                Some(r) if r.0 == a as usize => r.2 += 1,
                _ => runs.push((a as usize, pos, 1)),
            }
        }
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
        let mut active = vec![1.0f32; rows];
        active[1] = 0.0;
        Self {
            rows,
            x_actor: uni(rows * shape.actor.net.in_dim, rng),
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
        }
    }

    fn minibatch(&self) -> Minibatch<'_> {
        Minibatch {
            rows: self.rows,
            x_actor: &self.x_actor,
            x_critic: &self.x_critic,
            actions: &self.actions,
            mask_bias: self.mask_bias.as_deref(),
            old_logp: &self.old_logp,
            old_values: &self.old_values,
            active: &self.active,
            advantages: &self.advantages,
            targets: &self.targets,
            agents: &self.agents,
            runs: &self.runs,
        }
    }
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
    get("policy_loss") - COEFS.entropy_coef * get("entropy") + COEFS.value_coef * get("value_loss")
}

/// The accumulated gradient equals central finite differences of the loss, for every
/// parameter of small networks of every kind (categorical and Gaussian, shared with an
/// embedding and per agent, with and without LayerNorms).
fn finite_differences(kind: BackendKind) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (discrete, shared, ln) in [
        (true, true, false),
        (true, true, true),
        (true, false, false),
        (false, true, true),
        (false, false, false),
    ] {
        let shape = small_shape(discrete, shared, shared, ln);
        let state = noisy_init(&shape, &mut rng);
        let mut d = Data::random(&shape, 12, !shared, &mut rng);
        let build =
            |s: &GroupState| backend::build(kind, &shape, s, &Device::Cpu, 1).expect("backend");
        // Old log-probabilities near the current ones: ratios inside the clip range.
        let mut b = build(&state);
        let mut logp = vec![0.0; d.rows];
        b.accumulate(&d.minibatch(), &COEFS, Some(&mut logp))
            .expect("loss");
        for (old, new) in d.old_logp.iter_mut().zip(&logp) {
            *old = new + rng.random_range(-0.05f32..0.05);
        }
        let mut b = build(&state);
        b.accumulate(&d.minibatch(), &COEFS, None).expect("loss");
        let [ga, gc] = b.pending_gradient().expect("gradient");
        let h = 1e-2f32;
        for (side, grad) in [(0, &ga), (1, &gc)] {
            let n = grad.len();
            for j in 0..n {
                let probe = |delta: f32| {
                    let mut s = state.clone();
                    let v = if side == 0 {
                        &mut s.actor.values
                    } else {
                        &mut s.critic.values
                    };
                    v[j] += delta;
                    total_loss(build(&s).as_mut(), &d)
                };
                let fd = (probe(h) - probe(-h)) / (2.0 * f64::from(h));
                let g = f64::from(grad[j]);
                assert!(
                    (fd - g).abs() <= 2e-3 + 2e-2 * g.abs(),
                    "{kind:?} discrete {discrete} shared {shared} ln {ln}: side {side} param {j}/{n}: \
                     finite difference {fd} vs gradient {g}"
                );
            }
        }
    }
}

/// The log-probabilities and values a rollout acts on equal those the update computes for the
/// same rows.
fn acting_and_training_agree(kind: BackendKind) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (discrete, shared, emb) in [
        (true, true, true),
        (true, false, false),
        (false, true, false),
    ] {
        let shape = small_shape(discrete, shared, emb, true);
        let state = noisy_init(&shape, &mut rng);
        let mut b = backend::build(kind, &shape, &state, &Device::Cpu, 2).expect("backend");
        let d = Data::random(&shape, 12, true, &mut rng);
        let mut out = ActorOut::default();
        let mut values = vec![0.0; d.rows];
        b.act_and_values(&d.x_actor, &d.x_critic, d.rows, &mut out, &mut values)
            .expect("act");
        let mut logp = vec![0.0; d.rows];
        b.accumulate(&d.minibatch(), &COEFS, Some(&mut logp))
            .expect("loss");
        let acted: Vec<f32> = match shape.action_space {
            ActionSpace::Discrete(n) => {
                let mut lp = Vec::new();
                marl::nn::dist::log_softmax_rows(&out.out, d.mask_bias.as_deref(), n, &mut lp);
                (0..d.rows)
                    .map(|r| lp[r * n + d.actions[r] as usize])
                    .collect()
            }
            ActionSpace::Box { dim, .. } => (0..d.rows)
                .map(|r| {
                    let (mu, ls) = (&out.out[r * dim..][..dim], &out.log_std[r * dim..][..dim]);
                    let a = &d.actions[r * dim..][..dim];
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
        };
        for (r, (a, t)) in acted.iter().zip(&logp).enumerate() {
            assert!(
                (a - t).abs() <= 1e-5,
                "{kind:?} row {r}: acting {a}, training {t}"
            );
        }
    }
}

/// Parameters and optimizer state survive `state` -> checkpoint names -> `load_state` bit for
/// bit, after a few optimizer steps.
fn state_round_trips(kind: BackendKind) {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (discrete, shared, joint) in [
        (true, true, false),
        (false, false, true),
        (true, true, true),
    ] {
        let mut shape = small_shape(discrete, shared, shared, true);
        if joint {
            shape.optim.kind = OptimizerKind::Joint;
        }
        let state = noisy_init(&shape, &mut rng);
        let mut b = backend::build(kind, &shape, &state, &Device::Cpu, 1).expect("backend");
        let d = Data::random(&shape, 12, !shared, &mut rng);
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
        let model = model.into_iter().collect();
        let opt = opt.into_iter().collect();
        let saved = SavedOptimizer {
            tensors: &opt,
            steps,
        };
        let back = layout.import(&model, Some(saved)).expect("import");
        let mut fresh =
            backend::build(kind, &shape, &shape.init(&mut rng), &Device::Cpu, 1).expect("backend");
        fresh.load_state(&back, true).expect("load");
        assert_eq!(
            fresh.state().expect("state"),
            before,
            "{kind:?} joint {joint}"
        );
    }
}

macro_rules! backend_suite {
    ($($name:ident => $kind:expr),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[test]
            fn one_update_matches_the_reference_for_every_network_variant() {
                agreement($kind);
            }

            #[test]
            fn gradients_equal_finite_differences() {
                finite_differences($kind);
            }

            #[test]
            fn acting_and_training_see_the_same_log_probabilities() {
                acting_and_training_agree($kind);
            }

            #[test]
            fn parameters_and_optimizer_state_round_trip_through_checkpoint_names() {
                state_round_trips($kind);
            }
        }
    )*};
}

backend_suite!(cpu => BackendKind::Cpu, candle => BackendKind::Candle);
