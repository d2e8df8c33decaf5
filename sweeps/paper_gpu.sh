#!/usr/bin/env bash
# The paper-size numbers of issue 10 on a CUDA machine, in two calls (each under 10 minutes):
#   bash sweeps/paper_gpu.sh OUTDIR e1      # build + cache paper_linreg, time it, E1 grid, small steps
#   bash sweeps/paper_gpu.sh OUTDIR figure  # the full figure (E1 from the store, E2 computed)
# State between the calls (problem cache, sweep store) lives under results/ (git-ignored).
set -u
out=${1:-gpu-out}
part=${2:-e1}
mkdir -p "$out" results
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 THEORY_LAB_CACHE=$PWD/results/problem-cache
tl() { python3 -m theory_lab.cli "$@"; }
if [ "$part" = e1 ]; then
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
  python3 - <<'PY' 2>&1 | tee "$out/build.txt"
import time
t = time.perf_counter()
import theory_lab as tl
p = tl.load_problem("problems/paper_linreg.toml")
print(f"paper_linreg build (first time, cached after): {time.perf_counter() - t:.1f} s")
PY
  python3 -c "
import time; t = time.perf_counter()
import theory_lab as tl
p = tl.load_problem('problems/paper_linreg.toml')
print(f'paper_linreg reload from the cache (whole process): {time.perf_counter() - t:.2f} s')" 2>&1 | tee -a "$out/build.txt"
  for dt in float64 float32; do
    tl bench --backend torch --device cuda --dtype $dt --sizes 64 --ranks 2 --seeds 8,64,1024 --repeat 50 \
       --csv "$out/small_$dt.csv" 2>&1 | tee -a "$out/small_steps.txt"
  done
  tl bench --backend torch --device cuda --dtype float32 --sizes 4096 --ranks 16 --seeds 8 --repeat 20 \
     --csv "$out/target1.csv" 2>&1 | tee -a "$out/targets.txt"
  tl bench --backend torch --device cuda --dtype float32 --sizes 1024 --ranks 8 --seeds 64 --repeat 20 \
     --csv "$out/target2.csv" 2>&1 | tee -a "$out/targets.txt"
  python3 sweeps/paper_protocol.py --backend torch --device cuda 2>&1 | tee "$out/protocol.txt"
  ( time tl figures paper_linreg --full --backend torch --device cuda --store results/paper-store \
      --out "$out/fig" ) 2>&1 | tail -8 | tee "$out/figure.txt"
elif [ "$part" = graphs ]; then
  python3 -m pytest -q -m gpu -p no:cacheprovider -n 0 tests/test_torch_backend.py 2>&1 | tail -4 | tee "$out/pytest_gpu.txt"
  for dt in float64 float32; do
    tl bench --backend torch --device cuda --dtype $dt --sizes 64 --ranks 2 --seeds 8,64,1024 --repeat 50 \
       --csv "$out/small_graph_$dt.csv" 2>&1 | grep -v wrote | tee -a "$out/small_steps.txt"
  done
  tl bench --backend torch --device cuda --dtype float32 --sizes 4096 --ranks 16 --seeds 8 --repeat 20 \
     --csv "$out/t1.csv" 2>&1 | grep -v wrote | tee -a "$out/targets.txt"
  tl bench --backend torch --device cuda --dtype float32 --sizes 1024 --ranks 8 --seeds 64 --repeat 20 \
     --csv "$out/t2.csv" 2>&1 | grep -v wrote | tee -a "$out/targets.txt"
  python3 -c "import theory_lab as tl; tl.load_problem('problems/paper_linreg.toml')"   # build or reload
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
elif [ "$part" = figure ]; then
  python3 -c "import theory_lab as tl; tl.load_problem('problems/paper_linreg.toml')"   # build or reload
  ( time timeout 440 python3 -c "
from theory_lab.gallery import make
make(['paper_linreg'], '$out/fig', quick=False, store_dir='results/paper-store', backend='torch', device='cuda',
     progress=True)" ) > "$out/figure.txt" 2>&1
  tr '\r' '\n' < "$out/figure.txt" | grep -E "sweep:" | awk 'NR%25==1' | tail -40
  tr '\r' '\n' < "$out/figure.txt" | grep -vE "sweep:" | tail -20
fi
