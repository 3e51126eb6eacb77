#!/usr/bin/env bash
# Builds marl with CUDA support (candle's cuda feature) on a machine without a GPU, from
# crates and PyPI wheels alone: target-cuda/release/marl. CUDA_COMPUTE_CAP=90 (H100/H200) by
# default; its kernels then run only on that architecture. The binary loads the CUDA libraries
# when `--device cuda` asks for them (vendor/README.md), so it runs on CPU-only machines too;
# this script checks that it links none of them.
#
#   scripts/build-cuda.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .cuda/root/bin/nvcc ] || scripts/setup-cuda.sh
eval "$(scripts/setup-cuda.sh --env)"
CARGO_TARGET_DIR=target-cuda cargo build --release --features cuda
bin=target-cuda/release/marl
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "NEEDED: $needed"
case "$needed" in
  *cuda*|*cublas*|*curand*|*nvrtc*)
    echo "error: $bin links CUDA libraries; it would not start without them" >&2; exit 1 ;;
esac
echo "built $bin (compute capability $CUDA_COMPUTE_CAP)"
