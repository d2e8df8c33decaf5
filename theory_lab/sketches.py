"""Sketch distributions, their E[H], and projections applied without forming H (docs/THEORY.md 2).

A sketch law draws, for every seed at once, a factor of shape (S, d, r): ``B_S`` on the left
(d = m) or ``A_S^T`` on the right (d = n). Its ``basis`` is an orthonormal (S, d, r) matrix Q
with H = Q Q^T (columns of rank-deficient draws are zeroed), or, for diagonal laws, a 0/1 mask
(S, d) with H = Diag(mask). Projections cost O(m n r):

    left   H_B G = Q (Q^T G)          right   G H_A = (G Q) Q^T

and an m x m or n x n matrix is never formed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .errors import InputError

SKETCHES: dict[str, type["Sketch"]] = {}


def register(cls):
    """Register a sketch law (``tl.register_sketch``): ``Method(..., sketch=cls.name)`` then uses it."""
    if not (isinstance(cls, type) and issubclass(cls, Sketch) and cls.name):
        raise InputError("sketch", "register a subclass of tl.Sketch with a name")
    SKETCHES[cls.name] = cls
    return cls


@dataclass(frozen=True)
class SideMoments:
    """Extreme eigenvalues of E[H] on one side; ``err`` bounds their error (0 when exact)."""

    lam_min: float
    lam_max: float
    err: float = 0.0
    exact: bool = True


class Sketch:
    """A sketch law for one side: the distribution of H_B (left) or H_A (right).

    Subclass it for a law of your own (``tl.Sketch``) and register it (``tl.register_sketch``):
    set ``name``; implement ``sample(streams, step, d, r)`` returning every seed's factor at once
    (seeds on the leading axis: (S, d, r), or an (S, d) 0/1 mask with ``diagonal = True``), drawn from
    the counter-based streams (``streams.uniform("sketch", step, shape)`` / ``streams.normal(...)``: the
    draw of step t is a function of (master seed, seed index, step), so batched and solo runs agree);
    give ``moments(d, r)`` (lambda_min and lambda_max of E[H], ``SideMoments``) and
    ``expected_H_diag(d, r)`` (diag E[H]). ``isotropic`` says E[H] is a multiple of I (a property
    when it depends on the law's parameters). ``PARAMS`` declares the law's own parameters
    (``params.Param``: range, meaning, the corners where theory is attained); ``tl.Method`` accepts them
    as keywords (``sketch="mylaw", skew=0.5``), both sides read them from ``self.params``, and the
    falsification engine draws them.
    """

    name: ClassVar[str] = ""
    diagonal: ClassVar[bool] = False
    isotropic: ClassVar[bool] = True
    #: drawn by the falsification engine (a law meant as a negative control is not)
    fuzz: ClassVar[bool] = True
    #: the law's own parameters (``params.Param``), passed as keywords of ``tl.Method``
    PARAMS: ClassVar[tuple] = ()
    #: iid entries: the first d rows of a draw for d' >= d are a draw for d
    sliceable: ClassVar[bool] = False

    def __init__(self, side: str = "left", **params):
        self.side = side
        self.params = params

    def sample(self, streams, step: int, d: int, r: int):
        """Factor for every seed: (S, d, r) (diagonal laws: 0/1 mask (S, d))."""
        raise NotImplementedError

    def basis(self, factor, xp):
        """Orthonormal Q (S, d, r) of the factor's column space (or the mask itself)."""
        return orthonormal_basis(factor, xp)

    def moments(self, d: int, r: int) -> SideMoments:
        """lambda_min and lambda_max of E[H] (exact where docs/THEORY.md gives them)."""
        return SideMoments(min(r, d) / d, min(r, d) / d)

    def expected_H_diag(self, d: int, r: int) -> np.ndarray | None:
        """diag(E H) when E H is diagonal (all laws here but the degenerate one is a multiple of I)."""
        return np.full(d, min(r, d) / d)

    def dense(self, factor) -> np.ndarray:
        """The factor as a host matrix (S, d, r) (for the factor view)."""
        return np.asarray(factor)


# ---------------------------------------------------------------------------- laws
@register
class Gaussian(Sketch):
    """Entries iid N(0, 1); E H = (r/d) I exactly."""

    name = "gaussian"
    sliceable = True

    def sample(self, streams, step, d, r):
        return streams.normal("sketch", step, (d, r))


@register
class Orthogonal(Sketch):
    """Haar-orthonormal: the Q factor of a Gaussian d x r; same law of H as Gaussian."""

    name = "orthogonal"

    def sample(self, streams, step, d, r):
        return streams.backend.xp.linalg.qr(streams.normal("sketch", step, (d, r))).Q

    def basis(self, factor, xp):
        return factor


@register
class Rademacher(Sketch):
    """Entries iid +-1; E H = (E rank / d) I. Rank-deficient draws are handled by a thin SVD."""

    name = "rademacher"
    sliceable = True

    def sample(self, streams, step, d, r):
        u = streams.uniform("sketch", step, (d, r))
        return 2.0 * streams.backend.xp.astype(u < 0.5, u.dtype) - 1.0

    def basis(self, factor, xp):
        U, s, _ = xp.linalg.svd(factor, full_matrices=False)
        d, r = factor.shape[-2:]
        eps = float(xp.finfo(s.dtype).eps)
        keep = s > (max(d, r) * eps) * s[..., :1]
        return U * xp.astype(keep, U.dtype)[..., None, :]

    def moments(self, d, r):
        er, err = expected_rank_rademacher(d, r)
        return SideMoments(er / d, er / d, err / d, exact=err == 0.0)

    def expected_H_diag(self, d, r):
        return np.full(d, expected_rank_rademacher(d, r)[0] / d)


@register
class Coordinate(Sketch):
    """Columns of I_d indexed by a uniform r-subset; E H = (r/d) I, H = Diag(mask)."""

    name = "coordinate"
    diagonal = True

    def sample(self, streams, step, d, r):
        xp = streams.backend.xp
        u = streams.uniform("sketch", step, (d,))
        order = xp.argsort(u, axis=-1)
        ranks = xp.argsort(order, axis=-1)          # rank of each coordinate among the d draws
        return xp.astype(ranks < r, u.dtype)

    def basis(self, factor, xp):
        return factor

    def dense(self, factor):
        mask = np.asarray(factor)
        out = np.zeros(mask.shape + (int(mask[0].sum()),))
        for s in range(mask.shape[0]):
            idx = np.flatnonzero(mask[s])
            out[s, idx, np.arange(len(idx))] = 1.0
        return out


@register
class Stratified(Sketch):
    """Partition [d] into r contiguous groups; one uniform index per group (anisotropic).

    ``groups``: group sizes for this side (default: ``np.array_split`` of d into r groups).
    E H = Diag(pi), pi_i = 1/|G_k| for i in G_k; lambda_min = 1/max|G_k|, lambda_max = 1/min|G_k|.
    """

    name = "stratified"
    diagonal = True
    isotropic = False

    def _sizes(self, d, r):
        sizes = self.params.get("groups")
        if sizes is None:
            return [len(a) for a in np.array_split(np.arange(d), r)]
        if sum(sizes) != d or len(sizes) != r or min(sizes) < 1:
            raise InputError("groups", f"group sizes {sizes} must be r={r} positive sizes summing to d={d}")
        return list(sizes)

    def sample(self, streams, step, d, r):
        xp = streams.backend.xp
        sizes_dev, starts_dev, cols = streams.constant(("stratified", d, r), lambda: self._layout(streams, d, r))
        u = streams.uniform("sketch", step, (r,))
        pick = xp.astype(xp.floor(u * sizes_dev), xp.int64) + starts_dev
        # one-hot rows summed: mask[s, pick[s, k]] = 1
        return xp.astype(xp.any(pick[:, :, None] == cols[None, None, :], axis=1), u.dtype)

    def _layout(self, streams, d, r):
        sizes = self._sizes(d, r)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        bk = streams.backend
        return bk.asarray(np.asarray(sizes, float)), bk.as_int(starts), bk.as_int(np.arange(d))

    def basis(self, factor, xp):
        return factor

    dense = Coordinate.dense

    def moments(self, d, r):
        sizes = self._sizes(d, r)
        return SideMoments(1 / max(sizes), 1 / min(sizes))

    def expected_H_diag(self, d, r):
        return np.concatenate([np.full(s, 1 / s) for s in self._sizes(d, r)])


@register
class Degenerate(Sketch):
    """Negative control: the fixed first r columns of I_d. E H = H, lambda_min = 0 when r < d."""

    name = "degenerate"
    diagonal = True
    isotropic = False
    fuzz = False

    def sample(self, streams, step, d, r):
        def build():
            mask = np.zeros(d)
            mask[:r] = 1.0
            return streams.backend.asarray(np.broadcast_to(mask, (streams.n_seeds, d)).copy())
        return streams.constant(("degenerate", d, r), build)

    def basis(self, factor, xp):
        return factor

    dense = Coordinate.dense

    def moments(self, d, r):
        return SideMoments(0.0 if r < d else 1.0, 1.0)

    def expected_H_diag(self, d, r):
        mask = np.zeros(d)
        mask[:r] = 1.0
        return mask


# ---------------------------------------------------------------------------- helpers
def orthonormal_basis(B, xp):
    """Q with orthonormal columns spanning col(B), B of shape (S, d, r) and full column rank.

    Householder QR in general. On the CPU with r <= 2, classical Gram-Schmidt applied twice (CGS2:
    orthogonal to working precision for full-rank B; Giraud et al. 2005): a few whole-stack passes
    instead of S small QRs (4x faster at S = 384, no slower at S = 8). On CUDA with r <= d/4, CholeskyQR2 (two passes of
    Q = B chol(B^T B)^{-T}): a few batched GEMMs and r x r factorisations instead of S small
    Householder QRs. Safe for iid Gaussian factors there: cond(B) ~ (sqrt d + sqrt r)/(sqrt d - sqrt r)
    <= 3, and the second pass restores orthogonality to working precision (Yamamoto et al. 2015).
    """
    d, r = B.shape[-2:]
    if r <= 2 and not getattr(B, "is_cuda", False):
        return _gram_schmidt2(B, xp)
    if getattr(B, "is_cuda", False) and 4 * r <= d:
        import torch

        Q = B
        for _ in range(2):
            L = torch.linalg.cholesky_ex(Q.mT @ Q).L      # _ex: no host sync for the error check
            Q = torch.linalg.solve_triangular(L, Q.mT, upper=False).mT
        return Q
    return xp.linalg.qr(B).Q


def _gram_schmidt2(B, xp):
    """Q of B (S, d, r) with r <= 2 by CGS2; every seed's Q depends on its own B alone."""
    b1 = B[..., 0]
    q1 = b1 / xp.sqrt(xp.vecdot(b1, b1))[:, None]
    if B.shape[-1] == 1:
        return q1[..., None]
    b2 = B[..., 1]
    v = b2 - xp.vecdot(q1, b2)[:, None] * q1
    v = v - xp.vecdot(q1, v)[:, None] * q1                 # the second pass restores orthogonality
    v = v / xp.sqrt(xp.vecdot(v, v))[:, None]
    return xp.stack([q1, v], axis=-1)


def get_sketch(name: str, side: str = "left", **params) -> Sketch:
    if name not in SKETCHES:
        raise InputError("sketch", f"unknown sketch {name!r}; accepted: {', '.join(SKETCHES)}")
    return SKETCHES[name](side=side, **params)


def law_parameters(spec: str) -> tuple[str, ...]:
    """The parameters the laws named in ``spec`` ("LAW" or "LEFT/RIGHT") declare (``Sketch.PARAMS``)."""
    names: list[str] = []
    for side in str(spec).split("/"):
        for p in getattr(SKETCHES.get(side), "PARAMS", ()):
            if p.name not in names:
                names.append(p.name)
    return tuple(names)


def declared_law_parameters() -> tuple[str, ...]:
    """Every parameter any registered law declares."""
    return tuple(dict.fromkeys(p.name for cls in SKETCHES.values() for p in cls.PARAMS))


def parse_sketch(spec: str, **params) -> tuple[Sketch, Sketch]:
    """``"gaussian"`` (both sides) or ``"LEFT/RIGHT"`` such as ``"degenerate/gaussian"``; a law's own
    declared parameters (``Sketch.PARAMS``) are handed to each side whose law declares them."""
    left, _, right = str(spec).partition("/")
    right = right or left
    lp = {"groups": params["left_groups"]} if params.get("left_groups") is not None else {}
    rp = {"groups": params["right_groups"]} if params.get("right_groups") is not None else {}
    for side, own in ((left, lp), (right, rp)):
        for p in getattr(SKETCHES.get(side), "PARAMS", ()):
            if params.get(p.name) is not None:
                own[p.name] = params[p.name]
    return get_sketch(left, "left", **lp), get_sketch(right, "right", **rp)


def project_left(basis, G, diagonal: bool):
    """H_B G for every seed: Q (Q^T G), or rows masked."""
    if diagonal:
        return basis[:, :, None] * G
    return basis @ (basis.mT @ G)


def project_right(basis, G, diagonal: bool):
    """G H_A for every seed: (G Q) Q^T, or columns masked."""
    if diagonal:
        return G * basis[:, None, :]
    return (G @ basis) @ basis.mT


_RANK_CACHE: dict[tuple[int, int], tuple[float, float]] = {}


def expected_rank_rademacher(d: int, r: int, draws: int = 20_000, delta: float = 1e-3) -> tuple[float, float]:
    """E[rank] of a d x r matrix of iid +-1 and an error bound (0 when exact).

    Exact: r = 1 gives 1, r = 2 gives 2 - 2^(1-d) (docs/THEORY.md 2). Otherwise Monte Carlo over
    ``draws`` matrices (fixed seed), with the Hoeffding half-width (r - 1) sqrt(log(2/delta)/(2K))
    (rank lies in [1, min(d, r)]) at confidence 1 - delta.
    """
    r = min(r, d) if r <= d else r
    if r == 1 or d == 1:
        return 1.0, 0.0
    if r == 2:
        return 2.0 - 2.0 ** (1 - d), 0.0
    key = (d, r)
    if key not in _RANK_CACHE:
        rng = np.random.default_rng([d, r, 7])
        ranks = np.empty(draws)
        chunk = 2000
        for i in range(0, draws, chunk):
            M = rng.choice([-1.0, 1.0], size=(min(chunk, draws - i), d, r))
            ranks[i:i + chunk] = np.linalg.matrix_rank(M)
        width = (min(d, r) - 1) * math.sqrt(math.log(2 / delta) / (2 * draws))
        _RANK_CACHE[key] = (float(ranks.mean()), width)
    return _RANK_CACHE[key]


def lambda_bounds(sketch="gaussian", m: int = 8, n: int = 8, rank: int = 1, p: float = 0.5,
                  conservative: bool = False, **params) -> tuple[float, float]:
    """(lambda_min^p, lambda_max^p) = p * side_B + (1 - p) * side_A (Lemma 1).

    With ``conservative`` the Monte Carlo error is subtracted from lambda_min and added to
    lambda_max (every bound decreases in lambda and increases in Lambda).
    """
    lam, Lam, err = lambda_moments(sketch, m, n, rank, p, **params)
    if conservative:
        lam, Lam = max(lam - err, 0.0), min(Lam + err, 1.0)
    return lam, Lam


def lambda_moments(sketch="gaussian", m: int = 8, n: int = 8, rank: int = 1, p: float = 0.5,
                   **params) -> tuple[float, float, float]:
    """(lambda_min^p, lambda_max^p, Monte Carlo error radius of both; 0 where exact), point values."""
    left, right = sketch if isinstance(sketch, tuple) else parse_sketch(sketch, **params)
    mb, ma = left.moments(m, rank), right.moments(n, rank)
    return (p * mb.lam_min + (1 - p) * ma.lam_min, p * mb.lam_max + (1 - p) * ma.lam_max,
            p * mb.err + (1 - p) * ma.err)


def lambda_min(sketch="gaussian", m: int = 8, n: int = 8, rank: int = 1, p: float = 0.5, **params) -> float:
    """lambda_min^p = p lambda_min(E H_B) + (1 - p) lambda_min(E H_A) (docs/THEORY.md 1.3)."""
    return lambda_bounds(sketch, m, n, rank, p, **params)[0]


def lambda_max(sketch="gaussian", m: int = 8, n: int = 8, rank: int = 1, p: float = 0.5, **params) -> float:
    """lambda_max^p = p lambda_max(E H_B) + (1 - p) lambda_max(E H_A)."""
    return lambda_bounds(sketch, m, n, rank, p, **params)[1]


def monte_carlo_EH(sketch: Sketch, d: int, r: int, draws: int, seed: int = 0, delta: float = 0.01,
                   v: float = 1.0, backend=None) -> tuple[np.ndarray, float]:
    """Monte Carlo E[H] = mean Q Q^T over ``draws`` sketches, and the matrix-Bernstein radius.

    With probability >= 1 - delta, ||E_hat - E H||_2 <= eps = sqrt(2 v log(2d/delta)/K)
    + 2 log(2d/delta)/(3K) (docs/THEORY.md 2), v >= lambda_max(E H) (v = 1 always valid).
    """
    from .backend import get_backend
    from .backend.random import Streams

    bk = get_backend(backend or "numpy")
    xp = bk.xp
    streams = Streams(bk, seed, np.arange(draws))
    Q = sketch.basis(sketch.sample(streams, 0, d, r), xp)
    Qh = bk.to_numpy(Q)
    E = np.diag(Qh.mean(axis=0)) if sketch.diagonal else np.einsum("kir,kjr->ij", Qh, Qh) / draws
    L = math.log(2 * d / delta)
    eps = math.sqrt(2 * v * L / draws) + 2 * L / (3 * draws)
    return E, eps


def trained_factor(factor: np.ndarray, G: np.ndarray, gamma: float, side: str, alpha: float = 1.0):
    """The closed-form LoRA factor of one step (docs/THEORY.md 1.2), for one seed, host arrays.

    Left (B = factor, d x r, frozen): A_hat = -gamma (r/alpha) lstsq(B, G) (min-norm), and the
    merged increment (alpha/r) B A_hat. Right (A^T = factor, n x r): B_hat = -gamma (r/alpha)
    lstsq(A^T, G^T)^T, merged (alpha/r) B_hat A. Returns (trained factor, merged increment).
    """
    r = factor.shape[1]
    if side == "left":
        A_hat = -gamma * (r / alpha) * np.linalg.lstsq(factor, G, rcond=None)[0]
        return A_hat, (alpha / r) * factor @ A_hat
    B_hat = -gamma * (r / alpha) * np.linalg.lstsq(factor, G.T, rcond=None)[0].T
    return B_hat, (alpha / r) * B_hat @ factor.T
