//! The learner against the mistakes the peers' trackers record: recurrent states reset with
//! the wrong `done`, training batches ordered differently from their reset flags, chunks that
//! do not start from the state the rollout had, returns cut or bootstrapped at the wrong end.

use std::path::Path;

use candle_core::Device;

use super::{EpisodeStats, Learner};
use crate::config::{self, TrainConfig};

fn learner(sets: &[&str]) -> Learner {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.toml");
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let cfg = TrainConfig::resolve(config::load(&path, &sets).expect("config")).expect("resolve");
    let mut l = Learner::for_training(cfg.clone(), Device::Cpu).expect("learner");
    l.reset_envs(cfg.seed()).expect("reset");
    l
}

fn collect(l: &mut Learner) {
    let mut stats = EpisodeStats::of_agents(l.cfg.spec.num_agents());
    l.collect(&mut stats).expect("collect");
}

/// Recurrent configurations whose episodes end inside rollouts: truncations (spread, 7-step
/// episodes in 20-step rollouts), terminations and truncations (foraging), per-agent and
/// shared networks, chunks of 5 steps and whole rollouts.
const RECURRENT: &[&[&str]] = &[
    &[
        "network.recurrent=\"gru\"",
        "network.hidden=[16]",
        "network.recurrent_hidden=8",
        "network.data_chunk_length=5",
        "env.rollout_length=20",
        "env.params.max_cycles=7",
    ],
    &[
        "network.recurrent=\"gru\"",
        "network.layer_norm=true",
        "network.recurrent_hidden=8",
        "network.data_chunk_length=0",
        "env.rollout_length=20",
        "env.id=\"lbf/Foraging-5x5-2p-1f-coop-v3\"",
        "env.params.max_episode_steps=9",
        "algo.share_actor_params=false",
        "algo.share_critic_params=false",
    ],
];

/// Two rollouts in a row: a row's state is zeroed before a step exactly when its stream ended
/// at the step before (episode over, by termination or truncation, or the agent done), and at
/// the very first step; every chunk's stored initial state is zero where it starts one.
#[test]
fn recurrent_states_are_zero_exactly_at_each_episodes_first_step() {
    for sets in RECURRENT {
        let mut l = learner(sets);
        let mut ended_before: Option<Vec<bool>> = None;
        let (mut resets_inside, mut ends) = (0, 0);
        for _ in 0..2 {
            collect(&mut l);
            for g in &l.groups {
                let b = g.buffer();
                let r = b.rows;
                let width = b.h0_actor.len() / (b.t_len / b.chunk * r);
                for t in 0..b.t_len {
                    for row in 0..r {
                        let expected = match (t, &ended_before) {
                            (0, None) => true,
                            (0, Some(prev)) => prev[row],
                            _ => b.ended[(t - 1) * r + row],
                        };
                        let got = b.starts[t * r + row] == 1.0;
                        assert_eq!(got, expected, "{sets:?} step {t} row {row}");
                        if got && t > 0 {
                            resets_inside += 1;
                        }
                        if t % b.chunk == 0 && got {
                            let u = t / b.chunk * r + row;
                            let h = &b.h0_actor[u * width..(u + 1) * width];
                            assert!(h.iter().all(|&x| x == 0.0), "{sets:?} chunk state {u}");
                        }
                    }
                }
                ends += b.ended.iter().filter(|&&e| e).count();
                ended_before = Some(b.ended[(b.t_len - 1) * r..].to_vec());
            }
        }
        assert!(
            resets_inside > 0 && ends > 0,
            "{sets:?}: the test saw no episode end"
        );
    }
}

