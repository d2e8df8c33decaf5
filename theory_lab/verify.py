"""Statistics over seeds: confidence bounds, verdicts and rate fits (THEORY.md section 7).

The theorems bound expectations, so each checkpoint's S per-seed values give a t-interval for
the mean; K checkpoints are tested as a family with Bonferroni's correction (alpha/K in every
interval), which is valid under any dependence between checkpoints of the same runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

SLACK_REL, SLACK_ABS = 1e-9, 1e-15


def numerical_slack(dtype: str) -> float:
    """Relative slack b' = b (1 + rel): 1e-9 in float64 (THEORY.md 7.2), 1e-5 in float32, whose
    rounding (eps = 1.2e-7) already moves t = 0 values by more than 1e-9."""
    return SLACK_REL if dtype == "float64" else 1e-5


@dataclass
class BandStats:
    """Per-checkpoint summary of (S, K) samples: mean, standard error, one-sided bounds."""

    mean: np.ndarray
    se: np.ndarray
    lcb: np.ndarray
    ucb: np.ndarray
    tcrit: float
    n_seeds: int
    n_finite: np.ndarray

    @property
    def half_width(self) -> np.ndarray:
        return self.ucb - self.mean


def band(X: np.ndarray, alpha: float = 0.05, k: int = 1, two_sided: bool = False) -> BandStats:
    """t-bounds of the mean of each column of X (S, K) at level alpha/k (one- or two-sided).

    Non-finite values make that column's mean infinite (divergence is never dropped silently).
    """
    X = np.asarray(X, dtype=float)
    S = X.shape[0]
    finite = np.isfinite(X)
    a = alpha / max(k, 1)
    q = 1 - a / 2 if two_sided else 1 - a
    tcrit = float(stats.t.ppf(q, S - 1)) if S > 1 else math.inf
    with np.errstate(all="ignore"):
        mean = np.where(finite.all(axis=0), X.mean(axis=0), np.inf)
        sd = np.where(finite.all(axis=0), X.std(axis=0, ddof=1) if S > 1 else np.inf, np.inf)
        se = sd / math.sqrt(S)
        lcb = np.where(finite.all(axis=0), mean - tcrit * se, np.inf)
        ucb = np.where(finite.all(axis=0), mean + tcrit * se, np.inf)
    return BandStats(mean, se, lcb, ucb, tcrit, S, finite.sum(axis=0))


def slack(bound: np.ndarray, rel: float = SLACK_REL) -> np.ndarray:
    """b' = b (1 + 1e-9) + 1e-15 (THEORY.md 7.2); ``rel`` is raised for float32 runs."""
    return np.asarray(bound) * (1 + rel) + SLACK_ABS


def upper_verdict(X: np.ndarray, bound: np.ndarray, alpha: float = 0.05, tau: float = 0.05,
                  rel: float = SLACK_REL):
    """Verdict of an UPPER bound tested at K checkpoints (columns of X).

    holds: every UCB <= b'; violated: some LCB > b'; tight: otherwise, if every undecided
    checkpoint has (UCB - LCB) <= 2 tau b; inconclusive: otherwise. Returns (verdict, BandStats).
    """
    K = X.shape[1]
    st = band(X, alpha, K)
    bp = slack(bound, rel)
    if np.any(st.lcb > bp):
        return "violated", st
    if np.all(st.ucb <= bp):
        return "holds", st
    undecided = st.ucb > bp
    if np.all((st.ucb - st.lcb)[undecided] <= 2 * tau * np.asarray(bound)[undecided]):
        return "tight", st
    return "inconclusive", st


def exact_verdict(X: np.ndarray, formula: np.ndarray, alpha: float = 0.05, rel: float = SLACK_REL):
    """EXACT / IDENTITY: two-sided Bonferroni intervals; match if the formula lies in all of them."""
    K = X.shape[1]
    st = band(X, alpha, K, two_sided=True)
    f = np.asarray(formula, dtype=float)
    tol = np.abs(f) * rel + SLACK_ABS
    inside = (st.lcb - tol <= f) & (f <= st.ucb + tol)
    return ("match" if np.all(inside) else "mismatch"), st


def skewness(x: np.ndarray) -> float:
    """Sample skewness g1 of the finite values (0 for constant samples)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    with np.errstate(all="ignore"):
        if x.size < 3 or not np.isfinite(np.std(x)) or np.std(x) == 0:
            return 0.0
        return float(stats.skew(x, bias=True))


def fit_linear_rate(t: np.ndarray, X: np.ndarray, floor: float = 0.0, n_boot: int = 200,
                    seed: int = 0, level: float = 0.95):
    """Fit log mean_s X_s(t) = a + t log q on the window where the mean exceeds
    max(10 floor, 1e-12 m_0) (THEORY.md 7.4). Returns (q_hat, (q_low, q_high)) with a bootstrap
    percentile interval over seeds, or (nan, (nan, nan)) when fewer than 3 points qualify."""
    t = np.asarray(t, dtype=float)
    X = np.asarray(X, dtype=float)
    if not np.all(np.isfinite(X)):
        return math.nan, (math.nan, math.nan)

    def slope(M):
        m = M.mean(axis=0)
        thr = max(10 * floor, 1e-12 * m[0], np.finfo(float).tiny)
        ok = m > thr
        # the window is the initial run of qualifying points (the rate is not defined below the floor)
        stop = np.argmin(ok) if not ok.all() else len(ok)
        sel = np.arange(stop)
        if sel.size < 3:
            return math.nan
        return math.exp(np.polyfit(t[sel], np.log(m[sel]), 1)[0])

    q = slope(X)
    if not math.isfinite(q):
        return math.nan, (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    S = X.shape[0]
    boots = np.array([slope(X[rng.integers(0, S, S)]) for _ in range(n_boot)])
    boots = boots[np.isfinite(boots)]
    lo, hi = np.percentile(boots, [50 * (1 - level), 100 - 50 * (1 - level)]) if boots.size else (math.nan,) * 2
    return q, (float(lo), float(hi))


def fit_loglog_slope(t: np.ndarray, X: np.ndarray) -> float:
    """Slope of log mean X against log t over the second half of the checkpoints (t > 0)."""
    t = np.asarray(t, dtype=float)
    m = np.asarray(X, dtype=float).mean(axis=0)
    ok = (t > 0) & np.isfinite(m) & (m > 0)
    t, m = t[ok], m[ok]
    if t.size < 3:
        return math.nan
    half = t >= np.sqrt(t[0] * t[-1])
    if half.sum() < 2:
        half[:] = True
    return float(np.polyfit(np.log(t[half]), np.log(m[half]), 1)[0])


def cochran_ok(skew: float, n_seeds: int) -> bool:
    """Cochran's rule S >= 25 g1^2 for trusting t-intervals on skewed data."""
    return n_seeds >= 25 * skew ** 2
