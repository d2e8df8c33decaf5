"""The run plan (resolved once, immutable) and the defects of the hardening pass, one test each."""
import inspect
import json
import math
import pickle

import numpy as np
import pytest

import theory_lab as tl
from theory_lab.cli import main
from theory_lab.plan import make_plan


def lsq(**kw):
    return tl.make_problem("least-squares", m=6, n=9, n_samples=20, **kw)


# ------------------------------------------------------------------------------ one immutable plan
def test_one_method_object_runs_on_any_problem_and_is_never_mutated():
    """Before: SGD's validate() wrote noise='minibatch' into the Method on least-squares, and the same
    object then failed on kron-quadratic ('minibatch sampling needs a finite sum')."""
    me = tl.Method("bernoulli-lora-sgd", p=0.5, rank=2)
    before = me.params()
    a = tl.run(lsq(), me, iters=5, seeds=4)
    b = tl.run(tl.make_problem("kron-quadratic", m=6, n=9), me, iters=5, seeds=4)
    assert me.params() == before and before["noise"] == "auto"
    assert a.config["noise"] == "minibatch" and b.config["noise"] == "additive"
    # the resolved constants differ accordingly: N3 minibatch (A > 0) vs additive noise (A = 0)
    assert a.constants.A > 0 and b.constants.A == 0.0


def test_plan_is_immutable_and_carries_every_resolved_value():
    plan = make_plan(lsq(), tl.Method("bernoulli-lora-sgd", p=0.5, rank=2), iters=50, seeds=8)
    with pytest.raises(Exception):
        plan.iters = 3
    with pytest.raises(AttributeError):
        plan.constants.gamma = 1.0
    assert plan.theorem.id == "SGD-PL" and plan.reason is None
    assert plan.gamma == plan.constants.gamma == pytest.approx(plan.theorem.recommended(plan.constants))
    assert plan.checkpoints[0] == 0 and plan.checkpoints[-1] == 50


def test_run_records_exactly_what_check_judges():
    """SGD-NC's weighted average (u > 0 under N3) used to be applied only inside check."""
    pr = tl.make_problem("linreg-noncvx", m=3, n=4, n_samples=30)
    me = tl.Method("bernoulli-lora-sgd", p=0.5, rank=2, batch=2)
    rep = tl.check(pr, me, iters=40, seeds=16, theorem="SGD-NC")
    res = tl.run(pr, me, iters=40, seeds=16, theorem=tl.get_theorem("SGD-NC"))
    assert make_plan(pr, me, 40, 16, theorem="SGD-NC").weight_u > 0
    np.testing.assert_array_equal(res.metric("wavg_grad_sq"), rep.result.metric("wavg_grad_sq"))
    assert rep.measured == pytest.approx(res.metric("wavg_grad_sq")[:, -1].mean(), rel=1e-15)
    # with u > 0 the weighted average differs from the plain one
    assert not np.allclose(res.metric("wavg_grad_sq")[:, -1], res.metric("avg_grad_sq")[:, -1])
    # a Lyapunov theorem's potential is recorded by run as well
    page = tl.run(lsq(), tl.Method("bernoulli-lora-page", p=0.5, rank=2), iters=20, seeds=4, theorem="PAGE-PL")
    assert "lyapunov" in page.metrics


def test_run_and_check_are_short_loops_over_a_plan():
    import importlib

    check_mod, runner = importlib.import_module("theory_lab.check"), importlib.import_module("theory_lab.runner")
    for fn in (runner.run, runner.execute, check_mod.check, check_mod.judge):
        assert len(inspect.getsource(fn).splitlines()) < 60, fn.__name__


def test_capabilities_not_family_names():
    """A user's subclass of the isotropic quadratic under another name gets the exact theorem."""
    from theory_lab.problems.quadratic import QuadraticIso

    class Mine(QuadraticIso):
        family = "my-iso"

    pr = Mine(m=4, n=6, seed=1)
    plan = make_plan(pr, tl.Method("bernoulli-lora-gd", rank=1), iters=5, seeds=2)
    assert plan.theorem.id == "EXACT-ISO"
    assert tl.get_theorem("GD-PL").needs_pl and not tl.get_theorem("GD-NC").needs_pl


