"""torch backend (CPU here; CUDA tests are marked gpu): parity with the numpy float64 reference.

Fed the same random draws (the counter-based streams are bit-identical across backends), torch
float64 must reproduce numpy's traces to floating-point tolerance; float32 and independent draws must
agree in distribution.
"""
import numpy as np
import pytest

import theory_lab as tl

from helpers import TRUE_CONFIDENCE, has_cuda, has_torch

pytestmark = pytest.mark.skipif(not has_torch(), reason="torch not installed")

CASES = [
    ("least-squares", dict(m=8, n=6, n_samples=30), "bernoulli-lora-gd", dict(p=0.5, rank=2)),
    ("least-squares", dict(m=8, n=6, n_samples=30), "bernoulli-lora-sgd", dict(p=0.3, rank=2, batch=4)),
    ("least-squares", dict(m=8, n=6, n_samples=30), "bernoulli-lora-sgd",
     dict(p=0.7, rank=1, batch=3, replacement=True)),
    ("kron-quadratic", dict(m=5, n=7), "bernoulli-lora-sgd", dict(p=0.5, rank=2, noise_std=0.2)),
    ("quadratic-iso", dict(m=6, n=9), "bernoulli-lora-gd", dict(p=0.5, rank=3, sketch="coordinate")),
    ("quadratic-iso", dict(m=6, n=9), "bernoulli-lora-gd", dict(p=0.5, rank=3, sketch="rademacher")),
    ("linreg-noncvx", dict(m=3, n=4, n_samples=40), "bernoulli-lora-gd",
     dict(p=0.5, rank=2, sketch="stratified", left_groups=[1, 2], right_groups=[1, 3])),
    ("linreg-noncvx", dict(m=3, n=4, n_samples=40), "rac-lora", dict(p=0.0, rank=1, sketch="orthogonal")),
    ("kron-quadratic", dict(m=5, n=7), "gd", dict()),
    ("least-squares", dict(m=8, n=6, n_samples=30), "bernoulli-lora-page", dict(p=0.5, rank=2, batch=3, q=0.3)),
    ("softmax-regression", dict(m=6, n=4, n_samples=40), "bernoulli-lora-mvr", dict(p=0.5, rank=2, momentum=0.3)),
    ("least-squares", dict(m=8, n=6, n_samples=40, clients=4), "bernoulli-lora-qgd",
     dict(p=0.5, rank=2, compressor="dither", s=2)),
    ("least-squares", dict(m=8, n=6, n_samples=40, clients=4), "bernoulli-lora-marina",
     dict(p=0.5, rank=2, compressor="randk", k=12, q=0.4)),
    ("least-squares", dict(m=8, n=6, n_samples=40, clients=4), "bernoulli-lora-ef21", dict(p=0.5, rank=2, k=12)),
    ("l1-regression", dict(m=6, n=5, n_samples=30), "bernoulli-lora-subgd", dict(p=0.5, rank=2, stepsize="polyak")),
]
IDS = [f"{f}-{m}-{i}" for i, (f, _, m, _) in enumerate(CASES)]


def tolerance(dtype: str, steps: int) -> float:
    """Relative tolerance from the dtype's epsilon, growing with the number of steps."""
    eps = np.finfo(np.float64 if dtype == "float64" else np.float32).eps
    return 100 * eps * steps


def assert_parity(family, pp, method, mp, device):
    """Same draws: torch float64 on ``device`` reproduces numpy's traces to dtype- and step-scaled tolerance."""
    pr = tl.make_problem(family, **pp)
    me = tl.Method(method, **mp)
    T = 60
    a = tl.run(pr, me, iters=T, seeds=5, seed=4)
    b = tl.run(pr, me, iters=T, seeds=5, seed=4, backend="torch", device=device)
    for name in ("f_gap", "grad_sq", "avg_grad_sq", "epochs", "bits"):
        assert max_rel_err(a.metric(name), b.metric(name)) < tolerance("float64", T), name


