#!/usr/bin/env bash
# Everything the GPU numbers in the README come from, in one call on a CUDA machine:
#   bash sweeps/gpu_session.sh OUTDIR
# (On the device tool: carry .whl with the array-api-compat wheel, which that image lacks.)
set -u
out=${1:-gpu-out}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name(0))" | tee -a "$out/gpu.txt"
python3 -m pytest -q -m "gpu or not slow" -p no:cacheprovider tests 2>&1 | tail -15 | tee "$out/pytest.txt"
python3 -m pytest -q -m gpu -p no:cacheprovider -rA tests/test_torch_backend.py 2>&1 | grep -E "PASSED|FAILED|passed|failed" | tail -30 > "$out/pytest_gpu.txt"
tl() { python3 -m theory_lab.cli "$@"; }
tl bench --backend torch --device cuda --dtype float32 --sizes 64,256,1024,4096 --ranks 1,8,16,64 --seeds 8,64 \
   --repeat 5 --csv "$out/bench_f32.csv"
tl bench --backend torch --device cuda --dtype float32 --sizes 4096 --ranks 16 --seeds 8 --repeat 20 --csv "$out/target1.csv"
tl bench --backend torch --device cuda --dtype float32 --sizes 1024 --ranks 8 --seeds 64 --repeat 20 --csv "$out/target2.csv"
tl bench --backend torch --device cuda --dtype float32 --tf32 --sizes 1024,4096 --ranks 8,16 --seeds 8,64 \
   --repeat 5 --csv "$out/bench_tf32.csv"
tl bench --backend torch --device cuda --dtype float64 --sizes 1024,4096 --ranks 8,16 --seeds 8 \
   --repeat 3 --csv "$out/bench_f64.csv"
tl check --problem least-squares -P m=1024 -P n=1024 -P n_samples=2048 --rank 16 --iters 300 --seeds 64 \
   --backend torch --device cuda --dtype float32
