"""Compressors for the distributed methods (docs/THEORY.md 4.3, 4.6), batched over seeds and clients.

``compress(X, streams, step)`` takes X of shape (S, M, m, n) (M clients) and returns the compressed
array of the same shape; ``bits(d)`` is what one client sends for one d-entry message.

* Unbiased, U(omega): E Q(X) = X, E||Q(X) - X||^2 <= omega ||X||^2.
  ``randk`` (keep k of d entries uniformly, scale d/k): omega = d/k - 1 (with equality).
  ``dither`` (random dithering / QSGD with s levels): omega = min(d/s^2, sqrt(d)/s).
  ``identity``: omega = 0.
* Contractive, B(alpha): E||C(X) - X||^2 <= (1 - alpha) ||X||^2.
  ``topk`` (keep the k largest magnitudes): alpha = k/d. ``identity``: alpha = 1.

Bits: 32 per float and ceil(log2 d) per index; dithering sends the norm (32 bits) and, per entry, a
sign and a level (1 + ceil(log2(s + 1)) bits).
"""
from __future__ import annotations

import math
from typing import ClassVar

from .errors import InputError, check_range

COMPRESSORS: dict[str, type["Compressor"]] = {}


def register(cls):
    COMPRESSORS[cls.name] = cls
    return cls


class Compressor:
    name: ClassVar[str] = ""
    unbiased: ClassVar[bool] = True
    contractive: ClassVar[bool] = False

    def __init__(self, k: int | None = None, s: int | None = None, **_):
        self.k, self.s = k, s

    def _k(self, d: int) -> int:
        k = self.k if self.k is not None else max(1, d // 4)
        return check_range("k", k, 1, d, integer=True)

    def omega(self, d: int) -> float:
        return 0.0

    def alpha(self, d: int) -> float:
        return 1.0

    def bits(self, d: int) -> float:
        return 32.0 * d

    def compress(self, X, streams, step: int):
        return X

    def describe(self) -> str:
        return self.name


@register
class Identity(Compressor):
    """No compression: omega = 0, alpha = 1."""

    name = "identity"
    contractive = True


def _flat(X):
    S, M = X.shape[:2]
    return X.reshape(S, M, -1) if hasattr(X, "reshape") else X


def _mask_smallest_ranks(scores, k, xp):
    """1 where an entry's score ranks among the k smallest of its row, else 0 (no host sync)."""
    order = xp.argsort(scores, axis=-1)
    ranks = xp.argsort(order, axis=-1)
    return xp.astype(ranks < k, scores.dtype)


@register
class RandK(Compressor):
    """Keep k of the d = m n entries uniformly at random and scale by d/k: omega = d/k - 1."""

    name = "randk"

    def omega(self, d):
        return d / self._k(d) - 1.0

    def bits(self, d):
        return self._k(d) * (32.0 + math.ceil(math.log2(max(d, 2))))

    def compress(self, X, streams, step):
        xp = streams.backend.xp
        S, M = X.shape[:2]
        d = int(X.shape[2] * X.shape[3])
        k = self._k(d)
        u = streams.uniform("compression", step, (M, d))
        mask = _mask_smallest_ranks(u, k, xp)
        return X * xp.reshape(mask, X.shape) * (d / k)


@register
class Dither(Compressor):
    """Random dithering with s levels: Q(x) = ||x|| sign(x) xi / s, xi_i = floor(s|x_i|/||x|| + u_i).

    Unbiased; omega = min(d/s^2, sqrt(d)/s) (Alistarh et al. 2017, QSGD)."""

    name = "dither"

    def _s(self):
        return check_range("s", self.s if self.s is not None else 4, 1, 2 ** 20, integer=True)

    def omega(self, d):
        s = self._s()
        return min(d / s ** 2, math.sqrt(d) / s)

    def bits(self, d):
        return 32.0 + d * (1 + math.ceil(math.log2(self._s() + 1)))

    def compress(self, X, streams, step):
        xp = streams.backend.xp
        S, M, m, n = X.shape
        s = self._s()
        norm = xp.sqrt(xp.sum(X * X, axis=(-2, -1), keepdims=True))
        safe = xp.where(norm > 0, norm, xp.ones_like(norm))
        level = s * xp.abs(X) / safe
        u = xp.reshape(streams.uniform("compression", step, (M, m * n)), X.shape)
        xi = xp.floor(level + u)
        return xp.where(norm > 0, safe * xp.sign(X) * xi / s, xp.zeros_like(X))


@register
class TopK(Compressor):
    """Keep the k entries of largest magnitude: contractive with alpha = k/d (biased)."""

    name = "topk"
    unbiased = False
    contractive = True

    def alpha(self, d):
        return self._k(d) / d

    def bits(self, d):
        return self._k(d) * (32.0 + math.ceil(math.log2(max(d, 2))))

    def compress(self, X, streams, step):
        xp = streams.backend.xp
        S, M, m, n = X.shape
        k = self._k(m * n)
        flat = xp.reshape(X, (S, M, m * n))
        mask = _mask_smallest_ranks(-xp.abs(flat), k, xp)
        return X * xp.reshape(mask, X.shape)


def make_compressor(name: str, **params) -> Compressor:
    if name not in COMPRESSORS:
        raise InputError("compressor", f"unknown compressor {name!r}; accepted: {', '.join(COMPRESSORS)}")
    return COMPRESSORS[name](**params)
