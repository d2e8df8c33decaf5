"""Issue 17: the theory in the product and verdicts that explain themselves.

Every registered theorem has its text (statement, stepsize condition and where it comes from, a
definition for every constant its functions read); docs/theorems.md is generated from the records;
``theory-lab show`` fills the constants in on a configuration; the check report names its constants,
the stepsize against its admissible maximum, the checkpoint that decided the verdict, and the
contraction over the run; every citation of a document points to a file of the repository.
"""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import theory_lab as tl
from theory_lab.cli import main
from theory_lab.theorems.reference import constant_names, explain, markdown, statement, symbol

ROOT = Path(__file__).resolve().parents[1]
M = tl.Method

# one configuration per theorem where its assumptions hold (small, for explain: nothing is run)
LSQ = dict(family="least-squares", m=6, n=5, n_samples=30)
SHARDS = dict(family="least-squares", m=6, n=8, n_samples=24, clients=4)
CONFIGS = {
    "EXACT-ISO": (dict(family="quadratic-iso", m=5, n=4), M("bernoulli-lora-gd", rank=2)),
    "EXACT-ISO-SGD": (dict(family="quadratic-iso", m=5, n=4), M("bernoulli-lora-sgd", rank=2, noise="additive")),
    "GD-NC": (LSQ, M("bernoulli-lora-gd", rank=2)),
    "GD-PL": (LSQ, M("bernoulli-lora-gd", rank=2)),
    "SGD-NC": (LSQ, M("bernoulli-lora-sgd", rank=2, batch=2)),
    "SGD-PL": (LSQ, M("bernoulli-lora-sgd", rank=2, batch=2)),
    "QGD-NC": (SHARDS, M("bernoulli-lora-qgd", rank=2, compressor="randk", k=24)),
    "QGD-PL": (SHARDS, M("bernoulli-lora-qgd", rank=2, compressor="randk", k=24)),
    "NS-CONST": (dict(family="l1-regression", m=5, n=4, n_samples=20), M("bernoulli-lora-subgd", rank=2,
                                                                           stepsize="constant")),
    "NS-POLYAK": (dict(family="l1-regression", m=5, n=4, n_samples=20), M("bernoulli-lora-subgd", rank=2,
                                                                            stepsize="polyak")),
    "IDENT-NS-CONST": (dict(family="l1-regression", m=5, n=4, n_samples=20),
                       M("bernoulli-lora-subgd", rank=2, stepsize="constant")),
    "IDENT-NS-POLYAK": (dict(family="l1-regression", m=5, n=4, n_samples=20),
                        M("bernoulli-lora-subgd", rank=2, stepsize="polyak", kappa=1.0)),
    "PAGE-NC": (LSQ, M("bernoulli-lora-page", rank=2, batch=2)),
    "PAGE-PL": (LSQ, M("bernoulli-lora-page", rank=2, batch=2)),
    "MARINA-NC": (SHARDS, M("bernoulli-lora-marina", rank=2, compressor="randk", k=24)),
    "MARINA-PL": (SHARDS, M("bernoulli-lora-marina", rank=2, compressor="randk", k=24)),
    "MVR-NC": (dict(family="kron-quadratic", m=5, n=4), M("bernoulli-lora-mvr", rank=2, noise="additive")),
    "MVR-PL": (dict(family="kron-quadratic", m=5, n=4), M("bernoulli-lora-mvr", rank=2, noise="additive")),
    "EF21-NC": (SHARDS, M("bernoulli-lora-ef21", rank=2, k=24)),
    "EF21-PL": (SHARDS, M("bernoulli-lora-ef21", rank=2, k=24)),
}


def _plan(tid):
    spec, method = CONFIGS[tid]
    spec = dict(spec)
    return tl.plan.make_plan(tl.make_problem(spec.pop("family"), **spec), method, 200, 2, 0,
                             theorem=tid, min_seeds=2)


def _theory_sections() -> set[str]:
    heads = re.findall(r"^#+ +(\d+(?:\.\d+)?)", (ROOT / "docs" / "THEORY.md").read_text(), flags=re.M)
    return set(heads)


