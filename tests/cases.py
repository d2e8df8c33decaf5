"""Instance tables shared by the theorem tests: the problems of Appendix A and, per variant theorem,
(problem, method, T, seeds) where it must hold."""
from pathlib import Path

import theory_lab as tl

HERE = Path(__file__).resolve().parents[1] / "problems"
M = tl.Method


def kron():
    return tl.load_problem(HERE / "appendix_kron.toml")


def lsq():
    return tl.load_problem(HERE / "appendix_lsq.toml")


def shards(**kw):
    return tl.make_problem("least-squares", m=8, n=12, n_samples=40, clients=4, **kw)


def logit(reg="l2"):
    return tl.make_problem("softmax-regression", m=8, n=12, n_samples=60, reg=reg)


def l1():
    return tl.make_problem("l1-regression", m=8, n=12, n_samples=40)


def iso_lsq(**kw):
    """Least squares with Sigma_X = L I (cond = 1): f - f* = (L/2)||W - W*||^2, where GD-PL is exact."""
    return tl.make_problem("least-squares", m=8, n=12, n_samples=40, cond=1.0, L=1.0, **kw)


# theorem -> (problem, method, T, seeds): Appendix A settings, fewer seeds where the verdict is clear
HOLDS = {
    "QGD-NC": (kron, lambda: M("bernoulli-lora-qgd", p=0.5, rank=2, compressor="randk", k=24), 300, 400),
    "QGD-PL": (shards, lambda: M("bernoulli-lora-qgd", p=0.0, rank=2, compressor="randk", k=24), 150, 300),
    "PAGE-NC": (lsq, lambda: M("bernoulli-lora-page", p=0.5, rank=2, batch=4), 300, 400),
    "PAGE-PL": (lsq, lambda: M("bernoulli-lora-page", p=0.5, rank=2, batch=1), 100, 400),
    "MVR-NC": (kron, lambda: M("bernoulli-lora-mvr", p=0.0, rank=2, momentum=0.1, noise="additive",
                               noise_std=0.3), 300, 400),
    "MVR-PL": (logit, lambda: M("bernoulli-lora-mvr", p=0.0, rank=2, momentum=0.1), 50, 400),
    "MARINA-NC": (shards, lambda: M("bernoulli-lora-marina", p=0.0, rank=2, compressor="randk", k=24), 150, 300),
    "MARINA-PL": (shards, lambda: M("bernoulli-lora-marina", p=0.0, rank=2, compressor="randk", k=8), 100, 300),
    "EF21-NC": (shards, lambda: M("bernoulli-lora-ef21", p=0.0, rank=2, k=24), 150, 300),
    "EF21-PL": (shards, lambda: M("bernoulli-lora-ef21", p=0.0, rank=2, k=8), 100, 300),
    "NS-CONST": (l1, lambda: M("bernoulli-lora-subgd", p=0.0, rank=2, stepsize="constant", factor=1 / 3), 300, 400),
    "NS-POLYAK": (l1, lambda: M("bernoulli-lora-subgd", p=0.5, rank=2, stepsize="polyak",
                                sketch="stratified", left_groups=[2, 6], right_groups=[3, 9]), 300, 400),
}
