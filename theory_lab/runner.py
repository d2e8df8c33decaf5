"""The batched iteration loop: all seeds advance together on a leading seed axis.

``run(problem, method, iters, seeds)`` returns a :class:`RunResult` holding metric traces of
shape (seeds, checkpoints). Metrics (docs/DESIGN.md): ``f_gap`` f(W^t) - f* (f - f_lb when f* is
unknown), ``grad_sq`` ||grad f(W^t)||^2, ``avg_grad_sq`` (1/t) sum_{s<t} grad_sq (at t = 0 it
holds grad_sq), ``wavg_grad_sq`` the (1+u)^-(s+1)-weighted average of SGD-NC (equal to
avg_grad_sq when u = 0), ``dist_sq`` ||W^t - W*||^2 where W* is known.

The full gradient at every iterate is computed as a diagnostic (the stochastic methods do not use
it). Metrics stay on the device until the end of the run: one transfer in all.
"""
from __future__ import annotations

import functools

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import capture_cuda_graph
from .backend.random import Streams
from .estimators import evolve
from .errors import BudgetExceeded, InputError
from .methods import Method
from .plan import FixedStepsize, Plan, default_checkpoints, make_plan
from .problems.base import frob_inner
from .theorems import Constants

METRICS = ("f_gap", "grad_sq", "avg_grad_sq", "wavg_grad_sq", "dist_sq")


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
    theorem: str | None = None
    #: "eager", or "cuda-graph" when plain steps were replayed from a captured CUDA graph
    engine: str = "eager"

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
        """Number of seeds whose metric became inf or NaN (``verify.diverged_mask``: the one rule)."""
        from .verify import diverged_mask

        return int(np.sum(diverged_mask(self.metric(name))))

    def to_frame(self, extra: dict | None = None):
        """Long pandas table: one row per (seed, checkpoint), metrics as columns, config as columns
        (and ``extra``: name -> a constant or a per-row array), built in one constructor call."""
        import pandas as pd

        S, K = self.seeds, len(self.checkpoints)
        data = {"seed": np.repeat(np.arange(S), K), "iteration": np.tile(self.checkpoints, S)}
        for name, arr in self.metrics.items():
            data[name] = arr.reshape(-1)
        for k, v in {**self.config, **(extra or {})}.items():
            if isinstance(v, (list, dict, tuple)):
                v = str(v)
            if isinstance(v, np.ndarray) and v.ndim == 1:
                data[k] = v                                           # per-row values
            elif isinstance(v, str):
                data[k] = repeated_strings([v], S * K)
            else:
                data[k] = np.full(S * K, v, dtype=object if v is None else None)
        return pd.DataFrame(data)


@functools.lru_cache(maxsize=1)
def _string_dtype():
    import pandas as pd

    return pd.Series(["x"]).dtype


def repeated_strings(values: list[str], n: int):
    """``values[0]`` n times, then ``values[1]`` n times, ...: a column in pandas' own string dtype
    built without converting Python objects one by one (pandas >= 3 stores strings in Arrow: one
    repeated Arrow scalar, or an Arrow dictionary decoded in one call; before, object arrays)."""
    import pandas as pd

    dtype = _string_dtype()
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return np.repeat(np.asarray(values, dtype=object), n)
    import pyarrow as pa

    if all(v == values[0] for v in values):
        arr = pa.repeat(pa.scalar(values[0], pa.large_string()), n * len(values))
    else:
        codes = pa.array(np.repeat(np.arange(len(values), dtype=np.int32), n))
        arr = pa.DictionaryArray.from_arrays(codes, pa.array(values, pa.large_string())).dictionary_decode()
    return pd.array(arr, dtype=dtype)


