"""Sweeps: cache and resume (SIGKILL included), concurrent writers, Dask, and spec validation."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import theory_lab as tl
from theory_lab.cli import main
from theory_lab.sweep import Store, sweep

GRID = {"p": [0.0, 0.5, 1.0], "rank": [1, 2]}
KW = dict(iters=40, seeds=8, progress=False)


def lsq():
    return tl.make_problem("least-squares", m=6, n=9, n_samples=20)


def canonical(table):
    return table.sort_values(["config", "seed", "iteration"]).reset_index(drop=True)


def test_table_shape_and_columns(tmp_path):
    t = sweep(lsq(), "bernoulli-lora-gd", GRID, store=tmp_path / "s.parquet", **KW)
    assert t.attrs["computed"] == 6 and t["config"].nunique() == 6
    assert len(t) == 6 * 8 * 41                            # configurations x seeds x checkpoints
    assert {"p", "rank", "seed", "iteration", "f_gap", "bound", "verdict", "theorem", "lam_min"} <= set(t.columns)
    # 8 seeds cannot always separate the early checkpoints from a bound that starts at f(W0)
    assert set(t.verdict) <= {"holds", "inconclusive"} and set(t.theorem) == {"GD-PL"}
    # the stored bound is the theorem's: (1 - 2 mu gamma (1 - L gamma / 2) lam)^t delta0
    pr = lsq()
    row = t[(t.p == 0.5) & (t["rank"] == 2) & (t.iteration == 40)].iloc[0]
    lam = 0.5 * 2 / 6 + 0.5 * 2 / 9
    g = 1 / pr.L
    assert row.bound == pytest.approx((1 - 2 * pr.mu * g * (1 - pr.L * g / 2) * lam) ** 40 * pr.delta0, rel=1e-12)
    assert pd.read_parquet(tmp_path / "s.parquet").shape == t.shape


def test_cached_configurations_are_not_recomputed(tmp_path, monkeypatch):
    store = tmp_path / "s.parquet"
    first = sweep(lsq(), "bernoulli-lora-gd", GRID, store=store, **KW)
    calls = []
    import importlib
    sw = importlib.import_module("theory_lab.sweep")   # the module (tl.sweep is the function)
    real = sw.compute
    monkeypatch.setattr(sw, "compute", lambda cfg: calls.append(cfg.key) or real(cfg))
    again = sweep(lsq(), "bernoulli-lora-gd", GRID, store=store, **KW)
    assert calls == [] and again.attrs["computed"] == 0 and again.attrs["cached"] == 6
    pd.testing.assert_frame_equal(canonical(first), canonical(again))
    more = sweep(lsq(), "bernoulli-lora-gd", {"p": [0.5], "rank": [1, 2, 3]}, store=store, **KW)
    assert len(calls) == 1 and more.attrs["computed"] == 1 and more.attrs["cached"] == 2
    assert pd.read_parquet(store)["config"].nunique() == 7        # the store holds the union


SCRIPT = textwrap.dedent("""
    import sys, theory_lab as tl
    from theory_lab.sweep import sweep
    pr = tl.make_problem("least-squares", m=6, n=9, n_samples=20)
    sweep(pr, "bernoulli-lora-sgd", {{"p": [0.0, 0.25, 0.5, 0.75, 1.0], "rank": [1, 2, 3]}},
          iters={iters}, seeds=32, store=sys.argv[1], progress=False, workers={workers})
