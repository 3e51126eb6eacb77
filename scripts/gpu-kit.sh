#!/usr/bin/env bash
# Packs what a GPU machine without a CUDA toolkit, compiler or network needs to test and
# measure the cuda build: the stripped binary and the stripped integration-test binary (whose
# per-device suites, tests/integration/backends.rs and train.rs, run there), in
# target-cuda/gpu-kit.tar.xz, and prints how to run them there. Builds with scripts/build-cuda.sh's environment.
#
#   scripts/gpu-kit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .cuda/root/bin/nvcc ] || scripts/setup-cuda.sh
eval "$(scripts/setup-cuda.sh --env)"
export CARGO_TARGET_DIR=target-cuda
cargo build --release --features cuda
# The test executable cargo reports for the integration tests.
mapfile -t tests < <(cargo test --release --features cuda --no-run --test integration \
  --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
')
[ ${#tests[@]} -eq 1 ] || { echo "expected the integration test binary, got: ${tests[*]}" >&2; exit 1; }
rm -rf target-cuda/kit && mkdir -p target-cuda/kit
strip -o target-cuda/kit/marl target-cuda/release/marl
for t in "${tests[@]}"; do strip -o "target-cuda/kit/${t%% *}" "${t#* }"; done
tar -cJf target-cuda/gpu-kit.tar.xz -C target-cuda kit
echo "target-cuda/gpu-kit.tar.xz: $(du -h target-cuda/gpu-kit.tar.xz | cut -f1) ($(git rev-parse --short HEAD))"
cat <<RUN
On the GPU machine, in a copy of this tree with target-cuda/gpu-kit.tar.xz:
  tar -xJf target-cuda/gpu-kit.tar.xz -C target-cuda
  mkdir -p target-cuda/release && cp target-cuda/kit/marl target-cuda/release/marl
  [ "\$PWD" = $PWD ] || { mkdir -p $(dirname "$PWD") && ln -sfn "\$PWD" $PWD; }   # the tests' configs and binary path
  MARL_REQUIRE_CUDA=1 target-cuda/kit/integration backends:: train::
  scripts/bench-gpu.sh update train; scripts/bench-gpu.sh returns
RUN
