"""``check``: run a method over many seeds and judge a theorem's bound (holds / violated / ...)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError, check_range
from .jsonout import strict
from .methods import Method
from .plan import Plan, make_plan
from .runner import RunResult, execute
from .theorems import THEOREMS
from .verify import (cochran_ok, diverged_mask, exact_verdict, fit_linear_rate, fit_loglog_slope, numerical_slack,
                     skewness, slack, upper_verdict)

VERDICTS = ("holds", "violated", "tight", "inconclusive", "not-applicable", "match", "mismatch")


@dataclass
class CheckResult:
    """Outcome of a check; scalar fields refer to the last checkpoint unless named otherwise."""

    theorem: str
    kind: str
    metric: str
    verdict: str
    measured: float = math.nan
    bound: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    tightness: float = math.nan
    max_tightness: float = math.nan
    rate_empirical: float = math.nan
    rate_empirical_ci: tuple = (math.nan, math.nan)
    rate_theory: float = math.nan
    rate_kind: str = ""
    skewness: float = math.nan
    max_skewness: float = math.nan
    rate_consistent: bool | None = None
    #: measured vs the bound's per-step contraction from the first tenth of the run to its end (rate
    #: theorems): (mean(t_b)/mean(t_a))^(1/(t_b - t_a)), the same for the bound, over ``rate_window``;
    #: ``rate_tightness`` = log(bound's) / log(measured): <= 1 when the run contracts at least as fast
    contraction_measured: float = math.nan
    contraction_bound: float = math.nan
    rate_window: tuple = (None, None)
    rate_tightness: float = math.nan
    #: largest measured/bound past the first tenth of the run (where the rate, not the first step, shows)
    late_tightness: float = math.nan
    #: the checkpoint that decided the verdict, the interval used there, and the decision in words
    decided_at: int | None = None
    decided_by: str = ""
    decision: str = ""
    #: the constants the theorem reads: name -> {value, source, meaning}; the stepsize's source and the
    #: largest stepsize the theorem's condition admits
    constants: dict = field(default_factory=dict)
    stepsize_source: str = ""
    stepsize_max: float = math.nan
    diverged: int = 0
    seeds: int = 0
    iters: int = 0
    gamma: float = math.nan
    lam_min: float = math.nan
    lam_max: float = math.nan
    confidence: float = 0.95
    provenance: str = ""
    problem: str = ""
    method: str = ""
    reason: str = ""
    notes: list = field(default_factory=list)
    checkpoints: Any = field(default=None, repr=False)
    mean_curve: Any = field(default=None, repr=False)
    lcb_curve: Any = field(default=None, repr=False)
    ucb_curve: Any = field(default=None, repr=False)
    bound_curve: Any = field(default=None, repr=False)
    result: Any = field(default=None, repr=False)

    def to_dict(self, curves: bool = False) -> dict[str, Any]:
        """The scalar fields and the constants, with every non-finite number as None (strict JSON has
        no NaN); ``curves``: also ``curves`` = {t, mean, lcb, ucb, bound} over the judged checkpoints."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__
             if k not in ("checkpoints", "mean_curve", "lcb_curve", "ucb_curve", "bound_curve", "result")}
        if curves:
            def arr(x):
                return None if x is None else np.asarray(x, dtype=float).tolist()
            d["curves"] = dict(t=None if self.checkpoints is None else np.asarray(self.checkpoints).tolist(),
                               mean=arr(self.mean_curve), lcb=arr(self.lcb_curve), ucb=arr(self.ucb_curve),
                               bound=arr(self.bound_curve))
        return _strict(d)

    def to_json(self, curves: bool = True) -> str:
        """One strict-JSON object: :meth:`to_dict` with the curves."""
        return json.dumps(self.to_dict(curves), allow_nan=False)

    def table(self) -> str:
        """Human-readable summary (the CLI's output)."""
        def g(x):
            return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.6g}"
        lo, hi = self.rate_empirical_ci
        step = f"gamma = {g(self.gamma)}" + (f" ({self.stepsize_source})" if self.stepsize_source else "")
        if math.isfinite(self.stepsize_max) and math.isfinite(self.gamma):
            step += f"; largest admissible {g(self.stepsize_max)} (gamma/max = {self.gamma / self.stepsize_max:.3g})"
        rows = [
            ("theorem", f"{self.theorem} ({self.kind}; {self.provenance}; `theory-lab show {self.theorem}`)"),
            ("problem", self.problem), ("method", self.method),
            ("stepsize", step),
            ("lam_min^p, lam_max^p", f"{g(self.lam_min)}, {g(self.lam_max)}"),
        ]
        for k, v in self.constants.items():
            if k not in ("gamma", "lam_min", "lam_max"):
                rows.append((f"  {k}", f"{g(v['value']) if not isinstance(v['value'], str) else v['value']}"
                                       f"  ({v['source']})"))
        rows += [
            ("metric", f"{self.metric} at T = {self.iters}, {self.seeds} seeds"),
            ("measured (mean)", g(self.measured)),
            (f"CI ({'two-sided' if self.kind == 'EXACT' else 'one-sided'}, Bonferroni, {self.confidence:.0%})",
             f"[{g(self.ci_low)}, {g(self.ci_high)}]"),
            ("bound" if self.kind == "UPPER" else "formula", g(self.bound)),
            ("tightness (measured/bound)", f"{g(self.tightness)} at T; max over t > 0 {g(self.max_tightness)}; "
                                           f"past the first tenth {g(self.late_tightness)}"),
        ]
        if self.rate_kind.startswith("linear"):
            rows.append(("rate (linear, per step)", f"fitted {g(self.rate_empirical)} [{g(lo)}, {g(hi)}] vs "
                                                    f"theory q_th {g(self.rate_theory)}"))
            a, b = self.rate_window
            if a is not None:
                rows.append(("contraction over the run", f"t = {a}..{b}: measured {g(self.contraction_measured)} "
                             f"per step vs the bound's {g(self.contraction_bound)} (rate tightness log b/log m "
                             f"= {g(self.rate_tightness)})"))
        elif self.rate_kind:
            rows.append((f"rate ({self.rate_kind})", f"measured {g(self.rate_empirical)} vs the bound's "
                                                      f"{g(self.rate_theory)}"))
        rows += [
            ("skewness g1", f"{g(self.skewness)} at T (max over checkpoints {g(self.max_skewness)})"),
            ("diverged seeds", str(self.diverged)),
            ("verdict", self.verdict.upper() + (f" ({self.reason})" if self.reason else "")),
        ]
        if self.decision:
            rows.append(("decided at", self.decision))
        width = max(len(k) for k, _ in rows)
        lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