""")


def _run_script(store, workers=1, iters=200):
    return subprocess.Popen([sys.executable, "-c", SCRIPT.format(workers=workers, iters=iters), str(store)])


def _children(pid):
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _running(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_parent(tmp_path):
    """SIGKILL of a --workers 2 sweep used to leave its workers and the resource tracker running."""
    proc = _run_script(tmp_path / "w.parquet", workers=2, iters=3000)
    deadline = time.time() + 60
    kids = []
    while time.time() < deadline and len(kids) < 3:          # two workers and the resource tracker
        time.sleep(0.1)
        kids = _children(proc.pid)
    assert len(kids) >= 2, kids
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_running(k) for k in kids):
        time.sleep(0.1)
    assert not any(_running(k) for k in kids)


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_uninterrupted_table(tmp_path):
    killed = tmp_path / "killed.parquet"
    proc = _run_script(killed)
    parts = Path(str(killed) + ".parts")
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.parquet"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(list(parts.glob("*.parquet")))
    assert 3 <= n_before < 15, n_before                  # killed mid-sweep
    assert not killed.exists()                            # the table was never half-written
    resumed = _run_script(killed)
    assert resumed.wait() == 0
    clean = tmp_path / "clean.parquet"
    assert _run_script(clean).wait() == 0
    a, b = canonical(pd.read_parquet(killed)), canonical(pd.read_parquet(clean))
    assert a["config"].nunique() == b["config"].nunique() == 15
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_two_concurrent_sweeps_share_a_store(tmp_path):
    store = tmp_path / "shared.parquet"
    procs = [_run_script(store), _run_script(store)]
    assert [p.wait() for p in procs] == [0, 0]
    table = pd.read_parquet(store)
    assert table["config"].nunique() == 15 and len(table) == 15 * 32 * 201
    assert not table.duplicated(["config", "seed", "iteration"]).any()


def test_local_processes_equal_in_process(tmp_path):
    a = sweep(lsq(), "bernoulli-lora-gd", GRID, store=tmp_path / "a.parquet", **KW)
    b = sweep(lsq(), "bernoulli-lora-gd", GRID, store=tmp_path / "b.parquet", workers=2, **KW)
    pd.testing.assert_frame_equal(canonical(a), canonical(b))


@pytest.mark.slow
def test_dask_local_cluster_equals_local(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = sweep(lsq(), "bernoulli-lora-gd", GRID, store=tmp_path / "local.parquet", **KW)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            remote = sweep(lsq(), "bernoulli-lora-gd", GRID, store=tmp_path / "dask.parquet", scheduler=client, **KW)
    pd.testing.assert_frame_equal(canonical(local), canonical(remote))


def _spec(tmp_path, body):
    f = tmp_path / "spec.toml"
    f.write_text(textwrap.dedent(body))
    return f


GOOD = """
    problem = "least-squares"
    method = "bernoulli-lora-gd"
    iters = 20
    seeds = 4
    [problem_params]
    m = 6
    n = 9
    n_samples = 20
    [grid]
    p = [0.0, 1.0]
    rank = [1, 2]
