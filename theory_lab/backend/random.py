"""Counter-based random streams, one per (seed, source), batched over seeds.

Each number is a pure function of ``(master seed, seed index k, source, step, position)``:
a 64-bit key per (master, k, source) is combined with the counter ``step * 2**32 + position``
and mixed twice with the SplitMix64 finaliser (Steele, Lea & Flood 2014; the constants of
Stafford's "variant 13"). Hence

* seed k's trajectory does not depend on how many seeds run beside it;
* every source of randomness (coin, sketch, sampling, noise, compression) has its own stream;
* the numbers are generated on the device, vectorised over all seeds, and are bit-identical on
  numpy and torch (CPU or CUDA): integer arithmetic is done in int64 with wrap-around, and
  logical shifts are emulated with masks. Uniforms carry 53 random bits; normals come from the
  Box-Muller transform of two such uniforms.

No generator of numpy or torch provides independent per-seed streams that can be advanced in one
vectorised call on both backends, which is why this small generator exists.
"""
from __future__ import annotations

import numpy as np

SOURCES = ("coin", "sketch", "sampling", "noise", "compression", "init", "switch")

_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_MASK64 = (1 << 64) - 1


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= (1 << 63) else c


_S_GOLDEN, _S_M1, _S_M2 = _signed(_GOLDEN), _signed(_M1), _signed(_M2)


