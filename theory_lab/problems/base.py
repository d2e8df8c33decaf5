"""The Problem interface: a smooth (or non-smooth) objective on W in R^{m x n}.

A problem holds its data on the host (numpy float64) and, once bound to a backend with
:meth:`Problem.bind`, evaluates value and gradient on batches ``W`` of shape (S, m, n).
Constants follow docs/THEORY.md section 3.
"""
from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np

from ..backend import Backend, get_backend
from ..errors import InputError, check_range
from ..params import Context, Param, check_all, draw_all

FAMILIES: dict[str, type["Problem"]] = {}


def register(cls):
    """Class decorator: make the family available under ``cls.family``."""
    FAMILIES[cls.family] = cls
    return cls


#: what every finite sum accepts: its clients (shards) and how samples are dealt to them
FINITE_SUM_PARAMS = (
    Param("clients", valid=(1, 100_000), integer=True, default=1, fuzz=False, doc="clients M (equal shards)"),
    Param("split", choices=("homogeneous", "heterogeneous"), default="homogeneous", fuzz=False,
          doc="random shards, or samples sorted by the family's heterogeneity key"))


class Problem:
    """Base class of the problem families.

    Attributes (host, numpy float64)
    --------------------------------
    m, n : shape of W
    W0 : (m, n) initial point
    W_star : (m, n) a minimiser, or None
    f_star : optimal value if known (PL problems), else None
    f_lb : a valid lower bound on f (used as f^inf); equals f_star when that is known
    L : smoothness constant
    mu : PL constant or None when PL is not claimed
    n_samples : number of summands N for finite sums, else None
    L_i, L_max, L_tilde, L_pm, delta_inf : finite-sum constants (docs/THEORY.md section 3)

    Finite sums also accept ``clients`` M (default 1) and ``split`` ("homogeneous": a random
    partition; "heterogeneous": samples sorted by the family's ``heterogeneity_key`` then cut into
    contiguous shards). Shards have equal sizes, so mean_i f_i = f (docs/THEORY.md 3(h)). Client constants:
    ``client_L`` (M,), ``client_L_max``, ``client_L_tilde`` (mean-square over clients), ``client_delta_inf``.
    """

    family: ClassVar[str] = ""
    #: declared parameters (``params.Param``): the one declaration of each parameter's accepted range
    #: (validated on construction), default, meaning, and the range and corners the falsification
    #: engine draws (:meth:`fuzz_params`)
    PARAMS: ClassVar[tuple] = ()
    #: parameter name -> default (built from ``PARAMS``)
    defaults: ClassVar[dict[str, Any]] = {}
    #: the largest (m, n) the falsification engine draws
    fuzz_shape: ClassVar[tuple[int, int]] = (12, 12)

    #: default (m, n) of the family
    shape: ClassVar[tuple[int, int]] = (8, 8)
    #: a finite sum (1/N) sum_i f_i with per-sample gradients (minibatches, clients)
    finite_sum: ClassVar[bool] = False
    #: L-smooth (False: non-smooth convex, subgradients, L_0 instead of L)
    smooth: ClassVar[bool] = True
    #: f = 1/2 ||W - W*||^2 + f* (the exact results of docs/THEORY.md 5.1-5.2 hold)
    isotropic_quadratic: ClassVar[bool] = False
    #: f homogeneous around W*: <g, W - W*> = f(W) - f* for every subgradient g (docs/THEORY.md 5.5)
    homogeneous: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "PARAMS" in cls.__dict__:
            cls.defaults = {p.name: p.default for p in cls.PARAMS}

    @classmethod
    def fuzz_params(cls, rng, corner: bool = False) -> dict | None:
        """Parameters of a random small instance for the falsification engine: a shape up to
        ``fuzz_shape`` and every ``PARAMS`` declaration drawn, corners (e.g. isotropic spectra) with
        their declared mass; ``corner``: every parameter at its corner. None (not drawn) for a family
        that declares no parameters."""
        if not cls.PARAMS:
            return None
        out = cls._fuzz_shape(rng)
        out.update(draw_all(cls.PARAMS, rng, Context(out["m"], out["n"]), corner=corner))
        return out

    @classmethod
    def _fuzz_shape(cls, rng) -> dict:
        m_max, n_max = cls.fuzz_shape
        return dict(m=int(rng.integers(2, m_max + 1)), n=int(rng.integers(2, n_max + 1)),
                    seed=int(rng.integers(0, 10_000)))

    def validate(self) -> None:
        """Check every declared parameter against its declaration (InputError naming it); families add
        the checks that tie parameters together."""
        check_all(self.PARAMS, {k: v for k, v in self.params.items() if k in self.defaults},
                  Context(self.m, self.n, self.params.get("n_samples")))

    def __init__(self, m: int | None = None, n: int | None = None, seed: int = 0, **params):
        m = self.shape[0] if m is None else m
        n = self.shape[1] if n is None else n
        accepted_keys = set(self.defaults) | ({"clients", "split"} if self.finite_sum else set())
        unknown = set(params) - accepted_keys
        if unknown:
            accepted = ", ".join(["m", "n", "seed", *sorted(accepted_keys)])
            raise InputError(sorted(unknown)[0], f"unknown parameter of {self.family}; accepted: {accepted}")
        self.m = check_range("m", m, 1, 100_000, integer=True)
        self.n = check_range("n", n, 1, 100_000, integer=True)
        self.seed = check_range("seed", seed, 0, None, integer=True)
        self.params = {**self.defaults, **params}
        self.clients = 1
        if self.finite_sum:
            given = check_all(FINITE_SUM_PARAMS, {"clients": 1, **{k: v for k, v in params.items()
                                                                    if k in ("clients", "split")}})
            self.clients = given["clients"]
        self.validate()
        self._build_or_load()
        freeze_arrays(self)                 # the data is read-only: its fingerprint stays true

    def _build_or_load(self) -> None:
        from . import cache

        if cache.cache_dir() is None:
            self._build_all()
            return
        key = cache.problem_key(self)
        state = cache.load(key)
        if state is None:
            with cache.building(key, self.host_bytes()):   # a large build under way elsewhere: wait, load
                state = cache.load(key)
                if state is None:
                    start = time.perf_counter()
                    self._build_all()
                    if time.perf_counter() - start >= cache.min_seconds():
                        self.fingerprint()
                        cache.store(key, self.__getstate__())
                    return
        state.pop("_cache_key", None)
        self.__dict__.update(state)

    def _build_all(self) -> None:
        """Generate data and constants (``build``), shards, and check them."""
        _check_host_memory(self)
        self.W_star: np.ndarray | None = None
        self.f_star: float | None = None
        self.mu: float | None = None
        self.n_samples: int | None = None
        self.L_i = self.L_max = self.L_tilde = self.L_pm = self.delta_inf = None
        self.L_0: float | None = None
        rng = np.random.default_rng([self.seed, _family_tag(self.family)])
        try:
            with np.errstate(over="raise", invalid="raise"):
                self.build(rng)
        except (np.linalg.LinAlgError, FloatingPointError, OverflowError) as exc:
            raise InputError("problem", f"{self.describe()} cannot be built in float64 ({exc}); "
                             "its parameters are out of the representable range") from None
        if self.f_star is not None and not hasattr(self, "f_lb"):
            self.f_lb = self.f_star
        self.shards = None
        self.client_L = self.client_L_max = self.client_L_tilde = self.client_delta_inf = None
        if self.finite_sum:
            self._make_shards(rng)
        self.bk: Backend | None = None
        self.dev: dict[str, Any] = {}
        self._check_finite()

    def _make_shards(self, rng):
        M, N = self.clients, self.n_samples
        if N % M:
            raise InputError("clients", f"{M} clients must divide n_samples = {N} (equal shards)")
        if self.params.get("split", "homogeneous") == "homogeneous":
            order = rng.permutation(N)
        else:
            order = np.argsort(self.heterogeneity_key(), kind="stable")
        self.shards = order.reshape(M, N // M)
        self.client_constants()

    def heterogeneity_key(self) -> np.ndarray:
        """Per-sample score whose sorting makes heterogeneous shards."""
        return np.arange(self.n_samples)

    def client_constants(self) -> None:
        """Client smoothness constants; the generic version uses L_tilde <= sqrt(mean L_i^2) and
        delta_inf <= f^inf (every f_i >= 0 in the families here); families refine it."""
        L = np.array([self.L_i[s].max() for s in self.shards])    # valid, usually loose
        self.client_L, self.client_L_max = L, float(L.max())
        self.client_L_tilde = float(np.sqrt(np.mean(L ** 2)))
        self.client_delta_inf = self.delta_inf

    # -------------------------------------------------------------- to override
    def host_bytes(self) -> int:
        """About how many bytes the built problem holds on the host (checked before building)."""
        N = int(self.params.get("n_samples", 0) or 0)
        return 8 * (8 * self.m * self.n + 2 * N * (self.m + self.n))

    def build(self, rng: np.random.Generator) -> None:
        """Generate the data and constants (host)."""
        raise NotImplementedError

    def host_arrays(self) -> dict[str, np.ndarray]:
        """Arrays needed on the device by value/grad."""
        return {}

    def value(self, W):
        """f(W) for W of shape (S, m, n) -> (S,)."""
        raise NotImplementedError

    def grad(self, W):
        """Gradient (or a subgradient) of f at W, shape (S, m, n)."""
        raise NotImplementedError

    def f_gap(self, W):
        """f(W) - f* (or f(W) - f_lb when f* is unknown), shape (S,)."""
        return self.value(W) - (self.f_star if self.f_star is not None else self.f_lb)

    def grad_and_gap(self, W):
        """(grad f(W), f_gap(W)); quadratics share the work."""
        G = self.grad(W)
        return G, self.f_gap_given_grad(W, G)

    def grad_gap_diff(self, W):
        """``grad_and_gap`` and W - W* where forming them formed it anyway (else None), so that the
        ``dist_sq`` metric does not subtract again."""
        return (*self.grad_and_gap(W), None)

    def gap_resolution(self, eps: float = 2.220446049250313e-16) -> float:
        """Absolute accuracy of ``f_gap`` at machine epsilon ``eps``: the iterate's own rounding floor
        (``_iterate_floor``), and where the family evaluates f(W) - f* by subtraction (it does not
        override ``f_gap``) the rounding of that difference, about 64 eps |f*| (sums of N terms lose
        a few more bits than eps)."""
        ref = float((self.f_star if self.f_star is not None else self.f_lb) or 0.0)
        subtraction = 64.0 * eps * abs(ref) if type(self).f_gap is Problem.f_gap and math.isfinite(ref) else 0.0
        return max(self._iterate_floor(eps), subtraction)

    def _iterate_floor(self, eps: float) -> float:
        """The gap an iterate cannot go below: W is stored to about eps |W| per entry, so near W* the
        gap is resolved only down to L/2 (16 eps)^2 (||W*||^2 + ||W0||^2) (L-smooth f, W* known)."""
        if self.W_star is None or not self.smooth:
            return 0.0
        size = float(np.sum(self.W_star ** 2) + np.sum(self.W0 ** 2))
        return 0.5 * float(self.L) * (16.0 * eps) ** 2 * size

    def f_gap_given_grad(self, W, grad):
        """f_gap when the exact gradient at W is already known (quadratics reuse it)."""
        return self.f_gap(W)

    def client_grads(self, W):
        """Per-client gradients grad f_i(W), shape (S, M, m, n) (clients as a batch axis)."""
        S = W.shape[0]
        idx = self.dev_int["shards"]
        return self.minibatch_grad(W, self.bk.xp.broadcast_to(idx[None], (S,) + tuple(idx.shape)))

    def gather_rows(self, idx, *names):
        """Rows ``idx`` (S, ..., b) of the device arrays ``names``, each as (S, K, b, row...), where K is
        the product of the middle axes; returns (middle shape, arrays). Used by ``minibatch_grad``."""
        xp = self.bk.xp
        S, mid, b = idx.shape[0], tuple(idx.shape[1:-1]), idx.shape[-1]
        K = int(np.prod(mid)) if mid else 1
        flat = xp.reshape(idx, (-1,))
        rows = [xp.reshape(xp.take(self.dev[nm], flat, axis=0), (S, K, b) + tuple(self.dev[nm].shape[1:]))
                for nm in names]
        return mid, rows

    def minibatch_grad(self, W, idx):
        """Mean of the summands' gradients over the last axis of ``idx`` (S, ..., b) -> (S, ..., m, n)."""
        raise InputError("problem", f"{self.family} is not a finite sum; minibatch sampling needs "
                         "least-squares or linreg-noncvx (or use noise='additive')")

    # -------------------------------------------------------------- shared
    @property
    def is_pl(self) -> bool:
        return self.mu is not None and self.f_star is not None

    @property
    def is_finite_sum(self) -> bool:
        return self.n_samples is not None

    @property
    def delta0(self) -> float:
        """f(W0) - f^inf (f* under PL, else the lower bound f_lb)."""
        return float(self.f_value_host(self.W0)) - (self.f_star if self.is_pl else self.f_lb)

    def f_value_host(self, W: np.ndarray) -> float:
        """f at one host matrix W (m, n), evaluated on the numpy backend."""
        p = self if self.bk is not None and self.bk.name == "numpy" and self.bk.dtype == "float64" \
            else self.bind(get_backend("numpy"))
        return float(p.value(np.asarray(W, dtype=np.float64)[None])[0])

    def f_gap_host(self, W: np.ndarray) -> float:
        p = self if self.bk is not None and self.bk.name == "numpy" and self.bk.dtype == "float64" \
            else self.bind(get_backend("numpy"))
        return float(p.f_gap(np.asarray(W, dtype=np.float64)[None])[0])

    def grad_host(self, W: np.ndarray) -> np.ndarray:
        p = self.bind(get_backend("numpy"))
        return p.grad(np.asarray(W, dtype=np.float64)[None])[0]

    def bind(self, backend) -> "Problem":
        """A shallow copy whose arrays live on ``backend`` (cached per backend)."""
        backend = get_backend(backend)
        if self.bk == backend:
            return self
        cache = self.__dict__.setdefault("_bound", {})
        key = (backend.name, backend.device, backend.dtype)
        if key not in cache:
            clone = object.__new__(type(self))
            clone.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_bound"})
            clone.bk = backend
            clone.dev = {k: backend.asarray(v) for k, v in self.host_arrays().items()}
            clone.dev_int = {} if self.shards is None else {"shards": backend.as_int(self.shards)}
            cache[key] = clone
        return cache[key]

    def constants(self) -> dict[str, Any]:
        """The problem's constants, as handed to theorem bounds."""
        c = dict(L=self.L, mu=self.mu, f_star=self.f_star, f_lb=self.f_lb, m=self.m, n=self.n,
                 delta0=self.delta0, N=self.n_samples, L_max=self.L_max, L_tilde=self.L_tilde,
                 L_pm=self.L_pm, delta_inf=self.delta_inf, L0=self.L_0, M=self.clients,
                 client_L_max=self.client_L_max, client_L_tilde=self.client_L_tilde,
                 client_delta_inf=self.client_delta_inf, sigma2=getattr(self, "sigma2", None))
        if self.W_star is not None:
            c["dist0_sq"] = float(np.sum((self.W0 - self.W_star) ** 2))
        return c

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.family}(m={self.m}, n={self.n}, seed={self.seed}{', ' + extra if extra else ''})"

    def _check_finite(self):
        names = ("W0", "L", "mu", "f_star", "L_max", "L_tilde", "L_pm", "delta_inf") if self.smooth else ("W0", "L_0")
        for name in names:
            v = getattr(self, name, None)
            if v is None:
                continue
            v = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(v)) or (name == "L" and float(v) <= np.finfo(float).tiny):
                raise InputError(name, f"{self.describe()} gives {name} = {float(np.max(v)):.3g}, outside what "
                                 "float64 represents usefully; check the parameters")

    def fingerprint(self) -> str:
        """Hash of the built problem: family, shape, parameters and every array the objective uses
        (so an edited problem file or a changed generator never matches stale results)."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            import hashlib
            import json

            h = hashlib.sha256(json.dumps([self.family, self.m, self.n, self.seed, self.params], sort_keys=True,
                                          default=str).encode())
            for name, arr in sorted({**self.host_arrays(), "W0": self.W0}.items()):
                h.update(name.encode())
                h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
            cached = self.__dict__["_fingerprint"] = h.hexdigest()[:16]
        return cached

    def __getstate__(self):                   # pickled unbound: backends' arrays are rebuilt on demand
        state = {k: v for k, v in self.__dict__.items() if k != "_bound"}
        if state.get("bk") is not None:
            state.update(bk=None, dev={}, dev_int={})
        return state


def freeze_arrays(obj) -> None:
    """Make every numpy array ``obj`` holds (directly, or in a list, tuple or dict it holds) read-only,
    so no user function or caller can change a problem's data behind its fingerprint."""
    for v in vars(obj).values():
        for x in v.values() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else (v,):
            if isinstance(x, np.ndarray):
                x.setflags(write=False)


def _check_host_memory(problem) -> None:
    from ..backend import host_available_bytes

    need, have = problem.host_bytes(), host_available_bytes()
    if have is not None and need > have:
        raise InputError("m", f"{problem.describe()} needs about {need / 2**30:.1f} GiB to build; "
                         f"{have / 2**30:.1f} GiB available: choose smaller m, n or n_samples")


def _family_tag(name: str) -> int:
    return int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little") % (2**63)


def spectral_matrix(rng: np.random.Generator, d: int, eigs: np.ndarray) -> np.ndarray:
    """A symmetric d x d matrix with the given eigenvalues and Haar-random eigenvectors."""
    U, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (U * eigs) @ U.T


def positive_float(field: str, value, low=0.0, high=None, open_low=True) -> float:
    return check_range(field, value, low, high, low_open=open_low)


def finite_or_raise(field: str, value: float) -> float:
    if not math.isfinite(value):
        raise InputError(field, "is not finite")
    return value


def frob_inner(A, B, xp):
    """<A_s, B_s> for every seed s of (S, m, n) batches, in one pass."""
    S = A.shape[0]
    return xp.vecdot(xp.reshape(A, (S, -1)), xp.reshape(B, (S, -1)), axis=-1)
