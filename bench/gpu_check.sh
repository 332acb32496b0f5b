#!/usr/bin/env bash
# The CUDA checks in one go, for a machine with a GPU and its own PyTorch (no network):
# the CUDA tests, then the engine benchmark with the scaling table. Logs go to $OUT when set.
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
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
python3 -m pytest tests/test_cuda.py tests/test_fast_path.py tests/test_runner.py -q -p no:cacheprovider 2>&1 | tee "$OUT/tests.log"
python3 bench/bench_engine.py --device cuda --seconds 4 --compile 2>&1 | tee "$OUT/bench-compile.log"
python3 bench/bench_engine.py --device cuda --seconds 4 --scaling 2>&1 | tee "$OUT/bench.log"
python3 bench/tui_bench.py --device cuda --data sample --rounds 2 --seconds 10 2>&1 | tee "$OUT/tui.log"