/// Training replays each chunk from its stored state with its reset flags: the training pass
/// over the rollout gives the log-probabilities and values the rollout acted on.
#[test]
fn training_replays_the_rollout_from_each_chunks_stored_state() {
    for sets in RECURRENT {
        let mut l = learner(sets);
        collect(&mut l);
        collect(&mut l);
        for g in &mut l.groups {
            let (logp, values) = g.replay().expect("replay");
            let b = g.buffer();
            for (pos, ((a, t), (va, vt))) in b
                .logp
                .iter()
                .zip(&logp)
                .zip(b.values.iter().zip(&values))
                .enumerate()
            {
                assert!(
                    (a - t).abs() <= 1e-5 * (1.0 + t.abs()),
                    "{sets:?} {pos}: logp {a} vs {t}"
                );
                assert!(
                    (va - vt).abs() <= 1e-5 * (1.0 + vt.abs()),
                    "{sets:?} {pos}: value {va} vs {vt}"
                );
            }
        }
    }
}

/// At a time limit the return bootstraps from the final observation's value by default, and
/// ends there as at a termination with `ppo.bootstrap_truncation = false` (JaxMARL's scripts);
/// the rollout itself is the same.
#[test]
fn a_truncation_bootstraps_unless_told_to_end_the_return_there() {
    let run = |bootstrap: bool| {
        let flag = format!("ppo.bootstrap_truncation={bootstrap}");
        let mut l = learner(&["env.rollout_length=20", "env.params.max_cycles=7", &flag]);
        collect(&mut l);
        l.advantages();
        let b = l.groups[0].buffer();
        (b.rewards.clone(), b.ended.clone(), b.returns.clone())
    };
    let (rewards, ended, cut) = run(false);
    let (rewards_booted, ended_booted, booted) = run(true);
    assert_eq!(
        rewards, rewards_booted,
        "the rollout does not depend on the flag"
    );
    assert_eq!(ended, ended_booted);
    let (mut ends, mut bootstrapped) = (0, 0);
    for i in (0..ended.len()).filter(|&i| ended[i]) {
        ends += 1;
        let r = rewards[i];
        assert!(
            (cut[i] - r).abs() <= 1e-4 * (1.0 + r.abs()),
            "return {} at an end, reward {r}",
            cut[i]
        );
        if (booted[i] - r).abs() > 1e-3 {
            bootstrapped += 1;
        }
    }
    assert!(ends > 0, "the test saw no episode end");
    assert!(
        bootstrapped * 2 > ends,
        "{bootstrapped} of {ends} ends bootstrapped"
    );
}

/// Communicating actors: the training pass recomputes every message from the stored
/// observations (and, recurrent, the chunks' stored states) and gives the rollout's
/// log-probabilities and values bit for bit: mean and attention, shared and per-agent actors,
/// feed-forward and recurrent with episodes ending inside chunks.
#[test]
fn training_recomputes_the_messages_the_rollout_acted_on() {
    let talk: &[&[&str]] = &[
        &["algo.enable_communication=true"],
        &[
            "algo.enable_communication=true",
            "algo.communication=\"attention\"",
            "algo.communication_rounds=3",
            "algo.share_actor_params=false",
            "env.id=\"lbf/Foraging-5x5-2p-1f-coop-v3\"",
        ],
        &[
            "algo.enable_communication=true",
            "algo.communication=\"attention\"",
            "network.recurrent=\"gru\"",
            "network.hidden=[16]",
            "network.recurrent_hidden=8",
            "network.data_chunk_length=5",
            "env.rollout_length=20",
            "env.params.max_cycles=7",
        ],
        // A channel joining two groups of different sizes: padded rows, masked actions.
        &[
            "algo.enable_communication=true",
            "env.id=\"mpe/simple_speaker_listener_v4\"",
            "algo.communication_channels=[[\"speaker\", \"listener\"]]",
        ],
    ];
    for sets in talk {
        let mut l = learner(sets);
        collect(&mut l);
        collect(&mut l);
        for g in &mut l.groups {
            let (logp, values) = g.replay().expect("replay");
            let b = g.buffer();
            assert_eq!(b.logp, logp, "{sets:?}: log-probabilities");
            assert_eq!(b.values, values, "{sets:?}: values");
        }
    }
}

