"""The batched iteration loop: all seeds advance together on a leading seed axis.

``run(problem, method, iters, seeds)`` returns a :class:`RunResult` holding metric traces of
shape (seeds, checkpoints). Metrics (DESIGN.md): ``f_gap`` f(W^t) - f* (f - f_lb when f* is
unknown), ``grad_sq`` ||grad f(W^t)||^2, ``avg_grad_sq`` (1/t) sum_{s<t} grad_sq (at t = 0 it
holds grad_sq), ``wavg_grad_sq`` the (1+u)^-(s+1)-weighted average of SGD-NC (equal to
avg_grad_sq when u = 0), ``dist_sq`` ||W^t - W*||^2 where W* is known.

The full gradient at every iterate is computed as a diagnostic (the stochastic methods do not use
it). Metrics stay on the device until the end of the run: one transfer in all.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import get_backend
from .backend.random import Streams
from .errors import InputError, check_range
from .methods import Method
from .problems import Problem, resolve_problem
from .problems.base import frob_inner
from .theorems import Constants, select_theorem

METRICS = ("f_gap", "grad_sq", "avg_grad_sq", "wavg_grad_sq", "dist_sq")


def default_checkpoints(iters: int, dense_up_to: int = 1000, n_log: int = 300) -> np.ndarray:
    """Every step up to ``dense_up_to`` iterations; otherwise about ``n_log`` log-spaced points.
    Always includes 0 and ``iters``."""
    if iters <= dense_up_to:
        return np.arange(iters + 1)
    pts = np.unique(np.round(np.geomspace(1, iters, n_log)).astype(int))
    return np.unique(np.concatenate([[0], pts, [iters]]))


@dataclass
class RunResult:
    """Metric traces of a batched run.

    Attributes
    ----------
    checkpoints : (K,) iterations at which metrics were recorded (0 and the last included)
    metrics : name -> (S, K) host arrays
    gamma, lam_min, lam_max : the stepsize used and the sketch constants
    constants : Constants handed to theorem bounds
    config : flat description of problem, method and run parameters
    """

    checkpoints: np.ndarray
    metrics: dict[str, np.ndarray]
    gamma: float
    lam_min: float
    lam_max: float
    constants: Constants
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def metric(self, name: str) -> np.ndarray:
        """(seeds, checkpoints) array of a metric."""
        if name not in self.metrics:
            raise InputError("metric", f"unknown or unrecorded metric {name!r}; recorded: "
                             f"{', '.join(self.metrics)}")
        return self.metrics[name]

    @property
    def seeds(self) -> int:
        return next(iter(self.metrics.values())).shape[0]

    def diverged(self, name: str = "f_gap") -> int:
        """Number of seeds whose metric became inf or NaN."""
        return int(np.sum(~np.all(np.isfinite(self.metric(name)), axis=1)))

    def to_frame(self):
        """Long pandas table: one row per (seed, checkpoint), metrics as columns, config as columns."""
        import pandas as pd

        S, K = self.seeds, len(self.checkpoints)
        data = {"seed": np.repeat(np.arange(S), K), "iteration": np.tile(self.checkpoints, S)}
        for name, arr in self.metrics.items():
            data[name] = arr.reshape(-1)
        frame = pd.DataFrame(data)
        for k, v in self.config.items():
            frame[k] = v if not isinstance(v, (list, dict, tuple)) else str(v)
        return frame


def build_constants(problem: Problem, method: Method, gamma=None, iters: int | None = None) -> Constants:
    """Constants for the bounds: problem's, sketch's (lam_min, lam_max), estimator's, gamma and T."""
    lam, Lam = method.lam(problem)
    c = Constants(**{**problem.constants(), **method.estimator.constants(problem)}, lam_min=lam, lam_max=Lam,
                  p=method.p, rank=method.rank, gamma=gamma, T=iters, R_M2=method.r_m_sq(problem))
    if c.get("kappa", "absent") is None:
        c.kappa = lam / Lam if Lam > 0 else 1.0                    # Polyak default kappa = lam/Lam
    return c