_strict = strict


def check(problem, method: Method, iters: int = 500, seeds: int = 256, theorem=None,
          confidence: float = 0.95, seed: int = 0, backend="numpy", device: str = "cpu",
          dtype: str = "float64", tau: float = 0.05, checkpoints=None, timeout: float | None = None,
          deadline: float | None = None) -> CheckResult:
    """Run ``seeds`` independent runs and judge ``theorem`` (None: the one matching the method and
    the problem's class) at every checkpoint, per docs/THEORY.md section 7: ``run`` + ``judge``.

    ``timeout`` (seconds) or ``deadline`` (a ``time.monotonic()`` instant, for campaigns): a hard
    limit on the run; past it ``errors.BudgetExceeded`` is raised and nothing is judged."""
    import time

    confidence = check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    if timeout is not None:
        timeout = check_range("timeout", timeout, 0.0, None, low_open=True)
        deadline = min(deadline if deadline is not None else math.inf, time.monotonic() + timeout)
    tau = check_range("tau", tau, 0.0, None, low_open=True)
    plan = make_plan(problem, method, iters, seeds, seed, backend, device, dtype, checkpoints, theorem,
                     min_seeds=2)
    if plan.theorem is None:
        return CheckResult(theorem="none", kind="", metric="", verdict="not-applicable",
                           reason=f"no registered theorem covers {plan.method.name} on {plan.problem.describe()}",
                           **_header(plan, confidence))
    return judge(plan, execute(plan, deadline), confidence, tau)


def _header(plan: Plan, confidence: float) -> dict[str, Any]:
    return dict(problem=plan.problem.describe(), method=repr(plan.method), seeds=plan.seeds, iters=plan.iters,
                confidence=confidence)


