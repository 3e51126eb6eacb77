#!/usr/bin/env bash
# Environment throughput in env-steps/s (criterion's "thrpt", elements = environment steps),
# one core. Usage: scripts/bench-envs.sh [criterion filter]
# With the filter `rware` (or none) and .venv holding rware (scripts/setup-reference.sh), rware
# 2.0.0 itself is timed on the same core and tasks, for the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
taskset -c 0 cargo bench -p marl-envs --bench step -- --warm-up-time 2 --measurement-time 5 "$@" 2>&1 \
  | grep -E "^[a-z0-9_/-]+( |$)|thrpt:" | sed -e "s/ *time:.*//" -e "s/Melem/M env-steps/g" -e "s/Kelem/k env-steps/g"
if [[ ( $# -eq 0 || "$*" == *rware* ) && -x .venv/bin/python ]] && .venv/bin/python -c "import rware" 2>/dev/null; then
  taskset -c 0 .venv/bin/python scripts/bench_rware_reference.py
fi
