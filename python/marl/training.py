"""Training and evaluation in process: the library functions the ``marl`` binary calls."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _marl

__all__ = ["train", "evaluate", "Run"]

log = logging.getLogger("marl")

PathLike = Union[str, "os.PathLike[str]"]


def _toml_value(v: Any) -> str:
    """A Python value as a TOML literal (for ``--set``-style overrides)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return repr(f)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"override value {v!r} of type {type(v).__name__} has no TOML form")


def _overrides(overrides: Union[None, Mapping[str, Any], Sequence[str]]) -> List[str]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{k}={_toml_value(v)}" for k, v in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return [str(o) for o in overrides]


class Run:
    """A run directory: its config, summary, metrics and checkpoints.

    ``Run(path)`` opens any run directory (one written by ``marl train`` too);
    :func:`train` returns one, with ``result`` holding what the training loop reported.
    """

    def __init__(self, path: PathLike, result: Optional[Dict[str, Any]] = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"no run directory at {self.path}")
        #: What the training loop reported when this process trained the run (else None).
        self.result = result

    @property
    def config(self) -> Dict[str, Any]:
        """The run's resolved ``config.toml`` as a dict."""
        text = (self.path / "config.toml").read_text()
        return json.loads(_marl.toml_to_json(text))

    @property
    def summary(self) -> Dict[str, Any]:
        """``summary.json`` (finished, updates, global_step, wall_s, sps, eval_return), or {}
        for a run whose loop has not ended."""
        p = self.path / "summary.json"
        return json.loads(p.read_text()) if p.exists() else {}

    @property
    def metrics(self) -> Dict[str, np.ndarray]:
        """``metrics.csv`` as columns: name -> ``float64`` array, one row per logged update
        (NaN where a row has no value, e.g. evaluation columns between evaluations)."""
        p = self.path / "metrics.csv"
        if not p.exists():
            return {}
        with p.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return {}
        header, body = rows[0], rows[1:]

        def num(x: str) -> float:
            try:
                return float(x)
            except ValueError:
                return math.nan

        return {h: np.array([num(r[i]) if i < len(r) else math.nan for r in body]) for i, h in enumerate(header)}

    def evaluate(self, **kwargs: Any) -> Dict[str, Any]:
        """:func:`evaluate` on this run."""
        return evaluate(self, **kwargs)

    def policy(self) -> "Any":
        """The run's latest policy (:class:`marl.Policy`)."""
        from .policy import Policy

        return Policy.load(self)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"


class _Progress:
    """Turns the trainer's events into log records and the user's callback."""

    def __init__(self, callback: Optional[Callable[[Dict[str, Any]], Any]], log_every_s: float):
        self.callback = callback
        self.log_every_s = log_every_s
        self.last = -math.inf

    def __call__(self, kind: str, payload: Any) -> Any:
        if kind == "note":
            log.info("%s", payload)
            return None
        now = time.monotonic()
        last = payload["update"] == payload["num_updates"]
        if now - self.last >= self.log_every_s or last:
            self.last = now
            log.info(
                "update %d/%d, %d steps, return %.3f, eval %.3f, %.0f steps/s",
                payload["update"],
                payload["num_updates"],
                payload["global_step"],
                payload["episodic_return"],
                payload["eval_return"],
                payload["sps"],
            )
        if self.callback is not None:
            return self.callback(payload)
        return None