"""


def test_cli_sweep_spec(tmp_path, capsys):
    out = tmp_path / "o.parquet"
    assert main(["sweep", str(_spec(tmp_path, GOOD)), "--out", str(out), "--quiet"]) == 0
    assert "4 configurations computed" in capsys.readouterr().out
    assert pd.read_parquet(out)["config"].nunique() == 4
    assert main(["sweep", str(_spec(tmp_path, GOOD)), "--out", str(out), "--quiet"]) == 0
    assert "0 configurations computed, 4 cached" in capsys.readouterr().out


@pytest.mark.parametrize("edit,field", [
    (("p = [0.0, 1.0]", "p = [0.0, 1.5]"), "p:"),
    (("rank = [1, 2]", "rank = [1, 7]"), "rank:"),
    (("rank = [1, 2]", "rank = [1, 2]\ncolour = [1]"), "colour:"),
    (("iters = 20", "iters = 0"), "iters:"),
    (("m = 6", "m = 6\nbogus = 1"), "bogus:"),
    (("[grid]", "[grid]\nbatch = [4]"), "batch:"),                   # not a parameter of bernoulli-lora-gd
    (("iters = 20", "iters = 20\ncheckpoints = 5"), "checkpoints:"),   # was accepted and ignored
    (("iters = 20", "iters = 20\nout = 5"), "out:"),
    (("problem = \"least-squares\"", "problem = 5"), "problem:"),
    (("[problem_params]", "[method_params]\nbogus = 3\n[problem_params]"), "bogus:"),
    (("iters = 20", "iters = [20"), "spec:"),
])
def test_bad_spec_rejected_before_any_computation(tmp_path, capsys, edit, field):
    spec = _spec(tmp_path, GOOD.replace(*edit))
    out = tmp_path / "never.parquet"
    assert main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0]
    assert not out.exists() and not Path(str(out) + ".parts").exists()


def test_ambiguous_parameter_must_be_qualified(tmp_path, capsys):
    """least-squares and SGD both take ``noise``: a bare grid key is refused, problem.noise works."""
    sgd = GOOD.replace("bernoulli-lora-gd", "bernoulli-lora-sgd")
    out = tmp_path / "a.parquet"
    assert main(["sweep", str(_spec(tmp_path, sgd.replace("[grid]", "[grid]\nnoise = [0.1]"))), "--out", str(out),
                 "--quiet"]) == 2
    assert "noise: ambiguous" in capsys.readouterr().err
    assert main(["sweep", str(_spec(tmp_path, sgd.replace("[grid]", "[grid]\n\"problem.noise\" = [0.1]"))),
                 "--out", str(out), "--quiet"]) == 0


def test_missing_spec_file(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_example_specs_validate():
    """Every example spec loads, and every point of its grid builds a full run plan (problem, method,
    theorem, stepsize); the problems are built at a small size with the spec's other parameters."""
    from theory_lab.sweep import Config, expand_grid, load_spec
    root = Path(__file__).resolve().parents[1] / "sweeps"
    specs = sorted(root.glob("*.toml"))
    assert len(specs) >= 2
    for f in specs:
        spec = load_spec(f)
        small = {**spec.get("problem_params", {}), "m": 6, "n": 8}
        if "n_samples" in small:
            small["n_samples"] = 40
        base = dict(problem_params=small, method_params=spec.get("method_params", {}), iters=spec["iters"],
                    seeds=spec["seeds"])
        points = expand_grid(spec["grid"])
        configs = [Config(spec["problem"], spec["method"], {**pt, "rank": min(pt.get("rank", 1), 6)}, base)
                   for pt in points]
        assert len({c.key for c in configs}) == len(points)       # distinct points, distinct keys
        for c in configs:
            plan = c.plan()
            assert plan.iters == spec["iters"] and plan.seeds == spec["seeds"] and plan.gamma > 0
            assert plan.theorem is not None and plan.theorem.estimator == "gd"


def test_a_configuration_travels_with_its_resolved_plan(monkeypatch):
    """Issue 18: the plan is resolved once per configuration, in the sweep's process. A pickled
    configuration (what a worker receives) runs without resolving it again (make_plan is disabled
    there) and gives the same table; its theorem arrives as the registered object. A problem that
    builds other data in the worker, or a theorem registered there with another bound, is refused."""
    import dataclasses
    import pickle

    from theory_lab.errors import InputError
    from theory_lab.sweep import Config, compute
    from theory_lab.theorems import THEOREMS

    sw = sys.modules["theory_lab.sweep"]
    base = dict(problem_params=dict(m=5, n=4, n_samples=30), iters=30, seeds=4)
    c = Config("least-squares", "bernoulli-lora-page", {"p": 0.3, "rank": 2}, base)
    blob = pickle.dumps(c)
    assert len(blob) < 4096                             # the problem's data does not travel
    here = compute(c)

    def resolve_again(*a, **k):
        raise AssertionError("the worker resolved the plan again")

    monkeypatch.setattr(sw, "make_plan", resolve_again)
    monkeypatch.setattr(sw, "_PROBLEMS", {})
    there = pickle.loads(blob)
    pd.testing.assert_frame_equal(compute(there), here)
    assert there.plan().theorem is THEOREMS["PAGE-PL"]

    tampered = pickle.loads(blob)
    tampered._problem_fp = "0" * 16
    with pytest.raises(InputError, match="builds other data"):
        tampered.plan()

    th = c.plan().theorem
    monkeypatch.setitem(THEOREMS, th.id, dataclasses.replace(th, bound=lambda t, k: 0.5 * th.bound(t, k)))
    with pytest.raises(InputError, match="another bound"):
        pickle.loads(blob)
