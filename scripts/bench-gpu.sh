#!/usr/bin/env bash
# CPU against GPU with one binary (target-cuda/release/marl from scripts/build-cuda.sh, which
# runs on both): prints markdown tables for README's "Training on a GPU".
#
#   update   the learner's minibatch update (`marl bench update`, arch plain: coop's networks)
#            at 1,200 to 38,400 rows: the CPU's hand-written backend, candle on CUDA in f32 and
#            in bf16 (ppo.use_mixed_precision)
#   train    steps/s of configs/coop.toml (2M steps) and configs/coop_large_batch.toml (4096
#            environments, 76,800-row minibatches; LARGE_UPDATES updates) on the CPU and on CUDA
#   returns  coop.toml trained on the CPU and on CUDA, seeds 1-3 (`marl sweep` with device as an
#            axis, then `marl sweep collect`: greedy return per agent over 100 episodes, and
#            CUDA against the CPU with a bootstrap interval and Welch's test)
#
#   scripts/bench-gpu.sh                    # update and train (about 5 min on an H200 node)
#   scripts/bench-gpu.sh returns            # about 3 min there
#   MARL=path/to/marl JOBS=3 scripts/bench-gpu.sh update train returns
#   GPU=cpu COOP_STEPS=200000 LARGE_UPDATES=1 scripts/bench-gpu.sh   # the script, without a GPU
#
# It builds nothing (the GPU machine may have no toolkit and no network): copy the binary.
# A CUDA device that cannot be opened stops it with marl's one-line reason.
set -euo pipefail
cd "$(dirname "$0")/.."
MARL=${MARL:-target-cuda/release/marl}
OUT=${OUT:-target/bench-gpu}
BATCHES=${BATCHES:-"1200 4800 9600 19200 38400"}
ARCH=${ARCH:-plain}
LARGE_UPDATES=${LARGE_UPDATES:-10}
COOP_STEPS=${COOP_STEPS:-2000000}
WORKERS=${WORKERS:-$(nproc)}
JOBS=${JOBS:-3}
GPU=${GPU:-cuda}           # the device of the GPU columns (cpu: a dry run of the script)
sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(update train)
[ -x "$MARL" ] || { echo "no binary at $MARL: build it with scripts/build-cuda.sh (or set MARL)" >&2; exit 2; }
mkdir -p "$OUT"

# One line: the device, or why not.
"$MARL" bench update --impl candle --device "$GPU" --batch 4800 --reps 1 >/dev/null
echo "binary: $MARL ($(git rev-parse --short HEAD 2>/dev/null || echo unknown)); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | sed 's/^/GPU: /'
echo

ms() { sed 's/.*median_ms=\([0-9.]*\).*/\1/'; }
# bf16 runs where the GPU column is a GPU: "$@" with bf16, or n/a.
bf16() { if [ "$GPU" = cpu ]; then echo n/a; else "$@"; fi; }

update() {
  echo "Minibatch update, arch $ARCH (median ms of 9 timed rounds; one CPU thread):"
  echo
  echo "| rows | CPU (hand-written) | $GPU f32 (candle) | $GPU bf16 |"
  echo "|---:|---:|---:|---:|"
  for b in $BATCHES; do
    local on=(bench update --arch "$ARCH" --batch "$b" --impl candle --device "$GPU")
    cpu=$("$MARL" bench update --arch "$ARCH" --batch "$b" | ms)
    f32=$("$MARL" "${on[@]}" | ms)
    half=$(bf16 "$MARL" "${on[@]}" --mixed-precision | ms)
    echo "| $b | $cpu | $f32 | $half |"
  done
  echo
}

# steps/s of one training run: CONFIG DEVICE [--set ...]
sps() {
  local config=$1 device=$2; shift 2
  local dir; dir=$(mktemp -d "$OUT/run.XXXX")
  "$MARL" train "$config" --device "$device" --run-dir "$dir/run" --no-progress \
    --set logging.checkpoint_interval=0 "$@" > "$dir/log" 2>&1 || { cat "$dir/log" >&2; exit 1; }
  sed -n 's/.*s, \([0-9]*\) steps\/s.*/\1/p' "$dir/log"
  rm -rf "$dir"
}

train() {
  local large_steps=$((4096 * 25 * LARGE_UPDATES))
  echo "Training throughput (environment steps/s, evaluations included; $WORKERS worker threads for the large batch):"
  echo
  local mp=(--set ppo.use_mixed_precision=true) coop=(configs/coop.toml) big=configs/coop_large_batch.toml
  local large=(--set "total_timesteps=$large_steps" --set "num_workers=$WORKERS" --set logging.eval_interval=0)
  echo "| config | CPU | $GPU f32 | $GPU bf16 |"
  echo "|---|---:|---:|---:|"
  local steps=(--set "total_timesteps=$COOP_STEPS")
  echo "| coop.toml (128 envs, $COOP_STEPS steps) | $(sps "${coop[@]}" cpu "${steps[@]}") | $(sps "${coop[@]}" "$GPU" "${steps[@]}") | $(bf16 sps "${coop[@]}" "$GPU" "${steps[@]}" "${mp[@]}") |"
  echo "| coop_large_batch.toml (4096 envs, $LARGE_UPDATES updates) | $(sps $big cpu "${large[@]}") | $(sps $big "$GPU" "${large[@]}") | $(bf16 sps $big "$GPU" "${large[@]}" "${mp[@]}") |"
  echo
}

returns() {
  local sweep="$OUT/returns"
  [ "$GPU" != cpu ] || { echo "returns: GPU=cpu, nothing to compare"; return; }
  rm -rf "$sweep"
  echo "coop.toml on the CPU and on CUDA, seeds 1-3 (marl sweep collect):"
  echo
  "$MARL" sweep configs/coop.toml --set "device=cpu,$GPU" --seeds 1..4 --jobs "$JOBS" --out "$sweep" > "$OUT/returns.log" 2>&1 \
    || { cat "$OUT/returns.log" >&2; exit 1; }
  "$MARL" sweep collect "$sweep" >> "$OUT/returns.log" 2>&1 || { cat "$OUT/returns.log" >&2; exit 1; }
  cat "$sweep/collect.md"
  echo
}

for s in "${sections[@]}"; do
  case "$s" in
    update|train|returns) start=$SECONDS; "$s"; echo "($s: $((SECONDS - start)) s)"; echo ;;
    *) echo "unknown section $s: expected update, train or returns" >&2; exit 2 ;;
  esac
done
