"""Issue 17: per-configuration sweep summaries, stored-sweep plots, and plot helpers with documented
arguments. Numbers are checked against the theorems' formulas and the sketches' E[H]."""
import math

import numpy as np
import pytest

import theory_lab as tl
from theory_lab import plotting as P
from theory_lab.cli import main

LSQ = dict(m=6, n=5, n_samples=30)


@pytest.fixture(scope="module")
def p_rank():
    """The issue's 5 x 4 p x rank sweep, small."""
    return tl.sweep("least-squares", "bernoulli-lora-gd", {"p": [0.1, 0.3, 0.5, 0.7, 0.9], "rank": [1, 2, 3, 4]},
                    iters=80, seeds=16, progress=False, problem_params=LSQ)


def test_summary_one_row_per_configuration(p_rank):
    s = p_rank.summary()
    assert len(s) == 20 == p_rank["config"].nunique()
    assert s.attrs["varying"] == ["p", "rank"]
    assert list(zip(s.p, s["rank"])) == [(p, r) for p in (0.1, 0.3, 0.5, 0.7, 0.9) for r in (1, 2, 3, 4)]
    per = p_rank.groupby("config").verdict.first()
    assert all(per[row.config] == row.verdict for row in s.itertuples())
    pr = tl.make_problem("least-squares", **LSQ)
    for row in s.itertuples():
        # GD-PL's rate from docs/THEORY.md 4.1 with gaussian sketches' lam = r (p/m + (1-p)/n) and gamma = 1/L
        lam = row.rank * (row.p / pr.m + (1 - row.p) / pr.n)
        gamma = 1 / pr.L
        q_th = 1 - 2 * pr.mu * gamma * (1 - pr.L * gamma / 2) * lam
        assert row.rate_theory == pytest.approx(q_th, rel=1e-12)
        assert row.lam_bar == pytest.approx(lam, rel=1e-12)          # isotropic: lam_bar = lam
        assert row.slack_lam == pytest.approx(1.0, rel=1e-12)
        assert row.slack == pytest.approx(math.log(row.rate) / math.log(row.rate_theory), rel=1e-12)
        assert row.slack_lam * row.slack_mu * row.slack_other == pytest.approx(row.slack, rel=1e-12)
        assert row.rate_low <= row.rate <= row.rate_high
        # the measured rate is faster than the bound's (GD-PL holds, docs/THEORY.md 4.1)
        assert row.rate < row.rate_theory and row.slack > 1
        # the path's PL ratio is at least mu (PL holds at every iterate)
        assert row.slack_mu >= 1 - 1e-9


def test_summary_rate_matches_exact_iso():
    """EXACT-ISO (docs/THEORY.md 5.1): E f_T = q^T f_0 with q = 1 - (2 gamma - gamma^2) lam; the fitted
    rate's 99.9% bootstrap interval covers q at each configuration (2000 seeds, fixed master seed)."""
    t = tl.sweep("quadratic-iso", "bernoulli-lora-gd", {"p": [0.2, 0.8]}, iters=40, seeds=2000, seed=11,
                 progress=False, problem_params=dict(m=5, n=4), method_params=dict(rank=2, sketch="orthogonal"))
    s = tl.summarise(t, confidence=0.999)
    for row in s.itertuples():
        lam = 2 * (row.p / 5 + (1 - row.p) / 4)
        q = 1 - lam                                                      # gamma = 1
        assert row.rate_theory == pytest.approx(q, rel=1e-12)
        assert row.rate_low <= q <= row.rate_high, (row.p, row.rate_low, q, row.rate_high)


def test_slack_lam_of_stratified_sketches():
    """Stratified sketches: diag E H is 1/size within each group (one coordinate per group), so
    lam_bar = p (2 x 1/2 + 4 x 1/4)/6 + (1-p) (2 x 1/2 + 3 x 1/3)/5 and slack_lam = lam_bar / lam_min."""
    t = tl.sweep("least-squares", "bernoulli-lora-gd", {"p": [0.3]}, iters=60, seeds=16, progress=False,
                 problem_params=LSQ, method_params=dict(rank=2, sketch="stratified", left_groups=[2, 4],
                                                        right_groups=[2, 3]))
    row = t.summary().iloc[0]
    lam_bar = 0.3 * (2 / 6) + 0.7 * (2 / 5)
    assert row.lam_bar == pytest.approx(lam_bar, rel=1e-12)
    assert row.slack_lam == pytest.approx(lam_bar / row.lam_min, rel=1e-12) and row.slack_lam > 1


