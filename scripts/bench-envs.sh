#!/usr/bin/env bash
# Environment throughput in env-steps/s (criterion's "thrpt", elements = environment steps),
# one core. Usage: scripts/bench-envs.sh [criterion filter]
set -euo pipefail
cd "$(dirname "$0")/.."
taskset -c 0 cargo bench -p marl-envs --bench step -- --warm-up-time 2 --measurement-time 5 "$@" 2>&1 \
  | grep -E "^[a-z0-9_/]+$|thrpt:" | sed 's/Melem/M env-steps/g'
