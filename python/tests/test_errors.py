"""Errors are Python exceptions that carry marl's message and name what was expected."""

import numpy as np
import pytest

from marl import envs


def test_unknown_id_suggests_the_closest():
    with pytest.raises(ValueError, match="did you mean `mpe/simple_spread_v3`"):
        envs.make("mpe/simple_sprad_v3")
    with pytest.raises(ValueError, match="simple_tag_v3"):
        envs.make_vec("nope", 2)


def test_bad_params_name_the_key():
    with pytest.raises(ValueError, match="local_ratoi.*local_ratio|local_ratio.*local_ratoi"):
        envs.make("mpe/simple_spread_v3", local_ratoi=0.3)
    with pytest.raises(ValueError, match="invalid type"):
        envs.make("mpe/simple_spread_v3", N="three")
    with pytest.raises(TypeError, match="not a number"):
        envs.make("mpe/simple_spread_v3", N=object())


def test_wrong_action_shape():
    venv = envs.make_vec("mpe/simple_spread_v3", 4)
    venv.reset()
    with pytest.raises(ValueError, match=r"shape \(4, 2\), expected \(4, 3\)"):
        venv.step(np.zeros((4, 2), np.int64))
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros(12, np.int64))


def test_wrong_dtype():
    venv = envs.make_vec("mpe/simple_spread_v3", 2)
    venv.reset()
    with pytest.raises(TypeError, match="dtype"):
        venv.step(np.array([["a", "b", "c"]] * 2))
    with pytest.raises(TypeError, match="numpy array"):
        venv._env.step([[0, 0, 0], [0, 0, 0]])


def test_out_of_range_and_nan_actions():
    venv = envs.make_vec("mpe/simple_spread_v3", 2)
    venv.reset()
    bad = np.zeros((2, 3), np.int64)
    bad[1, 2] = 5
    with pytest.raises(ValueError, match=r"agent 2 \(agent_2\) in row 1 is 5.*0\.\.5"):
        venv.step(bad)
    with pytest.raises(ValueError, match="integer"):
        venv.step(np.full((2, 3), 0.5, np.float32))
    cont = envs.make_vec("mpe/simple_spread_v3", 2, continuous_actions=True)
    cont.reset()
    acts = np.zeros((2, 3, 5), np.float32)
    acts[0, 1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cont.step(acts)
    single = envs.make("mpe/simple_spread_v3", continuous_actions=True)
    single.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        single.step({a: np.full(5, np.nan, np.float32) for a in single.agents})


def test_parallel_env_misuse():
    env = envs.make("mpe/simple_spread_v3")
    with pytest.raises(ValueError, match="reset"):
        env._env.step(np.zeros(3, np.float32))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"no action for live agents \['agent_2'\]"):
        env.step({"agent_0": 0, "agent_1": 0})
    with pytest.raises(ValueError, match="unknown agents"):
        env.step({"agent_0": 0, "agent_1": 0, "agent_2": 0, "bob": 1})
    with pytest.raises(ValueError, match="expected 1"):
        env.step({"agent_0": [0, 1], "agent_1": 0, "agent_2": 0})
    with pytest.raises(ValueError, match="render_mode"):
        envs.make("mpe/simple_spread_v3", render_mode="human")


def test_bad_world_state():
    env = envs.make("mpe/simple_spread_v3")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="agent_pos"):
        env.set_world_state({"agent_pos": [0.0]})


def test_bad_sizes():
    with pytest.raises(ValueError, match="num_envs"):
        envs.make_vec("mpe/simple_spread_v3", 0)
    with pytest.raises(ValueError, match="num_threads"):
        envs.make_vec("mpe/simple_spread_v3", 2, num_threads=0)


def test_concurrent_use_is_an_error_not_a_deadlock():
    import threading

    venv = envs.make_vec("mpe/simple_spread_v3", 2048)
    venv.reset()
    acts = np.zeros((2048, 3), np.int64)
    errors = []

    def worker():
        for _ in range(40):
            try:
                venv.step(acts)
            except RuntimeError as e:
                errors.append(str(e))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert all("in use by another thread" in e for e in errors), errors[:3]