def run(problem, method: Method, iters: int = 500, seeds: int = 64, seed: int = 0,
        backend="numpy", device: str = "cpu", dtype: str = "float64", checkpoints=None,
        seed_offset: int = 0, theorem=None, tf32: bool = False, metrics=None) -> RunResult:
    """Run ``seeds`` independent trajectories of ``method`` on ``problem`` for ``iters`` steps.

    Seed k (k = seed_offset .. seed_offset + seeds - 1) draws from its own streams derived from
    the master ``seed``, so its trajectory does not depend on how many seeds run beside it.
    ``theorem`` (an ID or a Theorem; default: the one matching) decides the stepsize "theory" and
    the theorem's own measured quantity, recorded under its metric name exactly as ``check``
    judges it (SGD-NC's weighted average, Lyapunov functions, identities).
    ``metrics`` restricts the recorded metrics (default: all that apply to the method).
    """
    return execute(make_plan(problem, method, iters, seeds, seed, backend, device, dtype, checkpoints,
                             theorem, metrics, tf32, seed_offset))


def execute(plan: Plan, deadline: float | None = None) -> RunResult:
    """The loop of a resolved plan: all seeds advance together; metrics stay on the device until
    the end (one transfer). ``deadline``: a ``time.monotonic()`` instant after which the loop stops
    with ``errors.BudgetExceeded`` (checked every step)."""
    return execute_batch([plan], deadline)[0]


def batch_key(plan: Plan):
    """Plans with equal keys can run as one trajectory set (``execute_batch``); None: run alone.

    They must share the problem instance, backend, iterations, checkpoints, metrics, method, rank,
    sketch, which sides are sketched (p = 0, p = 1 or both) and every estimator parameter that is
    not a per-trajectory vector. p, the stepsize, SGD-NC's weight u, the master seed and the
    estimator's ``vector_params`` may differ. Per-step stepsizes (Polyak) and factor-training
    baselines (their state is not a projected step) run alone."""
    m = plan.method
    if plan.stepsize.per_step or not m.spec.rule.batchable:
        return None
    est = m.estimator
    side = "full" if not m.spec.sketched else {1.0: "left", 0.0: "right"}.get(m.p, "both")
    fixed = tuple(sorted((k, repr(v)) for k, v in est.params.items() if k not in est.vector_params))
    bk = plan.backend
    return (type(plan.problem).__name__, plan.problem.fingerprint(), bk.name, bk.device, bk.dtype,
            getattr(bk, "tf32", False), plan.iters, plan.checkpoints, plan.metrics, m.name, m.rank, m.sketch_name,
            repr(sorted(m.sketch_params.items())), side, est.name, fixed)


@dataclass(frozen=True)
class _Merged:
    """What the loop needs of a batch of plans: per-trajectory vectors where they differ, the
    common values (from the first plan) where they do not."""

    problem: Any
    method: Method
    stepsize: Any
    metrics: tuple[str, ...]
    checkpoints: tuple[int, ...]
    iters: int
    seeds: int
    weight_u: Any
    backend: Any
    streams: Streams


def _merge(plans: list[Plan]) -> _Merged:
    first = plans[0]
    bk = first.backend
    if len(plans) > 1:
        keys = {batch_key(pl) for pl in plans}
        if len(keys) != 1 or None in keys:
            raise ValueError("execute_batch: these plans cannot share one batched state (see batch_key)")
    sizes = [pl.seeds for pl in plans]

    def vector(values, ndim):
        """A per-trajectory device array (S,) or (S, 1, 1) where values differ, else the common scalar."""
        if all(v == values[0] for v in values):
            return values[0]
        arr = np.repeat(np.asarray(values, dtype=np.float64), sizes)
        return bk.asarray(arr.reshape((-1,) + (1,) * (ndim - 1)))

    method, est = first.method, first.method.estimator
    vec = {k: vector([pl.method.estimator.params[k] for pl in plans], nd) for k, nd in est.vector_params.items()
           if k in est.params}
    method = method.batched(coin_p=vector([pl.method.p for pl in plans], 1), estimator=est.batched(**vec))
    gammas = [pl.stepsize.gamma for pl in plans]
    stepsize = first.stepsize if len(plans) == 1 else FixedStepsize(vector(gammas, 3), "batched")
    weight_u = vector([pl.weight_u for pl in plans], 1)
    streams = Streams.concat([Streams(bk, pl.seed, np.arange(pl.seed_offset, pl.seed_offset + pl.seeds))
                              for pl in plans])
    return _Merged(problem=first.problem, method=method, stepsize=stepsize, metrics=first.metrics,
                   checkpoints=first.checkpoints, iters=first.iters, seeds=sum(sizes), weight_u=weight_u,
                   backend=bk, streams=streams)