def test_every_theorem_has_its_text():
    """No theorem without its statement: doc, a section of docs/THEORY.md that exists, the stepsize
    condition and its origin, and a definition for every constant its functions read."""
    assert set(CONFIGS) == set(tl.THEOREMS)                   # the 20 built-in theorems, all covered here
    sections = _theory_sections()
    for tid, th in tl.THEOREMS.items():
        assert th.doc and th.stepsize_text and th.stepsize_from, tid
        assert th.section in sections, (tid, th.section)
        names = constant_names(th)
        assert "gamma" in names or th.stepsize_rule == "polyak", (tid, names)
        undefined = [k for k in names if not symbol(th, k)]
        assert not undefined, (tid, undefined)
        text = statement(th)
        for k in names:
            assert f"  {k}: " in text, (tid, k)


def test_constant_names_follow_helpers():
    """SGD-PL's bound reads rho and psi through helpers; the walk finds the constants they read."""
    names = set(constant_names(tl.get_theorem("SGD-PL")))
    assert {"A", "B", "C", "L", "mu", "gamma", "lam_min", "lam_max", "delta0"} <= names
    assert set(constant_names(tl.get_theorem("GD-PL"))) == {"mu", "gamma", "L", "lam_min", "delta0"}


def test_docs_theorems_md_is_generated_from_the_records():
    expected = markdown(tl.THEOREMS.values()) + "\n"
    assert (ROOT / "docs" / "theorems.md").read_text() == expected, \
        "docs/theorems.md is stale: run `theory-lab show --all --markdown > docs/theorems.md`"


@pytest.mark.parametrize("tid", sorted(CONFIGS))
def test_explain_fills_every_constant(tid):
    """With a configuration: every constant the theorem reads has a value (the plan's own) and a
    source; the bound shown is the theorem's bound at those constants (the same formula)."""
    plan = _plan(tid)
    assert plan.reason is None, (tid, plan.reason)
    info = explain(plan)
    assert info["applies"] and not info["missing"], (tid, info["missing"])
    c = plan.constants.as_dict()
    for k, v in info["constants"].items():
        assert v["source"], (tid, k)
        assert v["value"] == c[k], (tid, k)
    T = plan.iters
    expected = float(plan.theorem.evaluate(np.array([float(T)]), plan.constants)[0])
    assert info["bound"][str(T)] == pytest.approx(expected, rel=1e-12)
    step = info["stepsize"]
    mx = step["max_admissible"]
    if step["gamma"] is not None:
        assert mx is not None and step["gamma"] <= mx * (1 + 1e-9)
        if math.isfinite(mx):          # the maximum is the condition's edge: 1% above it is refused
            assert plan.theorem.stepsize_reason(plan.constants.replace(gamma=mx * 1.01)) is not None


def test_show_cli_pl_assumption_and_bound(capsys):
    code = main(["show", "GD-PL", "--problem", "least-squares", "-P", "m=6", "-P", "n=5", "--rank", "2"])
    out = capsys.readouterr().out
    assert code == 0
    pr = tl.make_problem("least-squares", m=6, n=5)
    assert f"A4 (PL): mu = {pr.mu:.6g} (exact, from the least-squares data)" in out
    # the largest admissible stepsize is 2/L for GD-PL (its max_stepsize)
    assert f"largest admissible {2 / pr.L:.6g}" in out
    assert main(["show", "NOPE"]) == 2
    assert main(["show"]) == 2
    assert main(["show", "--all"]) == 0
    text = capsys.readouterr().out
    for tid in tl.THEOREMS:
        assert len(re.findall(rf"^{re.escape(tid)}  \(", text, flags=re.M)) == 1, tid


