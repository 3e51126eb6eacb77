"""marl: multi-agent reinforcement learning (MAPPO, IPPO) in Rust, from Python.

- :mod:`marl.envs`: the built-in environments (MPE particle worlds, Level-Based Foraging, the
  multi-robot warehouse), one as a PettingZoo ``ParallelEnv`` (:func:`marl.envs.make`) or many
  batched in Rust (:func:`marl.envs.make_vec`).
"""

from . import envs
from ._marl import __version__

__all__ = ["envs", "__version__"]