/// A channel joining the speaker (observation 3, 3 choices) and the listener (11, 5): the
/// speaker's actor rows are its observation, zeros up to the listener's width, then the one-hot
/// id; it never samples the two choices it does not have, and its log-probabilities are those
/// of its own three.
#[test]
fn joined_groups_pad_observations_and_mask_the_choices_an_agent_lacks() {
    let mut l = learner(&[
        "algo.enable_communication=true",
        "env.id=\"mpe/simple_speaker_listener_v4\"",
        "algo.communication_channels=[[\"speaker\", \"listener\"]]",
        "ppo.entropy_coef=0.5",
    ]);
    let mut taken = [[0usize; 5]; 2];
    for _ in 0..3 {
        collect(&mut l);
        let g = &l.groups[0];
        let b = g.buffer();
        let n_envs = b.rows / 2;
        let width = b.actor_in.len() / (b.t_len * b.rows);
        assert_eq!(width, 11 + 2);
        for t in 0..b.t_len {
            for row in 0..b.rows {
                let agent = row / n_envs;
                let x = &b.actor_in[(t * b.rows + row) * width..][..width];
                if agent == 0 {
                    assert!(x[3..11].iter().all(|&v| v == 0.0), "speaker padding {x:?}");
                }
                assert_eq!(x[11..], if agent == 0 { [1.0, 0.0] } else { [0.0, 1.0] });
                let a = b.actions[t * b.rows + row] as usize;
                taken[agent][a] += 1;
                let bias = &b.mask_bias.as_ref().expect("masked")[(t * b.rows + row) * 5..][..5];
                let masked: Vec<bool> = bias.iter().map(|&v| v < 0.0).collect();
                let expect = if agent == 0 {
                    [false, false, false, true, true]
                } else {
                    [false; 5]
                };
                assert_eq!(masked, expect);
            }
        }
    }
    assert_eq!(
        taken[0][3..],
        [0, 0],
        "the speaker took a choice it lacks: {taken:?}"
    );
    assert!(taken[0][..3].iter().all(|&c| c > 0), "{taken:?}");
    assert!(taken[1].iter().all(|&c| c > 0), "{taken:?}");
}

/// `algo.random_groups = ["agent"]` on simple_tag: the prey acts uniformly at random and its
/// networks never change, while the adversaries train; the rollout records only the learners.
#[test]
fn a_random_group_acts_uniformly_and_never_trains() {
    let mut l = learner(&[
        "env.id=\"mpe/simple_tag_v3\"",
        "algo.random_groups=[\"agent\"]",
    ]);
    let tensors = |l: &mut Learner, prefix: &str| -> Vec<Vec<f32>> {
        let ck = l.checkpoint(0, 0, 0).expect("checkpoint");
        ck.model
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, t)| t.flatten_all().and_then(|t| t.to_vec1()).expect("tensor"))
            .collect()
    };
    let (prey, hunters) = (tensors(&mut l, "agent."), tensors(&mut l, "adversary."));
    assert!(!prey.is_empty() && !hunters.is_empty());
    let mut stats = EpisodeStats::of_agents(l.cfg.spec.num_agents());
    let prey_agent = l.groups[1].agents()[0];
    let mut counts = [0usize; 5];
    for _ in 0..8 {
        l.collect(&mut stats).expect("collect");
        // The joint action of the last step: the prey's choice in each environment.
        let al = l.cfg.spec.action_len();
        let at = l.cfg.spec.action_range(prey_agent).start;
        for e in 0..l.cfg.env().n_envs {
            counts[l.joint[e * al + at] as usize] += 1;
        }
        l.advantages();
        let stats = l.update(0.01).expect("update");
        assert!(
            stats[1].terms.is_empty(),
            "the random group reported losses"
        );
        assert!(!stats[0].terms.is_empty());
    }
    assert!(
        counts.iter().all(|&c| c > 0),
        "not every move drawn: {counts:?}"
    );
    assert_eq!(
        tensors(&mut l, "agent."),
        prey,
        "the random group's networks changed"
    );
    assert_ne!(
        tensors(&mut l, "adversary."),
        hunters,
        "the adversaries did not train"
    );
}