def execute_batch(plans: list[Plan], deadline: float | None = None) -> list[RunResult]:
    """Run plans that share a ``batch_key`` as one trajectory set: seeds x configurations on the
    leading axis, with p, the stepsize, SGD-NC's weight and the estimator's vector parameters as
    per-trajectory values. Each trajectory draws from the streams of its own plan's (master seed,
    seed index), so its numbers are those of the plan run alone. Returns one RunResult per plan."""
    if not plans:
        return []
    mg = _merge(list(plans))
    bk, xp, S = mg.backend, mg.backend.xp, mg.seeds
    prob, method, est = mg.problem.bind(bk), mg.method, mg.method.estimator
    rule, streams = method.spec.rule, mg.streams
    ck = np.asarray(mg.checkpoints)
    is_ck = np.zeros(mg.iters + 1, dtype=bool)
    is_ck[ck] = True
    W = xp.asarray(xp.broadcast_to(bk.asarray(prob.W0)[None], (S, prob.m, prob.n)), copy=True)
    W_prev = W
    W_star = bk.asarray(prob.W_star) if prob.W_star is not None else None
    state, rule_state = est.init(prob, W, streams), rule.init(method, W, streams)
    acc = _Accumulators(mg, bk)
    graph = _StepGraph.build(mg, prob, method, acc, is_ck)
    start = time.perf_counter()
    with np.errstate(all="ignore"), bk.context():
        for t in range(mg.iters + 1):
            if deadline is not None and time.monotonic() > deadline:
                raise BudgetExceeded(f"the time budget ran out at step {t} of {mg.iters}")
            if graph is not None and graph.covers(t):
                W = graph.replay(t, W, acc)                # grad, accumulators, step: one launch
                state = evolve(state, epochs=state.epochs + 1.0)
                continue
            grad, gap = acc.evaluate(prob, W, t, is_ck[t], est)
            cost = (state.epochs, state.bits)                         # cost of reaching W^t
            G, state = est.estimate(prob, state, W, W_prev, t, streams, grad=grad)
            if is_ck[t]:
                acc.record(t, gap, cost, lambda: est.error(prob, state, W, grad),
                           lambda: _sq_norm(W - W_star if acc.diff is None else acc.diff, xp))
            if t == mg.iters:
                break
            gamma = mg.stepsize(gap, acc.gsq, xp)
            acc.accumulate(t, gap)
            W_prev, (W, rule_state) = W, rule.step(method, W, G, gamma, t, streams, rule_state)
            if graph is not None:
                W = graph.adopt(t + 1, W, acc)
        bk.synchronize()
    out = acc.finish()
    seconds = time.perf_counter() - start
    results, off = [], 0
    for plan in plans:
        mine = {k: v[off:off + plan.seeds] for k, v in out.items()}
        results.append(_result(plan, mine, ck, seconds * plan.seeds / S))
        results[-1].engine = "cuda-graph" if graph is not None else "eager"
        off += plan.seeds
    return results


def _sq_norm(D, xp):
    """||D_s||_F^2 for every seed (D formed once)."""
    return frob_inner(D, D, xp)


