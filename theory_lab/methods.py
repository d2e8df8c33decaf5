"""Methods: side policy (p) x sketch x estimator x stepsize rule (docs/THEORY.md 1.2), and baselines.

``Method("bernoulli-lora-gd", p=0.5, rank=2, sketch="gaussian", stepsize="theory", factor=1.0)``

* ``p`` = P(left sketch) = P(B sampled, A trained). Each step flips a coin per seed; a left step
  is W <- W - gamma H_B G, a right step W <- W - gamma G H_A.
* ``sketch``: a law name for both sides, or ``"LEFT/RIGHT"`` (e.g. ``"degenerate/gaussian"``);
  ``left_groups`` / ``right_groups`` set the stratified law's group sizes.
* ``stepsize``: ``"theory"`` (the step the matching theorem recommends) times ``factor``, or a number.
* Other keywords go to the estimator (SGD: ``noise``, ``batch``, ``replacement``, ``noise_std``).

Baselines: ``gd`` (full-parameter, H = I, lambda = 1), ``rac-lora`` / ``rac-lora-sgd`` (one fixed
side, resampled every step: p = 1 samples B and trains A, p = 0 samples A and trains B),
``asymm-lora`` (one random factor drawn once and frozen for the whole run: lambda_min = 0),
``lora`` (joint training of B and A) and ``cola`` (chained joint LoRA), see :mod:`theory_lab.baselines`.
No theorem covers the last three; their ``"theory"`` stepsize is 1/L.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from .errors import InputError, check_range
from .estimators import ESTIMATORS, make_estimator
from .params import Context, Param
from .sketches import (SKETCHES, declared_law_parameters, lambda_moments, law_parameters, parse_sketch,
                       project_left, project_right)


# ------------------------------------------------------------------------------ step rules
class StepRule:
    """How a method moves W given the estimate G: one small object per kind of method.

    ``lam(method, problem)`` gives (lambda_min^p, lambda_max^p, Monte Carlo error of both);
    ``init(method, W, streams)`` the rule's own per-run state (None for projected steps);
    ``step(method, W, G, gamma, t, streams, state)`` returns (W^{t+1}, state), never mutating state.
    """

    name: ClassVar[str] = ""
    #: covered by the projected-step theory of docs/THEORY.md (theorems may be selected)
    theory: ClassVar[bool] = True
    #: the rank is a sketch / factor rank, so it must lie in [1, min(m, n)]
    ranked: ClassVar[bool] = True
    #: parameters only this rule uses (beyond p, rank, sketch, stepsize, factor), declared once
    #: (``params.Param``: accepted range, default); the method holds them as attributes
    PARAMS: ClassVar[tuple] = ()
    #: their names
    extra: ClassVar[tuple[str, ...]] = ()
    #: no state of its own, so configurations can share one batched run (runner.execute_batch)
    batchable: ClassVar[bool] = True
    #: its step can be captured in a CUDA graph (runner's graph path)
    graphable: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.extra = tuple(p.name for p in cls.PARAMS)

    def lam(self, method, problem) -> tuple[float, float, float]:
        return lambda_moments((method.sketch_left, method.sketch_right), problem.m, problem.n, method.rank,
                              method.p)

    def init(self, method, W, streams):
        return None

    def step(self, method, W, G, gamma, t, streams, state):
        if 0.0 < method.p < 1.0:
            return method.direction(G, t, streams, W=W, gamma=gamma), state
        return W - gamma * method.direction(G, t, streams), state


class Projected(StepRule):
    """W <- W - gamma S_t(G), a fresh sketch every step (Bernoulli-LoRA, RAC-LoRA)."""

    name = "projected"


class Full(StepRule):
    """W <- W - gamma G: full-parameter GD (H = I, lambda = 1)."""

    name = "full"
    ranked = False

    def lam(self, method, problem):
        return 1.0, 1.0, 0.0

    def step(self, method, W, G, gamma, t, streams, state):
        return W - gamma * G, state


class Frozen(StepRule):
    """One sketch drawn at step 0 and kept for the whole run (AsymmLoRA): H is fixed, so
    lambda_min(H) = 0 unless r >= d."""

    name = "frozen"
    graphable = False

    def lam(self, method, problem):
        d = problem.m if method.p == 1.0 else problem.n
        return (1.0 if method.rank >= d else 0.0), 1.0, 0.0

    def step(self, method, W, G, gamma, t, streams, state):
        return W - gamma * method.direction(G, 0, streams), state


class Joint(StepRule):
    """Joint LoRA: GD on both factors B, A (outside the projected-step theory, docs/THEORY.md 3(g))."""

    name = "joint"
    theory = False
    batchable = False
    graphable = False
    PARAMS = (Param("init_scale", valid=(0.0, None), low_open=True, default=1.0, fuzz=False,
                    doc="scale of the random initial factor A0"),)
    link_steps: int | None = None

    def lam(self, method, problem):
        return 0.0, 1.0, 0.0

    def init(self, method, W, streams):
        from .baselines import JointFactors

        return JointFactors.start(W, method.rank, method.init_scale, streams)

    def step(self, method, W, G, gamma, t, streams, state):
        links = method.link_steps if self.link_steps else None
        return state.step(W, G, gamma, t, streams, links)


class Chain(Joint):
    """Chain of LoRA: joint links merged into W and restarted every ``link_steps`` steps."""

    name = "chain"
    PARAMS = Joint.PARAMS + (Param("link_steps", valid=(1, None), integer=True, default=10, fuzz=False,
                                   doc="steps per link before it is merged into W"),)
    link_steps = True


@dataclass(frozen=True)
class MethodSpec:
    name: str
    estimator: str
    sketched: bool = True
    one_side: bool = False
    summary: str = ""
    rule: StepRule = field(default_factory=Projected)


METHODS: dict[str, MethodSpec] = {}


def _spec(*args, **kw):
    s = MethodSpec(*args, **kw)
    METHODS[s.name] = s


_spec("bernoulli-lora-gd", "gd", summary="Bernoulli-LoRA with full gradients (GD-NC, GD-PL)")
_spec("bernoulli-lora-sgd", "sgd", summary="Bernoulli-LoRA with stochastic gradients (SGD-NC, SGD-PL)")
_spec("bernoulli-lora-page", "page", summary="Bernoulli-LoRA with PAGE (PAGE-NC, PAGE-PL)")
_spec("bernoulli-lora-mvr", "mvr", summary="Bernoulli-LoRA with momentum variance reduction (MVR-NC, MVR-PL)")
_spec("bernoulli-lora-qgd", "qgd", summary="Bernoulli-LoRA with compressed gradients, M clients (QGD-NC, QGD-PL)")
_spec("bernoulli-lora-marina", "marina", summary="Bernoulli-LoRA with MARINA (MARINA-NC, MARINA-PL)")
_spec("bernoulli-lora-ef21", "ef21", summary="Bernoulli-LoRA with EF21 error feedback (EF21-NC, EF21-PL)")
_spec("bernoulli-lora-subgd", "subgradient",
      summary="Bernoulli-LoRA subgradient method, stepsize constant or polyak (NS-CONST, NS-POLYAK)")
_spec("gd", "gd", sketched=False, rule=Full(), summary="full-parameter gradient descent (lambda = 1)")
_spec("rac-lora", "gd", one_side=True, summary="RAC-LoRA: one fixed side (p=1 random B, p=0 random A)")
_spec("rac-lora-sgd", "sgd", one_side=True, summary="RAC-LoRA with stochastic gradients")
_spec("asymm-lora", "gd", one_side=True, rule=Frozen(),
      summary="AsymmLoRA: one random factor frozen for the whole run (p=0: A frozen, B trained)")
_spec("lora", "gd", sketched=False, rule=Joint(), summary="joint LoRA: GD on both factors B, A (B0 = 0)")
_spec("cola", "gd", sketched=False, rule=Chain(), summary="Chain of LoRA: joint LoRA links, merged and restarted")

#: method parameters every method takes (the rest are the estimator's or the step rule's)
COMMON = ("p", "rank", "sketch", "stepsize", "factor")
#: the numeric ones, declared once: accepted range (checked by ``Method``; the rank against the problem
#: in ``bind``), default and the falsification engine's draw (p: mass 0.15 on each one-sided end)
METHOD_PARAMS = (
    Param("p", 0.0, 1.0, corners=(0.0, 1.0), corner_mass=0.3, optional=True,
          doc="probability of a left sketch (random B, train A); None: 1/2, or a one-sided method's side"),
    Param("rank", 1, lambda c: min(c.m, c.n), integer=True, valid=(1, lambda c: min(c.m, c.n)), default=1,
          doc="sketch (or factor) rank r <= min(m, n)"),
    Param("factor", 0.1, 3.0, log=True, valid=(0.0, None), low_open=True, default=1.0,
          doc="multiplies the theorem's stepsize"))
P_PARAM, RANK_PARAM, FACTOR_PARAM = METHOD_PARAMS
SKETCH_EXTRA = ("left_groups", "right_groups")


def method_parameters(name: str) -> tuple[str, ...]:
    """Every keyword ``Method(name, ...)`` accepts: common, sketch (the groups and every registered
    law's declared parameters), step-rule and estimator ones."""
    spec = METHODS[name]
    return COMMON + ((SKETCH_EXTRA + declared_law_parameters()) if spec.sketched else ()) + spec.rule.extra + \
        ESTIMATORS[spec.estimator].accepted()


def register_method(name: str, estimator: str, rule: StepRule | None = None, sketched: bool = True,
                    one_side: bool = False, summary: str = "") -> MethodSpec:
    """Register a method (``tl.register_method``): an estimator (built-in or registered with
    ``tl.register_estimator``) with a step rule (default: the projected Bernoulli-LoRA step). Then
    ``tl.Method(name, ...)`` builds it, and checks, sweeps and fuzz campaigns run it like a built-in."""
    if estimator not in ESTIMATORS:
        raise InputError("estimator", f"unknown estimator {estimator!r}; accepted: {', '.join(ESTIMATORS)}")
    if rule is not None and not isinstance(rule, StepRule):
        raise InputError("rule", "expected a tl.StepRule instance")
    spec = MethodSpec(str(name), estimator, sketched=sketched, one_side=one_side, summary=summary,
                      rule=rule if rule is not None else Projected())
    METHODS[spec.name] = spec
    return spec


class Method:
    """A configured method (see module docstring). Immutable once built: ``bind(problem)`` gives a
    copy resolved for one problem (estimator defaults filled, rank checked), leaving this one as is."""

    def __init__(self, name: str, p: float | None = None, rank: int = 1, sketch: str = "gaussian",
                 stepsize: str | float = "theory", factor: float = 1.0, left_groups=None, right_groups=None,
                 init_scale: float | None = None, link_steps: int | None = None, **estimator_params):
        if name not in METHODS:
            raise InputError("method", f"unknown method {name!r}; accepted: {', '.join(METHODS)}")
        self.spec = spec = METHODS[name]
        self.name = name
        accepted = method_parameters(name)
        given = dict(estimator_params, left_groups=left_groups, right_groups=right_groups,
                     init_scale=init_scale, link_steps=link_steps)
        for key, val in given.items():
            if val is not None and key not in accepted:
                raise InputError(key, f"not a parameter of {name}; accepted: {', '.join(accepted)}")
        own_law = law_parameters(sketch)
        law = {k: estimator_params.pop(k) for k in declared_law_parameters() if k in estimator_params}
        for key, val in law.items():
            if val is not None and key not in own_law:
                raise InputError(key, f"a parameter of another sketch law, not of {sketch!r}; accepted for it: "
                                 f"{', '.join(own_law) or 'none'}")
        for decl in (d for side in str(sketch).split("/") for d in getattr(SKETCHES.get(side), "PARAMS", ())):
            if law.get(decl.name) is not None:
                law[decl.name] = decl.check(law[decl.name])
        rule_values = dict(init_scale=init_scale, link_steps=link_steps,
                           **{d.name: estimator_params.pop(d.name) for d in spec.rule.PARAMS if d.name in estimator_params})
        self.init_scale = self.link_steps = None
        for decl in spec.rule.PARAMS:                # the rule's own parameters, from its declaration
            given = rule_values.get(decl.name)
            setattr(self, decl.name, decl.check(decl.default if given is None else given))
        if p is None:
            p = (0.0 if isinstance(spec.rule, Frozen) else 1.0) if spec.one_side else 0.5
        self.p = P_PARAM.check(p)
        if spec.one_side and self.p not in (0.0, 1.0):
            raise InputError("p", f"{name} trains one fixed side; accepted: 1 (random B, train A) or "
                             "0 (random A, train B)")
        self.rank = RANK_PARAM.check(rank)
        for side in str(sketch).split("/"):
            if side not in SKETCHES:
                raise InputError("sketch", f"unknown sketch {side!r}; accepted: {', '.join(SKETCHES)} "
                                 "or LEFT/RIGHT")
        self.sketch_name = str(sketch)
        self.sketch_params = MappingProxyType({"left_groups": left_groups, "right_groups": right_groups,
                                               **{k: v for k, v in law.items() if v is not None}})
        self.sketch_left, self.sketch_right = parse_sketch(self.sketch_name, **self.sketch_params)
        self.stepsize = _parse_stepsize(stepsize, spec)
        self.factor = FACTOR_PARAM.check(factor)
        self.estimator = make_estimator(spec.estimator, **estimator_params)
        self._built = True                  # from here on immutable (``__setattr__``)

    def __setattr__(self, name, value):
        if self.__dict__.get("_built"):
            raise AttributeError(f"a Method is immutable; build another: tl.Method({self.name!r}, ..., {name}=...)")
        object.__setattr__(self, name, value)

    def __getstate__(self):                 # a mapping proxy does not pickle; its dict does
        return {**self.__dict__, "sketch_params": dict(self.sketch_params)}

    def __setstate__(self, state):
        self.__dict__.update(state, sketch_params=MappingProxyType(dict(state["sketch_params"])))

    # ------------------------------------------------------------------ setup
    def bind(self, problem) -> "Method":
        """A copy resolved for ``problem``: rank range checked, estimator defaults filled in."""
        if self.spec.rule.ranked:
            RANK_PARAM.check(self.rank, Context(problem.m, problem.n, problem.n_samples))
        self.estimator.check_params(problem)          # declared ranges that depend on the problem
        new = object.__new__(Method)
        new.__dict__.update(self.__dict__, estimator=self.estimator.resolve(problem))
        return new

    def batched(self, coin_p, estimator) -> "Method":
        """A copy for a batched run: ``coin_p`` the per-trajectory P(left) (an (S,) device array,
        or the common float) and the estimator with its per-trajectory parameters. Which sides are
        sketched still follows ``p`` (the same for every trajectory of a batch)."""
        new = object.__new__(Method)
        new.__dict__.update(self.__dict__, coin_p=coin_p, estimator=estimator)
        return new

    def validate(self, problem) -> None:
        """Check the method against a problem (rank range, estimator needs)."""
        self.bind(problem)

    def lam(self, problem, conservative: bool = True) -> tuple[float, float]:
        """(lambda_min^p, lambda_max^p); with ``conservative`` the Monte Carlo error is subtracted
        from lambda_min and added to lambda_max (right for UPPER bounds); else the point values."""
        lam, Lam, err = self.spec.rule.lam(self, problem)
        if conservative and err > 0:
            return max(lam - err, 0.0), min(Lam + err, 1.0)
        return lam, Lam

    def r_m_sq(self, problem) -> float | None:
        """R_M^2 = ||W0 - W*||^2 in the M_p^{-1} norm (docs/THEORY.md 1.3); every law here has a diagonal
        E[H], so M_p acts entrywise by p h_B[i] + (1 - p) h_A[j]. None when W* is unknown or lam = 0."""
        if problem.W_star is None:
            return None
        D2 = (problem.W0 - problem.W_star) ** 2
        if not self.spec.sketched:
            return float(D2.sum())
        hb = self.sketch_left.expected_H_diag(problem.m, self.rank)
        ha = self.sketch_right.expected_H_diag(problem.n, self.rank)
        weight = self.p * hb[:, None] + (1 - self.p) * ha[None, :]
        with np.errstate(divide="ignore"):
            return float(np.sum(np.where(D2 > 0, D2 / weight, 0.0))) if np.all(weight > 0) else None

    def lam_bar(self, problem) -> float:
        """The average eigenvalue of M_p, tr(M_p)/(mn) = p mean(diag E H_B) + (1 - p) mean(diag E H_A)
        (every law here has a diagonal E[H]); 1 without sketches; NaN for rules outside the
        projected-step theory. The gap to lambda_min^p is what anisotropic sketches give away."""
        if not self.spec.rule.theory:
            return math.nan
        if not self.spec.sketched:
            return 1.0
        hb = self.sketch_left.expected_H_diag(problem.m, self.rank)
        ha = self.sketch_right.expected_H_diag(problem.n, self.rank)
        if hb is None or ha is None:
            return math.nan
        return float(self.p * np.mean(hb) + (1 - self.p) * np.mean(ha))

    @property
    def capabilities(self) -> frozenset:
        """What this configured method offers theorems, so they judge capabilities, never names:
        its estimator's (``Estimator.capabilities``: "additive-noise", "subgradient", ...), "polyak" or
        "constant-step" (its stepsize rule), "isotropic" (E[H] a multiple of I on both sides),
        "exact-gradient" (G^t = grad f(W^t)) and "tracks-error" (G^t kept across steps)."""
        est = self.estimator
        caps = set(est.capabilities()) - {"polyak"}
        caps.add("polyak" if self.stepsize == "polyak" else "constant-step")
        if self.isotropic:
            caps.add("isotropic")
        if est.exact:
            caps.add("exact-gradient")
        if est.tracks_error:
            caps.add("tracks-error")
        return frozenset(caps)

    @property
    def isotropic(self) -> bool:
        return not self.spec.sketched or (self.sketch_left.isotropic and self.sketch_right.isotropic)

    def params(self) -> dict[str, Any]:
        """Flat parameters (for tables and hashing)."""
        out = dict(method=self.name, p=self.p, rank=self.rank, sketch=self.sketch_name,
                   stepsize=self.stepsize, factor=self.factor)
        out.update({k: v for k, v in self.sketch_params.items() if k not in SKETCH_EXTRA})
        for key in self.spec.rule.extra:
            out[key] = getattr(self, key)
        out.update(self.estimator.params)
        return out

    def __repr__(self):
        return f"Method({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"

    # ------------------------------------------------------------------ step
    def direction(self, G, t: int, streams, W=None, gamma: float = 1.0):
        """S_t(G) for every seed: H_B G with probability p, G H_A otherwise (one coin per seed).

        With both sides possible, the two rank-r candidates are merged into one rank-2r product
        [c Q_L, (1-c) G Q_R] @ [Q_L^T G; Q_R^T] (c the coin), so no full-size select pass is needed.
        Given ``W``, returns W - gamma S_t(G) instead, with gamma folded into the thin factor.
        """
        if not self.spec.sketched:
            return G
        xp = streams.backend.xp
        m, n = G.shape[-2:]
        skl, skr = self.sketch_left, self.sketch_right
        if self.p == 1.0:
            return project_left(skl.basis(skl.sample(streams, 2 * t, m, self.rank), xp), G, skl.diagonal)
        if self.p == 0.0:
            return project_right(skr.basis(skr.sample(streams, 2 * t + 1, n, self.rank), xp), G, skr.diagonal)
        if skl.name == skr.name and skl.sliceable:
            # Each seed uses one side per step, so both sides may share one draw: the side in use
            # still has its law and is independent of the past and of the coin. With m = n they
            # share the QR as well.
            F = skl.sample(streams, 2 * t, max(m, n), self.rank)
            QL = skl.basis(F[:, :m] if n > m else F, xp)
            QR = QL if m == n else skr.basis(F[:, :n] if m > n else F, xp)
        else:
            QL = skl.basis(skl.sample(streams, 2 * t, m, self.rank), xp)
            QR = skr.basis(skr.sample(streams, 2 * t + 1, n, self.rank), xp)
        coin = xp.astype(streams.uniform("coin", t) < self.__dict__.get("coin_p", self.p), G.dtype)
        if skl.diagonal or skr.diagonal:
            left = project_left(QL, G, skl.diagonal)
            right = project_right(QR, G, skr.diagonal)
            d = right + coin[:, None, None] * (left - right)
            return d if W is None else W - gamma * d
        c = coin[:, None, None]
        scale = 1.0 if W is None else -gamma
        outer = xp.concat([QL * (scale * c), (G @ QR) * (scale * (1.0 - c))], axis=-1)   # (S, m, 2r)
        inner = xp.concat([QL.mT @ G, QR.mT], axis=-2)                                   # (S, 2r, n)
        if W is None:
            return outer @ inner
        return streams.backend.matmul_add(outer, inner, W)     # W + outer @ inner, add fused in the GEMM


def _parse_stepsize(stepsize, spec: MethodSpec):
    """"theory" (alias "constant"), "polyak" (the subgradient method only) or a positive number."""
    if stepsize == "constant":
        return "theory"          # the theorem's constant stepsize (NS-CONST: gamma*)
    if stepsize == "polyak":
        if "polyak" not in ESTIMATORS[spec.estimator].CAPABILITIES:
            raise InputError("stepsize", "polyak is the subgradient method's rule (bernoulli-lora-subgd); "
                             "accepted here: theory, constant or a positive number")
        return stepsize
    if isinstance(stepsize, str) and stepsize != "theory":
        try:
            stepsize = float(stepsize)
        except ValueError:
            raise InputError("stepsize", f"got {stepsize!r}; accepted: theory, constant, polyak or a "
                             "positive number") from None
    if isinstance(stepsize, str):
        return stepsize
    return check_range("stepsize", stepsize, 0.0, None, low_open=True)
