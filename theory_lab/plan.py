"""The run plan: everything about a run resolved once, before the loop starts.

``make_plan(problem, method, ...)`` resolves, in this order and exactly once:

1. the problem (a family name, a TOML file or a Problem) and the run size (iters, seeds, seed);
2. the method bound to the problem (``Method.bind``: rank checked, estimator defaults filled in;
   the user's Method is left untouched, so it can be reused on any problem);
3. the theorem (an ID, a ``Theorem``, or the one matching the method and the problem's class);
4. the constants handed to bounds (problem's, sketch's lambda, estimator's) and the stepsize rule
   (``FixedStepsize``: a number or the theorem's recommendation times ``factor``;
   ``PolyakStepsize``: per step from f - f* and ||g||^2);
5. why the theorem does not apply, if it does not (assumptions, lambda_min > 0, stepsize
   condition), the metrics to record and the weight u of SGD-NC's weighted average;
6. a memory estimate, refused up front when it exceeds what the machine (or GPU) has.

The resulting :class:`Plan` is immutable; ``runner.execute(plan)`` is only the loop and
``check`` is ``execute`` followed by the verification of docs/THEORY.md section 7.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Backend, get_backend, host_available_bytes
from .errors import InputError, check_range
from .methods import Method
from .problems import Problem, resolve_problem
from .theorems import Constants, Theorem, resolve_theorem, select_theorem

MAX_SEED = 2 ** 64 - 1
RUN_METRICS = ("f_gap", "grad_sq", "avg_grad_sq", "wavg_grad_sq", "dist_sq")
NONSMOOTH_METRICS = ("avg_f_gap", "polyak_sum", "min_f_gap")
COST_METRICS = ("epochs", "bits")


@dataclass(frozen=True)
class FixedStepsize:
    """gamma for every step and seed; ``source`` says where it came from."""

    gamma: float
    source: str = "given"
    per_step: bool = False

    def __call__(self, gap, gsq, xp):
        return self.gamma


@dataclass(frozen=True)
class PolyakStepsize:
    """gamma_t = kappa (f(W^t) - f*) / ||g^t||^2 per seed (docs/THEORY.md 4.7); 0 where g = 0."""

    kappa: float
    source: str = "polyak"
    per_step: bool = True
    gamma: float = math.nan

    def __call__(self, gap, gsq, xp):
        return (self.kappa * xp.where(gsq > 0, gap / xp.where(gsq > 0, gsq, 1.0), 0.0))[:, None, None]


@dataclass(frozen=True)
class Plan:
    """A fully resolved run (see the module docstring). Build it with :func:`make_plan`."""

    problem: Problem
    method: Method                      # bound to ``problem``
    theorem: Theorem | None
    stepsize: FixedStepsize | PolyakStepsize
    constants: Constants
    metrics: tuple[str, ...]
    iters: int
    seeds: int
    seed: int
    backend: Backend
    checkpoints: tuple[int, ...]
    seed_offset: int = 0
    weight_u: float = 0.0
    reason: str | None = None           # why the theorem does not apply (None: it does)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def gamma(self) -> float:
        """The constant stepsize (NaN under the Polyak rule)."""
        return self.stepsize.gamma

    def config(self) -> dict[str, Any]:
        """Flat description of problem, method and run (the columns of a result table)."""
        pr = self.problem
        return dict(problem=pr.family, m=pr.m, n=pr.n, problem_seed=pr.seed,
                    **{f"problem_{k}": v for k, v in pr.params.items()},
                    **{k: (str(v) if k == "stepsize" else v) for k, v in self.method.params().items()},
                    gamma=self.gamma, iters=self.iters, master_seed=self.seed, backend=self.backend.name,
                    device=self.backend.device, dtype=self.backend.dtype)


def default_checkpoints(iters: int, dense_up_to: int = 1000, n_log: int = 300) -> np.ndarray:
    """Every step up to ``dense_up_to`` iterations; otherwise about ``n_log`` log-spaced points.
    Always includes 0 and ``iters``."""
    if iters <= dense_up_to:
        return np.arange(iters + 1)
    pts = np.unique(np.round(np.geomspace(1, iters, n_log)).astype(int))
    return np.unique(np.concatenate([[0], pts, [iters]]))


def make_plan(problem, method: Method, iters: int = 500, seeds: int = 64, seed: int = 0,
              backend="numpy", device: str = "cpu", dtype: str = "float64", checkpoints=None,
              theorem=None, metrics=None, tf32: bool = False, seed_offset: int = 0,
              min_seeds: int = 1) -> Plan:
    """Resolve a run once (module docstring); raises InputError naming the field on bad input."""
    if not isinstance(method, Method):
        raise InputError("method", f"expected a theory_lab.Method, got {type(method).__name__}")
    iters = check_range("iters", iters, 1, 10_000_000, integer=True)
    seeds = check_range("seeds", seeds, min_seeds, 100_000_000, integer=True)
    seed = check_range("seed", seed, 0, MAX_SEED, integer=True)
    seed_offset = check_range("seed_offset", seed_offset, 0, MAX_SEED, integer=True)
    bk = get_backend(backend, device, dtype, tf32)
    problem, claims, notes = _certified(resolve_problem(problem))
    bound = method.bind(problem)
    th = resolve_theorem(theorem)
    reason = None
    if th is None and theorem is None:
        th = select_theorem(problem, bound)
    if th is not None and th.estimator is not None and th.estimator != bound.spec.estimator:
        reason = f"{th.id} is about the {th.estimator} estimator, {bound.name} uses {bound.spec.estimator}"
    reason = claims or reason
    conservative = th is None or th.kind == "UPPER"
    base = _constants(problem, bound, iters, conservative)
    try:
        stepsize = _stepsize(problem, bound, th, base)
    except InputError:
        why = reason or (th.not_applicable(problem, bound) if th is not None else None)
        if why is None or not isinstance(method.stepsize, str) or method.stepsize != "theory":
            raise
        raise InputError("stepsize", f"'theory' is {th.id}'s stepsize, and {th.id} does not apply here ({why}); "
                         "give a number, or another theorem") from None
    c = base.replace(gamma=None if stepsize.per_step else stepsize.gamma)
    if reason is None and th is not None:
        reason = th.not_applicable(problem, bound)
        if reason is None and c.lam_min <= 0:
            reason = f"lam_min^p = {c.lam_min:.3g}: assumption A3 (lam_min > 0) fails"
        if reason is None and not stepsize.per_step:
            try:
                reason = th.stepsize_reason(c)
            except (TypeError, ZeroDivisionError, AttributeError) as exc:   # a constant it needs is unknown
                from .theorems import unknown_constants

                missing = unknown_constants(th.condition or th.max_stepsize, c)
                reason = (f"{th.id}'s stepsize condition needs {', '.join(missing)}, which this problem does not give"
                          if missing else f"{th.id}'s stepsize condition cannot be evaluated here "
                          f"({type(exc).__name__}: {exc})")
    u = float(th.weight_u(c)) if th is not None and th.weight_u is not None and reason is None else 0.0
    ck = default_checkpoints(iters) if checkpoints is None else np.unique(
        np.clip(np.asarray(checkpoints, dtype=int), 0, iters).tolist() + [0, iters])
    plan = Plan(problem=problem, method=bound, theorem=th, stepsize=stepsize, constants=c,
                metrics=_metrics(problem, bound, metrics), iters=iters, seeds=seeds, seed=seed, backend=bk,
                checkpoints=tuple(int(k) for k in ck), seed_offset=seed_offset, weight_u=u, reason=reason,
                notes=tuple(notes))
    check_memory(plan)
    return plan


def _certified(problem: Problem):
    """A user's problem is certified once (``tl.certify``): a refuted claim makes every theorem
    not-applicable; an undeclared L is replaced by its sampled estimate, with a note saying so.
    Built-in families carry derived constants and pass through."""
    from .custom import CustomProblem, certify

    if not isinstance(problem, CustomProblem):
        return problem, None, []
    cert = problem.__dict__.get("_certificate")
    if cert is None:
        cert = problem.__dict__["_certificate"] = certify(problem)
    if cert.refuted:
        return problem, "; ".join(f"{k} claim refuted by certify: {cert.detail[k]}" for k in cert.refuted), []
    notes, values = [], {}
    for claim, status in cert.status.items():            # every claim the verdict rests on unproven
        if status == "uncertain":
            notes.append(f"the {claim} claim is UNCERTAIN (tl.certify: {cert.detail[claim]}); "
                         "this verdict rests on it")
    if problem.L is None and math.isfinite(cert.L_estimate):
        values["L"] = cert.L_estimate
        notes.append(f"L was not declared: this verdict rests on a SAMPLED lower estimate L = {cert.L_estimate:.6g} "
                     "(tl.certify); declare a proven L for a verdict that does not")
    if problem.is_finite_sum and problem.L_max is None and math.isfinite(cert.L_max_estimate):
        values["L_max"] = cert.L_max_estimate
        notes.append(f"L_max was not declared: this verdict rests on a SAMPLED lower estimate L_max = "
                     f"{cert.L_max_estimate:.6g} (tl.certify); declare a proven L_max for a verdict that does not")
    lower = getattr(problem, "f_i_lower", None)
    if problem.is_finite_sum and problem.delta_inf is None and lower is not None:
        f_inf = problem.f_star if problem.f_star is not None else cert.f_star_estimate
        if math.isfinite(f_inf):
            values["delta_inf"] = max(f_inf - lower, 0.0)
            if problem.f_star is None:
                notes.append(f"delta_inf = f* - f_i_lower uses the best value L-BFGS found for f* ({f_inf:.6g})")
    if problem.is_finite_sum and problem.L_pm is None:
        notes.append("L_pm is not declared (finite_sum['L_pm']): bounds that need it (PAGE, MVR with minibatches) "
                     "cannot be evaluated")
    if problem.is_finite_sum and problem.delta_inf is None and "delta_inf" not in values:
        notes.append("delta_inf is unknown (declare finite_sum['delta_inf'], or 'f_i_lower', a lower bound of every "
                     "summand): bounds that need it (SGD with minibatches) cannot be evaluated")
    if values:
        problem = problem.with_constants(**values, _certificate=cert)
    return problem, None, notes


def _constants(problem: Problem, method: Method, iters: int, conservative: bool) -> Constants:
    """Problem's, sketch's (lam_min, lam_max; conservative for UPPER bounds, point values with
    their Monte Carlo error ``lam_err`` for equalities) and the estimator's constants."""
    lam, Lam, err = method.spec.rule.lam(method, problem)
    if conservative:
        lam, Lam, err = max(lam - err, 0.0), min(Lam + err, 1.0), 0.0
    try:
        values = {**problem.constants(), **method.estimator.constants(problem)}
    except (OverflowError, FloatingPointError) as exc:
        raise InputError("method", f"a constant of {method.name} on {problem.describe()} overflows float64 ({exc}); "
                         "use smaller parameters") from None
    if "kappa" in values and values["kappa"] is None:
        values["kappa"] = lam / Lam if Lam > 0 else 1.0            # Polyak default kappa = lam/Lam
    return Constants(**values, lam_min=lam, lam_max=Lam, lam_err=err, p=method.p, rank=method.rank,
                     gamma=None, T=iters, R_M2=method.r_m_sq(problem))


