#!/usr/bin/env bash
# A virtualenv with the readers the tests check marl's dashboard files against: TensorBoard
# (its EventAccumulator reads the event files) and marl-eval (its loader and checker read the
# JSON that `marl sweep collect` exports).
#
#   scripts/setup-dashboards.sh [VENV]      # default target/venv-dashboards; idempotent
#
# marl-eval (PyPI: id-marl-eval 0.0.4) pins pandas==1.4.4, which has no wheel for Python >= 3.11
# and is only used by its plotting code: it is installed without its dependencies, next to the
# two its loader imports (numpy, colorama). Exit codes: 0 ready, 3 impossible here (no python3
# with venv, or PyPI unreachable): callers skip on 3.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-target/venv-dashboards}
PY=$VENV/bin/python
check() {
    "$PY" - <<'PY' 2>/dev/null
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from marl_eval.utils.data_processing_utils import data_process_pipeline, create_matrices_for_rliable
from marl_eval.utils.diagnose_data_errors import DiagnoseData
PY
}
if [ -x "$PY" ] && check; then
    echo "$PY"
    exit 0
fi
command -v python3 >/dev/null || { echo "setup-dashboards: no python3" >&2; exit 3; }
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if ! { [ -x "$PY" ] || python3 -m venv "$VENV" >&2; }; then
    echo "setup-dashboards: python3 -m venv failed (apt-get install python3-venv)" >&2
    exit 3
fi
if ! "$PY" -m pip install -q tensorboard numpy colorama >&2 \
    || ! "$PY" -m pip install -q --no-deps id-marl-eval >&2; then
    echo "setup-dashboards: pip install failed (is PyPI reachable?)" >&2
    exit 3
fi
check || { echo "setup-dashboards: the readers do not import" >&2; exit 1; }
echo "$PY"