def train(
    config: Union[PathLike, Mapping[str, Any], None] = None,
    overrides: Union[None, Mapping[str, Any], Sequence[str]] = None,
    out: Optional[PathLike] = None,
    *,
    run_dir: Optional[PathLike] = None,
    resume: Union[PathLike, Run, None] = None,
    device: Optional[str] = None,
    progress: Optional[Callable[[Dict[str, Any]], Any]] = None,
    log_every_s: float = 5.0,
) -> Run:
    """Trains as ``marl train`` does, in this process, with the GIL released.

    ``config`` is a TOML file (``"configs/coop.toml"``) or a dict of the same keys
    (``{"env": {"id": "mpe/simple_spread_v3"}, "total_timesteps": 100_000}``);
    ``overrides`` are ``--set`` keys, a dict (``{"ppo.learning_rate": 3e-4}``) or
    ``"KEY=VALUE"`` strings. ``out`` replaces the config's ``out_dir`` (the run directory is
    made inside it), ``run_dir`` names the run directory exactly, ``resume`` continues a run
    from its latest checkpoint (no config then), ``device`` is ``"cpu"``, ``"cuda"``, ...

    Progress goes to the ``logging`` logger ``"marl"`` (INFO, every ``log_every_s`` seconds
    and for each checkpoint and evaluation) and, after every update, to ``progress(dict)``
    with ``update``, ``num_updates``, ``global_step``, ``episodic_return``, ``eval_return``
    and ``sps``; ``progress`` returning ``False`` stops the run at that point, as an exception
    in it does (the exception is raised once the run has stopped).

    Ctrl-C (KeyboardInterrupt) stops the run after the current update with a checkpoint and
    then raises KeyboardInterrupt naming the run directory to resume. Invalid configs raise
    ``ValueError`` with marl's message (the key, what was expected).

    Returns the :class:`Run`.
    """
    kwargs: Dict[str, Any] = {"overrides": _overrides(overrides)}
    if resume is not None:
        if config is not None:
            raise ValueError("resume continues a run with its own config: drop the config")
        kwargs["resume"] = os.fspath(resume)
    elif config is None:
        raise ValueError("train needs a config (a TOML file or a dict) or resume=RUN_DIR")
    elif isinstance(config, Mapping):
        kwargs["config_json"] = json.dumps(dict(config), default=_json_default, allow_nan=False)
        kwargs["name"] = "python"
    else:
        path = Path(os.fspath(config))
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        kwargs["config_path"] = str(path)
        kwargs["name"] = path.stem
    if out is not None:
        kwargs["out"] = os.fspath(out)
    if run_dir is not None:
        kwargs["run_dir"] = os.fspath(run_dir)
    if device is not None:
        kwargs["device"] = device
    result = _marl.train(on_event=_Progress(progress, log_every_s), **kwargs)
    return Run(result["run_dir"], result)


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    raise TypeError(f"config value {x!r} of type {type(x).__name__} is not a number, string, list or dict")


def evaluate(
    run: Union[PathLike, Run],
    episodes: int = 1000,
    greedy: bool = False,
    seed: int = 0,
    *,
    random_groups: Iterable[str] = (),
    env: Optional[str] = None,
    env_params: Optional[Mapping[str, Any]] = None,
    num_workers: Optional[int] = None,
    messages: str = "sent",
) -> Dict[str, Any]:
    """Evaluates a run's latest intact checkpoint (or a checkpoint directory) as ``marl
    eval`` does, with the same defaults: ``episodes`` episodes seeded from ``seed``, sampled
    actions unless ``greedy``; ``random_groups`` act uniformly at random; ``env`` /
    ``env_params`` evaluate in another environment id or with changed parameters;
    ``messages`` (``"sent"``, ``"zero"``, ``"shuffle"``) is what communicating actors receive
    (``marl eval --messages``).

    Returns ``marl eval --json``'s report as a dict: ``return_per_agent``, ``team_return``,
    ``episode_length`` (each ``{"mean", "std", "ci95", ...}``), ``groups``, ``agents``,
    ``task`` (lists of ``[name, spread]``), ``checkpoint``, ``global_step``, ``env``, ...
    """
    text = _marl.evaluate(
        os.fspath(run),
        episodes=int(episodes),
        greedy=bool(greedy),
        seed=int(seed),
        random_groups=list(random_groups),
        env_id=env,
        env_params_json=json.dumps(dict(env_params or {}), default=_json_default),
        num_workers=num_workers,
        messages=messages,
    )
    return json.loads(text)
