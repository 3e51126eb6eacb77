#!/usr/bin/env bash
# Installs the Python reference environments (mpe2 1.1.1 with PettingZoo, lbforaging 2.0.0,
# rware 2.0.0 with the networkx its collision resolution runs on) into .venv, and IC3Net's
# predator-prey (its sources at a pinned commit, with the numpy 1.x it needs, in .venv/ic3net), for
# recording parity traces and side-by-side checks. Not needed to build or test marl.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "mpe2==1.1.1" "pettingzoo==1.27.0" "numpy==2.4.6" "lbforaging==2.0.0" \
  "rware==2.0.0" "networkx==3.6.1"
# IC3Net's predator_prey_env.py (scripts/make_predator_prey_traces.py): no package, no gym (the
# script stubs it); numpy 1.x, as numpy 2's np.ogrid returns a tuple its one-hot helper cannot insert into.
if [ ! -d .venv/src/IC3Net/.git ]; then
  rm -rf .venv/src/IC3Net
  git clone -q https://github.com/IC3Net/IC3Net .venv/src/IC3Net
fi
git -C .venv/src/IC3Net checkout -q 69b7e0ce51a79def593abfef1a976f43e5e13f75
python3 -m venv .venv/ic3net
.venv/ic3net/bin/pip install -q "numpy==1.26.4"
echo "reference environments installed in .venv (IC3Net's predator-prey: .venv/ic3net/bin/python)"
# An environment nobody on the team wrote, through the bridge: mpe2's simple_world_comm trains,
# its groups named by role (leadadversary, adversary, agent). cargo test skips it without mpe2.
MARL_REFERENCE_PYTHON=.venv/bin/python cargo test --release -q --test integration \
  python_bridge::mpe2_world_comm_groups_are_named_by_role -- --nocapture
