"""PettingZoo's own conformance test on every environment family, and the spaces and infos
that test does not look at."""

import warnings

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo.test import parallel_api_test

import marl
from marl import envs

# Every registered id: the five MPE scenarios (continuous actions too), LBF and its team
# variant, the warehouse; plus ids the registry understands without listing them.
IDS = envs.ids()
EXTRA = [
    ("mpe/simple_spread_v3", {"continuous_actions": True}),
    ("mpe/simple_speaker_listener_v4", {"continuous_actions": True}),
    ("Foraging-5x5-2p-1f-v3", {}),
    ("rware-tiny-2ag-hard-v2", {}),
]


def test_every_family_is_registered():
    families = {i.split("/")[0] for i in IDS}
    assert {"mpe", "lbf", "rware", "grid"} <= families
    assert "grid/team_foraging_v1" in IDS


@pytest.mark.parametrize("env_id,params", [(i, {}) for i in IDS] + EXTRA, ids=lambda x: str(x))
def test_parallel_api(env_id, params):
    env = envs.make(env_id, **params)
    with warnings.catch_warnings():
        # The test reports API slips (missing keys, agents revived) as warnings: fail on them.
        warnings.simplefilter("error")
        parallel_api_test(env, num_cycles=600)


def test_spaces_and_state():
    env = envs.make("mpe/simple_speaker_listener_v4")
    assert env.possible_agents == ["speaker_0", "listener_0"]
    assert env.action_space("speaker_0") == spaces.Discrete(3)
    assert env.observation_space("listener_0").shape == (11,)
    obs, infos = env.reset(seed=3)
    assert obs["speaker_0"].dtype == np.float32 and obs["speaker_0"].shape == (3,)
    assert env.state().shape == env.state_space.shape and env.state().dtype == np.float32
    cont = envs.make("mpe/simple_spread_v3", continuous_actions=True)
    box = cont.action_space("agent_0")
    assert isinstance(box, spaces.Box) and box.shape == (5,)
    assert float(box.low[0]) == 0.0 and float(box.high[0]) == 1.0


def test_action_masks_in_infos():
    env = envs.make("lbf/Foraging-8x8-2p-2f-coop-v3")
    obs, infos = env.reset(seed=0)
    for agent in env.agents:
        mask = infos[agent]["action_mask"]
        assert mask.dtype == np.int8 and mask.shape == (6,)
        assert mask[0] == 1  # NONE is always available
    # The masks follow the world: an agent in a corner cannot walk off the grid.
    _, infos = env.set_world_state({**env.world_state(), "agent_pos": [0, 0, 7, 7]})
    assert infos["agent_0"]["action_mask"].tolist()[1] == 0  # NORTH from row 0
    no_masks = envs.make("mpe/simple_spread_v3")
    _, infos = no_masks.reset(seed=0)
    assert infos == {a: {} for a in no_masks.agents}


def test_seeded_resets_repeat_and_unseeded_continue():
    env = envs.make("mpe/simple_tag_v3")
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    c, _ = env.reset()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_render():
    grid = envs.make("rware/rware-tiny-2ag-v2", render_mode="svg")
    grid.reset(seed=0)
    assert grid.render().lstrip().startswith("<svg")
    text = envs.make("lbf/Foraging-8x8-2p-2f-coop-v3", render_mode="ansi")
    text.reset(seed=0)
    assert isinstance(text.render(), str) and len(text.render().splitlines()) >= 8
    assert envs.make("mpe/simple_spread_v3").render() is None


def test_version_and_top_level():
    assert marl.__version__
    assert marl.envs is envs


def test_one_abi3_wheel_with_the_bridge():
    import marl_bridge
    from marl import _marl

    # The extension is built for the stable ABI (one wheel for CPython >= 3.9).
    assert _marl.__file__.endswith(".abi3.so"), _marl.__file__
    # The bridge server (Rust training on Python environments) ships in the same wheel.
    assert callable(marl_bridge.serve) and callable(marl_bridge.main)