def resolve_stepsize(problem: Problem, method: Method, theorem=None, iters: int | None = None):
    """gamma: a number as given, ``"polyak"`` (per step), or ``factor`` times the theorem's
    recommended stepsize (``"theory"``; ``"constant"`` is its alias for the subgradient method)."""
    if not isinstance(method.stepsize, str):
        return float(method.stepsize)
    if method.stepsize == "polyak":
        if problem.f_star is None:
            raise InputError("stepsize", f"the Polyak stepsize needs f*; {problem.family} has no known f* "
                             "(use a constant stepsize)")
        return "polyak"
    theorem = theorem or select_theorem(problem, method)
    if theorem is None and method.spec.kind != "projected" and problem.smooth:
        return method.factor / problem.L                  # baselines without a theorem: 1/L
    if theorem is None:
        raise InputError("stepsize", f"no theorem covers {method.name} on {problem.family}; give a number")
    c = build_constants(problem, method, iters=iters)
    try:
        gamma = method.factor * theorem.recommended(c)
    except (AttributeError, TypeError, ZeroDivisionError) as exc:
        raise InputError("stepsize", f"{theorem.id} gives no stepsize here ({exc}); give a number") from None
    if not np.isfinite(gamma) or gamma <= 0:
        raise InputError("stepsize", f"{theorem.id} gives no positive stepsize here (lam_min = {c.lam_min:.3g}); "
                         "give a number")
    return float(gamma)