def test_summary_carries_the_reason_and_survives_the_store(tmp_path):
    """A stepsize outside GD-PL's condition (gamma > 2/L) is not-applicable with its reason; the summary of
    the stored table equals the in-memory one."""
    pr = tl.make_problem("least-squares", **LSQ)
    grid = {"stepsize": [0.5 / pr.L, 2.5 / pr.L]}
    out = tmp_path / "s.parquet"
    mem = tl.sweep("least-squares", "bernoulli-lora-gd", grid, iters=30, seeds=8, progress=False, problem_params=LSQ)
    st = tl.sweep("least-squares", "bernoulli-lora-gd", grid, iters=30, seeds=8, progress=False, problem_params=LSQ,
                  store=out)
    a, b = mem.summary(), tl.load_table(out).summary()
    assert list(a.verdict) == list(b.verdict) and a.verdict.iloc[1] == "not-applicable"
    assert a.verdict.iloc[0] in ("holds", "tight", "inconclusive")
    assert "outside GD-PL's condition" in a.reason.iloc[1]
    assert (a.reason.iloc[0] == "") == (a.verdict.iloc[0] != "inconclusive")      # inconclusive says why
    assert list(a.reason) == list(b.reason)
    np.testing.assert_allclose(a.tightness.to_numpy(float), b.tightness.to_numpy(float), rtol=1e-12)
    assert len(st) == len(mem)
    # the reason is stored once per configuration (first row), not once per row
    assert st.reason.notna().sum() == 2


def test_plot_and_summary_cli(tmp_path, capsys):
    out = tmp_path / "pr.parquet"
    tl.sweep("least-squares", "bernoulli-lora-gd", {"p": [0.2, 0.8], "rank": [1, 2]}, iters=40, seeds=8,
             progress=False, problem_params=LSQ, store=out)
    assert main(["plot", str(out), "--x", "p", "--hue", "rank", "--y", "rate", "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 1000 and (tmp_path / "fig.pdf").exists()
    assert main(["summary", str(out), "--csv", str(tmp_path / "s.csv")]) == 0
    text = capsys.readouterr().out
    assert "slack_mu" in text and len((tmp_path / "s.csv").read_text().splitlines()) == 5
    # bad input: one line naming the field, exit 2, nothing written
    assert main(["plot", str(out), "--x", "p", "--y", "rate"]) == 2          # rank also varies
    assert main(["plot", str(out), "--x", "p", "--hue", "rank", "--y", "nope"]) == 2
    other = tmp_path / "other.parquet"
    other.write_bytes(b"not a table")
    assert main(["plot", str(other), "--x", "p"]) == 2
    assert main(["summary", str(tmp_path / "missing.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.count("theory-lab: error:") == 4 and "hue:" in err and "y:" in err and "store:" in err


def test_plot_helpers_have_documented_arguments(p_rank):
    import matplotlib

    matplotlib.use("Agg")
    fig, ax = P.new_figure()
    assert isinstance(ax, matplotlib.axes.Axes)                              # one panel: one Axes
    _, row = P.new_figure(3)
    assert row.shape == (3,)
    _, grid = P.new_figure(1, squeeze=False)
    assert grid.shape == (1, 1)
    sub = p_rank[p_rank["rank"] == 2]
    P.plot_curves(ax, P.summarize(sub, "f_gap", by=("p",)), "p", label="p = {}")
    labels = ax.get_legend().get_texts()
    assert [t.get_text() for t in labels][:2] == ["p = 0.1", "bound (dashed)"]
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "f_gap"
    fig2, ax2 = tl.plot_sweep(p_rank, x="p", hue="rank", y="rate")
    texts = [t.get_text() for t in ax2.get_legend().get_texts()]
    assert texts == ["1", "theory (dashed)", "2", "3", "4"] and ax2.get_xlabel() == "p"
    # the plotted rate line is the summary's numbers
    s = p_rank.summary()
    np.testing.assert_allclose(ax2.lines[0].get_ydata(), s[s["rank"] == 1].sort_values("p").rate.to_numpy())
