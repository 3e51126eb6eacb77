"""A trained policy acting from Python: numpy in, numpy out, the same actions as ``marl eval``."""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from . import _marl
from .envs import _Layout

__all__ = ["Policy", "PolicyState"]


class PolicyState:
    """The recurrent state of a :class:`Policy` after a call, to pass to the next call.

    The networks keep the state themselves (as in ``marl eval``); this handle says which call
    it belongs to, so that only the latest one can be continued (an older one raises
    ``ValueError``). Feed-forward policies ignore it.
    """

    __slots__ = ("_token", "_policy")

    def __init__(self, token: int, policy: "Policy"):
        self._token = token
        self._policy = policy

    def __repr__(self) -> str:
        return f"<PolicyState after call {self._token}>"


Obs = Union[np.ndarray, Mapping[str, np.ndarray]]


class Policy:
    """A run's trained policy. Load it with :meth:`Policy.load`.

    :meth:`act` takes observations in any of the layouts :mod:`marl.envs` produces and returns
    actions in the layout that env takes:

    - a PettingZoo dict ``{agent: obs}`` (one environment) -> ``{agent: action}`` (an ``int``
      for a discrete agent, a ``float32`` array for a box);
    - a batch ``[B, n_agents, obs_dim]`` or ``[B, obs_len]`` -> ``int64 [B, n_agents]`` where
      every agent is discrete, ``float32 [B, n_agents, dim]`` where every agent has the same box,
      else ``{group: [B, n_in_group(, dim)]}``;
    - a batch dict ``{group: [B, n_in_group, obs_dim]}`` (make_vec's heterogeneous layout) ->
      the same as above.

    The actions are exactly those ``marl eval`` takes for the same observations, masks, episode
    starts and seed (the same networks on the CPU in f32, the same sampler).
    """

    def __init__(self, inner: "_marl.Policy"):
        self._inner = inner
        self.marl_spec: Dict[str, Any] = inner.spec
        self._layout = _Layout(self.marl_spec)
        self.possible_agents = list(self._layout.names)
        #: The environment's agent types -> agent indices (the keys of per-group dicts).
        self.groups = dict(self._layout.groups)
        #: The checkpoint loaded.
        self.checkpoint: str = inner.checkpoint
        #: Environment steps the checkpoint was trained for.
        self.global_step: int = inner.global_step
        #: Whether the networks are recurrent.
        self.recurrent: bool = inner.recurrent

    @classmethod
    def load(cls, run_or_checkpoint: Union[str, "os.PathLike[str]"]) -> "Policy":
        """Loads the latest intact checkpoint of a run directory (a :class:`marl.Run` too),
        or a checkpoint directory, with the run's own config (as ``marl eval`` does)."""
        path = os.fspath(run_or_checkpoint)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"no run or checkpoint directory at {path}")
        return cls(_marl.Policy(path))

    # --- layouts -------------------------------------------------------------------------

    def _flat_obs(self, obs: Obs) -> Tuple[np.ndarray, str]:
        lay = self._layout
        if isinstance(obs, Mapping):
            keys = set(obs)
            if keys == set(self.possible_agents):
                flat = np.concatenate([np.asarray(obs[a], np.float32).reshape(-1) for a in self.possible_agents])
                if flat.size != lay.obs_len:
                    raise ValueError(f"observations hold {flat.size} numbers, expected {lay.obs_len} ({lay.obs_dims} per agent)")
                return flat[None, :], "agents"
            if keys == set(self.groups):
                b = np.asarray(next(iter(obs.values()))).shape[0]
                flat = np.zeros((b, lay.obs_len), np.float32)
                for g, idx in self.groups.items():
                    a = np.asarray(obs[g], np.float32)
                    want = (b, len(idx), lay.obs_dims[idx[0]])
                    if a.shape != want:
                        raise ValueError(f"observations of group {g!r} have shape {a.shape}, expected {want}")
                    for j, i in enumerate(idx):
                        flat[:, lay.obs[i]] = a[:, j]
                return flat, "batch"
            raise ValueError(
                f"observation keys {sorted(keys)} are neither the agents {self.possible_agents} "
                f"nor the groups {list(self.groups)}"
            )
        a = np.asarray(obs)
        if a.ndim == 3 and a.shape[1:] == (len(self.possible_agents), lay.obs_dims[0]) and lay.uniform_obs:
            return np.ascontiguousarray(a.reshape(a.shape[0], -1), dtype=np.float32), "batch"
        if a.ndim == 2 and a.shape[1] == lay.obs_len:
            return np.ascontiguousarray(a, dtype=np.float32), "batch"
        want = f"(B, {len(self.possible_agents)}, {lay.obs_dims[0]}) or " if lay.uniform_obs else ""
        raise ValueError(f"observations have shape {a.shape}, expected {want}(B, {lay.obs_len})")

    def _flat_masks(self, masks: Any, b: int) -> Optional[np.ndarray]:
        lay = self._layout
        if masks is None:
            return None
        if isinstance(masks, Mapping):
            flat = np.ones((b, lay.mask_len), bool)
            if set(masks) <= set(self.possible_agents):
                for agent, m in masks.items():
                    i = self.possible_agents.index(agent)
                    flat[:, lay.mask[i]] = np.asarray(m).astype(bool).reshape(b, -1)
                return flat
            for g, m in masks.items():
                idx = self.groups[g]
                m = np.asarray(m).astype(bool).reshape(b, len(idx), -1)
                for j, i in enumerate(idx):
                    flat[:, lay.mask[i]] = m[:, j]
            return flat
        return np.ascontiguousarray(np.asarray(masks).astype(bool).reshape(b, lay.mask_len))

    def _actions(self, flat: np.ndarray, mode: str) -> Any:
        lay = self._layout
        if mode == "agents":
            out: Dict[str, Any] = {}
            for i, a in enumerate(self.possible_agents):
                v = flat[0, lay.act[i]]
                out[a] = int(v[0]) if lay.actions[i][0] == "discrete" else v.copy()
            return out
        b = flat.shape[0]
        n = len(self.possible_agents)
        if lay.uniform_action:
            if lay.actions[0][0] == "discrete":
                return flat.astype(np.int64)
            return flat.reshape(b, n, lay.action_widths[0])
        out = {}
        for g, idx in self.groups.items():
            cols = np.concatenate([np.arange(lay.act[i].start, lay.act[i].stop) for i in idx])
            w = lay.action_widths[idx[0]]
            a = flat[:, cols]
            out[g] = a.astype(np.int64).reshape(b, len(idx)) if lay.actions[idx[0]][0] == "discrete" else a.reshape(b, len(idx), w)
        return out

    # --- acting --------------------------------------------------------------------------

    def act(
        self,
        obs: Obs,
        state: Optional[PolicyState] = None,
        greedy: bool = True,
        seed: Optional[int] = None,
        *,
        action_mask: Any = None,
        episode_start: Optional[np.ndarray] = None,
        agent_done: Optional[np.ndarray] = None,
    ) -> Tuple[Any, PolicyState]:
        """Actions for ``obs`` and the state to pass to the next call.

        ``state=None`` starts every row's episode (recurrent state zeroed); the returned state
        continues them, with ``episode_start`` (``bool [B]``, e.g. make_vec's
        ``infos["done"]``) marking rows whose episode starts anew. ``greedy`` takes the most
        likely actions, else actions are sampled from a generator that ``seed`` restarts (as
        ``marl eval --seed`` does) and ``None`` continues. ``action_mask``: the env's masks
        (``infos[agent]["action_mask"]`` dict, ``make_vec``'s ``action_mask()``, or ``bool
        [B, mask_len]``); unavailable actions are never taken. ``agent_done`` (``bool [B,
        n_agents]``): agents whose episode ended before their environment's (they send no
        messages to communicating actors), as ``marl eval`` tracks them.
        """
        flat, mode = self._flat_obs(obs)
        b = flat.shape[0]
        if episode_start is None:
            first = np.zeros(b, bool)
        else:
            first = np.ascontiguousarray(np.asarray(episode_start, dtype=bool).reshape(-1))
        if state is not None and not isinstance(state, PolicyState):
            raise TypeError(f"state must be a PolicyState returned by act() or None, got {type(state).__name__}")
        if state is not None and state._policy is not self:
            raise ValueError("this state belongs to another Policy")
        masks = self._flat_masks(action_mask, b)
        actions, token = self._inner.act(
            flat,
            first,
            masks=masks,
            greedy=bool(greedy),
            seed=None if seed is None else int(seed),
            state=None if state is None else state._token,
            agent_dead=None if agent_done is None else np.ascontiguousarray(np.asarray(agent_done, dtype=bool).reshape(b, -1)),
        )
        return self._actions(actions, mode), PolicyState(token, self)

    def __repr__(self) -> str:
        return f"<marl Policy {self.marl_spec['id']} from {self.checkpoint} (step {self.global_step})>"