def _srl(x, s: int):
    """Logical right shift of int64 values."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _mix(z):
    """SplitMix64 finaliser on an int64 array (wrapping arithmetic)."""
    z = (z ^ _srl(z, 30)) * _S_M1
    z = (z ^ _srl(z, 27)) * _S_M2
    return z ^ _srl(z, 31)


_U30, _U27, _U31, _U11 = (np.uint64(k) for k in (30, 27, 31, 11))
_UM1, _UM2 = np.uint64(_M1), np.uint64(_M2)


def _mix_u64(z):
    """SplitMix64 finaliser on a uint64 numpy array, in place (z is overwritten and returned):
    one scratch array instead of six fresh ones (large fresh arrays cost page faults)."""
    t = np.right_shift(z, _U30)
    z ^= t
    z *= _UM1
    np.right_shift(z, _U27, out=t)
    z ^= t
    z *= _UM2
    np.right_shift(z, _U31, out=t)
    z ^= t
    return z


def _mix_py(z: int) -> int:
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


def stream_keys(master_seed: int, seed_ids, source: str) -> np.ndarray:
    """The int64 key of each seed's stream for ``source`` (host array)."""
    src = SOURCES.index(source)
    base = _mix_py(_mix_py(int(master_seed) * _GOLDEN + 0x632BE59BD9B4E019) + src + 1)
    k = np.asarray(seed_ids, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(base) + (k + np.uint64(1)) * np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
        z = z ^ (z >> np.uint64(31))
    return z.view(np.int64)


class Streams:
    """Random streams for S seeds on a backend.

    Parameters
    ----------
    backend : Backend
    master_seed : int
    seed_ids : sequence of int, the global indices k of the seeds held (shape (S,))
    """

    def __init__(self, backend, master_seed: int, seed_ids):
        self.backend = backend
        self.master_seed = int(master_seed)
        self.seed_ids = np.asarray(seed_ids, dtype=np.int64)
        self.n_seeds = len(self.seed_ids)
        self._keys = {s: backend.as_int(stream_keys(master_seed, self.seed_ids, s)[:, None])
                      for s in SOURCES}
        self._arange = {}

    @classmethod
    def concat(cls, parts: list["Streams"]) -> "Streams":
        """The streams of several stream sets side by side (a batch of configurations): trajectory
        i draws exactly what it draws in its own set."""
        if len(parts) == 1:
            return parts[0]
        bk = parts[0].backend
        new = object.__new__(cls)
        new.backend, new.master_seed = bk, None
        new.seed_ids = np.concatenate([p.seed_ids for p in parts])
        new.n_seeds = len(new.seed_ids)
        cat = bk.xp.concat if hasattr(bk.xp, "concat") else bk.xp.concatenate
        new._keys = {s: cat([p._keys[s] for p in parts], axis=0) for s in SOURCES}
        new._arange = {}
        return new

    def constant(self, key, build):
        """A device constant built once per stream set (no host-to-device copy inside the loop)."""
        cache = self.__dict__.setdefault("_constants", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def _positions(self, n: int):
        if n not in self._arange:
            self._arange[n] = self.backend.as_int(np.arange(n, dtype=np.int64))
        return self._arange[n]

    def bits(self, source: str, step: int, n: int):
        """(S, n) int64 words, uniformly distributed over all 2**64 bit patterns."""
        key = self._keys[source]
        ctr = self._positions(n) + _offset(step)
        if self.backend.name == "numpy":
            # numpy: native uint64 arithmetic (logical shifts), the same bits as the int64 path
            with np.errstate(over="ignore"):
                k = key.view(np.uint64)
                z = _mix_u64(k + ctr.view(np.uint64) * np.uint64(_GOLDEN))    # a fresh (S, n) array
                z += k
                return _mix_u64(z).view(np.int64)
        z = _mix(key + ctr * _S_GOLDEN)
        return _mix(z + key)

    def uniform(self, source: str, step: int, shape=()):
        """(S, *shape) uniforms on [0, 1) with 53 random bits, in float64 then the backend dtype."""
        shape = tuple(shape)
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if self.backend.name == "torch":
            u = _torch_fn("uniform", self.backend)(self._keys[source], self._ctr(step, n))
        else:
            u = _unit_np(self.bits(source, step, n))
        return self._cast(self.backend.xp.reshape(u, (self.n_seeds,) + shape))

    def normal(self, source: str, step: int, shape=()):
        """(S, *shape) standard normals (Box-Muller on pairs of 53-bit uniforms)."""
        shape = tuple(shape)
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        half = (n + 1) // 2
        if self.backend.name == "torch":
            z = _torch_fn("normal", self.backend)(self._keys[source], self._ctr(step, 2 * half))
        else:
            z = _box_muller(self.bits(source, step, 2 * half), half, _unit_np, np)
        z = z if 2 * half == n else z[:, :n]
        return self._cast(self.backend.xp.reshape(z, (self.n_seeds,) + shape))

    def _ctr(self, step, n: int):
        return self._positions(n) + _offset(step)

    def _cast(self, x):
        xp = self.backend.xp
        return x if self.backend.dtype == "float64" else xp.astype(x, self.backend.fdtype)


def _offset(step):
    """The counter offset of a step: a Python int, or a 0-d int64 device tensor (a step inside a
    captured CUDA graph, where the step number lives on the device)."""
    return step * (1 << 32) if hasattr(step, "shape") else int(step) * (1 << 32)


# ------------------------------------------------------------------ numbers from words
def _unit_np(w, open_zero: bool = False):
    """Top 53 bits of int64 words as float64 in [0, 1) (or (0, 1] with ``open_zero``); numpy."""
    top = (w.view(np.uint64) >> _U11).astype(np.float64)
    return (top + 1.0) * (2.0 ** -53) if open_zero else top * (2.0 ** -53)


def _unit_torch(w, open_zero: bool = False):
    import torch

    top = _srl(w, 11).to(torch.float64)
    return (top + 1.0) * (2.0 ** -53) if open_zero else top * (2.0 ** -53)


def _box_muller(w, half: int, unit, xp):
    """Normals from 2*half words per seed: radius from the first half, angle from the second."""
    u1 = unit(w[:, :half], open_zero=True)            # (0, 1]
    u2 = unit(w[:, half:])                            # angle / pi, in [0, 1)
    radius = xp.sqrt(-2.0 * xp.log(u1))
    cos = xp.cos(np.pi * u2)                           # angle in [0, pi): cheap range reduction
    # the sine's sign comes from the lowest bit of the angle word (unused by the 53-bit uniform)
    sign = 1.0 - 2.0 * (w[:, half:] & 1)
    sin = sign * xp.sqrt(xp.clip(1.0 - cos * cos, 0.0, 1.0))
    return xp.concatenate([radius * cos, radius * sin], axis=1) if xp is np else \
        xp.cat([radius * cos, radius * sin], dim=1)


def _torch_words(key, ctr):
    z = _mix(key + ctr * _S_GOLDEN)
    return _mix(z + key)


def _torch_uniform(key, ctr):
    return _unit_torch(_torch_words(key, ctr))


def _torch_normal(key, ctr):
    import torch

    w = _torch_words(key, ctr)
    return _box_muller(w, w.shape[1] // 2, _unit_torch, torch)


_TORCH_FNS = {"uniform": _torch_uniform, "normal": _torch_normal}
_COMPILED: dict[str, object] = {}


def _torch_fn(name: str, backend):
    """The torch generator; on CUDA compiled into one fused kernel with torch.compile (the eager
    version launches about 50 small kernels per call). Falls back to eager if compiling fails."""
    fn = _TORCH_FNS[name]
    if backend.device != "cuda" or not backend.compile:
        return fn
    if name not in _COMPILED:
        import torch

        compiled = torch.compile(fn, fullgraph=True)      # static first, shape-generic on a new shape

        def safe(*args, _c=compiled, _f=fn, _n=name):
            try:
                return _c(*args)
            except Exception as exc:          # no Triton, unsupported op, ...: eager is always valid
                import warnings

                warnings.warn(f"theory-lab: torch.compile of the {_n} generator failed ({type(exc).__name__}); "
                              "using eager kernels", RuntimeWarning, stacklevel=2)
                _COMPILED[_n] = _f
                return _f(*args)

        _COMPILED[name] = safe
    return _COMPILED[name]
