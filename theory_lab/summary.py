"""One row per configuration of a sweep: ``summarise(table)`` (also ``tl.sweep(...).summary()``).

From a sweep's long table (``tl.sweep`` or a parquet store) alone, per configuration:

* its parameters (the columns constant within it), theorem, verdict and the verdict's reason;
* ``tightness``: measured mean / bound at T, ``max_tightness`` over t > 0 and ``late_tightness``
  past the first tenth of the run (where the rate, not the first step, shows);
* for rate theorems (a stored ``rate_theory``): ``rate``, the per-step rate fitted on the mean of
  the theorem's measured quantity from the first tenth of the run on (docs/THEORY.md 7.4, with a
  bootstrap ``rate_low``/``rate_high`` over seeds), ``rate_theory`` (q_th), and
  ``slack = log(rate) / log(rate_theory)``: how many times faster, in exponent, the run contracts
  than the bound says (1: the rate is attained);
* the slack decomposed into factors whose product is ``slack``: ``slack_lam = lam_bar / lam_min``
  (the average eigenvalue of M_p, tr(M_p)/(mn), over the worst one the bound uses: what anisotropic
  sketches give away), ``slack_mu = mu_path / mu`` (the PL ratio ||grad f||^2 / (2 (f - f*)) of the
  mean iterates along the run, over the worst-case mu: what the problem's curvature gives away)
  and ``slack_other = slack / (slack_lam slack_mu)`` (stepsize terms such as (1 - L gamma/2), the
  estimator's share of rho, noise).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: columns that vary within a configuration, or are per-configuration results, not parameters
ROW_COLUMNS = ("seed", "iteration", "f_gap", "grad_sq", "avg_grad_sq", "wavg_grad_sq", "dist_sq", "est_error",
               "epochs", "bits", "lyapunov", "avg_f_gap", "polyak_sum", "min_f_gap", "identity", "bound")
#: the result columns ``theory-lab summary`` prints after the varying parameters
RESULTS = ("theorem", "verdict", "tightness", "late_tightness", "rate", "rate_low", "rate_high", "rate_theory",
           "slack", "slack_lam", "slack_mu", "slack_other", "reason")
RESULT_COLUMNS = ("theorem", "verdict", "reason", "diverged", "lam_min", "lam_max", "lam_bar", "rate_theory", "mu",
                  "config")


class SweepTable(pd.DataFrame):
    """A sweep's long table (what ``tl.sweep`` returns): a DataFrame with :meth:`summary`."""

    @property
    def _constructor(self):
        return SweepTable

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """One row per configuration: :func:`summarise` of this table."""
        return summarise(self, confidence)


def summarise(table, confidence: float = 0.95):
    """One row per configuration of a sweep's long table (module docstring); sorted like the table."""
    from .errors import InputError
    from .theorems import THEOREMS

    for col in ("config", "seed", "iteration"):
        if col not in table.columns:
            raise InputError("table", f"not a sweep's long table: it has no {col!r} column")
    rows = []
    for key, g in table.groupby("config", sort=False):
        first = g.iloc[0]
        params = {c: first[c] for c in g.columns if c not in ROW_COLUMNS and c not in RESULT_COLUMNS}
        tid = str(first.get("theorem", "") or "")
        th = THEOREMS.get(tid)
        metric = th.metric if th is not None and th.metric in g.columns else "f_gap"
        reason = g["reason"].dropna() if "reason" in g.columns else pd.Series(dtype=object)
        row = dict(config=key, **params, theorem=tid, verdict=str(first.get("verdict", "") or ""),
                   reason=str(reason.iloc[0]) if len(reason) else "", metric=metric,
                   diverged=int(g["diverged"].max()) if "diverged" in g else 0)
        row.update(_numbers(g, metric, first, confidence))
        rows.append(row)
    out = pd.DataFrame(rows)
    varying = [c for c in out.columns if c not in ("config", "reason", "verdict") and c in table.columns
               and c not in ROW_COLUMNS and c not in RESULT_COLUMNS and out[c].astype(str).nunique() > 1]
    if varying:                                        # in the order of the grid's values
        out = out.sort_values(varying, kind="stable", key=lambda col: col if col.dtype != object else col.astype(str),
                              ignore_index=True)
    out.attrs.update(confidence=confidence, varying=varying)
    return out


def _wide(g, column):
    w = g.pivot_table(index="seed", columns="iteration", values=column, aggfunc="first", dropna=False)
    return w.columns.to_numpy(dtype=float), w.to_numpy(dtype=float)


def _numbers(g, metric: str, first, confidence: float) -> dict:
    from .verify import fit_linear_rate

    t, X = _wide(g, metric)
    T = float(t.max()) if t.size else math.nan
    with np.errstate(all="ignore"):
        mean = X.mean(axis=0) if X.size else np.array([])
    out = dict(measured=float(mean[-1]) if mean.size else math.nan)
    nan = math.nan
    out.update(bound=nan, tightness=nan, max_tightness=nan, late_tightness=nan, rate=nan, rate_low=nan,
               rate_high=nan, rate_theory=nan, slack=nan, slack_lam=nan, slack_mu=nan, slack_other=nan,
               lam_min=_f(first.get("lam_min")), lam_bar=_f(first.get("lam_bar")))
    if "bound" in g.columns and mean.size:
        b = g.groupby("iteration")["bound"].first().reindex(t).to_numpy(dtype=float)
        with np.errstate(all="ignore"):
            ratio = mean / b
        out["bound"] = float(b[-1])
        out["tightness"] = float(ratio[-1])
        pos = (t > 0) & np.isfinite(ratio)
        late = pos & (t >= T / 10)
        out["max_tightness"] = float(np.max(ratio[pos])) if pos.any() else nan
        out["late_tightness"] = float(np.max(ratio[late])) if late.any() else nan
    q_th = _f(first.get("rate_theory"))
    if not (0 < q_th < 1) or not mean.size or not np.all(np.isfinite(X)):
        return out
    out["rate_theory"] = q_th
    win = t >= T / 10
    q, (lo, hi) = fit_linear_rate(t[win], X[:, win], level=confidence, seed=0)
    out.update(rate=q, rate_low=lo, rate_high=hi)
    if not (0 < q < 1):
        return out
    slack = math.log(q) / math.log(q_th)
    out["slack"] = slack
    lam, lam_bar = out["lam_min"], out["lam_bar"]
    if lam > 0 and lam_bar > 0:
        out["slack_lam"] = lam_bar / lam
    mu = _f(first.get("mu"))
    if mu > 0 and "grad_sq" in g.columns and "f_gap" in g.columns:
        _, Gs = _wide(g, "grad_sq")
        _, Fs = _wide(g, "f_gap")
        with np.errstate(all="ignore"):
            ratio = Gs.mean(axis=0) / (2 * Fs.mean(axis=0))
        ok = win & np.isfinite(ratio) & (Fs.mean(axis=0) > 1e-12 * abs(Fs.mean(axis=0)[0]))
        if ok.any():
            out["slack_mu"] = float(np.median(ratio[ok])) / mu
    known = (out["slack_lam"] if math.isfinite(out["slack_lam"]) else 1.0) * \
        (out["slack_mu"] if math.isfinite(out["slack_mu"]) else 1.0)
    out["slack_other"] = slack / known
    return out


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


__all__ = ["summarise"]
