#!/usr/bin/env bash
# Overhead of marl's Python bridge per environment step: mpe2's simple_spread_v3 stepped alone in
# Python (actions drawn up front, auto-reset), against the same env stepped by marl through the
# bridge (`marl envs bench python ...`). Needs .venv with mpe2 (scripts/setup-reference.sh).
#
#   scripts/bench-bridge.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-20000}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || scripts/setup-reference.sh
cargo build --release -q
alone=$(taskset -c 0 "$PY" - "$STEPS" <<'PY'
import sys, time
import numpy as np
from mpe2 import simple_spread_v3
steps = int(sys.argv[1])
env = simple_spread_v3.parallel_env()
env.reset(seed=0)
rng = np.random.default_rng(0)
acts = rng.integers(0, 5, size=(steps, len(env.possible_agents)))
t0 = time.perf_counter()
for k in range(steps):
    _, _, term, trunc, _ = env.step({a: int(acts[k, i]) for i, a in enumerate(env.possible_agents)})
    if not env.agents:
        env.reset()
s = time.perf_counter() - t0
print(f"{1e6 * s / steps:.1f}")
PY
)
bridged=$(taskset -c 0 ./target/release/marl envs bench python --steps "$STEPS" \
  --param 'factory="mpe2.simple_spread_v3:parallel_env"' --param api=pettingzoo --param "python=\"$PY\"" ${STATE:+--param state=$STATE} \
  | sed 's/.* \([0-9.]*\) us\/step.*/\1/')
printf "simple_spread_v3, %d steps, one core: Python alone %s us/step, through marl's bridge %s us/step, overhead %.1f%%\n" \
  "$STEPS" "$alone" "$bridged" "$(echo "($bridged / $alone - 1) * 100" | bc -l)"
