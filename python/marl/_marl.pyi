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

    ``spec`` is ``{"id", "agents": [{"name", "type", "obs_dim", "action": ("discrete", n) |
    ("box", dim, low, high)}], "state_dim", "max_steps", "has_action_masks", "metric_names"}``.
    """

    spec: Dict[str, Any]
    def __init__(self, id: str, params_json: str = "{}") -> None: ...
    def reset(self, seed: Optional[int] = None) -> npt.NDArray[np.float32]:
        """Starts an episode; ``None`` continues the generator. Returns ``float32 [obs_len]``."""
    def step(
        self, actions: npt.NDArray[Any]
    ) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """One joint action ``[action_len]`` (or ``[n_agents]`` / ``[n_agents, dim]``); returns
        fresh ``(obs [obs_len], rewards [n], terminated [n], truncated [n])``."""
    def observe(self) -> npt.NDArray[np.float32]: ...
    def state(self) -> npt.NDArray[np.float32]: ...
    def action_mask(self) -> npt.NDArray[np.bool_]: ...
    def world_state(self) -> Dict[str, npt.NDArray[np.float64]]: ...
    def set_world_state(self, fields: Dict[str, Sequence[float]]) -> None: ...
    def metrics(self) -> Dict[str, float]: ...
    def render_ascii(self) -> str: ...
    def render_svg(self) -> Optional[str]: ...

class VecEnv:
    """``num_envs`` environments with auto-reset; arrays ``[num_envs, ...]`` flat per env."""

    spec: Dict[str, Any]
    num_envs: int
    def __init__(
        self,
        id: str,
        num_envs: int,
        seed: int = 0,
        num_threads: int = 1,
        params_json: str = "{}",
        copy: bool = True,
    ) -> None: ...
    def reset(self, seed: Optional[int] = None) -> npt.NDArray[np.float32]:
        """``obs float32 [num_envs, obs_len]``."""
    def step(
        self, actions: npt.NDArray[Any]
    ) -> Tuple[
        npt.NDArray[np.float32],
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
        npt.NDArray[np.bool_],
        Dict[str, Any],
    ]:
        """``(obs [E, obs_len], rewards [E, n], terminated [E, n], truncated [E, n], info)``;
        ``info``: ``done [E]``, ``final_obs [E, obs_len]``, ``final_state [E, state_dim]``,
        ``episode_return [E, n]``, ``episode_length [E]`` (uint64), ``episode_metrics {name: [E]}``."""
    def state(self) -> npt.NDArray[np.float32]: ...
    def action_mask(self) -> npt.NDArray[np.bool_]: ...
    def render_ascii(self, index: int) -> str: ...
    def render_svg(self, index: int) -> Optional[str]: ...
