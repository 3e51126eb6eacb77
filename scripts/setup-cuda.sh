#!/usr/bin/env bash
# Installs NVIDIA's CUDA 13.0 compiler and runtime from PyPI wheels into .cuda/venv, lays them
# out as a toolkit tree in .cuda/root, and prints the environment to export. The build machine
# needs no GPU and no driver: the binary loads the CUDA libraries at run time (vendor/README.md)
# and links only the static CUDA runtime. Recipe and reasons (why 13.0: driver 580 JITs PTX up
# to ISA 9.0) in docs/candle.md section 4.
#
# .cuda/root/lib64/stubs/libcuda.so is a fake driver whose every call fails: with
# LD_LIBRARY_PATH=.cuda/root/lib64 it shows `--device cuda` failing past the library probe.
#
#   scripts/setup-cuda.sh && eval "$(scripts/setup-cuda.sh --env)"
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD/.cuda/root
VENV=$PWD/.cuda/venv
if [ "${1:-}" != "--env" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 \
    nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-cccl==13.0.85 \
    nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
  CU=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
  rm -rf "$ROOT"; mkdir -p "$ROOT/lib64/stubs"
  ln -s "$CU/bin" "$ROOT/bin"; ln -s "$CU/include" "$ROOT/include"; ln -s "$CU/nvvm" "$ROOT/nvvm"
  for f in "$CU"/lib/*; do ln -s "$f" "$ROOT/lib64/"; done
  (cd "$ROOT/lib64" && for l in cudart.so.13 cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13; do
    [ -e "lib$l" ] && ln -sf "lib$l" "lib${l%.*}"; done)
  # The wheels ship no libcuda: a fake one with every driver entry point cudarc binds, each
  # failing (999, CUDA_ERROR_UNKNOWN), for checking the error path on a machine without a GPU.
  cargo fetch -q  # the lock file holds the optional cudarc too
  BIND=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs | head -1)
  grep -o 'pub unsafe fn cu[A-Za-z0-9_]*(' "$BIND" | sed 's/pub unsafe fn \(.*\)(/int \1(void){return 999;}/' \
    | sort -u > "$ROOT/lib64/stubs/c.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$ROOT/lib64/stubs/libcuda.so" "$ROOT/lib64/stubs/c.c"
  ln -sf stubs/libcuda.so "$ROOT/lib64/libcuda.so"
  echo "CUDA 13.0 toolkit from wheels in $ROOT" >&2
fi
cat <<ENV
export CUDA_HOME=$ROOT CUDA_ROOT=$ROOT CUDA_PATH=$ROOT PATH=$ROOT/bin:\$PATH CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}
ENV