def _stepsize(problem: Problem, method: Method, theorem: Theorem | None, c: Constants):
    """The stepsize rule: a number as given, Polyak, or ``factor`` x the theorem's recommendation
    (``"theory"``); the factor-training baselines without a theorem use ``factor`` x their own
    default (:func:`theory_lab.baselines.default_stepsize`)."""
    if not isinstance(method.stepsize, str):
        return FixedStepsize(float(method.stepsize))
    if "polyak" in method.capabilities:
        if problem.f_star is None:
            raise InputError("stepsize", f"the Polyak stepsize needs f*; {problem.describe()} has no known f* "
                             "(use a constant stepsize)")
        return PolyakStepsize(float(c.kappa))
    if theorem is None and not method.spec.rule.theory and problem.smooth:
        from .baselines import default_stepsize

        return FixedStepsize(method.factor * default_stepsize(problem, method), "baseline default")
    if theorem is None:
        raise InputError("stepsize", f"no theorem covers {method.name} on {problem.describe()}; give a number")
    try:
        gamma = method.factor * theorem.recommended(c)
    except (AttributeError, TypeError, ZeroDivisionError) as exc:
        from .theorems import unknown_constants

        missing = unknown_constants(theorem.recommended_stepsize or theorem.max_stepsize, c)
        why = (f"it needs {', '.join(missing)}, which {problem.describe()} does not give" if missing
               else f"{type(exc).__name__}: {exc}")
        raise InputError("stepsize", f"{theorem.id} gives no stepsize here ({why}); give a number") from None
    if not np.isfinite(gamma) or gamma <= 0:
        raise InputError("stepsize", f"{theorem.id} gives no positive stepsize here (lam_min = {c.lam_min:.3g}); "
                         "give a number")
    return FixedStepsize(float(gamma), f"{theorem.id} x {method.factor:g}")


