"""Where the time of one E1 batch goes on CUDA (diagnostic): torch profiler over 200 steps of
Bernoulli-LoRA-GD on paper_linreg with S trajectories. python3 sweeps/gpu_profile_paper.py [S]"""
import sys
import time

import torch

import theory_lab as tl
from theory_lab.plan import make_plan
from theory_lab.runner import execute

S = int(sys.argv[1]) if len(sys.argv) > 1 else 240
pr = tl.load_problem("problems/paper_linreg.toml")
plan = make_plan(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=2), 200, S, backend="torch", device="cuda")
execute(plan)                                  # warm-up: compile, bind
for iters in (200, 1000):
    plan = make_plan(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=2), iters, S, backend="torch", device="cuda")
    t0 = time.perf_counter()
    r = execute(plan)
    print(f"S={S} iters={iters}: loop {r.seconds:.2f} s = {1e3 * r.seconds / iters:.2f} ms/step "
          f"(plan+loop {time.perf_counter() - t0:.2f} s)")
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]) as prof:
    execute(make_plan(pr, tl.Method("bernoulli-lora-gd", p=0.5, rank=2), 100, S, backend="torch", device="cuda"))
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=15, max_name_column_width=50))
print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=12, max_name_column_width=50))
