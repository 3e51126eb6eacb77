"""Stepping releases the GIL, for one environment (`make`) as for a batch (`make_vec`): another
Python thread runs while a step runs.

The other thread can only run when the stepping thread lets go of the GIL: the test turns
CPython's forced switching off (a switch interval of 10 s, longer than the test), so the only
chances it gets are the ones a call gives by releasing the GIL. A call that keeps the GIL
(`state()`) is the control: there the other thread runs not once. Against a build whose
`make` step kept the GIL, the `make` case fails (the thread ran 0 times in 20,000 steps).
"""

import sys
import threading
import time
from typing import Callable, Iterator

import numpy as np
import pytest

from marl import envs

#: simple_spread with 60 agents and landmarks: a step long enough (tens of microseconds) for
#: the waiting thread to be woken and scheduled while it runs, even on a loaded machine; and
#: episodes longer than the test.
BIG = {"N": 60, "max_cycles": 1_000_000}


class OtherThread:
    """A thread that counts, and hands the GIL back after every count (`time.sleep(0)`)."""

    def __init__(self) -> None:
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.count += 1
            time.sleep(0)

    def __enter__(self) -> "OtherThread":
        self._old = sys.getswitchinterval()
        sys.setswitchinterval(10.0)  # no forced switch within the test
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        sys.setswitchinterval(self._old)


def runs_while_calling(call: Callable[[], object], until: int, max_calls: int) -> int:
    """How many times the other thread counted while `call` was made, stopping once it has
    counted `until` times or after `max_calls` calls. The count is read between calls, while
    this thread holds the GIL, so every count it sees happened during a call."""
    with OtherThread() as other:
        before = other.count
        for _ in range(max_calls):
            call()
            if other.count - before >= until:
                break
        return other.count - before


def rust_steps(env_id: str, params: dict) -> Iterator[Callable[[], object]]:
    """The Rust calls behind `make`'s and `make_vec`'s `step`, as zero-argument calls. Not the
    Python wrappers: those split and reshape arrays with numpy, whose larger operations let go
    of the GIL themselves, so the thread would run there whatever the Rust side does."""
    env = envs.make(env_id, **params)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    one = rng.integers(0, 5, size=len(env.possible_agents))
    yield lambda: env._env.step(one)
    venv = envs.make_vec(env_id, 4, seed=0, **params)
    venv.reset()
    batch = rng.integers(0, 5, size=(4, len(venv.possible_agents)))
    yield lambda: venv._env.step(batch)


@pytest.mark.parametrize("kind", ["make", "make_vec"])
def test_another_thread_runs_while_a_step_runs(kind):
    calls = dict(zip(["make", "make_vec"], rust_steps("mpe/simple_spread_v3", BIG)))
    runs = runs_while_calling(calls[kind], until=5, max_calls=20_000)
    assert runs >= 5, f"the other thread ran {runs} times during up to 20,000 {kind} steps"


def test_the_other_thread_does_not_run_during_a_call_that_keeps_the_gil():
    env = envs.make("mpe/simple_spread_v3", **BIG)
    env.reset(seed=0)
    assert runs_while_calling(env._env.state, until=1, max_calls=200) == 0