class _StepGraph:
    """One plain step (no checkpoint) captured as a CUDA graph: the gradient, its squared norm into
    the running sums, the sketch draws (the step number lives on the device) and the projected
    update, replayed with one launch instead of about 60 (a step at m = n = 64 is launch-bound).

    Used on CUDA for the exact-gradient methods with a constant stepsize, no per-step value and no
    rule state (Bernoulli-LoRA-GD, RAC-LoRA, GD: E1 at the paper's size); checkpoint steps run the
    eager code on the same buffers. If capturing fails (an operation that syncs with the host, an
    old driver), the run stays eager. ``THEORY_LAB_CUDA_GRAPHS=0`` turns it off."""

    def __init__(self, graph, W, cum, wcum, t_dev, is_ck, iters):
        self.graph, self.W, self.cum, self.wcum, self.t_dev = graph, W, cum, wcum, t_dev
        self.is_ck, self.iters = is_ck, iters

    @classmethod
    def build(cls, mg, prob, method, acc, is_ck):
        import os

        bk, est = mg.backend, method.estimator
        if not (bk.name == "torch" and bk.device == "cuda" and os.environ.get("THEORY_LAB_CUDA_GRAPHS", "1") != "0"
                and est.graphable and method.spec.rule.graphable
                and not mg.stepsize.per_step and np.isscalar(mg.weight_u) and mg.weight_u == 0
                and not acc.need_gap and mg.iters >= 20 and (~is_ck).sum() >= 10):
            return None
        import torch

        xp, streams, rule = bk.xp, mg.streams, method.spec.rule
        S = mg.seeds
        W = xp.asarray(xp.broadcast_to(bk.asarray(prob.W0)[None], (S, prob.m, prob.n)), copy=True)
        cum, wcum = bk.zeros((S,)), bk.zeros((S,))
        t_dev = torch.zeros((), dtype=torch.int64, device="cuda")
        gamma = mg.stepsize(None, None, xp)

        def body():
            grad = prob.grad(W)
            if acc.need_gsq:
                gsq = frob_inner(grad, grad, xp)
                cum.add_(gsq)
                wcum.add_(gsq)                      # weight u = 0: every w_t is 1
            W_new, _ = rule.step(method, W, grad, gamma, t_dev, streams, None)
            W.copy_(W_new)
            t_dev.add_(1)

        try:
            graph = capture_cuda_graph(body, bk)
        except Exception as exc:                          # capture not possible here: stay eager
            import warnings

            warnings.warn(f"theory-lab: CUDA graph capture failed ({type(exc).__name__}: {exc}); running eager",
                          RuntimeWarning, stacklevel=3)
            torch.cuda.synchronize()
            return None
        return cls(graph, W, cum, wcum, t_dev, is_ck, mg.iters)

    def covers(self, t: int) -> bool:
        """Step t (from W^t to W^{t+1}) is a plain one: no record at t, not the last."""
        return t < self.iters and not self.is_ck[t]

    def replay(self, t: int, W, acc):
        if W is not self.W:
            self.adopt(t, W, acc)
        self.graph.replay()                         # advances the device step counter itself
        if acc.need_gsq:
            acc.wtot += 1.0
        acc.gsq = None
        return self.W

    def adopt(self, t: int, W, acc):
        """Take over the eager code's W^t and running sums into the graph's buffers."""
        if W is not self.W:
            self.W.copy_(W)
        if acc.need_gsq:
            for name, buf in (("cum", self.cum), ("wcum", self.wcum)):
                if getattr(acc, name) is not buf:
                    buf.copy_(getattr(acc, name))
                    setattr(acc, name, buf)
        self.t_dev.fill_(t)
        return self.W