def test_show_json_is_strict(capsys):
    assert main(["show", "NS-POLYAK", "--problem", "l1-regression", "--method", "bernoulli-lora-subgd",
                 "--stepsize", "polyak", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["theorem"] == "NS-POLYAK" and "R_M2" in d["constants"] and d["stepsize"]["gamma"] is None


def test_check_report_explains_itself(capsys):
    """GD-PL on least squares: constants with sources, gamma against 2/L, the deciding checkpoint,
    and the contraction over the run (past the first tenth) against the bound's own, in text and JSON."""
    pr = tl.make_problem("least-squares", m=6, n=5, n_samples=30)
    res = tl.check(pr, M("bernoulli-lora-gd", rank=2), iters=100, seeds=64)
    assert res.verdict == "holds"
    assert set(res.constants) == {"mu", "gamma", "L", "lam_min", "delta0"}
    assert res.constants["mu"]["value"] == pr.mu and "exact" in res.constants["mu"]["source"]
    assert res.stepsize_max == pytest.approx(2 / pr.L) and res.gamma == pytest.approx(1 / pr.L)
    assert res.decided_at is not None and res.decided_at > 0 and "Student t" in res.decided_by
    a, b = res.rate_window
    assert a >= 10 and b > a
    # the bound's contraction on a pure geometric bound is its rate q_th
    assert res.contraction_bound == pytest.approx(res.rate_theory, rel=1e-9)
    mean = res.mean_curve
    t = list(res.checkpoints)
    assert res.contraction_measured == pytest.approx((mean[t.index(b)] / mean[t.index(a)]) ** (1 / (b - a)))
    assert res.rate_tightness == pytest.approx(math.log(res.contraction_bound) / math.log(res.contraction_measured))
    text = res.table()
    assert "largest admissible" in text and "decided at" in text and "contraction over the run" in text
    d = json.loads(res.to_json())
    assert d["curves"]["t"] == [int(x) for x in res.checkpoints]
    assert len(d["curves"]["mean"]) == len(d["curves"]["bound"]) == len(d["curves"]["ucb"]) == 101
    assert d["constants"]["L"]["value"] == pr.L


def test_exact_iso_contraction_matches_theory():
    """EXACT-ISO: the measured contraction over the run equals the exact rate (rate tightness 1)
    within the run's noise; 2000 seeds, master seed fixed."""
    res = tl.check(tl.make_problem("quadratic-iso", m=6, n=5), M("bernoulli-lora-gd", rank=2, sketch="orthogonal"),
                   iters=60, seeds=2000, seed=3)
    assert res.verdict == "match"
    assert abs(res.rate_tightness - 1) < 0.02


def test_rate_row_only_where_a_rate_is_defined():
    l1 = tl.make_problem("l1-regression", m=5, n=4, n_samples=20)
    polyak = tl.check(l1, M("bernoulli-lora-subgd", rank=2, stepsize="polyak", sketch="stratified",
                            left_groups=[2, 3], right_groups=[1, 3]), iters=50, seeds=32, theorem="NS-POLYAK")
    assert polyak.rate_kind == "" and "rate (" not in polyak.table()
    ident = tl.check(l1, M("bernoulli-lora-subgd", rank=2, stepsize="polyak", kappa=1.0), iters=50, seeds=32)
    assert ident.theorem == "IDENT-NS-POLYAK" and "rate (" not in ident.table()
    nc = tl.check(tl.make_problem("least-squares", m=6, n=5), M("bernoulli-lora-gd", rank=2), iters=100, seeds=32,
                  theorem="GD-NC")
    assert nc.rate_kind == "log-log slope in T" and nc.rate_theory == pytest.approx(-1.0, abs=1e-9)


CITED = re.compile(r"(?<![\w/])((?:docs/)?[A-Za-z_]+\.md)\b")


def _cited_files(text: str) -> set[str]:
    return {m for m in CITED.findall(text) if m.upper() == m.upper() and not m.startswith("http")}


def test_every_citation_points_into_the_repository(capsys):
    """README, every --help and the package's own strings cite documents that exist in the
    repository (docs/THEORY.md, docs/DESIGN.md, docs/EXPERIMENTS.md, docs/theorems.md), and every
    docs/THEORY.md section they name exists."""
    texts = [(ROOT / "README.md").read_text()]
    for cmd in ([], ["check"], ["sweep"], ["fuzz"], ["show"], ["plot"], ["figures"], ["certify"], ["bench"]):
        main(cmd + ["--help"])
        texts.append(capsys.readouterr().out)
    texts += [p.read_text() for p in (ROOT / "theory_lab").rglob("*.py")]
    sections = _theory_sections()
    for text in texts:
        for name in _cited_files(text):
            path = ROOT / name if "/" in name else ROOT / "docs" / name
            assert path.exists() or (ROOT / name).exists(), name
        for sec in re.findall(r"docs/THEORY\.md (?:section |§)?(\d+(?:\.\d+)?)", text):
            assert sec in sections or sec.split(".")[0] in sections, sec