@pytest.mark.parametrize("family,pp,method,mp", CASES, ids=IDS)
def test_torch_cpu_float64_reproduces_numpy(family, pp, method, mp):
    assert_parity(family, pp, method, mp, "cpu")


def max_rel_err(x, y):
    """|x - y| relative to |x| + sqrt(|x| x_0): metrics are quadratic in W - W*, so an iterate error of
    eps ||W0 - W*|| shows as sqrt(f f_0) eps once f has decayed far below f_0."""
    scale = np.abs(x) + np.sqrt(np.abs(x) * np.abs(x[:, :1])) + 1e-300
    return np.max(np.abs(x - y) / scale)


@pytest.mark.parametrize("backend_kw", [dict(backend="torch", dtype="float32"),
                                        pytest.param(dict(backend="torch", seed=99), marks=pytest.mark.slow)],
                         ids=["torch-float32", "torch-other-draws"])
def test_torch_agrees_in_distribution(backend_kw):
    """Mean final f_gap of 4000 seeds: two-sample z within 4 (false alarm about 6e-5)."""
    pr = tl.make_problem("least-squares", m=8, n=12, n_samples=40)
    me = tl.Method("bernoulli-lora-sgd", p=0.5, rank=2, batch=2)
    kw = dict(iters=80, seeds=4000)
    a = tl.run(pr, me, seed=1, **kw).metric("f_gap")[:, -1]
    b = tl.run(pr, me, **{"seed": 1, **kw, **backend_kw}).metric("f_gap")[:, -1]
    z = (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert abs(z) < 4


def test_float32_check_verdict_matches_reference():
    pr = tl.make_problem("quadratic-iso", m=8, n=12)
    me = tl.Method("bernoulli-lora-gd", p=0.3, rank=2)
    rep = tl.check(pr, me, iters=20, seeds=4000, backend="torch", dtype="float32", seed=3,
                   confidence=TRUE_CONFIDENCE)
    assert rep.theorem == "EXACT-ISO" and rep.verdict == "match"


def test_cuda_request_without_gpu_is_one_line_exit_2(capsys):
    if has_cuda():
        pytest.skip("a GPU is present")
    from theory_lab.cli import main
    code = main(["check", "--backend", "torch", "--device", "cuda", "--iters", "3", "--seeds", "4"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "device:" in err[0] and "--device cpu" in err[0]


def test_missing_torch_message(monkeypatch, capsys):
    import builtins
    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "torch" or name.startswith("array_api_compat.torch"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    from theory_lab.cli import main
    code = main(["check", "--backend", "torch", "--iters", "3", "--seeds", "4"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install" in err[0] and "--backend numpy" in err[0]


# ---------------------------------------------------------------------------------------- CUDA
gpu = pytest.mark.gpu


@gpu
@pytest.mark.skipif(not has_cuda(), reason="no CUDA device")
@pytest.mark.parametrize("family,pp,method,mp", CASES, ids=IDS)
def test_cuda_float64_reproduces_numpy(family, pp, method, mp):
    pr = tl.make_problem(family, **pp)
    me = tl.Method(method, **mp)
    T = 60
    a = tl.run(pr, me, iters=T, seeds=5, seed=4)
    b = tl.run(pr, me, iters=T, seeds=5, seed=4, backend="torch", device="cuda")
    for name in ("f_gap", "grad_sq"):
        x, y = a.metric(name), b.metric(name)
        assert max_rel_err(x, y) < tolerance("float64", T), name


@gpu
@pytest.mark.skipif(not has_cuda(), reason="no CUDA device")
def test_cuda_float32_distribution_and_verdicts():
    pr = tl.make_problem("least-squares", m=8, n=12, n_samples=40)
    me = tl.Method("bernoulli-lora-sgd", p=0.5, rank=2, batch=2)
    a = tl.run(pr, me, iters=80, seeds=4000, seed=1).metric("f_gap")[:, -1]
    b = tl.run(pr, me, iters=80, seeds=4000, seed=1, backend="torch", device="cuda",
               dtype="float32").metric("f_gap")[:, -1]
    z = (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert abs(z) < 4
    rep = tl.check(tl.make_problem("quadratic-iso", m=8, n=12), tl.Method("bernoulli-lora-gd", p=0.3, rank=2),
                   iters=20, seeds=20000, backend="torch", device="cuda", dtype="float32", seed=3,
                   confidence=TRUE_CONFIDENCE)
    assert rep.verdict == "match"


@gpu
@pytest.mark.skipif(not has_cuda(), reason="no CUDA device")
def test_cuda_large_size_matches_numpy_reference():
    """m = n = 256, r = 8: float64 on the GPU reproduces the numpy trace."""
    pr = tl.make_problem("least-squares", m=256, n=256, n_samples=512)
    me = tl.Method("bernoulli-lora-gd", p=0.5, rank=8)
    a = tl.run(pr, me, iters=30, seeds=4, seed=2).metric("f_gap")
    b = tl.run(pr, me, iters=30, seeds=4, seed=2, backend="torch", device="cuda").metric("f_gap")
    np.testing.assert_allclose(b, a, rtol=tolerance("float64", 30) * 10)


@gpu
@pytest.mark.skipif(not has_cuda(), reason="no CUDA device")
@pytest.mark.parametrize("method,mp", [("bernoulli-lora-gd", {"p": 0.3, "rank": 2}), ("rac-lora", {"p": 0.0, "rank": 2}),
                                       ("gd", {})])
def test_cuda_graph_steps_equal_eager_steps_and_numpy(method, mp, monkeypatch):
    """Plain steps replayed from a captured CUDA graph give the eager engine's numbers (same kernels,
    the step number on the device) and the numpy reference's to float64 rounding; checkpoints
    sparse enough that most steps are replayed."""
    pr = tl.make_problem("linreg-noncvx", m=8, n=6, n_samples=60)
    me = tl.Method(method, **mp)
    kw = dict(iters=300, seeds=6, seed=3, checkpoints=[0, 1, 7, 50, 120, 299, 300])
    graph = tl.run(pr, me, backend="torch", device="cuda", **kw)
    assert graph.engine == "cuda-graph"
    monkeypatch.setenv("THEORY_LAB_CUDA_GRAPHS", "0")
    eager = tl.run(pr, me, backend="torch", device="cuda", **kw)
    assert eager.engine == "eager"
    ref = tl.run(pr, me, **kw)
    for name in graph.metrics:
        np.testing.assert_array_equal(graph.metrics[name], eager.metrics[name], err_msg=name)
        # float64 rounding of cuBLAS vs OpenBLAS: 1e-9 relative, and absolutely 1e-12 of the start
        # (near the minimiser both sit at the rounding floor, ~1e-31 here, where they differ freely)
        scale = float(np.abs(ref.metrics[name][:, 0]).max())
        np.testing.assert_allclose(graph.metrics[name], ref.metrics[name], rtol=1e-9, atol=1e-12 * scale,
                                   err_msg=name)


@gpu
@pytest.mark.skipif(not has_cuda(), reason="no CUDA device")
def test_cuda_batched_sweep_with_graphs_equals_solo_runs():
    pr = tl.make_problem("linreg-noncvx", m=8, n=6, n_samples=60)
    grid = {"p": [0.2, 0.8], "factor": [0.5, 1.0]}
    t = tl.sweep(pr, "bernoulli-lora-gd", grid, iters=1200, seeds=4, progress=False, method_params={"rank": 2},
                 backend="torch", device="cuda")
    for _, sub in t.groupby("config"):
        row = sub.iloc[0]
        solo = tl.run(pr, tl.Method("bernoulli-lora-gd", p=row.p, rank=2, factor=row.factor), iters=1200, seeds=4,
                      backend="torch", device="cuda")
        got = sub.pivot(index="seed", columns="iteration", values="f_gap").to_numpy()
        np.testing.assert_allclose(got, solo.metrics["f_gap"], rtol=1e-12, atol=0)
