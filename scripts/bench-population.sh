#!/usr/bin/env bash
# Large agent populations: for each N, MAPPO (configs/coop.toml) and IPPO (the same config with
# algo.centralized_training = false) side by side on simple_spread with N agents and N
# landmarks: training env-steps/s (wall time of the training loop), peak resident memory of
# the whole run (`/usr/bin/time -f %M`, 128 envs x 25 steps), and the environment alone
# (`marl envs bench`, one env, one core). Prints a Markdown table and appends the rows to
# bench/population.csv; then checks that MAPPO trains at N=64 and prints its peak memory.
#
#   scripts/bench-population.sh                 # N = 3 6 12 24 48
#   NS="12 24" scripts/bench-population.sh      # some N only
#
# Steps per run: 200k up to N=12, 100k at N=24, 25k beyond (8 updates), 6.4k at N=64 (2
# updates): enough for a steady rate, short enough for the whole table in a few minutes.
# Evaluation and intermediate checkpoints are off, so the rate is the training loop's.
set -euo pipefail
cd "$(dirname "$0")/.."
ns=${NS:-3 6 12 24 48}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time) for peak memory" >&2; exit 1; }
cargo build --release -q
marl=${CARGO_TARGET_DIR:-target}/release/marl
mkdir -p bench
out=bench/population.csv
[ -f "$out" ] || echo "date,sha,n,algo,steps,wall_s,sps,peak_mb,env_sps" > "$out"
sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
steps_for() { if [ "$1" -le 12 ]; then echo 200000; elif [ "$1" -le 24 ]; then echo 100000;
  elif [ "$1" -le 48 ]; then echo 25600; else echo 6400; fi; }

# One training run: prints "steps wall_s sps peak_mb".
train() {
  local n=$1 algo=$2 steps=$3 dir; dir=$(mktemp -d)
  local central=true; [ "$algo" = IPPO ] && central=false
  /usr/bin/time -f %M -o "$dir/mem" "$marl" train configs/coop.toml --run-dir "$dir/run" \
    --no-progress --set "env.params.N=$n" --set "total_timesteps=$steps" \
    --set "algo.centralized_training=$central" --set logging.eval_interval=0 \
    --set logging.checkpoint_interval=0 > "$dir/log" 2>&1 \
    || { cat "$dir/log" >&2; rm -rf "$dir"; return 1; }
  python3 - "$dir/log" "$dir/mem" "$dir/run/metrics.csv" <<'PY'
import csv, re, sys
log, mem, metrics = sys.argv[1:]
wall = float(re.search(r"([0-9.]+) s,", open(log).read()).group(1))
steps = int(list(csv.DictReader(open(metrics)))[-1]["global_step"])
print(steps, f"{wall:.1f}", f"{steps / wall:.0f}", f"{int(open(mem).read().split()[-1]) / 1024:.0f}")
PY
  rm -rf "$dir"
}

human() { python3 -c "import sys; x=float(sys.argv[1]); print(f'{x/1e6:.2f}M' if x>=1e6 else f'{x/1e3:.1f}k' if x>=1e3 else f'{x:.0f}')" "$1"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| N | steps | MAPPO env-steps/s | IPPO env-steps/s | MAPPO / IPPO | env alone | MAPPO peak memory | IPPO peak memory |"
echo "|---|---|---|---|---|---|---|---|"
for n in $ns; do
  steps=$(steps_for "$n")
  read -r s_m w_m sps_m mem_m < <(train "$n" MAPPO "$steps")
  read -r s_i w_i sps_i mem_i < <(train "$n" IPPO "$steps")
  env_sps=$("$marl" envs bench mpe/simple_spread_v3 --param "N=$n" --steps 20000 \
    | sed -E 's/.* ([0-9]+) env-steps\/s.*/\1/')
  ratio=$(python3 -c "print(f'{$sps_m / $sps_i:.2f}')")
  echo "| $n | $(human "$s_m") | $(human "$sps_m") | $(human "$sps_i") | $ratio | $(human "$env_sps") | $mem_m MB | $mem_i MB |"
  d=$(date +%F)
  echo "$d,$sha,$n,MAPPO,$s_m,$w_m,$sps_m,$mem_m,$env_sps" >> "$out"
  echo "$d,$sha,$n,IPPO,$s_i,$w_i,$sps_i,$mem_i,$env_sps" >> "$out"
done
if [ -z "${NS:-}" ]; then
  read -r s w sps mem < <(train 64 MAPPO "$(steps_for 64)")
  echo
  echo "N=64 MAPPO: $s steps trained, $(human "$sps") env-steps/s, peak memory $mem MB"
fi
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
