"""make_vec steps exactly as separate make environments, on any number of threads, in every
layout; copies and views behave as documented."""

import numpy as np
import pytest

from marl import envs

CASES = [
    ("mpe/simple_spread_v3", {}),
    ("mpe/simple_spread_v3", {"continuous_actions": True}),
    ("mpe/simple_speaker_listener_v4", {}),
    ("mpe/simple_tag_v3", {"continuous_actions": True}),
    ("lbf/Foraging-8x8-2p-2f-coop-v3", {}),
    ("rware/rware-tiny-2ag-v2", {"max_steps": 40}),
]


def random_actions(rng, venv, masks=None):
    """A random joint action per environment in the flat layout [num_envs, action_len]."""
    cols = []
    for i, agent in enumerate(venv.possible_agents):
        space = venv.action_space(agent)
        if hasattr(space, "n"):
            if masks is not None:
                m = masks[:, i] if isinstance(masks, np.ndarray) else None
                choice = [rng.choice(np.flatnonzero(row)) for row in m]
                cols.append(np.asarray(choice, dtype=np.float32)[:, None])
            else:
                cols.append(rng.integers(0, space.n, size=(venv.num_envs, 1)).astype(np.float32))
        else:
            cols.append(rng.random((venv.num_envs, space.shape[0]), dtype=np.float32))
    return np.concatenate(cols, axis=1)


def flat_obs(obs, venv):
    """Per-env concatenated observations in agent order, whatever the layout."""
    if isinstance(obs, np.ndarray):
        return obs.reshape(obs.shape[0], -1)
    out = np.zeros((venv.num_envs, sum(venv.observation_space(a).shape[0] for a in venv.possible_agents)), np.float32)
    dims = [venv.observation_space(a).shape[0] for a in venv.possible_agents]
    starts = np.cumsum([0] + dims)
    for g, idx in venv.groups.items():
        for j, i in enumerate(idx):
            out[:, starts[i] : starts[i + 1]] = obs[g][:, j]
    return out


@pytest.mark.parametrize("env_id,params", CASES, ids=lambda x: str(x))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_make_vec_equals_make_step_for_step(env_id, params, threads):
    n, seed, steps = 5, 11, 120
    venv = envs.make_vec(env_id, n, seed=seed, num_threads=threads, **params)
    singles = [envs.make(env_id, **params) for _ in range(n)]
    obs = venv.reset()
    single_obs = [s.reset(seed=envs.derive_seed(seed, i))[0] for i, s in enumerate(singles)]
    rng = np.random.default_rng(0)
    episodes = 0
    for t in range(steps):
        for i, s in enumerate(singles):
            want = np.concatenate([single_obs[i][a] for a in s.possible_agents])
            assert np.array_equal(flat_obs(obs, venv)[i], want), f"step {t}, env {i}"
        np.testing.assert_array_equal(venv.state(), np.stack([s.state() for s in singles]))
        acts = random_actions(rng, venv)
        obs, rew, term, trunc, info = venv.step(acts)
        assert rew.dtype == np.float64 and term.dtype == bool and rew.shape == (n, len(venv.possible_agents))
        for i, s in enumerate(singles):
            act = {}
            col = 0
            for a in s.possible_agents:
                sp = s.action_space(a)
                w = 1 if hasattr(sp, "n") else sp.shape[0]
                act[a] = int(acts[i, col]) if w == 1 and hasattr(sp, "n") else acts[i, col : col + w]
                col += w
            o, r, te, tr, _ = s.step(act)
            assert [r[a] for a in s.possible_agents] == rew[i].tolist(), f"step {t}, env {i}: rewards"
            assert [te[a] for a in s.possible_agents] == term[i].tolist()
            assert [tr[a] for a in s.possible_agents] == trunc[i].tolist()
            done = not s.agents
            assert bool(info["done"][i]) == done
            if done:
                episodes += 1
                final = np.concatenate([o[a] for a in s.possible_agents])
                assert np.array_equal(flat_obs(info["final_obs"], venv)[i], final)
                assert info["episode_length"][i] >= 1
                single_obs[i] = s.reset()[0]
            else:
                single_obs[i] = o
    assert episodes > 0, "the test should cross an auto-reset"


def test_layouts_and_masks():
    venv = envs.make_vec("mpe/simple_spread_v3", 4)
    obs = venv.reset()
    assert obs.shape == (4, 3, 18) and obs.dtype == np.float32
    assert venv.action_mask().shape == (4, 3, 5) and venv.action_mask().all()
    hetero = envs.make_vec("mpe/simple_speaker_listener_v4", 4)
    obs = hetero.reset()
    assert set(obs) == {"speaker", "listener"}
    assert obs["speaker"].shape == (4, 1, 3) and obs["listener"].shape == (4, 1, 11)
    masks = hetero.action_mask()
    assert masks["speaker"].shape == (4, 1, 3) and masks["listener"].shape == (4, 1, 5)
    obs, rew, *_ = hetero.step({"speaker": np.zeros((4, 1), np.int64), "listener": np.ones((4, 1), np.int64)})
    assert rew.shape == (4, 2)
    lbf = envs.make_vec("lbf/Foraging-8x8-2p-2f-coop-v3", 3, seed=2)
    lbf.reset()
    m = lbf.action_mask()
    assert m.shape == (3, 2, 6) and m.dtype == bool and m[:, :, 0].all()
    single = envs.make("lbf/Foraging-8x8-2p-2f-coop-v3")
    _, infos = single.reset(seed=envs.derive_seed(2, 1))
    assert m[1, 0].astype(np.int8).tolist() == infos["agent_0"]["action_mask"].tolist()


def test_threads_do_not_change_the_numbers():
    def run(threads):
        venv = envs.make_vec("mpe/simple_tag_v3", 7, seed=5, num_threads=threads)
        venv.reset()
        rng = np.random.default_rng(1)
        out = []
        for _ in range(60):
            obs, rew, *_ = venv.step(rng.integers(0, 5, size=(7, 4)))
            out.append(rew.copy())
        return np.stack(out)

    np.testing.assert_array_equal(run(1), run(4))


def test_copy_false_returns_the_envs_buffers():
    venv = envs.make_vec("mpe/simple_spread_v3", 2, copy=False)
    first = venv.reset()
    kept = first.copy()
    obs, rew, *_ = venv.step(np.zeros((2, 3), np.int64))
    assert np.shares_memory(first, obs), "copy=False hands out views of one buffer"
    assert not np.array_equal(first, kept)  # overwritten in place by the step
    fresh = envs.make_vec("mpe/simple_spread_v3", 2)
    a = fresh.reset()
    b, *_ = fresh.step(np.zeros((2, 3), np.int64))
    assert not np.shares_memory(a, b)


def test_reset_seeds():
    venv = envs.make_vec("mpe/simple_spread_v3", 3, seed=4)
    a = venv.reset()
    b = venv.reset()
    c = venv.reset(seed=4)
    assert not np.array_equal(a, b) and np.array_equal(a, c)


def test_episode_statistics():
    venv = envs.make_vec("mpe/simple_spread_v3", 2, max_cycles=5)
    venv.reset()
    total = np.zeros((2, 3))
    for t in range(5):
        obs, rew, term, trunc, info = venv.step(np.zeros((2, 3), np.int64))
        total += rew
    assert info["done"].all() and trunc.all()
    np.testing.assert_array_equal(info["episode_length"], [5, 5])
    np.testing.assert_allclose(info["episode_return"], total, rtol=0, atol=1e-12)
    assert info["final_obs"].shape == (2, 3, 18)
