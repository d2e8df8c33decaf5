"""docs/THEORY.md Appendix A, replicated: every theorem on its instance with the appendix's seed counts
(slow: about 90 s; run with `pytest -m slow`). UPPER results must hold, EXACT/IDENTITY results match
(one-sided resp. two-sided 95% with Bonferroni over the checkpoints, fixed master seed)."""
import importlib.util
from pathlib import Path

import pytest

import theory_lab as tl

from helpers import TRUE_CONFIDENCE

spec = importlib.util.spec_from_file_location(
    "appendix_table", Path(__file__).resolve().parents[1] / "sweeps" / "appendix_table.py")
appendix = importlib.util.module_from_spec(spec)
spec.loader.exec_module(appendix)
ROWS = appendix.instances()


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0]}:{r[1]}" for r in ROWS])
def test_appendix_row(row):
    tid, _, pr, me, T, S = row
    rep = tl.check(pr, me, iters=T, seeds=S, theorem=tid, seed=1, confidence=TRUE_CONFIDENCE)
    expected = "match" if tl.THEOREMS[tid].kind == "EXACT" else "holds"
    assert rep.verdict == expected, rep.table()


@pytest.mark.slow
def test_every_theorem_has_an_appendix_row():
    assert {r[0] for r in ROWS} == set(tl.THEOREMS)
