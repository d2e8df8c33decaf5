"""``check``: run a method over many seeds and judge a theorem's bound (holds / violated / ...)."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .errors import InputError, check_range
from .methods import Method
from .problems import resolve_problem
from .runner import build_constants, resolve_stepsize, run
from .theorems import THEOREMS, Theorem, get_theorem, select_theorem
from .verify import numerical_slack, cochran_ok, exact_verdict, fit_linear_rate, fit_loglog_slope, skewness, upper_verdict

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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self) if False else {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("checkpoints", "mean_curve", "lcb_curve", "ucb_curve", "bound_curve", "result"):
            d.pop(k)
        d["rate_empirical_ci"] = list(d["rate_empirical_ci"])
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=float)

    def table(self) -> str:
        """Human-readable summary (the CLI's output)."""
        def g(x):
            return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.6g}"
        lo, hi = self.rate_empirical_ci
        rows = [
            ("theorem", f"{self.theorem} ({self.kind}; {self.provenance})"),
            ("problem", self.problem), ("method", self.method),
            ("stepsize", f"gamma = {g(self.gamma)}"),
            ("lam_min^p, lam_max^p", f"{g(self.lam_min)}, {g(self.lam_max)}"),
            ("metric", f"{self.metric} at T = {self.iters}, {self.seeds} seeds"),
            ("measured (mean)", g(self.measured)),
            (f"CI ({'two-sided' if self.kind == 'EXACT' else 'one-sided'}, Bonferroni, {self.confidence:.0%})",
             f"[{g(self.ci_low)}, {g(self.ci_high)}]"),
            ("bound" if self.kind == "UPPER" else "formula", g(self.bound)),
            ("tightness (measured/bound)", f"{g(self.tightness)} (max over checkpoints {g(self.max_tightness)})"),
            (f"rate ({self.rate_kind})", f"empirical {g(self.rate_empirical)} [{g(lo)}, {g(hi)}]"
                                          f"  vs theory {g(self.rate_theory)}"),
            ("skewness g1", g(self.skewness)),
            ("diverged seeds", str(self.diverged)),
            ("verdict", self.verdict.upper() + (f" ({self.reason})" if self.reason else "")),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _resolve_theorem(theorem, problem, method) -> Theorem | None:
    if theorem is None:
        return select_theorem(problem, method)
    if isinstance(theorem, Theorem):
        return theorem
    return get_theorem(str(theorem))


def check(problem, method: Method, iters: int = 500, seeds: int = 256, theorem=None,
          confidence: float = 0.95, seed: int = 0, backend="numpy", device: str = "cpu",
          dtype: str = "float64", tau: float = 0.05, checkpoints=None) -> CheckResult:
    """Run ``seeds`` independent runs and judge ``theorem`` (None: the one matching the method and
    the problem's class) at every checkpoint, per THEORY.md section 7."""
    problem = resolve_problem(problem)
    confidence = check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    tau = check_range("tau", tau, 0.0, None, low_open=True)
    iters = check_range("iters", iters, 1, 10_000_000, integer=True)
    seeds = check_range("seeds", seeds, 2, 100_000_000, integer=True)
    method.validate(problem)
    th = _resolve_theorem(theorem, problem, method)
    base = dict(problem=problem.describe(), method=repr(method), seeds=seeds, iters=iters,
                confidence=confidence)
    if th is None:
        return CheckResult(theorem="none", kind="", metric="", verdict="not-applicable",
                           reason=f"no registered theorem covers {method.name} on {problem.family}", **base)
    if th.estimator is not None and th.estimator != method.spec.estimator:
        return CheckResult(theorem=th.id, kind=th.kind, metric=th.metric, verdict="not-applicable",
                           provenance=th.provenance,
                           reason=f"{th.id} is about the {th.estimator} estimator, {method.name} uses "
                                  f"{method.spec.estimator}", **base)
    reason = th.not_applicable(problem, method)
    gamma = resolve_stepsize(problem, method, th, iters)
    c = build_constants(problem, method, gamma if gamma != "polyak" else None, iters)
    if reason is None and c.lam_min <= 0:
        reason = f"lam_min^p = {c.lam_min:.3g}: assumption A3 (lam_min > 0) fails"
    if reason is None:
        reason = th.stepsize_reason(c)
    u = float(th.weight_u(c)) if th.weight_u is not None and reason is None else 0.0
    result = run(problem, method, iters=iters, seeds=seeds, seed=seed, backend=backend, device=device,
                 dtype=dtype, checkpoints=checkpoints, grad_weight_u=u, theorem=th)
    t = result.checkpoints
    if th.measure is not None:
        try:
            X = np.asarray(th.measure({**result.metrics, "t": t[None, :].astype(float)}, c), dtype=float)
        except (KeyError, AttributeError) as exc:
            raise InputError("theorem", f"{th.id} cannot be measured on this run: {exc}") from None
        result.metrics[th.metric] = X
    else:
        X = result.metric(th.metric)
    if th.skip_t0:
        X, t = X[:, t > 0], t[t > 0]
    diverged = result.diverged(th.metric)
    out = CheckResult(theorem=th.id, kind=th.kind, metric=th.metric, verdict="not-applicable",
                      provenance=th.provenance, gamma=result.gamma, lam_min=c.lam_min, lam_max=c.lam_max,
                      diverged=diverged, result=result, checkpoints=t, **base)
    out.measured = float(np.mean(X[:, -1])) if diverged == 0 else math.inf
    out.skewness = skewness(X[:, -1])
    if reason is not None:
        out.reason = reason
        return out
    try:
        bound = th.evaluate(t, c)
    except AttributeError as exc:
        raise InputError("theorem", f"{th.id}: {exc}") from None
    alpha = 1 - confidence
    if th.kind == "EXACT":
        verdict, st = exact_verdict(X, bound, alpha, numerical_slack(dtype))
        out.rate_kind = "linear, per step"
    else:
        verdict, st = upper_verdict(X, bound, alpha, tau, numerical_slack(dtype))
    out.verdict = verdict
    out.mean_curve, out.lcb_curve, out.ucb_curve, out.bound_curve = st.mean, st.lcb, st.ucb, bound
    out.bound = float(bound[-1])
    out.ci_low, out.ci_high = float(st.lcb[-1]), float(st.ucb[-1])
    with np.errstate(all="ignore"):
        ratio = st.mean / bound
    out.tightness = float(ratio[-1])
    out.max_tightness = float(np.nanmax(ratio)) if np.any(np.isfinite(ratio)) else math.nan
    if th.rate is not None:
        floor = float(th.floor(c)) if th.floor is not None else 0.0
        out.rate_empirical, out.rate_empirical_ci = fit_linear_rate(t, X, floor)
        out.rate_theory = float(th.rate(c))
        out.rate_kind = "linear, per step"
    else:
        out.rate_empirical = fit_loglog_slope(t, X)
        out.rate_theory = -1.0
        out.rate_kind = "log-log slope in T"
    if diverged:
        out.notes.append(f"{diverged} of {seeds} seeds diverged (inf/NaN); the mean is infinite")
    if not cochran_ok(out.skewness, seeds):
        out.notes.append(f"skewness {out.skewness:.2f} needs S >= 25 g1^2 = {25 * out.skewness ** 2:.0f} "
                         "seeds for trustworthy t-intervals (Cochran); add seeds")
    if verdict == "violated":
        out.notes.append("re-run with more seeds (and another master seed) before concluding")
    return out


__all__ = ["check", "CheckResult", "VERDICTS", "THEOREMS"]
