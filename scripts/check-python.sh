#!/usr/bin/env bash
# The Python package (python/: `marl` with its Rust extension `marl._marl`, and `marl_bridge`):
# makes a virtualenv (target/py-venv, kept between runs), installs the pinned test tools,
# builds and installs the package with the one command users run (`pip install ./python`,
# which builds the Rust part with maturin into the workspace's target/, so that after
# `cargo build --release` only the extension itself is compiled), and runs python/tests.
# Needs Python >= 3.9 with venv, cargo, and PyPI.
#
#   scripts/check-python.sh [PYTEST_ARGS...]     # PYTHON=python3.11 picks the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MARL_PY_VENV:-target/py-venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV" || {
    echo "cannot make a virtualenv with $PY (on Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
VPY="$PWD/$VENV/bin/python"
"$VPY" -m pip install -q --disable-pip-version-check "maturin==1.16.0" "pytest==9.2.0" \
  "pettingzoo==1.27.0" "gymnasium==1.4.0" "numpy==2.4.6"
# --no-build-isolation: the maturin just installed builds it (no second download);
# --no-deps: the pinned versions above are the dependencies under test.
PATH="$PWD/$VENV/bin:$PATH" nice -n 10 "$VPY" -m pip install -q --disable-pip-version-check \
  --no-build-isolation --no-deps --force-reinstall ./python
# From the repository root: python/ on sys.path would shadow the installed package.
"$VPY" -m pytest -q python/tests "$@"
