"""``theory-lab bench``: time one Bernoulli-LoRA step against its unavoidable matrix products.

For each size (m = n), rank r and seed count S, on the chosen backend/device/dtype:

* **step**: one full engine step on least squares, ``G = Sigma W - C`` (the gradient GEMM), drawing
  both sketches on the device, their orthonormal bases, the coin, and the projected update through
  ``Method.step`` (the code path ``tl.run`` uses).
* **memory** (CUDA): peak allocated bytes during the step, against the state S m n.
* **matmul**: the same run times only the products that no implementation can avoid: the gradient
  GEMM (2 m^2 n S flops) and one side's projection products ``Q^T G`` and ``Q (Q^T G)`` (4 m n r S
  flops), with ready-made Q. Its time is the step's floor on this device.

Reported: step and matmul-only times (median of ``repeat``), their ratio, the useful TFLOP/s of the
step, and the fraction of the matmul-only throughput achieved (matmul / step).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from .backend import capture_cuda_graph, get_backend
from .backend.random import Streams
from .errors import check_range
from .methods import Method


@dataclass
class BenchRow:
    backend: str
    device: str
    dtype: str
    tf32: bool
    m: int
    n: int
    rank: int
    seeds: int
    step_ms: float
    matmul_ms: float
    ratio: float
    step_tflops: float
    matmul_tflops: float
    fraction: float
    state_gb: float
    peak_gb: float
    path: str = "eager"


def _timeit(fn, bk, repeat: int) -> float:
    fn()
    bk.synchronize()
    times = []
    for _ in range(repeat):
        bk.synchronize()
        t0 = time.perf_counter()
        fn()
        bk.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_one(m: int, rank: int, seeds: int, backend="numpy", device="cpu", dtype="float64",
              tf32: bool = False, repeat: int = 5, p: float = 0.5, graph: bool = True) -> BenchRow:
    """Time one step and its matmul floor at size m = n. On CUDA with ``graph`` the step is
    captured as a CUDA graph (draws included, the step number on the device), as the engine
    replays its plain steps; ``path`` says which ran."""
    n = m
    bk = get_backend(backend, device, dtype, tf32)
    xp = bk.xp
    rng = np.random.default_rng(0)
    eig = np.linspace(1.0, 10.0, m)
    U, _ = np.linalg.qr(rng.standard_normal((m, m)))
    Sigma = bk.asarray((U * eig) @ U.T)
    negC = bk.asarray(rng.standard_normal((m, n)))
    W = bk.asarray(rng.standard_normal((seeds, m, n)))
    streams = Streams(bk, 0, np.arange(seeds))
    method = Method("bernoulli-lora-gd", p=p, rank=rank)
    gamma = 0.1
    state = {"t": 0}

    def step():
        G = bk.matmul_add(Sigma, W, negC)           # the engine's least-squares gradient
        method.spec.rule.step(method, W, G, gamma, state["t"], streams, None)
        state["t"] += 1

    path = "eager"
    if graph and bk.name == "torch" and bk.device == "cuda":
        step, path = _captured(bk, Sigma, W, negC, method, gamma, streams)

    Q = xp.linalg.qr(bk.asarray(rng.standard_normal((seeds, m, rank)))).Q

    def products():
        G = Sigma @ W
        Q @ (Q.mT @ G)

    if bk.name == "torch" and bk.device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with bk.context():
        t_step = _timeit(step, bk, repeat)
        peak = math.nan
        if bk.name == "torch" and bk.device == "cuda":
            import torch

            peak = torch.cuda.max_memory_allocated() / 1e9
        t_mm = _timeit(products, bk, repeat)
    flops = seeds * (2.0 * m * m * n + 4.0 * m * n * rank)
    return BenchRow(bk.name, bk.device, bk.dtype, bool(tf32), m, n, rank, seeds, 1e3 * t_step, 1e3 * t_mm,
                    t_step / t_mm, flops / t_step / 1e12, flops / t_mm / 1e12, t_mm / t_step,
                    seeds * m * n * (8 if dtype == "float64" else 4) / 1e9, peak, path)


def _captured(bk, Sigma, W, negC, method, gamma, streams):
    """The bench step as a replayed CUDA graph (falls back to eager if capture fails)."""
    import torch

    t_dev = torch.zeros((), dtype=torch.int64, device="cuda")

    def body():
        G = bk.matmul_add(Sigma, W, negC)
        method.spec.rule.step(method, W, G, gamma, t_dev, streams, None)
        t_dev.add_(1)

    try:
        g = capture_cuda_graph(body, bk)
    except Exception:
        torch.cuda.synchronize()
        return body, "eager (capture failed)"
    return g.replay, "cuda-graph"


def run_bench(sizes=(64, 256, 1024), ranks=(1, 8), seeds=(8,), backend="numpy", device="cpu", dtype="float64",
              tf32=False, repeat=5, csv=None, echo=print, graph: bool = True) -> list[BenchRow]:
    """Bench every (size, rank, seeds) combination with rank <= size; print a table, write CSV."""
    from .backend import get_backend
    from .errors import InputError

    repeat = check_range("repeat", repeat, 1, 10_000, integer=True)
    for field, values in (("sizes", sizes), ("ranks", ranks), ("seeds", seeds)):
        if not list(values):
            raise InputError(field, "expected at least one value (comma-separated integers)")
    for m in sizes:                                    # every value checked before anything runs or is written
        check_range("sizes", m, 1, 65536, integer=True)
    for r in ranks:
        check_range("ranks", r, 1, max(sizes), integer=True)
    for S in seeds:
        check_range("seeds", S, 1, 1_000_000, integer=True)
    get_backend(backend, device, dtype, tf32)
    if csv:
        from .errors import writable_file

        writable_file("csv", csv)
    rows = []
    for m in sizes:
        for r in ranks:
            if r > m:
                continue
            for S in seeds:
                row = bench_one(m, r, S, backend, device, dtype, tf32, repeat, graph=graph)
                rows.append(row)
                echo(f"m=n={m:5d} r={r:3d} S={S:4d}  step {row.step_ms:9.3f} ms  matmul {row.matmul_ms:9.3f} ms  "
                     f"ratio {row.ratio:5.2f}  {row.step_tflops:7.2f} TFLOP/s  fraction {row.fraction:5.2f}"
                     + (f"  peak {row.peak_gb:.2f} GB = {row.peak_gb / row.state_gb:.1f} x state"
                        if row.peak_gb == row.peak_gb else "") + f"  [{row.path}]")
    if csv:
        import pandas as pd

        from .errors import atomic_write

        frame = pd.DataFrame([asdict(r) for r in rows])
        atomic_write(csv, lambda tmp: frame.to_csv(tmp, index=False))
    return rows
