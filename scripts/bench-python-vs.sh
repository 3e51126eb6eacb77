#!/usr/bin/env bash
# marl's environments from Python side by side with JaxMARL (jit+vmap, CPU jax) and the Python
# reference packages (mpe2, lbforaging, rware): makes the virtualenvs it needs under target/
# (kept between runs), installs marl into marl's (as scripts/check-python.sh does, unless it is
# there already) and runs scripts/bench_python_vs.py, which alternates the sides. Not a test.
#
#   scripts/bench-python-vs.sh [--envs 1024] [--seconds 3] [--rounds 3] [--only mpe,lbf,rware]
#
# Pinned versions: jax/jaxlib 0.10.2 (CPU), jaxmarl 0.2.0 with flax 0.12.8, chex 0.1.92, gymnax
# 1.0.1 (what pip resolves for jaxmarl 0.2.0 and jax[cpu] at the time of writing); mpe2 1.1.1,
# pettingzoo 1.27.0, lbforaging 2.0.0, rware 2.0.0, networkx 3.6.1 and numpy 2.4.6 as
# scripts/setup-reference.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MARL_VENV=${MARL_PY_VENV:-target/py-venv}
JAX_VENV=target/jaxmarl-venv
REF_VENV=target/reference-venv
pipq() { "$1/bin/python" -m pip install -q --disable-pip-version-check "${@:2}"; }
for v in "$MARL_VENV" "$JAX_VENV" "$REF_VENV"; do
  [ -x "$v/bin/python" ] || "$PY" -m venv "$v"
done
if ! "$MARL_VENV/bin/python" -c "import marl" 2>/dev/null; then
  pipq "$MARL_VENV" "maturin==1.16.0" "pettingzoo==1.27.0" "gymnasium==1.4.0" "numpy==2.4.6"
  PATH="$PWD/$MARL_VENV/bin:$PATH" nice -n 10 "$MARL_VENV/bin/python" -m pip install -q \
    --disable-pip-version-check --no-build-isolation --no-deps ./python
fi
pipq "$JAX_VENV" "jax[cpu]==0.10.2" "jaxlib==0.10.2" "jaxmarl==0.2.0" "flax==0.12.8" \
  "chex==0.1.92" "gymnax==1.0.1" "numpy==2.4.6"
pipq "$REF_VENV" "mpe2==1.1.1" "pettingzoo==1.27.0" "numpy==2.4.6" "lbforaging==2.0.0" \
  "rware==2.0.0" "networkx==3.6.1"
exec "$PY" scripts/bench_python_vs.py --marl-python "$MARL_VENV/bin/python" \
  --jaxmarl-python "$JAX_VENV/bin/python" --reference-python "$REF_VENV/bin/python" "$@"
