"""Issue 16's own adversarial pass, kept: bad values, user-code faults and hostile files through
every verb. Each input must give exit code 2 and one line naming the field, never a traceback
(an exception escaping ``main`` fails the test) and never a write."""
import numpy as np
import pytest

import theory_lab as tl
from theory_lab.cli import main

A = np.random.default_rng(0).standard_normal((3, 4))


def _f(W):
    return 0.5 * np.sum((W - A) ** 2, axis=(1, 2))


def _g(W):
    return W - A


def _g_wrong_shape(W):
    return np.zeros((W.shape[0], 2, 2))


def _f_raises(W):
    raise ValueError("bad f")


def _raises():
    raise RuntimeError("boom")


def gshape():
    return tl.custom_problem(_f, _g_wrong_shape, shape=(3, 4), L=1.0)


def fraise():
    return tl.custom_problem(_f_raises, _g, shape=(3, 4))


def raises():
    _raises()


def returns_str():
    return "not a problem"


BAD = [  # (argv, the field the one line must name)
    (["check", "--problem", "test_adversarial:gshape"], "grad"),
    (["certify", "test_adversarial:gshape"], "grad"),
    (["check", "--problem", "test_adversarial:fraise"], "f"),
    (["check", "--problem", "test_adversarial:raises"], "problem"),
    (["check", "--problem", "test_adversarial:returns_str"], "problem"),
    (["check", "--problem", "no_such_module_xyz:make"], "problem"),
    (["check", "--problem", "sub/payload.py:make"], "problem"),
    (["check", "--problem", ":make"], "problem"),
    (["check", "--problem", "a b:make"], "problem"),
    (["check", "--p", "nan"], "p"), (["check", "--p", "-0.1"], "p"), (["check", "--rank", "0"], "rank"),
    (["check", "--rank", "100"], "rank"), (["check", "--seeds", "1"], "seeds"), (["check", "--iters", "0"], "iters"),
    (["check", "--iters", "1e3"], "iters"), (["check", "--stepsize", "-1"], "stepsize"),
    (["check", "--stepsize", "nan"], "stepsize"), (["check", "--stepsize", "inf"], "stepsize"),
    (["check", "--stepsize", "abc"], "stepsize"), (["check", "--factor", "0"], "factor"),
    (["check", "--confidence", "1"], "confidence"), (["check", "--sketch", "nonsense"], "sketch"),
    (["check", "--sketch", "gaussian/nonsense"], "sketch"), (["check", "--method", "nope"], "method"),
    (["check", "--backend", "jax"], "backend"), (["check", "--dtype", "float16"], "dtype"),
    (["check", "--theorem", "NOPE"], "theorem"), (["check", "-P", "m=0"], "m"), (["check", "-P", "cond=nan"], "cond"),
    (["check", "-P", "unknown=1"], "unknown"), (["check", "-P", "m"], "problem-param"),
    (["check", "-P", "allow_files=true"], "problem-param"),
    (["check", "--method", "bernoulli-lora-sgd", "-M", "noise=weird"], "noise"),
    (["check", "--method", "bernoulli-lora-sgd", "-M", "noise=additive", "-M", "noise_std=1e308"], "noise_std"),
    (["check", "--method", "bernoulli-lora-page", "-M", "q=2"], "q"),
    (["check", "--method", "bernoulli-lora-qgd", "-M", "compressor=zzz"], "compressor"),
    (["check", "--method", "bernoulli-lora-mvr", "-M", "momentum=0"], "momentum"),
    (["check", "-M", "p=0.3"], "p"), (["check", "-P", "m=[1,"], "param"),
    (["check", "--problem", "missing.toml"], "problem"), (["check", "--seed", "-1"], "seed"),
    (["check", "--problem", "least-squares", "-P", "L=1e300"], "L"),
    (["check", "--method", "bernoulli-lora-gd", "--theorem", "NS-CONST"], "stepsize"),
    (["check", "--iters", "10000000", "--seeds", "100000000"], "seeds"),
    (["sweep", "missing.toml"], "spec"), (["fuzz", "--budget", "0"], "budget"),
    (["fuzz", "--theorem", "NOPE", "--budget", "1"], "theorem"), (["fuzz", "--workers", "0"], "workers"),
    (["fuzz", "--configs", "0"], "configs"), (["fuzz", "--search-steps", "-1"], "search_steps"),
    (["certify", "nope"], "problem"), (["bench", "--sizes", ""], "sizes"), (["bench", "--sizes", "abc"], "sizes"),
    (["bench", "--sizes", "8", "--ranks", "0"], "ranks"), (["figures", "nope"], "figure"),
    (["figures", "--device", "cuda"], "device"),
]


@pytest.mark.parametrize("argv, field", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_naming_the_field(argv, field, capfd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "payload.py").write_text("open('RAN', 'w').write('x')\ndef make():\n    pass\n")
    assert main(argv) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"theory-lab: error: {field}"), err
    assert not (tmp_path / "RAN").exists()


def test_files_that_must_not_be_replaced(tmp_path, capfd, monkeypatch):
    """``figures --out FILE``, ``bench --sizes ''`` over an earlier CSV, a spec whose problem file names
    ``family`` twice, a grid giving m and problem.m: one line each, and the files keep their bytes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("keep")
    assert main(["figures", "convergence", "--quick", "--out", "afile"]) == 2
    (tmp_path / "b.csv").write_text("earlier results")
    assert main(["bench", "--sizes", "", "--csv", "b.csv"]) == 2
    (tmp_path / "fam.toml").write_text('family = "least-squares"\n[params]\nfamily = "x"\n')
    assert main(["check", "--problem", "fam.toml"]) == 2
    (tmp_path / "g.toml").write_text('problem = "least-squares"\nmethod = "bernoulli-lora-gd"\niters = 5\nseeds = 4\n'
                                     '[grid]\nm = [4]\n"problem.m" = [5]\n')
    assert main(["sweep", "g.toml", "--out", "g.parquet", "--quiet"]) == 2
    err = capfd.readouterr().err
    assert "out: 'afile'" in err and "sizes:" in err and "params.family" in err and "given twice" in err
    assert (tmp_path / "afile").read_text() == "keep" and (tmp_path / "b.csv").read_text() == "earlier results"
    assert not (tmp_path / "g.parquet").exists()
