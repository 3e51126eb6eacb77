#!/usr/bin/env bash
# What a new user does, timed: a clean virtualenv, README's install command (`pip install
# ./python`, with pip's default build isolation, so maturin comes from PyPI), then README's
# one-liner that trains configs/coop.toml for 200k steps in process and evaluates it greedily.
# Prints the wall time of each and the evaluated return. Not a test (it takes minutes).
#
#   scripts/check-fresh-venv.sh            # builds into the workspace's target/ (warm after cargo build --release)
#   scripts/check-fresh-venv.sh --cold     # builds into an empty target directory, as on a fresh machine
#
# VENV (default /tmp/marl-fresh-venv) and OUT (default /tmp/marl-fresh-run) are removed first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-/tmp/marl-fresh-venv}
OUT=${OUT:-/tmp/marl-fresh-run}
if [ "${1:-}" = "--cold" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/marl-fresh-target}
  rm -rf "$CARGO_TARGET_DIR"
  echo "cold build into $CARGO_TARGET_DIR"
fi
rm -rf "$VENV" "$OUT"
"$PY" -m venv "$VENV"
echo "python: $("$VENV/bin/python" --version), pip: $("$VENV/bin/pip" --version | cut -d' ' -f2), commit $(git rev-parse --short HEAD)"
secs() { echo "scale=1; ($2 - $1) / 1000000000" | bc; }
t0=$(date +%s%N)
nice -n 10 "$VENV/bin/pip" install -q --disable-pip-version-check ./python
t1=$(date +%s%N)
echo "pip install ./python: $(secs "$t0" "$t1") s"
# README's one-liner, from the repository root (which has no marl/ to shadow the installed one).
nice -n 10 "$VENV/bin/python" -c "import marl; run = marl.train('configs/coop.toml', {'total_timesteps': 200_000}, out='$OUT'); print(marl.evaluate(run, greedy=True)['return_per_agent']['mean'])" 2>&1 | tee "$OUT.log" | tail -3
t2=$(date +%s%N)
echo "train 200k + evaluate (1,000 episodes, greedy): $(secs "$t1" "$t2") s"
