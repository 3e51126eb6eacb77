#!/usr/bin/env bash
# The learner against PyTorch: one PPO minibatch update of MAPPO-sized networks, the fixed
# PyTorch reference bench/torch_ppo_update.py against `marl bench update` (the same workloads),
# alternated on the same core (A B A B ...), one thread each. Prints each side's median of
# medians and the ratio.
#
#   scripts/bench-update.sh                 # installs torch into .venv-torch on first use
#   ROUNDS=5 BATCHES="4800" ARCHS=mappo scripts/bench-update.sh   # rnn: sequences of 25 steps on both sides
#   IMPL=candle scripts/bench-update.sh   # candle's autograd instead of the hand-written CPU path
#   TORCH_REF=other.py scripts/bench-update.sh   # another reference script (same line format)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
ARCHS=${ARCHS:-"plain mappo rnn"}
IMPL=${IMPL:-manual}
BATCHES=${BATCHES:-"1200 4800 9600"}
REF=${TORCH_REF:-bench/torch_ppo_update.py}
[ -f "$REF" ] || { echo "no reference script at $REF (set TORCH_REF)"; exit 2; }
if [ ! -x .venv-torch/bin/python ]; then
  python3 -m venv .venv-torch
  .venv-torch/bin/pip install -q torch numpy
fi
cargo build --release -q
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "%-6s %6s %10s %10s %7s   (marl: --impl %s)\n" arch batch torch_ms marl_ms ratio "$IMPL"
for arch in $ARCHS; do
  for b in $BATCHES; do
    t=(); m=()
    for _ in $(seq "$ROUNDS"); do
      t+=("$(taskset -c 0 .venv-torch/bin/python "$REF" --arch "$arch" --batch "$b" --threads 1 | sed 's/.*median_ms=\([0-9.]*\).*/\1/')")
      m+=("$(taskset -c 0 ./target/release/marl bench update --impl "$IMPL" --arch "$arch" --batch "$b" | sed 's/.*median_ms=\([0-9.]*\).*/\1/')")
    done
    tm=$(printf "%s\n" "${t[@]}" | median); mm=$(printf "%s\n" "${m[@]}" | median)
    printf "%-6s %6d %10.2f %10.2f %7.2f\n" "$arch" "$b" "$tm" "$mm" "$(echo "$mm / $tm" | bc -l)"
  done
done
