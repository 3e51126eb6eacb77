#!/usr/bin/env bash
# Builds marl with CUDA support (candle's cuda feature) on a machine without a GPU, from
# crates and PyPI wheels alone: target-cuda/release/marl. CUDA_COMPUTE_CAP=90 (H100/H200) by
# default; the binary then runs only on that architecture.
#
#   scripts/build-cuda.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .cuda/root/bin/nvcc ] || scripts/setup-cuda.sh
eval "$(scripts/setup-cuda.sh --env)"
CARGO_TARGET_DIR=target-cuda cargo build --release --features cuda
echo "built target-cuda/release/marl (compute capability $CUDA_COMPUTE_CAP)"
