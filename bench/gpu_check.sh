#!/usr/bin/env bash
# The CUDA checks in one go, for a machine with a GPU and its own PyTorch (no network), most
# wanted first, each step under its own time limit: the engine benchmark on the default path
# (CUDA graphs), the app against a headless run on CUDA, the CUDA tests, the compiled step, the
# scaling table, the app at replayed record rates. Logs go to $OUT when set.
# UI packages missing there can travel as wheels in .whl/ (see README, section CUDA).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fftui-gpu}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
step() {  # step SECONDS LOG command...
  local limit=$1 log=$2; shift 2
  echo "== $* (limit ${limit}s)" | tee -a "$OUT/steps.txt"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$log"
  echo "   rc=${PIPESTATUS[0]} in $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
step 120 bench.log python3 bench/bench_engine.py --device cuda --seconds 4
step 120 tui.log python3 bench/tui_bench.py --device cuda --data sample --rounds 2 --seconds 10
step 240 tests.log python3 -m pytest tests/test_cuda.py tests/test_step_math.py tests/test_fast_path.py tests/test_runner.py -q -p no:cacheprovider
step 150 bench-compile.log python3 bench/bench_engine.py --device cuda --seconds 4 --compile
step 120 scaling.log python3 bench/bench_engine.py --device cuda --seconds 3 --scaling
step 60 ui-load.log python3 bench/ui_load.py --rates 5000,10000 --seconds 5
