#!/usr/bin/env bash
# Installs the Python reference environments (mpe2 1.1.1 with PettingZoo, lbforaging 2.0.0,
# rware 2.0.0 with the networkx its collision resolution runs on) into .venv, for recording
# parity traces and side-by-side checks. Not needed to build or test marl.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "mpe2==1.1.1" "pettingzoo==1.27.0" "numpy==2.4.6" "lbforaging==2.0.0" \
  "rware==2.0.0" "networkx==3.6.1"
echo "reference environments installed in .venv"
# An environment nobody on the team wrote, through the bridge: mpe2's simple_world_comm trains,
# its groups named by role (leadadversary, adversary, agent). cargo test skips it without mpe2.
MARL_REFERENCE_PYTHON=.venv/bin/python cargo test --release -q --test integration \
  python_bridge::mpe2_world_comm_groups_are_named_by_role -- --nocapture