def _result(plan: Plan, out: dict, ck: np.ndarray, seconds: float) -> RunResult:
    th = plan.theorem
    if th is not None and th.measure is not None and th.metric not in out:
        try:
            out[th.metric] = np.asarray(th.measure({**out, "t": ck[None, :].astype(float)}, plan.constants), float)
        except (KeyError, AttributeError, TypeError):
            pass                      # not measurable on this run (a Polyak step has no gamma, ...)
    return RunResult(checkpoints=ck, metrics=out, gamma=plan.gamma, lam_min=plan.constants.lam_min,
                     lam_max=plan.constants.lam_max, constants=plan.constants, config=plan.config(),
                     seconds=seconds, theorem=th.id if th is not None else None)


class _Accumulators:
    """The running sums behind the averaged metrics and the per-checkpoint records of one run."""

    def __init__(self, plan: Plan, bk):
        self.plan, self.bk, self.xp = plan, bk, bk.xp
        self.records: dict[str, list] = {k: [] for k in plan.metrics}
        rec = self.records
        self.need_gsq = plan.stepsize.per_step or any(
            k in rec for k in ("grad_sq", "avg_grad_sq", "wavg_grad_sq", "polyak_sum"))
        self.need_gap = plan.stepsize.per_step or any(k in rec for k in ("avg_f_gap", "polyak_sum", "min_f_gap"))
        self.zeros = bk.zeros((plan.seeds,))
        self.cum = self.wcum = self.fsum = self.psum = self.zeros
        self.fmin, self.gsq, self.wtot = None, None, 0.0
        self.diff = None                 # W - W* at the last evaluation, where the problem formed it

    def evaluate(self, prob, W, t, at_ck, est):
        """(grad, gap) at W^t where needed (the gradient doubles as G for exact estimators)."""
        self.diff = None
        if (at_ck and "f_gap" in self.records) or self.need_gap:
            grad, gap, self.diff = prob.grad_gap_diff(W)
        else:
            need = est.exact or est.tracks_error or self.need_gsq or at_ck
            grad, gap = (prob.grad(W) if need else None), None
        self.gsq = frob_inner(grad, grad, self.xp) if grad is not None and self.need_gsq else None
        if gap is not None and self.need_gap:
            self.fmin = gap if self.fmin is None else self.xp.minimum(self.fmin, gap)
        return grad, gap

    def record(self, t, gap, cost, est_error, dist_sq):
        gsq, rec = self.gsq, self.records
        values = dict(f_gap=gap, grad_sq=gsq, epochs=cost[0], bits=cost[1], min_f_gap=self.fmin,
                      avg_grad_sq=(self.cum / t if t > 0 else gsq) if "avg_grad_sq" in rec else None,
                      wavg_grad_sq=(self.wcum / self.wtot if t > 0 else gsq) if "wavg_grad_sq" in rec else None,
                      avg_f_gap=(self.fsum / t if t > 0 else gap) if "avg_f_gap" in rec else None,
                      polyak_sum=self.psum)
        for name, vals in rec.items():
            v = values[name] if name in values else (est_error() if name == "est_error" else dist_sq())
            vals.append(v + self.zeros if not hasattr(v, "shape") or tuple(v.shape) != (self.plan.seeds,) else v)

    def accumulate(self, t, gap):
        xp, gsq, u = self.xp, self.gsq, self.plan.weight_u
        if self.need_gsq:
            w_t = (1.0 + u) ** (-(t + 1)) if not np.isscalar(u) or u > 0 else 1.0   # u: per trajectory on the device
            self.cum = self.cum + gsq
            self.wcum = self.wcum + w_t * gsq
            self.wtot += w_t
        if self.need_gap:
            self.fsum = self.fsum + gap
            if gsq is not None:
                self.psum = self.psum + xp.where(gsq > 0, gap * gap / xp.where(gsq > 0, gsq, 1.0), 0.0)

    def finish(self) -> dict[str, np.ndarray]:
        xp = self.xp
        return {k: self.bk.to_numpy(xp.stack(v, axis=1)).astype(np.float64) for k, v in self.records.items()}


__all__ = ["run", "execute", "execute_batch", "batch_key", "RunResult", "default_checkpoints", "METRICS"]
