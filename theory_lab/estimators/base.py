"""Gradient estimators G^t (docs/THEORY.md section 4), one small object per variant.

An estimator is a pair of functions in the optax style:

    init(problem, W, streams) -> state
    estimate(problem, state, W, W_prev, t, streams) -> (G, state)

where W is the batch of iterates (S, m, n), W_prev the previous one, and G the estimate used for
the step from W^t. It is called at t = 0 .. T (the extra call at T gives G^T for Lyapunov functions,
docs/THEORY.md 4.0). ``error(problem, state, W, grad)`` returns the per-seed estimator error e_t (EF21:
its client-averaged error), ``constants(problem)`` the estimator's constants for the theorems.
States are small namespaces with per-seed arrays, never mutated: ``estimate`` returns a new one
(:func:`evolve`); ``epochs`` (gradient cost in full passes over the data) and ``bits`` (sent per
client) are cumulative counters the runner records.

Configuration is immutable too: ``resolve(problem)`` returns a new estimator whose defaults that
depend on the problem (SGD's noise model, PAGE's q, ...) are filled in; the original is untouched,
so one ``Method`` can be used on any number of problems.
"""
from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any, ClassVar

from ..errors import InputError

ESTIMATORS: dict[str, type["Estimator"]] = {}


def register(cls):
    """Register an estimator class (``tl.register_estimator``); ``tl.register_method`` then pairs it
    with a step rule."""
    if not (isinstance(cls, type) and issubclass(cls, Estimator) and cls.name):
        raise InputError("estimator", "register a subclass of tl.Estimator with a name")
    ESTIMATORS[cls.name] = cls
    return cls


class Estimator:
    """A gradient estimator G^t (``tl.Estimator``; see the module docstring for the contract).

    Batched state: every array has the seeds on the leading axis (W is (S, m, n), per-seed scalars
    (S,)); ``streams`` draws are counter-based (``streams.normal("noise", t, shape)``,
    ``streams.uniform("switch", t)``: a function of (master seed, seed index, step, stream name)),
    so a seed's numbers do not depend on how many seeds or configurations run beside it. Write
    ``__init__`` with keyword parameters (validated there), ``estimate`` returning ``(G, evolve(state,
    ...))`` without mutating ``state``, ``constants(problem)`` for the theorems, and optionally
    ``PARAMS`` (declared parameters: accepted range, meaning, fuzz range and corners; ``__init__``
    validates against it), ``CAPABILITIES``, ``tracks_error``, ``exact``.
    """
    name: ClassVar[str] = ""
    #: True when G^t is the exact gradient (the runner then reuses it for grad_sq)
    exact: ClassVar[bool] = False
    #: True when the estimator keeps G^t across steps (its error e_t is a metric)
    tracks_error: ClassVar[bool] = False
    #: scalar parameters that may differ between the trajectories of a batched run, with the
    #: number of axes their per-trajectory array takes: 1 -> (S,), 3 -> (S, 1, 1)
    vector_params: ClassVar[dict[str, int]] = {}
    #: declared parameters (``params.Param``): the one declaration of each parameter's accepted range
    #: (validated in ``__init__`` and, for ranges that depend on the problem, in ``bind``), its meaning,
    #: and the range and corners the falsification engine draws (:meth:`fuzz_params`)
    PARAMS: ClassVar[tuple] = ()
    #: what the estimator offers theorems (``Method.capabilities``): e.g. "additive-noise"
    CAPABILITIES: ClassVar[frozenset] = frozenset()
    #: the problem classes it runs on: a finite sum f = (1/N) sum_i f_i (PAGE), a non-smooth f
    #: (subgradients) or an L-smooth one (the rest)
    needs_finite_sum: ClassVar[bool] = False
    smooth: ClassVar[bool] = True
    #: sends per-client messages (its memory grows with the problem's clients M)
    uses_clients: ClassVar[bool] = False
    #: its step can be captured in a CUDA graph (no host-side branching, no per-step state beyond W)
    graphable: ClassVar[bool] = False

    @classmethod
    def fuzz_params(cls, rng, problem, corner: bool = False) -> dict:
        """Parameters for a random configuration on ``problem`` (the falsification engine's draw):
        every ``PARAMS`` declaration drawn, corners included (``corner``: every parameter at its corner,
        the configuration where the theorems about this estimator are attained). Override for
        parameters that depend on each other (SGD's noise model decides which of its parameters exist)."""
        from ..params import Context, draw_all

        return draw_all(cls.PARAMS, rng, Context(problem.m, problem.n, problem.n_samples), corner=corner)

    def capabilities(self) -> frozenset:
        """What this configured estimator offers theorems (class ``CAPABILITIES`` by default)."""
        return frozenset(self.CAPABILITIES)

    def __init__(self, **params):
        from ..params import check_all

        self._params = check_all(type(self).PARAMS, params)     # each declared parameter in its range

    def check_params(self, problem) -> None:
        """Check the declared ranges that depend on the problem (e.g. a compressor's k <= m n)."""
        from ..params import Context, check_all

        check_all(type(self).PARAMS, self._params, Context(problem.m, problem.n, problem.n_samples))

    @property
    def params(self) -> dict[str, Any]:
        """The configuration (a copy: estimators are immutable)."""
        return dict(self._params)

    @classmethod
    def accepted(cls) -> tuple[str, ...]:
        """Names of the keyword parameters this estimator takes (from its signature)."""
        sig = inspect.signature(cls.__init__)
        return tuple(k for k, v in sig.parameters.items()
                     if k != "self" and v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY))

    def resolve(self, problem) -> "Estimator":
        """A copy with problem-dependent defaults filled in and every parameter checked against
        ``problem``; raises InputError naming the field. The default has nothing to fill."""
        return self

    def validate(self, problem) -> None:
        """Check parameters against the problem; raise InputError naming the field."""
        self.check_params(problem)
        self.resolve(problem)

    def batched(self, **vectors) -> "Estimator":
        """A copy whose ``vector_params`` hold per-trajectory arrays (runner.execute_batch); used
        only inside the loop (``params`` and ``constants`` stay those of one configuration)."""
        return self._with(**vectors) if vectors else self

    def _with(self, **changes) -> "Estimator":
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._params = {**self._params, **changes}
        return new

    def init(self, problem, W, streams):
        return SimpleNamespace(G=None, epochs=0.0, bits=0.0)

    def estimate(self, problem, state, W, W_prev, t, streams):
        raise NotImplementedError

    def error(self, problem, state, W, grad):
        """e_t = ||G^t - grad f(W^t)||^2 per seed."""
        xp = problem.bk.xp
        D = state.G - grad
        return xp.sum(D * D, axis=(-2, -1))

    def constants(self, problem) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        return dict(self.params)


def evolve(state, **changes):
    """A new state with ``changes`` (states are values; the old one is left as it was)."""
    return SimpleNamespace(**{**vars(state), **changes})


def pick(xp, cond, a: float, b: float):
    """a where cond else b, as float64 per seed (torch's where would make Python scalars float32)."""
    c = xp.astype(cond, xp.float64)
    return a * c + b * (1.0 - c)


def make_estimator(name: str, **params) -> Estimator:
    if name not in ESTIMATORS:
        raise InputError("estimator", f"unknown estimator {name!r}; accepted: {', '.join(ESTIMATORS)}")
    try:
        return ESTIMATORS[name](**params)
    except TypeError as exc:
        raise InputError("method", f"bad estimator parameter for {name}: {exc}") from None
