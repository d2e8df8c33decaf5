"""The falsification engine: draws stay inside the assumptions, true theorems give no persisting
false verdict, a false theorem is caught, reproducers reproduce, campaigns resume."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

import theory_lab as tl
from theory_lab.cli import main
from theory_lab.fuzz import draw, summary
from theory_lab.plan import make_plan

from helpers import mutate


@pytest.mark.parametrize("tid", ["GD-PL", "SGD-NC", "MARINA-PL", "EXACT-ISO", "NS-POLYAK", "IDENT-NS-CONST"])
def test_draws_are_inside_the_assumptions(tid):
    """Every draw builds a plan with no reason against the theorem (assumptions, lambda > 0, stepsize
    condition) and its stepsize is at most the largest admissible one."""
    th = tl.get_theorem(tid)
    rng = np.random.default_rng(5)
    for k in range(6):
        d = draw(th, rng, seed=k)
        assert d is not None
        pr, me = d.build()
        plan = make_plan(pr, me, d.iters, d.seeds, d.seed, theorem=th, min_seeds=2)
        assert plan.reason is None and plan.theorem is th
        if np.isfinite(d.fraction):
            assert 0 < d.fraction <= 1          # 1: the edge of the condition (a corner)


@pytest.mark.slow
def test_campaign_finds_no_false_verdict_and_reproducers_reproduce(tmp_path):
    table = tl.fuzz(["GD-PL", "EXACT-ISO", "NS-CONST"], budget=300, seed=11, store=tmp_path / "f.parquet",
                    configs=9, search_steps=2)
    assert len(table) >= 4 and not table.persisting.any()
    assert set(table.verdict) <= {"holds", "tight", "inconclusive", "match"} | {"violated", "mismatch"}
    row = table.iloc[0]
    rep = eval(row.python, {"tl": tl})                          # the stored Python reproducer
    assert rep.verdict == row.verdict and rep.max_tightness == pytest.approx(row.max_tightness, nan_ok=True)
    s = summary(table)
    assert set(s.theorem) <= {"GD-PL", "EXACT-ISO", "NS-CONST"} and s.configurations.sum() == len(table)
    # resume: the same campaign reuses every stored configuration's row
    again = tl.fuzz(["GD-PL", "EXACT-ISO", "NS-CONST"], budget=300, seed=11, store=tmp_path / "f.parquet",
                    configs=6, search_steps=0)
    common = set(table.key) & set(again.key)
    assert common
    a = table.set_index("key").loc[sorted(common), "verdict"]
    b = again.drop_duplicates("key").set_index("key").loc[sorted(common), "verdict"]
    assert list(a) == list(b)


def test_a_false_theorem_is_caught_and_the_cli_exits_1(monkeypatch, capsys):
    """GD-PL with its contraction applied twice per step (rate doubled) is false wherever GD-PL is
    nearly tight: the campaign must find configurations where it is violated, and confirm them."""
    # where GD-PL is exact (the isotropic quadratic) the mutant is far off
    wrong = dataclasses.replace(mutate("GD-PL", rate=2.0), extra={"families": ["quadratic-iso"]})
    monkeypatch.setitem(tl.THEOREMS, wrong.id, wrong)
    # count-bound, not time-bound: the same rows on a slow or loaded machine (the budget stays a hard limit)
    table = tl.fuzz([wrong], budget=120, seed=3, configs=2, search_steps=0)
    assert len(table) == 2 and table.persisting.any() and (table.verdict == "violated").any()
    assert main(["fuzz", "--theorem", wrong.id, "--budget", "120", "--configs", "1", "--search-steps", "0",
                 "--seed", "3"]) == 1
    assert "PERSISTING violated" in capsys.readouterr().err


def test_fuzz_bad_input():
    with pytest.raises(tl.InputError, match="budget"):
        tl.fuzz(budget=0)
    with pytest.raises(tl.InputError, match="theorem"):
        tl.fuzz(["NOPE"], budget=1)
    with pytest.raises(tl.InputError, match="configs"):
        tl.fuzz(["GD-PL"], budget=1, configs=0)
    with pytest.raises(tl.InputError, match="search_steps"):
        tl.fuzz(["GD-PL"], budget=1, search_steps=1.5)


@pytest.mark.slow
def test_fuzz_on_a_users_own_problems():
    """``problems=``: the campaign draws methods, p, ranks, sketches and stepsizes on the user's
    objects (a numpy quadratic and a finite sum); true theorems give no persisting false verdict,
    and a too-fast GD-PL rate (q^3t) drawn on the same object is caught and re-runs from its row."""
    import json

    from test_custom import ls_problem, numpy_quadratic
    from theory_lab.fuzz import USER_PROBLEMS, _register, evaluate

    mine = [numpy_quadratic(), ls_problem()]
    t = tl.fuzz(["GD-PL", "SGD-PL"], budget=300, seed=5, problems=mine, configs=4, search_steps=0)
    assert len(t) >= 1 and t["family"].str.startswith("user:").all()
    assert not t["persisting"].any(), t[t.persisting].python.tolist()
    assert set(t.verdict) <= {"holds", "tight", "inconclusive", "not-applicable"}
    bad = mutate("GD-PL", rate=3.0)
    key = _register(mine[0])
    rng = np.random.default_rng(6)
    rows = []
    for i in range(6):                                  # deterministic draws, not time-bound
        d = draw(bad, rng, seed=6 + i, user=(key,))
        assert d is not None and d.family == key and USER_PROBLEMS[key] is mine[0]
        rows.append(evaluate(d, bad))
        if rows[-1]["persisting"]:
            break
    row = rows[-1]
    assert row["verdict"] == "violated" and row["persisting"], [r["verdict"] for r in rows]
    assert row["python"].startswith("tl.check(problem, tl.Method(") and "numpy quadratic" in row["python"]
    again = tl.check(mine[0], tl.Method(row["method"], **json.loads(row["params"])), iters=row["iters"],
                     seeds=row["seeds"], theorem=bad, seed=row["seed"])
    assert again.verdict == "violated"
