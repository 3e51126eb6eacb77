//! `mpe/simple_reference_v3` with `env_channel = false`: movement-only actions, no partner
//! utterance in the observation, and otherwise the default scenario step for step.

use marl_envs::{make, ActionSpace, MultiAgentEnv, StepBuffers};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ID: &str = "mpe/simple_reference_v3";

fn reference(params: &str) -> Box<dyn MultiAgentEnv> {
    let table: toml::Table = toml::from_str(params).expect("toml");
    make(ID, &table).expect("simple_reference_v3")
}

#[test]
fn without_env_channel_actions_are_movement_only_and_obs_drop_the_utterance() {
    let env = reference("env_channel = false");
    let spec = env.spec();
    assert_eq!(spec.num_agents(), 2);
    for agent in &spec.agents {
        assert_eq!(
            agent.action_space,
            ActionSpace::Discrete(5),
            "{}",
            agent.name
        );
        assert_eq!(agent.obs_dim, 11, "{}", agent.name);
    }
    assert_eq!(spec.state_dim, 22);

    let continuous = reference("env_channel = false\ncontinuous_actions = true");
    for agent in &continuous.spec().agents {
        assert_eq!(agent.action_space.width(), 5, "{}", agent.name);
    }

    let default = reference("");
    for agent in &default.spec().agents {
        assert_eq!(
            agent.action_space,
            ActionSpace::Discrete(50),
            "{}",
            agent.name
        );
        assert_eq!(agent.obs_dim, 21, "{}", agent.name);
    }
}

#[test]
fn without_env_channel_a_word_action_is_rejected() {
    let mut env = reference("env_channel = false");
    let mut obs = vec![0.0; env.spec().obs_len()];
    env.reset(Some(0), &mut obs);
    let mut buf = StepBuffers::new(env.spec());
    let err = buf
        .step(env.as_mut(), &[5.0, 0.0])
        .expect_err("word 1 of move 0");
    assert!(err.to_string().contains("Discrete(5)"), "{err}");
}

#[test]
fn without_env_channel_the_trajectory_is_the_default_one_with_movement_alone() {
    let mut silent = reference("env_channel = false");
    let mut talking = reference("");
    let (n_silent, n_talking) = (silent.spec().obs_len(), talking.spec().obs_len());
    let (mut obs_s, mut obs_t) = (vec![0.0; n_silent], vec![0.0; n_talking]);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for episode in 0..3u64 {
        silent.reset(Some(11 + episode), &mut obs_s);
        talking.reset(Some(11 + episode), &mut obs_t);
        let (mut buf_s, mut buf_t) = (
            StepBuffers::new(silent.spec()),
            StepBuffers::new(talking.spec()),
        );
        let mut step = 0;
        loop {
            for i in 0..2 {
                // The talking env's observation is the silent one followed by the partner's
                // 10-word utterance.
                let (os, ot) = (&obs_s[11 * i..11 * (i + 1)], &obs_t[21 * i..21 * (i + 1)]);
                assert_eq!(os, &ot[..11], "episode {episode} step {step} agent {i}");
            }
            if step > 0 && buf_s.ended() {
                break;
            }
            let moves: [u32; 2] = [rng.random_range(0..5), rng.random_range(0..5)];
            let words: [u32; 2] = [rng.random_range(0..10), rng.random_range(0..10)];
            buf_s
                .step(silent.as_mut(), &[moves[0] as f32, moves[1] as f32])
                .expect("silent step");
            buf_t
                .step(
                    talking.as_mut(),
                    &[
                        (moves[0] + 5 * words[0]) as f32,
                        (moves[1] + 5 * words[1]) as f32,
                    ],
                )
                .expect("talking step");
            step += 1;
            assert_eq!(
                buf_s.rewards, buf_t.rewards,
                "episode {episode} step {step}"
            );
            assert_eq!(buf_s.terminated, buf_t.terminated);
            assert_eq!(buf_s.truncated, buf_t.truncated);
            let (ws, wt) = (silent.get_state(), talking.get_state());
            for key in ["agent_pos", "agent_vel", "landmark_pos", "goal_landmark"] {
                assert_eq!(
                    ws.fields[key], wt.fields[key],
                    "{key} at episode {episode} step {step}"
                );
            }
            // The talking env really does carry the words the silent one drops.
            let said: Vec<f64> = (0..10).map(|w| f64::from(w == words[0])).collect();
            assert_eq!(wt.fields["agent_c"][..10], said[..]);
            assert!(ws.fields["agent_c"].iter().all(|&c| c == 0.0));
            obs_s.copy_from_slice(&buf_s.obs);
            obs_t.copy_from_slice(&buf_t.obs);
        }
        assert_eq!(step, 25);
    }
}

#[test]
fn ill_typed_env_channel_is_a_clear_error() {
    let table: toml::Table = toml::from_str("env_channel = \"no\"").expect("toml");
    let msg = make(ID, &table).err().expect("must fail").to_string();
    assert!(
        msg.contains("simple_reference_v3") && msg.contains("invalid type"),
        "{msg}"
    );
    let table: toml::Table = toml::from_str("env_chanel = false").expect("toml");
    let msg = make(ID, &table).err().expect("must fail").to_string();
    assert!(
        msg.contains("env_chanel") && msg.contains("env_channel"),
        "{msg}"
    );
}
