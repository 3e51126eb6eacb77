#!/usr/bin/env bash
# The Python bridge against the reference: (1) the MPE traces recorded in envs/tests/parity/
# replayed through the bridge with mpe2 itself (the built-in envs replay the same traces in
# `cargo test`, so bridge and built-in agree for the same initial state and actions); (2) a
# policy trained on the built-in simple_spread evaluated on the built-in env and on mpe2 through
# the bridge (same return within statistical error). Needs .venv with mpe2 (made by
# scripts/setup-reference.sh on first use).
#
#   scripts/check-bridge.sh [RUN_DIR]    # default: trains configs/coop.toml first
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || scripts/setup-reference.sh
cargo build --release -q
./target/release/marl envs check-bridge --python "$PY" envs/tests/parity/simple_*.json
run=${1:-}
if [ -z "$run" ]; then
  run=$(mktemp -d)/coop
  ./target/release/marl train configs/coop.toml --run-dir "$run" --no-progress > /dev/null
fi
echo "built-in simple_spread:"
./target/release/marl eval "$run" --greedy --episodes 300 | sed -n 2p
echo "mpe2 simple_spread_v3 through the bridge:"
./target/release/marl eval "$run" --greedy --episodes 300 --env python \
  --env-set 'factory="mpe2.simple_spread_v3:parallel_env"' --env-set api=pettingzoo \
  --env-set "python=\"$PY\"" --env-set 'kwargs={N=3, local_ratio=0.5, max_cycles=25}' | sed -n 2p