def judge(plan: Plan, result: RunResult, confidence: float = 0.95, tau: float = 0.05,
          verdict_only: bool = False) -> CheckResult:
    """Verdict of ``plan.theorem`` on a run of ``plan`` (docs/THEORY.md section 7).

    ``verdict_only`` (for callers that store verdicts and bounds: sweeps): the same verdict, reason
    and bound, without the empirical rate fit (docs/THEORY.md 7.4, a diagnostic outside the verdict) and
    without bootstrap-t intervals the t-intervals already decide (``upper_verdict(lazy=True)``); the
    interval curves are then left out (None)."""
    th, c = plan.theorem, plan.constants
    if plan.reason and th.metric not in result.metrics:   # not applicable: say why, not what is missing
        out = CheckResult(theorem=th.id, kind=th.kind, metric=th.metric, verdict="not-applicable",
                          provenance=th.provenance, gamma=result.gamma, lam_min=c.lam_min, lam_max=c.lam_max,
                          reason=plan.reason, result=result, **_header(plan, confidence))
        out.notes.extend(plan.notes)
        return out
    if th.metric not in result.metrics:
        raise InputError("theorem", f"{th.id} cannot be measured on this run (metric {th.metric!r} "
                         f"needs {', '.join(sorted(result.metrics))} and the constants it names)")
    t, X = result.checkpoints, result.metrics[th.metric]
    if th.skip_t0:
        X, t = X[:, t > 0], t[t > 0]
    diverged = int(np.sum(diverged_mask(X)))
    out = CheckResult(theorem=th.id, kind=th.kind, metric=th.metric, verdict="not-applicable",
                      provenance=th.provenance, gamma=result.gamma, lam_min=c.lam_min, lam_max=c.lam_max,
                      diverged=diverged, result=result, checkpoints=t, **_header(plan, confidence))
    out.notes.extend(plan.notes)
    if not verdict_only:
        _explain_constants(out, plan)
    out.measured = float(np.mean(X[:, -1])) if diverged == 0 else math.inf
    out.skewness = skewness(X[:, -1])
    bound, reason = _bound(th, t, c)
    out.reason = plan.reason or reason
    if out.reason:
        return out
    floor = plan.problem.gap_resolution(plan.backend.eps) if th.metric in GAP_METRICS else 0.0
    rel = numerical_slack(plan.backend.dtype)
    if th.kind == "EXACT":
        v, bound = _exact_over_lambda(th, result, c, t, X, bound, 1 - confidence, rel, floor)
    else:
        v = upper_verdict(X, bound, 1 - confidence, tau, rel, floor, t, lazy=verdict_only)
    st = v.stats
    out.verdict, out.reason = v.verdict, v.reason
    out.mean_curve, out.bound_curve = st.mean, bound
    out.bound = float(bound[-1])
    if st.final:
        out.lcb_curve, out.ucb_curve = st.lcb, st.ucb
        out.ci_low, out.ci_high = float(st.lcb[-1]), float(st.ucb[-1])
    out.max_skewness = float(np.max(np.abs(st.skew)))
    _tightness(out, st.mean, bound, t, floor, plan.iters)
    if not verdict_only:
        _decision(out, th, v, st, bound, slack(bound, rel, floor), np.abs(bound) < floor, t)
        _rates(out, th, c, t, X)
        _contraction(out, th, c, t, st.mean, bound, plan.iters)
    _notes(out, diverged, plan.seeds, out.verdict)
    return out


#: metrics measured through f - f*, whose resolution is the problem's evaluation error
GAP_METRICS = ("f_gap", "lyapunov", "avg_f_gap", "min_f_gap")


def _bound(th, t, c):
    """The bound at the checkpoints, or the reason it cannot be evaluated (a constant it needs is
    missing or None, or it is not a finite number)."""
    try:
        with np.errstate(all="ignore"):
            bound = th.evaluate(t, c)
    except (AttributeError, TypeError, ZeroDivisionError, ValueError) as exc:
        from .theorems import unknown_constants

        missing = unknown_constants(th.bound, c)
        if missing:
            return None, f"{th.id}'s bound needs {', '.join(missing)}, which this problem or method does not give"
        return None, f"{th.id}'s bound cannot be evaluated here ({type(exc).__name__}: {exc})"
    if not np.all(np.isfinite(bound) | (bound == np.inf)):
        k = int(np.argmax(~np.isfinite(bound)))
        return None, f"{th.id}'s bound is not a number at t = {int(t[k])} (NaN); its constants do not fit this problem"
    return bound, None