def available_metrics(problem: Problem, method: Method) -> tuple[str, ...]:
    extra = ("est_error",) if method.estimator.tracks_error else ()
    ns = NONSMOOTH_METRICS if "subgradient" in method.capabilities else ()
    return RUN_METRICS + extra + COST_METRICS + ns


def _metrics(problem: Problem, method: Method, wanted) -> tuple[str, ...]:
    available = available_metrics(problem, method)
    wanted = available if wanted is None else tuple(wanted)
    for k in wanted:
        if k not in available:
            raise InputError("metrics", f"unknown metric {k!r} for {method.name}; accepted: {', '.join(available)}")
    return tuple(k for k in wanted if k != "dist_sq" or problem.W_star is not None)


# ------------------------------------------------------------------------------ memory
#: a sweep's peak over its long table's size, measured (tests/test_hardening.py): the table, its Arrow
#: copy while the part is written, and the consolidated table read back and written again
TABLE_PEAK_FACTOR = 3.5


def estimate_bytes(plan: Plan, table_columns: int | None = None) -> int:
    """Peak bytes of a run, from what it holds: about 10 arrays of S x m x n (iterates, estimate,
    gradient, estimator state, temporaries), minibatch gathers of S x b x mn for finite sums, clients'
    S x M x m x n, the metric traces (S x K each) and the verdict's working arrays (about 10 of
    S x K). ``table_columns``: the run is a sweep configuration whose long table (S x K rows, the
    plan's columns plus that many grid columns) is built and stored: ``TABLE_PEAK_FACTOR`` x its size
    is added."""
    S, m, n = plan.seeds, plan.problem.m, plan.problem.n
    K = len(plan.checkpoints)
    width = 8 if plan.backend.dtype == "float64" else 4
    est = plan.method.estimator.params
    batch = int(est.get("batch") or 1) if plan.problem.is_finite_sum else 0
    clients = plan.problem.clients if plan.method.estimator.uses_clients else 1
    per_seed = (10 + 2 * batch + 4 * clients) * m * n * width + 8 * K * (len(plan.metrics) + 10)
    need = S * per_seed
    if table_columns is not None:
        need += int(TABLE_PEAK_FACTOR * S * K * table_row_bytes(plan, table_columns))
    return int(need)


