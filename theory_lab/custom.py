"""Bring your own objective: ``custom_problem`` and ``certify``.

``custom_problem(f, grad=None, shape=(m, n), W0=None, L=None, mu=None, f_star=None, name="custom")``
wraps a function ``f`` mapping a batch W of shape (S, m, n) to (S,), written with numpy or torch
(detected by calling it). Without ``grad`` torch autograd supplies the gradient (a numpy ``f``
needs ``grad``). The result is a ``Problem`` usable by ``run``, ``check`` and sweeps run in-process.

``certify(problem, seed=0)`` checks the claims a verdict rests on, for built-in and custom problems:

* ``gradient``: central finite differences (step eps^(1/3) scale) of f along random unit directions
  against <grad f, D> at sampled points, and the first-order consistency f(W + tD) - f(W) ~ t <g, D>;
* ``L``: a lower estimate of the smoothness constant, the largest of (i) the top eigenvalue magnitude of
  the Hessian at sampled points (Lanczos, ``scipy.sparse.linalg.eigsh``, on Hessian-vector products
  formed from gradient differences) and (ii) secant ratios ||grad X - grad Y|| / ||X - Y||; a declared L
  below it is refuted;
* ``mu``: the PL ratio ||grad f||^2 / (2 (f - f*)) sampled along GD paths and at random points; a
  declared mu above its smallest value is refuted;
* ``f_star``: L-BFGS from several starts; a declared f* above the best value found is refuted.

Each claim gets ``ok | refuted | uncertain | estimated``; ``Certificate.table()`` and ``to_dict()``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import InputError, check_range
from .problems.base import Problem, freeze_arrays

STATUSES = ("ok", "refuted", "uncertain", "estimated")


class CustomProblem(Problem):
    """A user objective (see module docstring). Constants not declared are None until estimated."""

    family = "custom"

    def __init__(self, f: Callable, grad: Callable | None = None, shape=(2, 2), W0=None, L=None, mu=None,
                 f_star=None, name: str = "custom", W_star=None, finite_sum=None):
        if not callable(f):
            raise InputError("f", "expected a function mapping W (S, m, n) to (S,)")
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
            raise InputError("shape", f"expected (m, n), got {shape!r}")
        self.m = check_range("shape[0]", shape[0], 1, 100_000, integer=True)
        self.n = check_range("shape[1]", shape[1], 1, 100_000, integer=True)
        self.name, self.seed, self.params, self.clients = str(name), 0, {"name": str(name)}, 1
        self.W0 = np.zeros((self.m, self.n)) if W0 is None else np.array(W0, dtype=np.float64)
        if self.W0.shape != (self.m, self.n) or not np.all(np.isfinite(self.W0)):
            raise InputError("W0", f"expected a finite array of shape {(self.m, self.n)}")
        self.W_star = None if W_star is None else np.array(W_star, dtype=np.float64)
        self.L = None if L is None else check_range("L", L, 0.0, None, low_open=True)
        self.mu = None if mu is None else check_range("mu", mu, 0.0, None, low_open=True)
        self.f_star = None if f_star is None else check_range("f_star", f_star)
        self.f_lb = self.f_star if self.f_star is not None else -math.inf
        self.n_samples = None
        self.L_i = self.L_max = self.L_tilde = self.L_pm = self.delta_inf = self.L_0 = None
        self.shards = None
        self.client_L = self.client_L_max = self.client_L_tilde = self.client_delta_inf = None
        self.bk, self.dev, self.dev_int = None, {}, {}
        self._f, self._grad = f, grad
        self.kind = _detect(f, self.m, self.n)
        if grad is None and self.kind == "numpy":
            raise InputError("grad", "a numpy objective needs grad=...; write f with torch to get its gradient "
                             "from autograd")
        self.notes: list[str] = []
        self._f_i = self._grad_i = None
        self.grad(np.zeros((2, self.m, self.n)))           # a wrong shape or a raising grad: one line now
        if finite_sum is not None:
            self._finite_sum(finite_sum)
        freeze_arrays(self)                 # W0, W* (own copies) read-only: the fingerprint stays true

    FINITE_SUM_KEYS = ("f_i", "n", "grad_i", "L_max", "L_pm", "delta_inf", "f_i_lower")

    def _finite_sum(self, spec) -> None:
        """f = (1/N) sum_i f_i: ``f_i(W, idx)`` maps W (S, m, n) and sample indices idx (S, b) to the
        summands' values (S, b); ``grad_i(W, idx)`` (optional with torch) their gradients (S, b, m, n).
        Optional constants: ``L_max`` (max_i L_i), ``L_pm``, ``delta_inf`` (f^inf - mean_i f_i^inf), or
        ``f_i_lower`` (a lower bound of every summand, giving delta_inf <= f^inf - f_i_lower)."""
        if not isinstance(spec, dict):
            raise InputError("finite_sum", "expected a dict with f_i (W, idx) -> (S, b) and n (the number of "
                             f"summands); accepted keys: {', '.join(self.FINITE_SUM_KEYS)}")
        unknown = set(spec) - set(self.FINITE_SUM_KEYS)
        if unknown:
            raise InputError(f"finite_sum.{sorted(unknown)[0]}", f"unknown key; accepted: {', '.join(self.FINITE_SUM_KEYS)}")
        for key in ("f_i", "n"):
            if key not in spec:
                raise InputError(f"finite_sum.{key}", "missing: f_i (W, idx) -> (S, b) and n are required")
        if not callable(spec["f_i"]) or (spec.get("grad_i") is not None and not callable(spec["grad_i"])):
            raise InputError("finite_sum.f_i", "f_i and grad_i must be functions of (W, idx)")
        self.n_samples = check_range("finite_sum.n", spec["n"], 1, 10 ** 9, integer=True)
        self._f_i, self._grad_i = spec["f_i"], spec.get("grad_i")
        if self._grad_i is None and self.kind == "numpy":
            raise InputError("finite_sum.grad_i", "a numpy finite sum needs grad_i=...; write f_i with torch to "
                             "get per-sample gradients from autograd")
        for key in ("L_max", "L_pm"):
            if spec.get(key) is not None:
                setattr(self, key, check_range(f"finite_sum.{key}", spec[key], 0.0, None))
        if spec.get("delta_inf") is not None:
            self.delta_inf = check_range("finite_sum.delta_inf", spec["delta_inf"], 0.0, None)
        self.f_i_lower = None if spec.get("f_i_lower") is None else check_range("finite_sum.f_i_lower",
                                                                                spec["f_i_lower"])
        idx = np.zeros((2, 1), dtype=np.int64)
        try:
            out = self.bind("numpy").sample_values(np.zeros((2, self.m, self.n)), idx)
        except InputError:
            raise
        except Exception as exc:
            raise InputError("finite_sum.f_i", f"f_i fails on W (2, {self.m}, {self.n}), idx (2, 1): {exc}") from None
        if np.shape(out) != (2, 1):
            raise InputError("finite_sum.f_i", f"must map W (S, m, n), idx (S, b) to (S, b); got shape "
                             f"{np.shape(out)} for S = 2, b = 1")

    def describe(self) -> str:
        return f"custom {self.name!r} (m={self.m}, n={self.n}, {self.kind})"

    def fingerprint(self) -> str:
        """Everything that changes this objective's numbers: f, grad, f_i and grad_i (by code,
        captured values and the globals they read, ``fingerprint.callable_fingerprint``) and their
        values at three points, W0, W*, and every declared constant. A fixed gradient or a changed
        constant never reuses stored results."""
        from .fingerprint import value_fingerprint

        pts = np.random.default_rng(0).standard_normal((3, self.m, self.n)) + self.W0
        pr = self.bind("numpy")
        with np.errstate(all="ignore"):
            vals, grads = pr.value(pts), pr.grad(pts)
        consts = {k: getattr(self, k, None) for k in ("L", "mu", "f_star", "n_samples", "L_max", "L_pm",
                                                      "delta_inf", "f_i_lower", "kind")}
        return value_fingerprint(self.name, self.m, self.n, consts, self.W0, self.W_star, vals, grads,
                                 self._f, self._grad, self._f_i, self._grad_i)

    def with_constants(self, **values) -> "CustomProblem":
        """A copy with constants set (the estimated L, say)."""
        new = object.__new__(CustomProblem)
        new.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_bound"})
        new.__dict__.update(values)
        new.bk, new.dev = None, {}
        return new

    # ------------------------------------------------------------------ evaluation
    def value(self, W):
        return self._user("f", lambda: self._call(self._f, W), (W.shape[0],))

    def grad(self, W):
        if self._grad is not None:
            return self._user("grad", lambda: self._call(self._grad, W), tuple(W.shape))
        return self._user("grad (autograd of f)", lambda: self._autograd(lambda Wt: self._f(Wt).sum(), W),
                          tuple(W.shape))

    def grad_and_gap(self, W):
        """(grad f(W), f_gap(W)). A torch objective without ``grad``: one forward pass gives both (the
        value kept from autograd's forward), instead of one for f and another inside autograd."""
        if self._grad is not None or self.kind != "torch":
            return super().grad_and_gap(W)
        G, val = self._user("grad (autograd of f)", lambda: self._grad_and_value(W), tuple(W.shape))
        return G, val - (self.f_star if self.f_star is not None else self.f_lb)

    def _grad_and_value(self, W):
        import torch

        Wt = self._to_torch(W).detach().requires_grad_(True)    # shares W's memory: no copy (W is not written)
        with torch.enable_grad():
            out = self._f(Wt)
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != (W.shape[0],):
                raise InputError("f", f"the user's function returned shape {tuple(getattr(out, 'shape', ()))}; "
                                 f"expected {(W.shape[0],)}")
            (g,) = torch.autograd.grad(out.sum(), Wt)
        return self._from_torch(g.detach(), W), self._from_torch(out.detach(), W)

    # ------------------------------------------------------------------ finite sums
    def sample_values(self, W, idx):
        """f_i(W) for the samples idx (S, b): (S, b)."""
        return self._user("finite_sum.f_i", lambda: self._call(self._f_i, W, idx), tuple(idx.shape))

    def batch_grad(self, W, idx):
        """(1/b) sum_{i in idx} grad f_i(W): (S, m, n) for idx (S, b)."""
        if self._grad_i is not None:
            return self._user("finite_sum.grad_i", lambda: self._call(
                lambda *args: _mean_over_samples(self._grad_i(*args)), W, idx), tuple(W.shape))
        return self._user("finite_sum.grad_i (autograd of f_i)", lambda: self._autograd(
            lambda Wt, it: self._f_i(Wt, it).mean(dim=1).sum(), W, idx), tuple(W.shape))

    def _user(self, name: str, call, shape: tuple):
        """Run a call of the user's code: an exception it raises, or a result of the wrong shape, becomes
        one InputError naming the function (never a traceback from inside theory-lab)."""
        try:
            out = call()
        except InputError:
            raise
        except Exception as exc:
            raise InputError(name, f"the user's function raised {type(exc).__name__}: {exc} "
                             f"(on a batch of shape {tuple(shape)})") from None
        first = out[0] if isinstance(out, tuple) else out          # (gradient, value): the gradient's shape
        if tuple(first.shape) != tuple(shape):
            raise InputError(name, f"the user's function returned shape {tuple(first.shape)}; expected {tuple(shape)}")
        return out

    def minibatch_grad(self, W, idx):
        if self._f_i is None:
            return super().minibatch_grad(W, idx)
        xp = self.bk.xp
        S, mid, b = idx.shape[0], tuple(idx.shape[1:-1]), idx.shape[-1]
        flat = xp.reshape(idx, (S, -1, b))
        parts = [self.batch_grad(W, flat[:, k, :]) for k in range(flat.shape[1])]
        G = parts[0] if not mid else xp.stack(parts, axis=1)
        return xp.reshape(G, (S,) + mid + (self.m, self.n))

    # ------------------------------------------------------------------ numpy / torch plumbing
    def _call(self, fn, W, idx=None):
        """fn(W) or fn(W, idx) in the user's framework, returned in W's (array type and device)."""
        if self.kind == "torch":
            args = (self._to_torch(W),) + (() if idx is None else (self._to_torch_index(idx),))
            out = fn(*args)
            return self._from_torch(out.detach() if hasattr(out, "detach") else out, W)
        args = (_to_numpy(W),) + (() if idx is None else (_to_numpy(idx),))
        out = np.asarray(fn(*args), dtype=np.float64)
        return out if isinstance(W, np.ndarray) else self.bk.asarray(out)

    def _autograd(self, scalar, W, idx=None):
        """The gradient of scalar(W[, idx]) (a torch function summing over the batch) by autograd."""
        import torch

        Wt = self._to_torch(W).detach().requires_grad_(True)    # shares W's memory: no copy (W is not written)
        args = (Wt,) + (() if idx is None else (self._to_torch_index(idx),))
        with torch.enable_grad():
            (g,) = torch.autograd.grad(scalar(*args), Wt)
        return self._from_torch(g.detach(), W)

    def _to_torch_index(self, idx):
        import torch

        return torch.as_tensor(np.asarray(idx) if isinstance(idx, np.ndarray) else idx.cpu(), dtype=torch.int64)

    def _to_torch(self, W):
        import torch

        from .backend import writable_host

        return W if isinstance(W, torch.Tensor) else torch.as_tensor(writable_host(np.asarray(W)), dtype=torch.float64)

    def _from_torch(self, out, W):
        if isinstance(W, np.ndarray):
            return np.asarray(out.cpu().numpy() if hasattr(out, "cpu") else out, dtype=np.float64)
        return out.to(dtype=W.dtype, device=W.device)

    def _check_finite(self):                  # nothing generated: constants are the user's
        pass


def _to_numpy(x):
    return x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()


def _mean_over_samples(G):
    """Per-sample gradients (S, b, m, n) -> their mean over the samples, in G's own framework."""
    return G.mean(dim=1) if hasattr(G, "detach") else np.asarray(G, dtype=np.float64).mean(axis=1)


def _detect(f, m: int, n: int) -> str:
    """"numpy" if f evaluates a numpy batch to an array, else "torch" (it must accept a tensor)."""
    probe = np.zeros((2, m, n))
    try:
        out = f(probe)
        if isinstance(out, np.ndarray) or np.isscalar(out):
            if np.shape(out) != (2,):
                raise InputError("f", f"must map W (S, m, n) to (S,); got shape {np.shape(out)} for S = 2")
            return "numpy"
    except InputError:
        raise
    except Exception:
        pass
    try:
        import torch
    except ImportError:
        raise InputError("f", "f does not evaluate numpy arrays and torch is not installed") from None
    try:
        out = f(torch.zeros((2, m, n), dtype=torch.float64))
    except Exception as exc:
        raise InputError("f", f"f fails on a batch of shape (2, {m}, {n}): {exc}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2,):
        raise InputError("f", f"must map W (S, m, n) to (S,); got {type(out).__name__} for S = 2")
    return "torch"


def custom_problem(f, grad=None, shape=(2, 2), W0=None, L=None, mu=None, f_star=None, name: str = "custom",
                   finite_sum=None, W_star=None) -> CustomProblem:
    """Wrap a user objective as a Problem (module docstring)."""
    return CustomProblem(f, grad, shape, W0, L, mu, f_star, name, W_star, finite_sum)


# ------------------------------------------------------------------------------ certification
@dataclass
class Certificate:
    """Outcome of :func:`certify`: a status and a one-line detail per claim, and the estimates."""

    problem: str
    status: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    L_estimate: float = math.nan
    mu_estimate: float = math.nan
    f_star_estimate: float = math.nan
    gradient_error: float = math.nan
    L_max_estimate: float = math.nan

    @property
    def refuted(self) -> list[str]:
        return [k for k, v in self.status.items() if v == "refuted"]

    def to_dict(self) -> dict[str, Any]:
        from .jsonout import strict

        return strict(dict(problem=self.problem, status=self.status, detail=self.detail, L_estimate=self.L_estimate,
                            mu_estimate=self.mu_estimate, f_star_estimate=self.f_star_estimate,
                            gradient_error=self.gradient_error, L_max_estimate=self.L_max_estimate))

    def table(self) -> str:
        rows = [(k, self.status[k], self.detail.get(k, "")) for k in self.status]
        w = max(len(k) for k, _, _ in rows)
        return "\n".join([f"certificate of {self.problem}"] + [f"{k.ljust(w)}  {s:9s}  {d}" for k, s, d in rows])


def certify(problem, seed: int = 0, points: int = 6, lbfgs_starts: int = 3) -> Certificate:
    """Check the problem's gradient and its declared constants (module docstring)."""
    from .problems import resolve_problem

    problem = resolve_problem(problem)
    pr = problem.bind("numpy")
    rng = np.random.default_rng(seed)
    cert = Certificate(problem=problem.describe())
    radius = max(1.0, float(np.linalg.norm(pr.W0)) / math.sqrt(pr.m * pr.n))
    if pr.W_star is not None:
        radius = max(radius, float(np.linalg.norm(pr.W0 - pr.W_star)) / math.sqrt(pr.m * pr.n))
    P = pr.W0[None] + radius * rng.standard_normal((points, pr.m, pr.n))
    _gradient(pr, P, rng, cert)
    if cert.status["gradient"] == "refuted" and not math.isfinite(cert.gradient_error):
        # f or grad is not finite at the sampled points: nothing else can be measured there (and
        # LAPACK, handed NaN, prints to stdout)
        for claim in ("L", "f_star", "mu") if pr.smooth else ():
            cert.status[claim], cert.detail[claim] = "uncertain", "not measured: " + cert.detail["gradient"]
        return cert
    if pr.smooth:
        _smoothness(pr, P, rng, cert, problem.L)
        _optimum(pr, rng, cert, problem, lbfgs_starts, radius)
        _pl(pr, P, rng, cert, problem)
    if getattr(pr, "_f_i", None) is not None:
        _finite_sum_claims(pr, P, rng, cert, problem)
    return cert


def _finite_sum_claims(pr, P, rng, cert, problem, samples: int = 16):
    """``finite_sum``: mean_i f_i = f at the sampled points; ``grad_i``: per-sample gradients against
    central differences of f_i; ``L_max``: per-sample curvature (Lanczos on HVPs and secants) against
    the declared max_i L_i. delta_inf is estimated from ``f_i_lower`` and f* when not declared."""
    N, k = pr.n_samples, P.shape[0]
    total = np.zeros(k)
    for start in range(0, N, 4096):                        # mean over every summand, in chunks
        idx = np.broadcast_to(np.arange(start, min(N, start + 4096)), (k, min(N, start + 4096) - start))
        total += pr.sample_values(P, np.ascontiguousarray(idx)).sum(axis=1)
    mean, full = total / N, pr.value(P)
    err = float(np.max(np.abs(mean - full) / (np.abs(full) + np.abs(mean) + 1e-300)))
    if err <= 1e-9:
        cert.status["finite_sum"], cert.detail["finite_sum"] = "ok", (
            f"mean of the {N} summands equals f at {k} points (relative {err:.1g})")
    elif err > 1e-6:
        cert.status["finite_sum"], cert.detail["finite_sum"] = "refuted", (
            f"mean of the {N} summands differs from f by {err:.3g} (relative): they are not the same objective")
    else:
        cert.status["finite_sum"], cert.detail["finite_sum"] = "uncertain", f"mean of summands vs f: relative {err:.3g}"
    picks = rng.choice(N, size=min(samples, N), replace=False)

    class _One:                                            # one summand as a problem (for _gradient, _hvp)
        def __init__(self, i):
            self.i, self.m, self.n = int(i), pr.m, pr.n

        def _idx(self, W):
            return np.full((W.shape[0], 1), self.i, dtype=np.int64)

        def value(self, W):
            return pr.sample_values(W, self._idx(W))[:, 0]

        def grad(self, W):
            return pr.batch_grad(W, self._idx(W))

    sub = Certificate(problem=cert.problem)
    worst = 0.0
    for i in picks[:3]:
        _gradient(_One(i), P[:2], rng, sub)
        worst = max(worst, sub.gradient_error)
    status = "ok" if worst <= 1.0 else ("refuted" if worst > 1e3 else "uncertain")
    cert.status["grad_i"], cert.detail["grad_i"] = status, (
        f"per-sample gradients vs central differences at {min(3, len(picks))} summands: worst {worst:.2g} of tolerance")
    ests = []
    for i in picks:
        one = _One(i)
        _smoothness(one, P[:2], rng, sub, None)
        ests.append(sub.L_estimate)
    est = float(max(ests))
    cert.L_max_estimate = est
    declared = pr.L_max
    if declared is None:
        cert.status["L_max"], cert.detail["L_max"] = "estimated", (
            f"max_i L_i >= {est:.6g} (curvature of {len(picks)} sampled summands; a sampled lower estimate)")
    elif est > declared * (1 + 1e-4):
        cert.status["L_max"], cert.detail["L_max"] = "refuted", (
            f"declared L_max = {declared:.6g} but a summand's curvature reaches {est:.6g}")
    else:
        cert.status["L_max"], cert.detail["L_max"] = "ok", f"declared L_max = {declared:.6g} >= sampled {est:.6g}"


def _not_finite(values) -> str | None:
    """None when every value is finite, else what is wrong ("NaN at 2 of 6 points", "inf at ...")."""
    v = np.asarray(values, dtype=float).reshape(len(values), -1)
    bad = ~np.all(np.isfinite(v), axis=1)
    if not bad.any():
        return None
    kind = "NaN" if np.isnan(v[bad]).any() else "inf"
    return f"{kind} at {int(bad.sum())} of {len(v)} sampled points"


def _gradient(pr, P, rng, cert):
    G = pr.grad(P)
    bad_f, bad_g = _not_finite(pr.value(P)), _not_finite(G)
    fault = (bad_f and f"f returns {bad_f}") or (bad_g and f"grad returns {bad_g}")
    if fault:                                # a NaN is never "within tolerance": max() would skip it
        cert.gradient_error = math.nan
        cert.status["gradient"], cert.detail["gradient"] = "refuted", fault
        return
    worst = 0.0
    for k in range(P.shape[0]):
        D = rng.standard_normal(P.shape[1:])
        D /= np.linalg.norm(D)
        scale = max(1.0, float(np.linalg.norm(P[k])))
        h = np.finfo(float).eps ** (1 / 3) * scale
        fp, fm, f0 = pr.value(np.stack([P[k] + h * D, P[k] - h * D, P[k]]))
        fd, dd = (fp - fm) / (2 * h), float(np.sum(G[k] * D))
        # rounding of the difference (eps |f| / h) plus the truncation O(h^2 f''') allowance
        tol = 1e-6 * (abs(dd) + abs(fd)) + 64 * np.finfo(float).eps * (abs(fp) + abs(fm) + abs(f0)) / h + 1e-12
        err = abs(fd - dd) / tol
        worst = err if not err <= worst else worst             # a NaN error stays NaN
    cert.gradient_error = worst
    if not math.isfinite(worst):
        cert.status["gradient"], cert.detail["gradient"] = "refuted", (
            "central differences of f are not finite near the sampled points (f is NaN or inf there)")
    elif worst <= 1.0:
        cert.status["gradient"], cert.detail["gradient"] = "ok", (
            f"central differences agree with grad at {P.shape[0]} points (worst error {worst:.2g} of tolerance)")
    elif worst > 1e3:
        cert.status["gradient"], cert.detail["gradient"] = "refuted", (
            f"grad is not the gradient of f: directional derivatives differ by {worst:.3g}x the tolerance")
    else:
        cert.status["gradient"], cert.detail["gradient"] = "uncertain", f"differences up to {worst:.3g}x the tolerance"


def _hvp_operator(pr, W):
    from scipy.sparse.linalg import LinearOperator

    d = pr.m * pr.n
    h = np.finfo(float).eps ** (1 / 3) * max(1.0, float(np.linalg.norm(W)))

    def mv(v):
        V = np.asarray(v, dtype=float).reshape(pr.m, pr.n)
        nv = float(np.linalg.norm(V))
        if nv == 0:
            return np.zeros(d)
        U = V / nv
        g = pr.grad(np.stack([W + h * U, W - h * U]))
        return ((g[0] - g[1]) / (2 * h) * nv).reshape(-1)

    return LinearOperator((d, d), matvec=mv, dtype=float)


def _smoothness(pr, P, rng, cert, L_declared):
    from scipy.sparse.linalg import eigsh

    ests = []
    d = pr.m * pr.n
    for W in P[:3]:
        if d == 1:
            ests.append(abs(float(_hvp_operator(pr, W).matvec(np.ones(1))[0])))
            continue
        try:
            ests.append(float(abs(eigsh(_hvp_operator(pr, W), k=1, which="LM", tol=1e-8, maxiter=2000,
                                        v0=rng.standard_normal(d), return_eigenvectors=False)[0])))
        except Exception:
            pass
    Q = P + 0.3 * rng.standard_normal(P.shape)
    gP, gQ = pr.grad(P), pr.grad(Q)
    sec = np.linalg.norm((gP - gQ).reshape(len(P), -1), axis=1) / np.linalg.norm((P - Q).reshape(len(P), -1), axis=1)
    vals = ests + [float(v) for v in sec]
    est = math.nan if not all(math.isfinite(v) for v in vals) else max(vals)
    cert.L_estimate = est
    if not math.isfinite(est):
        cert.status["L"], cert.detail["L"] = "uncertain", (
            "the curvature could not be measured: gradient differences are NaN or inf at the sampled points")
    elif L_declared is None:
        cert.status["L"], cert.detail["L"] = "estimated", f"L >= {est:.6g} (Hessian top eigenvalue and secants)"
    elif est > L_declared * (1 + 1e-4):
        cert.status["L"], cert.detail["L"] = "refuted", (
            f"declared L = {L_declared:.6g} but the curvature reaches {est:.6g} (a lower bound on the true L)")
    else:
        cert.status["L"], cert.detail["L"] = "ok", f"declared L = {L_declared:.6g} >= sampled curvature {est:.6g}"


def _optimum(pr, rng, cert, problem, starts, radius):
    from scipy.optimize import minimize

    fun = lambda x: float(pr.value(x.reshape(1, pr.m, pr.n))[0])           # noqa: E731
    jac = lambda x: pr.grad(x.reshape(1, pr.m, pr.n))[0].reshape(-1)       # noqa: E731
    best = math.inf
    for k in range(starts):
        x0 = (pr.W0 + (0 if k == 0 else radius) * rng.standard_normal(pr.W0.shape)).reshape(-1)
        res = minimize(fun, x0, jac=jac, method="L-BFGS-B", options=dict(maxiter=5000, gtol=1e-12, ftol=0.0))
        best = min(best, float(res.fun))
    cert.f_star_estimate = best
    declared = problem.f_star
    tol = 1e-9 * (abs(best) + 1.0)
    if not math.isfinite(best):
        cert.status["f_star"], cert.detail["f_star"] = "uncertain", (
            f"L-BFGS found no finite value of f (best {best}); f* is unknown")
    elif declared is None:
        cert.status["f_star"], cert.detail["f_star"] = "estimated", f"f* <= {best:.10g} (L-BFGS from {starts} starts)"
    elif best < declared - tol:
        cert.status["f_star"], cert.detail["f_star"] = "refuted", f"declared f* = {declared:.10g} but f reaches {best:.10g}"
    elif best > declared + 1e-6 * (abs(declared) + 1.0):
        cert.status["f_star"], cert.detail["f_star"] = "uncertain", (
            f"declared f* = {declared:.10g}; the best value found is {best:.10g}")
    else:
        cert.status["f_star"], cert.detail["f_star"] = "ok", f"declared f* = {declared:.10g}; best found {best:.10g}"


def _pl(pr, P, rng, cert, problem):
    fs = problem.f_star if problem.f_star is not None else cert.f_star_estimate
    if fs is None or not math.isfinite(fs):
        return
    L = problem.L or cert.L_estimate
    pts = [P]
    W = P.copy()
    for _ in range(5):                                  # points along GD paths, nearer the minimiser
        W = W - pr.grad(W) / max(L, 1e-300)
        pts.append(W.copy())
    X = np.concatenate(pts)
    gap = pr.value(X) - fs
    g2 = np.sum(pr.grad(X) ** 2, axis=(-2, -1))
    ok = gap > 1e-8 * (abs(fs) + 1.0)
    if not ok.any():
        return
    ratios = g2[ok] / (2 * gap[ok])
    ratio = float(np.min(ratios)) if np.all(np.isfinite(ratios)) else math.nan
    cert.mu_estimate = ratio
    if not math.isfinite(ratio):
        cert.status["mu"], cert.detail["mu"] = "uncertain", "the PL ratio is NaN or inf at sampled points"
    elif problem.mu is None:
        cert.status["mu"], cert.detail["mu"] = "estimated", f"PL constant <= {ratio:.6g} (smallest sampled ratio)"
    elif ratio < problem.mu * (1 - 1e-6):
        cert.status["mu"], cert.detail["mu"] = "refuted", (
            f"declared mu = {problem.mu:.6g} but ||g||^2 / (2 (f - f*)) falls to {ratio:.6g}")
    else:
        cert.status["mu"], cert.detail["mu"] = "ok", f"declared mu = {problem.mu:.6g} <= smallest sampled ratio {ratio:.6g}"


__all__ = ["custom_problem", "certify", "Certificate", "CustomProblem"]