def _exact_over_lambda(th, result, c, t, X, bound, alpha, rel, floor, grid: int = 21):
    """EXACT / IDENTITY with a Monte Carlo lambda: the formula (and a lambda-dependent measured
    quantity) over lambda in [lam - err, lam + err], the Monte Carlo interval; match if the formula
    matches for some lambda there. Exact lambdas (err = 0) take one evaluation."""
    v = exact_verdict(X, bound, alpha, rel, floor, t)
    err = c.get("lam_err") or 0.0
    if v.verdict == "match" or err <= 0:
        return v, bound
    for shift in np.linspace(-err, err, grid):
        cs = c.replace(lam_min=c.lam_min + shift, lam_max=c.lam_max + shift)
        Xs, st = X, v.stats                        # a plain metric keeps its intervals: only the formula moves
        if th.measure is not None:
            Xs = np.asarray(th.measure({**result.metrics, "t": result.checkpoints[None, :].astype(float)}, cs), float)
            Xs, st = (Xs[:, result.checkpoints > 0] if th.skip_t0 else Xs), None
        bs, _ = _bound(th, t, cs)
        vs = exact_verdict(Xs, bs, alpha, rel, floor, t, st) if bs is not None else v
        if vs.verdict == "match":
            return vs, bs
        if vs.verdict == "inconclusive":
            v = vs
    return v, bound


def _tightness(out: CheckResult, mean, bound, t, floor: float, iters: int) -> None:
    """measured/bound at T, its maximum over t > 0 and past the first tenth of the run. At t = 0 a
    PL bound equals f(W0) - f* (ratio 1 by construction); below the float64 resolution the ratio is
    rounding noise over a bound that cannot be measured."""
    with np.errstate(all="ignore"):
        ratio = mean / bound
    out.tightness = float(ratio[-1])
    pos = (t > 0) & np.isfinite(ratio) & (np.abs(bound) >= floor)
    out.max_tightness = float(np.max(ratio[pos])) if pos.any() else math.nan
    late = pos & (t >= iters / 10)
    out.late_tightness = float(np.max(ratio[late])) if late.any() else math.nan


def _explain_constants(out: CheckResult, plan: Plan) -> None:
    """The constants the theorem reads (value, source, meaning) and the stepsize's admissible maximum."""
    from .theorems.reference import constant_names, sources, stepsize_info, symbol

    th, c = plan.theorem, plan.constants
    src = sources(plan)
    values = c.as_dict()
    out.constants = {k: dict(value=values[k], source=src.get(k, ""), meaning=symbol(th, k))
                     for k in constant_names(th) if k in values}
    info = stepsize_info(plan) if plan.reason is None else dict(source=plan.stepsize.source, max_admissible=None)
    out.stepsize_source = info["source"]
    out.stepsize_max = math.nan if info["max_admissible"] is None else float(info["max_admissible"])


def _interval_kind(st, k: int) -> str:
    if st.dominated is not None and st.dominated[k]:
        return "the largest seed value (a handful of seeds carry the mean there)"
    if st.normal_ok is not None and not st.normal_ok[k]:
        if st.pending is not None and st.pending[k]:
            return "a Student t interval (the bootstrap-t was not needed to decide)"
        return f"a bootstrap-t interval (skewness g1 = {st.skew[k]:.2f} fails Cochran's S >= 25 g1^2)"
    return "a Student t interval"


def _decision(out: CheckResult, th, v, st, bound, bp, unresolved, t) -> None:
    """The checkpoint that decided the verdict and why (docs/THEORY.md 7.2-7.3): for violated the
    most significant excess (largest LCB/bound), for match/mismatch the largest deviation in interval
    widths, otherwise the checkpoint closest to the bound (largest UCB/bound), where holding was
    hardest to establish. Intervals are Bonferroni over the K checkpoints."""
    K = len(t)
    # t = 0 is the deterministic start (every seed equal; a PL bound equals it by construction)
    unresolved = unresolved | ((np.asarray(t) == 0) & (K > 1))
    with np.errstate(all="ignore"):
        if th.kind == "EXACT":
            dev = np.abs(st.mean - bound) / np.maximum(st.ucb - st.mean, 1e-300)
            dev = np.where(unresolved | ~np.isfinite(dev), -np.inf, dev)
            if not np.isfinite(dev).any():
                return
            k = int(np.argmax(dev))
            what = (f"formula {bound[k]:.6g} vs the two-sided interval [{st.lcb[k]:.6g}, {st.ucb[k]:.6g}]")
        elif v.verdict == "violated":
            score = np.where((st.lcb > bp) & ~unresolved, st.lcb / bp, -np.inf)
            k = int(np.argmax(score))
            what = f"lower end {st.lcb[k]:.6g} > bound {bound[k]:.6g} (x{st.lcb[k] / bound[k]:.4g})"
        else:
            score = np.where(unresolved, -np.inf, st.ucb / np.where(bp > 0, bp, np.nan))
            score = np.where(np.isfinite(score), score, -np.inf)
            if not np.isfinite(score).any():
                return
            k = int(np.argmax(score))
            rel = "<=" if st.ucb[k] <= bp[k] else ">"
            what = f"upper end {st.ucb[k]:.6g} {rel} bound {bound[k]:.6g} (UCB/bound {st.ucb[k] / bound[k]:.4g})"
    out.decided_at = int(t[k])
    out.decided_by = _interval_kind(st, k)
    out.decision = f"t = {int(t[k])}: {what}; {out.decided_by}, Bonferroni over {K} checkpoints"