def table_row_bytes(plan: Plan, grid_columns: int = 0) -> int:
    """Bytes of one row of a sweep's long table: 8 per number (seed, iteration, metrics, the
    configuration's numeric columns, and the per-configuration numbers), 8 + length per text (Arrow strings:
    an offset and the characters), 24 per grid column (a number or a short word)."""
    text = lambda v: 8 + len(v.encode()) if isinstance(v, str) else 8        # noqa: E731
    fixed = sum(text(v) for v in plan.config().values())
    theorem = plan.theorem.id if plan.theorem is not None else ""
    # numbers: bound, lam_min, diverged, lam_max, lam_bar, rate_theory, mu; the reason's offset (its
    # text is on the configuration's first row only)
    return 8 * (2 + len(plan.metrics)) + fixed + 8 * 7 + 8 + text(theorem) + text("not-applicable") \
        + text("0" * 16) + 24 * grid_columns


def available_bytes(backend: Backend) -> int | None:
    """Free memory where the run's arrays live (device memory on CUDA), None when unknown."""
    if backend.name == "torch" and backend.device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    return host_available_bytes()


def check_memory(plan: Plan) -> None:
    need, have = estimate_bytes(plan), available_bytes(plan.backend)
    if have is not None and need > have:
        raise InputError("seeds", f"this run needs about {need / 2**30:.1f} GiB "
                         f"({plan.seeds} seeds x {plan.problem.m} x {plan.problem.n}); "
                         f"{have / 2**30:.1f} GiB available on {plan.backend.device}: use fewer seeds or a smaller problem")


__all__ = ["Plan", "make_plan", "FixedStepsize", "PolyakStepsize", "default_checkpoints", "estimate_bytes",
           "table_row_bytes"]