def run(problem, method: Method, iters: int = 500, seeds: int = 64, seed: int = 0,
        backend="numpy", device: str = "cpu", dtype: str = "float64", checkpoints=None,
        seed_offset: int = 0, grad_weight_u: float = 0.0, theorem=None, tf32: bool = False,
        metrics=None) -> RunResult:
    """Run ``seeds`` independent trajectories of ``method`` on ``problem`` for ``iters`` steps.

    Seed k (k = seed_offset .. seed_offset + seeds - 1) draws from its own streams derived from
    the master ``seed``, so its trajectory does not depend on how many seeds run beside it.
    ``metrics`` restricts the recorded metrics (default: all that apply to the method); the averaged
    metrics need the full gradient (or f) at every step.
    """
    problem = resolve_problem(problem)
    iters = check_range("iters", iters, 1, 10_000_000, integer=True)
    seeds = check_range("seeds", seeds, 1, 100_000_000, integer=True)
    seed = check_range("seed", seed, 0, None, integer=True)
    method.validate(problem)
    bk = get_backend(backend, device, dtype, tf32)
    xp = bk.xp
    gamma = resolve_stepsize(problem, method, theorem, iters)
    constants = build_constants(problem, method, gamma, iters)
    ck = default_checkpoints(iters) if checkpoints is None else np.unique(
        np.clip(np.asarray(checkpoints, dtype=int), 0, iters).tolist() + [0, iters])
    is_ck = np.zeros(iters + 1, dtype=bool)
    is_ck[ck] = True

    prob = problem.bind(bk)
    streams = Streams(bk, seed, np.arange(seed_offset, seed_offset + seeds))
    W = xp.asarray(xp.broadcast_to(bk.asarray(problem.W0)[None], (seeds, problem.m, problem.n)), copy=True)
    W_prev = W
    W_star = bk.asarray(problem.W_star) if problem.W_star is not None else None
    est = method.estimator
    state = est.init(prob, W, streams)
    mstate = method.init_state(prob, W, streams)
    nonsmooth = method.spec.estimator == "subgradient"
    available = list(METRICS) + (["est_error"] if est.tracks_error else []) + ["epochs", "bits"] + \
        (["avg_f_gap", "polyak_sum", "min_f_gap"] if nonsmooth else [])
    wanted = available if metrics is None else list(metrics)
    for k in wanted:
        if k not in available:
            raise InputError("metrics", f"unknown metric {k!r} for {method.name}; accepted: {', '.join(available)}")
    records: dict[str, list] = {k: [] for k in wanted if k != "dist_sq" or W_star is not None}
    need_gsq = any(k in records for k in ("grad_sq", "avg_grad_sq", "wavg_grad_sq", "polyak_sum")) or \
        gamma == "polyak"
    need_grad_every_step = est.exact or est.tracks_error or need_gsq
    need_gap_every_step = gamma == "polyak" or any(k in records for k in ("avg_f_gap", "polyak_sum", "min_f_gap"))
    zeros = bk.zeros((seeds,))
    cum = wcum = fsum = psum = zeros
    fmin = None
    wtot = 0.0
    u = float(grad_weight_u)
    kappa = constants.get("kappa") or 1.0
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        for t in range(iters + 1):
            gap = None
            if (is_ck[t] and "f_gap" in records) or need_gap_every_step:
                grad, gap = prob.grad_and_gap(W)
            else:
                grad = prob.grad(W) if need_grad_every_step or is_ck[t] else None
            gsq = frob_inner(grad, grad, xp) if grad is not None and need_gsq else None
            cost = (state.epochs, state.bits)                         # cost of reaching W^t
            G, state = est.estimate(prob, state, W, W_prev, t, streams, grad=grad)
            if gap is not None and need_gap_every_step:
                fmin = gap if fmin is None else xp.minimum(fmin, gap)
            if is_ck[t]:
                values = dict(f_gap=gap, grad_sq=gsq, epochs=cost[0], bits=cost[1], min_f_gap=fmin,
                              avg_grad_sq=(cum / t if t > 0 else gsq) if "avg_grad_sq" in records else None,
                              wavg_grad_sq=(wcum / wtot if t > 0 else gsq) if "wavg_grad_sq" in records else None,
                              avg_f_gap=(fsum / t if t > 0 else gap) if "avg_f_gap" in records else None,
                              polyak_sum=psum)
                if "est_error" in records:
                    values["est_error"] = est.error(prob, state, W, grad)
                if "dist_sq" in records:
                    D = W - W_star
                    values["dist_sq"] = frob_inner(D, D, xp)
                for name, vals in records.items():
                    v = values[name]
                    vals.append(v + zeros if not hasattr(v, "shape") or v.shape != (seeds,) else v)
            if t == iters:
                break
            if need_gsq:
                w_t = (1.0 + u) ** (-(t + 1)) if u > 0 else 1.0
                cum = cum + gsq
                wcum = wcum + w_t * gsq
                wtot += w_t
            if need_gap_every_step:
                fsum = fsum + gap
                if gsq is not None:
                    psum = psum + xp.where(gsq > 0, gap * gap / xp.where(gsq > 0, gsq, 1.0), 0.0)
            if gamma == "polyak":
                step = kappa * xp.where(gsq > 0, gap / xp.where(gsq > 0, gsq, 1.0), 0.0)
                step = step[:, None, None]
            else:
                step = gamma
            W_prev, W = W, method.step(W, G, step, t, streams, mstate)
    metrics_out = {k: bk.to_numpy(xp.stack(v, axis=1)).astype(np.float64) for k, v in records.items()}
    lyap = theorem if theorem is not None else select_theorem(problem, method)
    if lyap is not None and lyap.metric == "lyapunov" and "est_error" in metrics_out and "f_gap" in metrics_out \
            and gamma != "polyak":
        # the matching theorem's potential Phi_t = f_gap + c e_t (THEORY.md 4.4-4.6), per seed
        metrics_out["lyapunov"] = np.asarray(lyap.measure(metrics_out, constants), dtype=np.float64)
    bk.synchronize()
    seconds = time.perf_counter() - start
    config = dict(problem=problem.family, m=problem.m, n=problem.n, problem_seed=problem.seed,
                  **{f"problem_{k}": v for k, v in problem.params.items()},
                  **{k: (str(v) if k == "stepsize" else v) for k, v in method.params().items()},
                  gamma=gamma if gamma != "polyak" else float("nan"), iters=iters, master_seed=seed,
                  backend=bk.name, device=bk.device, dtype=bk.dtype)
    return RunResult(checkpoints=ck, metrics=metrics_out, gamma=gamma if gamma != "polyak" else float("nan"),
                     lam_min=constants.lam_min, lam_max=constants.lam_max, constants=constants, config=config,
                     seconds=seconds)
