"""Type stubs of the extension module ``marl._marl`` (built from python/marl-py). Use the
wrappers in :mod:`marl.envs` and :mod:`marl`; these are their building blocks."""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

def env_ids() -> List[str]:
    """Every built-in environment id."""

def derive_seed(seed: int, index: int) -> int:
    """The seed of environment ``index`` of a batch seeded with ``seed``."""

class Env:
    """One environment; observations concatenated in agent order (``obs_len`` numbers).

    ``spec`` is ``{"id", "agents": [{"name", "type", "team", "obs_dim", "action": ("discrete", n) |
    ("box", dim, low, high)}], "state_dim", "max_steps", "has_action_masks", "metric_names"}``.
    """

    spec: Dict[str, Any]
    def __init__(self, id: str, params_json: str = "{}") -> None: ...
    def reset(self, seed: Optional[int] = None) -> npt.NDArray[np.float32]:
        """Starts an episode; ``None`` continues the generator. Returns ``float32 [obs_len]``."""
    def step(
        self, actions: npt.NDArray[Any]
    ) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """One joint action ``[action_len]`` (or ``[n_agents]`` / ``[n_agents, dim]``), stepped
        with the GIL released; returns fresh ``(obs [obs_len], rewards [n], terminated [n],
        truncated [n])``."""
    def observe(self) -> npt.NDArray[np.float32]: ...
    def state(self) -> npt.NDArray[np.float32]: ...
    def action_mask(self) -> npt.NDArray[np.bool_]: ...
    def world_state(self) -> Dict[str, npt.NDArray[np.float64]]: ...
    def set_world_state(self, fields: Dict[str, Sequence[float]]) -> None: ...
    def metrics(self) -> Dict[str, float]: ...
    def render_ascii(self) -> str: ...
    def render_svg(self) -> Optional[str]: ...

class VecEnv:
    """``num_envs`` environments with auto-reset, stepped into buffers the object owns;
    arrays ``[num_envs, ...]`` flat per env.

    ``reset`` and ``step`` return nothing: they overwrite the buffers, which ``buffers()``
    shows as numpy views (no copy, nothing allocated per step). What a view holds is valid
    until the next ``reset``/``step`` (``state`` until the next ``write_state``); copy to keep.
    """

    spec: Dict[str, Any]
    num_envs: int
    def __init__(
        self,
        id: str,
        num_envs: int,
        seed: int = 0,
        num_threads: int = 1,
        params_json: str = "{}",
    ) -> None: ...
    def buffers(self) -> Dict[str, npt.NDArray[Any]]:
        """Writeable views of the buffers (each keeps the object alive), ``E = num_envs``:
        ``obs float32 [E, obs_len]``, ``rewards float64 [E, n]``, ``terminated bool [E, n]``,
        ``truncated bool [E, n]``, ``action_mask bool [E, mask_len]`` (all True where the
        environment has none), ``done bool [E, 1]``; for the rows where ``done``, written at the
        step that ended their episode: ``final_obs float32 [E, obs_len]``, ``final_state
        float32 [E, state_dim]``, ``episode_return float64 [E, n]``, ``episode_length uint64
        [E, 1]``, ``episode_metrics float64 [E, n_metrics]`` (``spec["metric_names"]``);
        ``state float32 [E, state_dim]`` (written by ``write_state``). New views of the same
        memory at every call."""
    def reset(self, seed: Optional[int] = None) -> None:
        """Resets every environment into the buffers (``obs``, ``action_mask``; ``done``
        cleared); environment ``i`` is seeded ``derive_seed(seed, i)``."""
    def step(self, actions: npt.NDArray[Any]) -> None:
        """One joint action per environment, ``[E, action_len]`` (or ``[E, n]`` / ``[E, n,
        dim]``), stepped with the GIL released into the buffers; environments whose episode
        ends are reset (``done``, and the ``final_*`` / ``episode_*`` rows of those)."""
    def write_state(self) -> None:
        """Writes the global states into ``buffers()["state"]``."""
    def render_ascii(self, index: int) -> str: ...
    def render_svg(self, index: int) -> Optional[str]: ...

def toml_to_json(text: str) -> str:
    """TOML text as JSON text."""

def train(
    config_path: Optional[str] = None,
    config_json: Optional[str] = None,
    overrides: List[str] = ...,
    out: Optional[str] = None,
    run_dir: Optional[str] = None,
    resume: Optional[str] = None,
    device: Optional[str] = None,
    name: str = "python",
    on_event: Optional[Any] = None,
) -> Dict[str, Any]:
    """Trains as ``marl train``; ``on_event(kind, payload)`` gets ``("update", dict)`` and
    ``("note", str)``. Returns the summary (run_dir, updates, global_step, eval_return,
    eval_group_returns, evaluations, interrupted, steps_this_run, wall_s)."""

def evaluate(
    path: str,
    episodes: int = 1000,
    greedy: bool = False,
    seed: int = 0,
    random_groups: List[str] = ...,
    env_id: Optional[str] = None,
    env_params_json: str = "{}",
    num_workers: Optional[int] = None,
    messages: str = "sent",
) -> str:
    """``marl eval --json``'s report as JSON text."""

def eval_episodes(
    path: str, episodes: int = 1000, greedy: bool = False, seed: int = 0
) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.uint64]]:
    """The episodes ``marl eval`` plays: returns ``[episodes, n_agents]`` and lengths."""

class Policy:
    """A trained policy acting on flat batches."""

    spec: Dict[str, Any]
    groups: List[Tuple[str, List[int]]]
    checkpoint: str
    global_step: int
    recurrent: bool
    def __init__(self, path: str) -> None: ...
    def act(
        self,
        obs: npt.NDArray[np.float32],
        first: npt.NDArray[np.bool_],
        masks: Optional[npt.NDArray[np.bool_]] = None,
        greedy: bool = True,
        seed: Optional[int] = None,
        state: Optional[int] = None,
        agent_dead: Optional[npt.NDArray[np.bool_]] = None,
    ) -> Tuple[npt.NDArray[np.float32], int]:
        """``(actions float32 [B, action_len], state counter)``."""
