#!/usr/bin/env bash
# The issue-5 target configurations only (a shorter GPU call than gpu_session.sh): bash sweeps/gpu_targets.sh OUTDIR
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
python3 -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tail -3
tl() { python3 -m theory_lab.cli "$@"; }
tl bench --backend torch --device cuda --dtype float32 --sizes 4096 --ranks 16 --seeds 8 --repeat 10 --csv "$out/t1.csv"
tl bench --backend torch --device cuda --dtype float32 --sizes 1024 --ranks 8 --seeds 64 --repeat 10 --csv "$out/t2.csv"
tl bench --backend torch --device cuda --dtype float32 --tf32 --sizes 1024,4096 --ranks 8,16 --seeds 8,64 --repeat 5 --csv "$out/t3.csv"
tl bench --backend torch --device cuda --dtype float32 --sizes 64,256,1024 --ranks 8 --seeds 8,64 --repeat 5 --csv "$out/t4.csv"
