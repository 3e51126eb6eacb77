#!/usr/bin/env bash
# End-to-end training throughput: trains each config once and appends a row to
# bench/train.csv (date, git sha, machine, config, steps, wall seconds, env-steps/s, rollout
# and update seconds, final greedy return), so that figures before and after a change sit
# side by side.
#
#   scripts/bench-train.sh                                   # coop and bench_ippo_mpe
#   scripts/bench-train.sh configs/lbf.toml -- --set seed=2  # any configs, then train flags
set -euo pipefail
cd "$(dirname "$0")/.."
configs=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  configs+=("$1"); shift
done
[ ${#configs[@]} -gt 0 ] || configs=(configs/coop.toml configs/bench_ippo_mpe.toml)
cargo build --release -q
mkdir -p bench
out=bench/train.csv
[ -f "$out" ] || echo "date,sha,cpu,config,steps,wall_s,sps,rollout_s,update_s,eval_return" > "$out"
sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs | tr ',' ' ')
for c in "${configs[@]}"; do
  dir=$(mktemp -d)
  log=$(./target/release/marl train "$c" --run-dir "$dir/run" --no-progress "${extra[@]}" 2>/dev/null)
  python3 - "$dir/run/metrics.csv" "$c" "$sha" "$cpu" "$log" >> "$out" <<'PY'
import csv, datetime, re, sys
path, config, sha, cpu, log = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
wall = float(re.search(r"([0-9.]+) s,", log).group(1))
steps = int(rows[-1]["global_step"])
roll = sum(float(r["time/rollout_s"]) for r in rows)
upd = sum(float(r["time/update_s"]) for r in rows)
ev = rows[-1]["eval/return"]
print(f"{datetime.date.today()},{sha},{cpu},{config},{steps},{wall:.1f},{steps / wall:.0f},{roll:.1f},{upd:.1f},{ev}")
PY
  tail -1 "$out"
  rm -rf "$dir"
done