def test_tf32_is_not_a_process_wide_switch():
    torch = pytest.importorskip("torch")
    before = torch.backends.cuda.matmul.allow_tf32
    tl.get_backend("torch", "cpu", "float32", tf32=True)
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_plans_and_errors_pickle():
    err = pickle.loads(pickle.dumps(tl.InputError("rank", "got 9; accepted range [1, 6]")))
    assert isinstance(err, tl.InputError) and err.field == "rank" and str(err) == "rank: got 9; accepted range [1, 6]"
    be = pickle.loads(pickle.dumps(tl.get_backend("numpy")))
    assert be == tl.get_backend("numpy") and be.xp is not None
    pr = pickle.loads(pickle.dumps(lsq()))
    assert pr.fingerprint() == lsq().fingerprint()


# ------------------------------------------------------------------------------ defects 1-3: the store
def test_editing_a_problem_file_invalidates_its_cache(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('family = "least-squares"\nm = 6\nn = 9\nn_samples = 20\ncond = 10.0\n')
    kw = dict(iters=10, seeds=4, store=tmp_path / "s.parquet", progress=False)
    a = tl.sweep(str(f), "bernoulli-lora-gd", {"p": [0.0, 1.0]}, **kw)
    f.write_text('family = "least-squares"\nm = 6\nn = 9\nn_samples = 20\ncond = 50.0\n')
    b = tl.sweep(str(f), "bernoulli-lora-gd", {"p": [0.0, 1.0]}, **kw)
    assert a.attrs["computed"] == 2 and b.attrs["computed"] == 2 and b.attrs["cached"] == 0
    assert not np.allclose(a.f_gap, b.f_gap)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong-key"])
def test_damaged_parts_are_recomputed(tmp_path, damage, capsys):
    store = tmp_path / "s.parquet"
    kw = dict(iters=10, seeds=4, store=store, progress=False)
    clean = tl.sweep(lsq(), "bernoulli-lora-gd", {"p": [0.0, 1.0]}, **kw)
    parts = sorted((tmp_path / "s.parquet.parts").glob("*.parquet"))
    victim, other = parts
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    elif damage == "garbage":
        victim.write_bytes(b"not a parquet file at all")
    elif damage == "empty":
        victim.write_bytes(b"")
    else:
        victim.write_bytes(other.read_bytes())         # a valid part under the wrong key
    again = tl.sweep(lsq(), "bernoulli-lora-gd", {"p": [0.0, 1.0]}, **kw)
    err = capsys.readouterr().err
    assert again.attrs["computed"] == 1 and again.attrs["repaired"] == 1
    assert "1 damaged part(s) removed and recomputed" in err and err.count("\n") == 1
    assert again.config.nunique() == 2 and not again.duplicated(["config", "seed", "iteration"]).any()
    cols = ["config", "seed", "iteration", "f_gap"]
    np.testing.assert_array_equal(clean[cols].to_numpy(), again[cols].to_numpy())


def test_every_grid_point_is_validated_before_any_computation(tmp_path):
    store = tmp_path / "s.parquet"
    with pytest.raises(tl.InputError, match="stepsize: the Polyak stepsize needs f"):
        tl.sweep("linreg-noncvx", "bernoulli-lora-subgd", {"stepsize": [0.01, "polyak"]}, iters=5, seeds=2,
                 store=store, progress=False, problem_params={"m": 3, "n": 3, "n_samples": 20})
    assert not store.exists() and not (tmp_path / "s.parquet.parts").exists()


# ------------------------------------------------------------------------------ defect 4: lora / cola
@pytest.mark.parametrize("family", ["least-squares", "quadratic-iso", "kron-quadratic", "linreg-noncvx"])
def test_factor_baselines_converge_with_their_default_stepsize(family):
    """Before: gamma = 1/L diverged to NaN on all four. The default is 1/(L ||A0||^2 + ||grad f(W0)||_2)
    (baselines.default_stepsize); f must decrease and no seed may diverge."""
    pr = tl.make_problem(family)
    for name in ("lora", "cola"):
        res = tl.run(pr, tl.Method(name, rank=2), iters=300, seeds=16)
        f = res.metric("f_gap")
        assert res.diverged() == 0 and f[:, -1].max() < 0.9 * f[:, 0].min(), (family, name)


def test_sweep_reports_divergence(tmp_path, capsys):
    table = tl.sweep(lsq(), "bernoulli-lora-gd", {"stepsize": [0.01, 10.0]}, iters=200, seeds=4, progress=False)
    assert table.attrs["diverged"] == 1
    per = table.groupby("stepsize")["diverged"].max()
    assert per[0.01] == 0 and per[10.0] == 4


# ------------------------------------------------------------------------------ defects 5-8, 11: input
def test_json_is_strict(capsys):
    # a 1-step run leaves the rate fit undefined (NaN), which must print as null
    assert main(["check", "--problem", "quadratic-iso", "-P", "m=4", "-P", "n=6", "--rank", "1", "--iters", "1",
                 "--seeds", "50", "--json"]) == 0
    text = capsys.readouterr().out
    rep = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert rep["rate_empirical_ci"] == [None, None]


@pytest.mark.parametrize("args,field", [
    (["-M", "bogus=1"], "bogus:"),
    (["-M", "batch=4"], "batch:"),                                 # gd takes no batch
    (["--method", "bernoulli-lora-sgd", "-M", "replacement=maybe"], "replacement:"),
    (["-M", "alpha=2"], "alpha:"),                                 # stored and never used: gone
    (["-M", "p=0.2"], "p:"),
    (["-P", "L=1e154"], "L:"),
    (["-P", "L=1e-320"], "L:"),
    (["--seed", str(2 ** 64)], "seed"),
    (["--p", "abc"], "[0.0, 1.0]"),
    (["--problem", "quadratic-iso", "-P", "m=100000", "-P", "n=100000"], "GiB"),
    (["--seeds", "100000000"], "GiB"),
])
def test_bad_input_one_line(args, field, capsys):
    with pytest.raises(SystemExit) as ex:
        raise SystemExit(main(["check", "--iters", "5"] + args))
    err = capsys.readouterr().err.strip().splitlines()
    assert ex.value.code == 2 and len(err) == 1 and field in err[0], err


def test_booleans_are_parsed_not_coerced():
    assert tl.Method("bernoulli-lora-sgd", replacement="no").estimator.params["replacement"] is False
    assert tl.Method("bernoulli-lora-sgd", replacement="yes").estimator.params["replacement"] is True
    with pytest.raises(tl.InputError, match="replacement"):
        tl.Method("bernoulli-lora-sgd", replacement="perhaps")


@pytest.mark.parametrize("body,field", [
    ("family = 'least-squares'\nparams = 3\n", "params:"),
    (b"family = 'least-squares'\nm = 4 # \xff\xfe\n", "UTF-8"),
])
def test_bad_problem_files(tmp_path, body, field, capsys):
    f = tmp_path / "p.toml"
    f.write_bytes(body if isinstance(body, bytes) else body.encode())
    assert main(["check", "--problem", str(f), "--iters", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0]


def _spec(tmp_path, extra=""):
    f = tmp_path / "spec.toml"
    f.write_text('problem = "least-squares"\nmethod = "bernoulli-lora-gd"\niters = 5\nseeds = 2\n' + extra
                 + '[problem_params]\nm = 4\nn = 5\nn_samples = 10\n[grid]\np = [0.5]\n')
    return f


@pytest.mark.parametrize("args,field", [
    (["--scheduler", "bogus"], "scheduler:"),
    (["--out", "/proc/nope/x.parquet"], "out:"),
])
def test_sweep_bad_options_one_line(tmp_path, args, field, capsys):
    assert main(["sweep", str(_spec(tmp_path)), "--quiet"] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0]


def test_unwritable_out_fails_before_computing(tmp_path, capsys, monkeypatch):
    import importlib
    sw = importlib.import_module("theory_lab.sweep")
    monkeypatch.setattr(sw, "compute", lambda cfg: pytest.fail("computed before checking --out"))
    (tmp_path / "a-file").write_text("x")
    assert main(["sweep", str(_spec(tmp_path)), "--quiet", "--out", str(tmp_path / "a-file" / "x.parquet")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out:" in err[0]


def test_bench_bad_output_and_repeat(tmp_path, capsys):
    assert main(["bench", "--sizes", "8", "--ranks", "1", "--csv", str(tmp_path / "missing" / "b.csv")]) == 2
    assert "csv:" in capsys.readouterr().err
    assert main(["bench", "--sizes", "8", "--ranks", "1", "--repeat", "0", "--csv", str(tmp_path / "b.csv")]) == 2
    assert "repeat" in capsys.readouterr().err and not (tmp_path / "b.csv").exists()


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    import importlib

    check_mod = importlib.import_module("theory_lab.check")

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(check_mod, "execute", interrupt)
    assert main(["check", "--iters", "5", "--seeds", "4"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted" in err[0]


def test_master_seed_range():
    with pytest.raises(tl.InputError, match="seed"):
        tl.run(lsq(), tl.Method("gd"), iters=2, seeds=2, seed=2 ** 64)
    a = tl.run(lsq(), tl.Method("bernoulli-lora-gd", rank=1), iters=3, seeds=2, seed=2 ** 64 - 1)
    b = tl.run(lsq(), tl.Method("bernoulli-lora-gd", rank=1), iters=3, seeds=2, seed=0)
    assert not np.array_equal(a.metric("f_gap"), b.metric("f_gap"))


def test_parts_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        tl.sweep(lsq(), "gd", {"factor": [1.0]}, iters=3, seeds=2, store=tmp_path / "s.parquet", progress=False)
    finally:
        os.umask(old)
    part = next((tmp_path / "s.parquet.parts").glob("*.parquet"))
    assert part.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "s.parquet").stat().st_mode & 0o777 == 0o644


def test_only_own_stale_temporaries_are_cleaned(tmp_path):
    """Issue 16, defect 8: a sweep removed every ``.*.tmp`` of a dead pid in the --out folder, other
    programs' included. Now only its own temporaries (``.<part or table>.tl-<pid>-<random>.tmp`` of a
    writer that is gone) are removed."""
    import os

    from theory_lab.sweep import Store

    parts = tmp_path / "s.parquet.parts"
    parts.mkdir()
    dead = parts / ".0123456789abcdef.parquet.tl-999999999-xyz.tmp"        # a pid that cannot exist
    live = parts / f".0123456789abcdef.parquet.tl-{os.getpid()}-xyz.tmp"
    table_tmp = tmp_path / ".s.parquet.tl-999999999-abc_1.tmp"
    others = [parts / ".abc.parquet.999999999.xyz.tmp", tmp_path / ".notes.txt.999999999.a.tmp",
              tmp_path / ".other.parquet.tl-999999999-abc.tmp", tmp_path / ".editor.swp.tmp"]
    for f in [dead, live, table_tmp, *others]:
        f.write_bytes(b"x")
    assert Store(tmp_path / "s.parquet").clean_temporaries() == 2
    assert not dead.exists() and not table_tmp.exists() and live.exists()
    assert all(f.exists() for f in others)


def test_paper_figure_uses_the_paper_data():
    """Before: without scikit-learn the figure silently switched to Gaussian data; it is a dependency now."""
    from theory_lab.gallery import _paper_problem

    assert _paper_problem("tiny").params["data"] == "make_regression"


def test_a_plan_is_immutable_all_the_way_down():
    """Issue 18: a resolved plan cannot be changed behind its fingerprint: the plan, its method and
    theorem refuse attribute changes, and the problem's data (built-in and user W0) is read-only."""
    import dataclasses

    pr = tl.make_problem("least-squares", m=5, n=4, n_samples=30)
    user = tl.custom_problem(lambda W: 0.5 * (W ** 2).sum(axis=(-2, -1)), grad=lambda W: W, shape=(3, 2),
                             W0=np.ones((3, 2)), L=1.0, mu=1.0, f_star=0.0)
    for problem in (pr, user):
        plan = make_plan(problem, tl.Method("bernoulli-lora-gd", rank=1), 5, 2, 0)
        with pytest.raises(dataclasses.FrozenInstanceError):
            plan.iters = 6
        with pytest.raises(dataclasses.FrozenInstanceError):
            plan.theorem.bound = lambda t, c: 0 * t
        with pytest.raises(AttributeError, match="immutable"):
            plan.method.p = 0.9
        with pytest.raises(TypeError):
            plan.method.sketch_params["left_groups"] = 3
        with pytest.raises(ValueError, match="read-only"):
            plan.problem.W0[0, 0] = 5.0
        with pytest.raises(AttributeError, match="immutable"):
            plan.constants.L = 2.0
    with pytest.raises(ValueError, match="read-only"):
        pr.X[0, 0] = 1.0                                  # the data behind the objective as well
