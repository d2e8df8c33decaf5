"""The statistical tests' own error rate: true theorems re-checked over 20 master seeds.

Every check below asserts a TRUE bound or formula (docs/THEORY.md), so any "violated" / "mismatch" is a
false alarm. At one-sided (UPPER) or two-sided (EXACT) level alpha with Bonferroni over the
checkpoints, the family-wise false-alarm probability of one check is at most alpha; the observed
rate over 20 seeds x the cases is printed against that nominal rate and must not exceed it beyond
Monte Carlo error (the 99.9% Clopper-Pearson lower bound of the rate stays below alpha)."""
import pytest
from scipy import stats

import theory_lab as tl

from cases import HERE

M = tl.Method
CASES = [
    ("GD-PL", lambda: tl.load_problem(HERE / "appendix_lsq.toml"), lambda: M("bernoulli-lora-gd", p=0.5, rank=2), 60, 400),
    ("EXACT-ISO", lambda: tl.load_problem(HERE / "appendix_iso.toml"), lambda: M("bernoulli-lora-gd", p=0.3, rank=2), 20, 1000),
    ("EXACT-ISO-SGD", lambda: tl.load_problem(HERE / "appendix_iso.toml"),
     lambda: M("bernoulli-lora-sgd", p=0.5, rank=2, noise_std=0.3), 30, 1000),
    ("SGD-PL", lambda: tl.load_problem(HERE / "appendix_kron.toml"),
     lambda: M("bernoulli-lora-sgd", p=0.5, rank=2, noise_std=0.3), 100, 400),
    ("NS-CONST", lambda: tl.make_problem("l1-regression", m=8, n=12, n_samples=40),
     lambda: M("bernoulli-lora-subgd", p=0.0, rank=2, stepsize="constant", factor=1 / 3), 100, 400),
    ("IDENT-NS-CONST", lambda: tl.make_problem("l1-regression", m=8, n=12, n_samples=40),
     lambda: M("bernoulli-lora-subgd", p=0.5, rank=2), 60, 1000),
]


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.05])
def test_false_alarm_rate_over_master_seeds(alpha, capsys):
    alarms, total = 0, 0
    for tid, problem, method, T, S in CASES:
        pr, me = problem(), method()
        for seed in range(20):
            rep = tl.check(pr, me, iters=T, seeds=S, theorem=tid, seed=1000 + seed, confidence=1 - alpha)
            assert rep.verdict != "not-applicable", rep.reason
            alarms += rep.verdict in ("violated", "mismatch")
            total += 1
    upper = stats.beta.ppf(0.999, alarms + 1, total - alarms)
    lower = stats.beta.ppf(0.001, alarms, total - alarms + 1) if alarms else 0.0
    with capsys.disabled():
        print(f"\nfalse alarms: {alarms} of {total} true checks ({alarms / total:.3f}); nominal at most {alpha}; "
              f"99.9% interval [{lower:.3f}, {upper:.3f}]")
    assert lower <= alpha
