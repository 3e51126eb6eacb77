"""marl: multi-agent reinforcement learning (MAPPO, IPPO) in Rust, from Python.

- :mod:`marl.envs`: the built-in environments (MPE particle worlds, Level-Based Foraging, the
  multi-robot warehouse), one as a PettingZoo ``ParallelEnv`` (:func:`marl.envs.make`) or many
  batched in Rust (:func:`marl.envs.make_vec`).
- :func:`marl.train`: trains from a TOML config or a dict, in process, and returns a
  :class:`marl.Run` (its directory, summary and metrics).
- :func:`marl.evaluate`: ``marl eval`` on a run or checkpoint.
- :class:`marl.Policy`: a trained policy acting on numpy observations.
"""

from . import envs
from ._marl import __version__
from .policy import Policy, PolicyState
from .training import Run, evaluate, train

__all__ = ["envs", "train", "evaluate", "Run", "Policy", "PolicyState", "__version__"]
