"""Gradient estimators G^t (THEORY.md section 4), one small object per variant.

An estimator is a pair of functions in the optax style:

    init(problem, W, streams) -> state
    estimate(problem, state, W, W_prev, t, streams) -> (G, state)

where W is the batch of iterates (S, m, n) and G the estimate used for the step from W^t.
``constants(problem)`` returns the estimator's constants for the theorems (A, B, C of the ABC
assumption for SGD, ...). Estimators register under their public name.
"""
from __future__ import annotations

from typing import Any, ClassVar

from .errors import InputError, check_range

ESTIMATORS: dict[str, type["Estimator"]] = {}


def register(cls):
    ESTIMATORS[cls.name] = cls
    return cls


class Estimator:
    name: ClassVar[str] = ""
    #: True when G^t is the exact gradient (the runner then reuses it for grad_sq)
    exact: ClassVar[bool] = False
    params: dict[str, Any]

    def __init__(self, **params):
        self.params = params

    def validate(self, problem) -> None:
        """Check parameters against the problem; raise InputError naming the field."""

    def init(self, problem, W, streams):
        return None

    def estimate(self, problem, state, W, W_prev, t, streams):
        raise NotImplementedError

    def constants(self, problem) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        return dict(self.params)


@register
class FullGradient(Estimator):
    """G^t = grad f(W^t) (GD-NC, GD-PL)."""

    name = "gd"
    exact = True

    def estimate(self, problem, state, W, W_prev, t, streams):
        return problem.grad(W), state

    def constants(self, problem):
        return dict(A=0.0, B=1.0, C=0.0)


NOISE_MODELS = ("auto", "minibatch", "additive")


@register
class SGD(Estimator):
    """Stochastic gradients under the ABC assumption (THEORY.md 4.2).

    Noise models (``noise``):

    * ``"additive"`` (N1): g = grad f + Z, Z_ij ~ N(0, noise_std^2): A = 0, B = 1, C = s^2 m n.
    * ``"minibatch"``: uniform b-minibatch of a finite sum, ``replacement`` True (N2, nu = 1/b)
      or False (N3, nu = (N-b)/(b(N-1))): A = nu L_max, B = 1 - nu, C = 2 nu L_max delta_inf.
    * ``"auto"`` (default): minibatch for finite sums, additive otherwise.

    Parameters: ``batch`` b in [1, N] (default 1), ``replacement`` (default False),
    ``noise_std`` s >= 0 (default 0.1).
    """

    name = "sgd"

    def __init__(self, noise="auto", batch=1, replacement=False, noise_std=0.1):
        super().__init__(noise=noise, batch=batch, replacement=bool(replacement), noise_std=noise_std)

    def validate(self, problem):
        p = self.params
        if p["noise"] not in NOISE_MODELS:
            raise InputError("noise", f"got {p['noise']!r}; accepted: {', '.join(NOISE_MODELS)}")
        if p["noise"] == "auto":
            p["noise"] = "minibatch" if problem.is_finite_sum else "additive"
        if p["noise"] == "minibatch":
            if not problem.is_finite_sum:
                raise InputError("noise", f"minibatch sampling needs a finite sum; {problem.family} is not "
                                 "one (use noise='additive')")
            hi = problem.n_samples if not p["replacement"] else 10_000_000
            p["batch"] = check_range("batch", p["batch"], 1, hi, integer=True)
        else:
            p["noise_std"] = check_range("noise_std", p["noise_std"], 0, None)

    def estimate(self, problem, state, W, W_prev, t, streams):
        prob, p = problem, self.params
        xp = streams.backend.xp
        if p["noise"] == "additive":
            return prob.grad(W) + p["noise_std"] * streams.normal("noise", t, W.shape[1:]), state
        b, N = p["batch"], prob.n_samples
        if p["replacement"]:
            u = streams.uniform("sampling", t, (b,))
            idx = xp.astype(xp.floor(u * N), xp.int64)
            idx = xp.clip(idx, 0, N - 1)
        else:
            u = streams.uniform("sampling", t, (N,))
            idx = xp.argsort(u, axis=-1)[:, :b]
        return prob.minibatch_grad(W, idx), state

    def constants(self, problem):
        p = self.params
        if p["noise"] == "additive":
            s2 = p["noise_std"] ** 2
            return dict(A=0.0, B=1.0, C=s2 * problem.m * problem.n, sigma2=s2 * problem.m * problem.n,
                        noise_std=p["noise_std"], noise_model="N1")
        b, N = p["batch"], problem.n_samples
        nu = 1.0 / b if p["replacement"] else (N - b) / (b * (N - 1)) if N > 1 else 0.0
        return dict(A=nu * problem.L_max, B=1.0 - nu, C=2 * nu * problem.L_max * problem.delta_inf,
                    nu=nu, b=b, noise_model="N2" if p["replacement"] else "N3")


def make_estimator(name: str, **params) -> Estimator:
    if name not in ESTIMATORS:
        raise InputError("estimator", f"unknown estimator {name!r}; accepted: {', '.join(ESTIMATORS)}")
    try:
        return ESTIMATORS[name](**params)
    except TypeError as exc:
        raise InputError("method", f"bad estimator parameter for {name}: {exc}") from None