def _contraction(out: CheckResult, th, c, t, mean, bound, iters: int) -> None:
    """Measured vs the bound's per-step contraction from the first tenth of the run to the last
    checkpoint where the mean is above 10x the theorem's floor (rate theorems only)."""
    if th.rate is None:
        return
    floor = float(th.floor(c)) if th.floor is not None else 0.0
    with np.errstate(all="ignore"):
        ok = (t >= iters / 10) & np.isfinite(mean) & (mean > max(10 * floor, 1e-12 * abs(mean[0]), 1e-300)) \
            & (bound > 0)
    idx = np.flatnonzero(ok)
    if idx.size < 3:
        return
    a = idx[0]
    b = idx[-1] if np.all(ok[a:idx[-1] + 1]) else a + int(np.argmin(ok[a:])) - 1
    if b - a < 2:
        return
    span = float(t[b] - t[a])
    with np.errstate(all="ignore"):
        qm = float((mean[b] / mean[a]) ** (1 / span))
        qb = float((bound[b] / bound[a]) ** (1 / span))
        out.rate_tightness = float(np.log(qb) / np.log(qm)) if 0 < qm < 1 and 0 < qb < 1 else math.nan
    out.contraction_measured, out.contraction_bound = qm, qb
    out.rate_window = (int(t[a]), int(t[b]))


def _rates(out: CheckResult, th, c, t, X) -> None:
    """docs/THEORY.md 7.4. For one-step contractions (``th.one_step``) every window's rate must be at most
    q_th up to its CI: ``rate_consistent`` is False when the CI's lower end exceeds q_th. It is a
    diagnostic, not a verdict: the checkpoints already test E Phi_T <= q_th^T Phi_0 with a calibrated
    family-wise level, while the fit's 95% bootstrap interval is not part of that family."""
    if th.rate is not None:
        floor = float(th.floor(c)) if th.floor is not None else 0.0
        out.rate_empirical, out.rate_empirical_ci = fit_linear_rate(t, X, floor)
        out.rate_theory = float(th.rate(c))
        out.rate_kind = "linear, per step"
        lo = out.rate_empirical_ci[0]
        if th.one_step and math.isfinite(lo):
            out.rate_consistent = bool(lo <= out.rate_theory * (1 + 1e-12))
    elif th.kind == "UPPER" and out.bound_curve is not None:
        # a sublinear bound: compare the measured log-log slope with the bound's own (not with -1:
        # NS-CONST and MVR-NC bounds level off); a flat bound (NS-POLYAK) has no rate to compare
        slope_b = fit_loglog_slope(t, np.asarray(out.bound_curve, float)[None, :])
        if math.isfinite(slope_b) and slope_b < -0.05:
            out.rate_empirical = fit_loglog_slope(t, X)
            out.rate_theory = slope_b
            out.rate_kind = "log-log slope in T"


def _notes(out: CheckResult, diverged: int, seeds: int, verdict: str) -> None:
    if diverged:
        out.notes.append(f"{diverged} of {seeds} seeds diverged (inf/NaN); the mean is infinite")
    if not cochran_ok(out.max_skewness, seeds) and "skewed" not in out.reason:
        out.notes.append(f"skewness up to {out.max_skewness:.2f} over the checkpoints needs S >= 25 g1^2 = "
                         f"{25 * out.max_skewness ** 2:.0f} seeds for trustworthy t-intervals (Cochran)")
    if out.rate_consistent is False:
        out.notes.append(f"the fitted per-step rate {out.rate_empirical:.6g} (CI low {out.rate_empirical_ci[0]:.6g}) "
                         f"is slower than the one-step contraction {out.rate_theory:.6g} allows (docs/THEORY.md 7.4)")
    if verdict == "violated":
        out.notes.append("re-run with more seeds (and another master seed) before concluding")


__all__ = ["check", "judge", "CheckResult", "VERDICTS", "THEOREMS"]
