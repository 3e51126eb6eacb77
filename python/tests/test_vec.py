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


def arrays(x, prefix=""):
    """Every numpy array in ``x`` (an array, a tuple, or nested dicts) by a path name."""
    if isinstance(x, np.ndarray):
        return {prefix: x}
    items = x.items() if isinstance(x, dict) else enumerate(x)
    out = {}
    for k, v in items:
        out.update(arrays(v, f"{prefix}/{k}"))
    return out


def pointer(a):
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize(
    "env_id,params,threads",
    [
        ("mpe/simple_spread_v3", {"max_cycles": 7}, 1),
        ("mpe/simple_spread_v3", {"max_cycles": 7}, 3),
        ("mpe/simple_speaker_listener_v4", {"max_cycles": 7}, 2),
        ("mpe/simple_tag_v3", {"max_cycles": 7}, 1),
        ("lbf/Foraging-8x8-2p-2f-coop-v3", {"max_episode_steps": 7}, 2),
        ("rware/rware-tiny-2ag-v2", {"max_steps": 7}, 1),
    ],
    ids=str,
)
def test_step_returns_the_envs_own_buffers_every_step(env_id, params, threads):
    """With the default ``copy=False``, reset and step hand out the same arrays (views of the
    env's buffers) and the same infos dict at every step, rewritten in place, with the values
    of a ``copy=True`` twin stepped alike (which gets fresh arrays every call); the finished
    rows' final observations and statistics match too."""
    n = 5
    venv = envs.make_vec(env_id, n, seed=3, num_threads=threads, **params)
    twin = envs.make_vec(env_id, n, seed=3, num_threads=threads, copy=True, **params)
    obs0 = venv.reset()
    assert np.array_equal(flat_obs(obs0, venv), flat_obs(twin.reset(), twin))
    rng = np.random.default_rng(0)
    first = None
    done_rows = 0
    for t in range(20):
        acts = random_actions(rng, venv)
        out = venv.step(acts)
        want = twin.step(acts)
        got = arrays(out)
        if first is None:
            first = out
            ptrs = {k: pointer(a) for k, a in got.items()}
            assert set(got) >= {"/0", "/1", "/2", "/3", "/4/done", "/4/episode_return"} or not venv.uniform
            for a, b in zip(arrays(obs0).values(), arrays(out[0]).values()):
                assert a is b, "reset and step return the same observation arrays"
        else:
            assert all(x is y for x, y in zip(out, first)), "the same objects every step"
            assert out[4] is first[4] and out[4]["episode_metrics"] is first[4]["episode_metrics"]
        assert {k: pointer(a) for k, a in got.items()} == ptrs, "no array moved to new memory"
        fresh = arrays(want)
        assert set(fresh) == set(got)
        done = out[4]["done"]
        for k, a in got.items():
            assert not np.shares_memory(a, fresh[k]), k
            if k.startswith("/4/") and k != "/4/done" and k != "/4/action_mask":
                # Statistics and final observations mean something only where done.
                assert np.array_equal(a[done], fresh[k][done]), (t, k)
            else:
                assert np.array_equal(a, fresh[k]), (t, k)
        done_rows += int(done.sum())
        assert np.array_equal(done, (out[2] | out[3]).all(axis=1))
        state = venv.state()
        assert state is venv.state() and np.array_equal(state, twin.state())
        masks, twin_masks = arrays(venv.action_mask()), arrays(twin.action_mask())
        assert all(np.array_equal(masks[k], twin_masks[k]) for k in masks)
        assert all(np.shares_memory(a, b) for a, b in zip(masks.values(), arrays(venv.action_mask()).values()))
    assert done_rows > 0, "the test should cross an auto-reset"
    kept = {k: a.copy() for k, a in arrays(first).items()}
    venv.step(random_actions(rng, venv))
    assert any(not np.array_equal(kept[k], a) for k, a in arrays(first).items()), "overwritten in place"


def test_a_step_allocates_no_array():
    """tracemalloc sees numpy's allocations: a step of the default env makes none (its peak
    stays far below one observation array), a ``copy=True`` step makes them all."""
    import tracemalloc

    def peak(copy):
        venv = envs.make_vec("rware/rware-tiny-2ag-v2", 256, seed=0, copy=copy)
        venv.reset()
        acts = np.random.default_rng(0).integers(0, 5, size=(256, 2))
        venv.step(acts)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(50):
                venv.step(acts)
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    obs_bytes = 256 * 2 * 71 * 4
    assert peak(False) < obs_bytes // 20
    assert peak(True) > obs_bytes


def test_views_are_views_and_writes_change_nothing():
    venv = envs.make_vec("mpe/simple_spread_v3", 2, seed=1)
    twin = envs.make_vec("mpe/simple_spread_v3", 2, seed=1)
    obs, other = venv.reset(), twin.reset()
    obs[:] = 123.0  # the caller's scribbles in a view do not reach the environments
    acts = np.ones((2, 3), np.int64)
    a, b = venv.step(acts), twin.step(acts)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    masks = venv.action_mask()
    assert masks.all() and not masks.flags.writeable  # no masks: a constant, read-only
    hetero = envs.make_vec("mpe/simple_speaker_listener_v4", 3)
    obs = hetero.reset()
    flat = hetero._env.buffers()["obs"]
    assert all(np.shares_memory(v, flat) for v in obs.values()), "per-group dicts are views too"


def test_reset_seeds():
    venv = envs.make_vec("mpe/simple_spread_v3", 3, seed=4)
    a = venv.reset().copy()  # views of one buffer: valid until the next reset or step
    b = venv.reset().copy()
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
