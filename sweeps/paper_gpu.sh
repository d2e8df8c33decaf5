#!/usr/bin/env bash
# The paper-size GPU numbers of the README (issue 10) on a CUDA machine, in calls of under 10 minutes:
#   bash sweeps/paper_gpu.sh OUTDIR setup    # build + cache paper_linreg (timed), reload time, CPU-process protocol
#   bash sweeps/paper_gpu.sh OUTDIR graphs   # GPU tests, small steps eager vs CUDA graph, large-size targets, E1 time
#   bash sweeps/paper_gpu.sh OUTDIR figure   # the full paper_linreg figure (E1 + E2), resumable from the store
# State between the calls (problem cache, sweep store) lives under results/ (git-ignored).
set -u
out=${1:-gpu-out}
part=${2:-setup}
mkdir -p "$out" results
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 THEORY_LAB_CACHE=$PWD/results/problem-cache
tl() { python3 -m theory_lab.cli "$@"; }
load() { python3 -c "
import time; t = time.perf_counter()
import theory_lab as tl
tl.load_problem('problems/paper_linreg.toml')
print(f'paper_linreg $1 (whole process): {time.perf_counter() - t:.2f} s')"; }
case "$part" in
setup)
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
  load "build, cached after" 2>&1 | tee "$out/build.txt"
  load "reload from the cache" 2>&1 | tee -a "$out/build.txt"
  python3 sweeps/paper_protocol.py --backend torch --device cuda 2>&1 | tee "$out/protocol.txt"
  ;;
graphs)
  python3 -m pytest -q -m gpu -p no:cacheprovider -n 0 tests/test_torch_backend.py 2>&1 | tail -4 | tee "$out/pytest_gpu.txt"
  for dt in float64 float32; do
    for path in "" "--no-graph"; do
      tl bench --backend torch --device cuda --dtype $dt --sizes 64 --ranks 2 --seeds 8,64,1024 --repeat 50 $path \
         --csv "$out/small_$dt${path:+_eager}.csv" 2>&1 | grep -v wrote | tee -a "$out/small_steps.txt"
    done
  done
  tl bench --backend torch --device cuda --dtype float32 --sizes 4096 --ranks 16 --seeds 8 --repeat 20 \
     --csv "$out/t1.csv" 2>&1 | grep -v wrote | tee -a "$out/targets.txt"
  tl bench --backend torch --device cuda --dtype float32 --sizes 1024 --ranks 8 --seeds 64 --repeat 20 \
     --csv "$out/t2.csv" 2>&1 | grep -v wrote | tee -a "$out/targets.txt"
  load "build or reload" > /dev/null
  timeout 300 python3 - <<'PY' 2>&1 | tee "$out/e1.txt"
import time
import theory_lab as tl
from theory_lab import gallery
pr = gallery._paper_problem("full")
gallery._OPTIONS.update(backend="torch", device="cuda")
t0 = time.perf_counter()
bl, rac, gd = gallery.paper_e1(pr, "full", None)
n = sum(t["config"].nunique() for t in (bl, rac, gd))
print(f"E1 full grid, problem cached: {n} configurations x 20 seeds x 4000 steps: {time.perf_counter() - t0:.1f} s "
      f"(torch cuda float64, CUDA graphs, verdicts included)")
r = tl.run(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=2), iters=4000, seeds=20, backend="torch", device="cuda")
print(f"one E1 configuration (20 seeds, 4000 steps): {r.seconds:.2f} s loop = {1e3 * r.seconds / 4000:.3f} ms/step "
      f"= {1e6 * r.seconds / 80000:.1f} us per seed-step [{r.engine}]")
PY
  ;;
figure)
  load "build or reload" > /dev/null
  ( time timeout 440 python3 -c "
from theory_lab.gallery import make
make(['paper_linreg'], '$out/fig', quick=False, store_dir='results/paper-store', backend='torch', device='cuda',
     progress=True)" ) > "$out/figure.txt" 2>&1
  tr '\r' '\n' < "$out/figure.txt" | grep -E "sweep:" | awk 'NR%25==1' | tail -40
  tr '\r' '\n' < "$out/figure.txt" | grep -vE "sweep:" | tail -20
  ;;
*)
  echo "usage: bash sweeps/paper_gpu.sh OUTDIR setup|graphs|figure" >&2; exit 2
  ;;
esac
