"""The command line: output, exit codes, and one clear line for every kind of bad input."""
import json
import subprocess
import sys

import pytest

import theory_lab as tl
from theory_lab.cli import main


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_prints_the_table(capsys):
    code, out, _ = run_cli(["check", "--problem", "least-squares", "--method", "bernoulli-lora-gd", "--p", "0.5",
                            "--rank", "2", "--iters", "100", "--seeds", "64"], capsys)
    assert code == 0
    for word in ("GD-PL", "f_gap", "bound", "tightness", "rate", "HOLDS"):
        assert word in out


def test_check_json(capsys):
    code, out, _ = run_cli(["check", "--problem", "quadratic-iso", "-P", "m=4", "-P", "n=6", "--rank", "1",
                            "--iters", "10", "--seeds", "500", "--json",
                            "--confidence", "0.999"], capsys)
    rep = json.loads(out)
    assert code == 0 and rep["theorem"] == "EXACT-ISO" and rep["verdict"] == "match"
    lam = 0.5 / 4 + 0.5 / 6
    assert rep["lam_min"] == pytest.approx(lam)
    delta0 = tl.make_problem("quadratic-iso", m=4, n=6).delta0
    assert rep["bound"] == pytest.approx((1 - lam) ** 10 * delta0, rel=1e-12)
    assert {"measured", "ci_low", "ci_high", "tightness", "rate_empirical", "rate_theory"} <= set(rep)


def test_violated_exits_1(capsys, monkeypatch):
    wrong = tl.Theorem(id="WRONG", metric="f_gap", bound=lambda t, c: 0.5 * (1 - c.lam_min) ** t * c.delta0,
                       max_stepsize=lambda c: 1.0)
    monkeypatch.setitem(tl.THEOREMS, "WRONG", wrong)
    code, out, _ = run_cli(["check", "--problem", "quadratic-iso", "--theorem", "WRONG", "--iters", "10",
                            "--seeds", "300"], capsys)
    assert code == 1 and "VIOLATED" in out


BAD = [
    (["--p", "1.5"], "p:"),
    (["--p", "-0.1"], "p:"),
    (["--rank", "0"], "rank:"),
    (["--rank", "99"], "rank:"),
    (["--iters", "0"], "iters:"),
    (["--seeds", "1"], "seeds:"),
    (["--method", "adam"], "method:"),
    (["--problem", "nope"], "problem:"),
    (["--sketch", "cauchy"], "sketch:"),
    (["--theorem", "XYZ"], "theorem:"),
    (["--stepsize", "fast"], "stepsize:"),
    (["--stepsize", "-1"], "stepsize:"),
    (["--factor", "nan"], "factor:"),
    (["--confidence", "1.0"], "confidence:"),
    (["-P", "noise=inf"], "noise:"),
    (["-P", "cond=0.5"], "cond:"),
    (["-P", "colour=red"], "colour:"),
    (["--backend", "jax"], "backend:"),
    (["--problem", "quadratic-iso", "-M", "batch=4", "-M", "noise=minibatch", "--method",
      "bernoulli-lora-sgd"], "noise:"),
]


@pytest.mark.parametrize("args,field", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2(args, field, capsys):
    code, out, err = run_cli(["check", "--iters", "5", "--seeds", "4", *args], capsys)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in err


def test_malformed_and_missing_toml(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("family = 'least-squares'\nm = [1,\n")
    code, _, err = run_cli(["check", "--problem", str(bad)], capsys)
    assert code == 2 and "malformed TOML" in err and len(err.strip().splitlines()) == 1
    nofam = tmp_path / "nofam.toml"
    nofam.write_text("m = 4\n")
    code, _, err = run_cli(["check", "--problem", str(nofam)], capsys)
    assert code == 2 and err.startswith("theory-lab: error: family:")
    code, _, err = run_cli(["check", "--problem", str(tmp_path / "missing.toml")], capsys)
    assert code == 2 and "no such file" in err


def test_stepsize_beyond_condition_is_not_applicable_exit_2(capsys):
    code, out, err = run_cli(["check", "--stepsize", "0.5", "--iters", "20", "--seeds", "8"], capsys)
    assert code == 2 and "NOT-APPLICABLE" in out
    assert "stepsize" in err and "2/L" in err and len(err.strip().splitlines()) == 1


def test_list(capsys):
    for what, expect in [("theorems", "GD-PL"), ("methods", "bernoulli-lora-sgd"), ("problems", "least-squares"),
                         ("sketches", "rademacher")]:
        code, out, _ = run_cli(["list", what], capsys)
        assert code == 0 and expect in out


def test_console_script_runs_as_a_process():
    proc = subprocess.run([sys.executable, "-m", "theory_lab.cli", "check", "--p", "2"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stderr.strip() == "theory-lab: error: p: got 2.0; accepted range [0.0, 1.0]"
