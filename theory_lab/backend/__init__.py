"""Array backends: numpy (float64 reference) and torch (CPU or CUDA, float64 or float32).

All algorithms are written once against the array-API namespace ``Backend.xp``
(`array-api-compat` smooths over numpy/torch differences); the backend only knows
how to create arrays on its device, move them to the host and make random streams.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

BACKENDS = ("numpy", "torch")
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Backend:
    """An array namespace bound to a device and a floating dtype.

    Parameters
    ----------
    name : "numpy" or "torch"
    device : "cpu" or "cuda" (torch only for cuda)
    dtype : "float64" (default, the reference) or "float32"
    tf32 : allow TF32 tensor-core matmuls on CUDA float32 (about 10 mantissa bits in
        the products; for exploration runs only)
    compile : on CUDA, fuse the random generators with torch.compile (eager if unavailable)
    """

    name: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"
    tf32: bool = False
    compile: bool = True
    xp: Any = field(init=False, repr=False, compare=False)
    fdtype: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.name not in BACKENDS:
            raise InputError("backend", f"unknown backend {self.name!r}; accepted: {', '.join(BACKENDS)}")
        if self.dtype not in DTYPES:
            raise InputError("dtype", f"unknown dtype {self.dtype!r}; accepted: {', '.join(DTYPES)}")
        if self.device not in ("cpu", "cuda"):
            raise InputError("device", f"unknown device {self.device!r}; accepted: cpu, cuda")
        if self.name == "numpy":
            if self.device != "cpu":
                raise InputError("device", "the numpy backend runs on cpu only; use --backend torch for cuda")
            import array_api_compat.numpy as xp

            fdtype = getattr(np, self.dtype)
        else:
            try:
                import torch
                import array_api_compat.torch as xp
            except ImportError:
                raise InputError("backend", "torch is not installed; install it with "
                                 "`pip install 'theory-lab[torch]'` (CPU: `pip install torch==2.13.0`) "
                                 "or use --backend numpy") from None
            if self.device == "cuda" and not torch.cuda.is_available():
                raise InputError("device", "cuda requested but no CUDA device is available; "
                                 "use --device cpu")
            fdtype = getattr(torch, self.dtype)
        object.__setattr__(self, "xp", xp)
        object.__setattr__(self, "fdtype", fdtype)

    def __reduce__(self):                 # the array namespace is a module: rebuild it on unpickling
        return (Backend, (self.name, self.device, self.dtype, self.tf32, self.compile))

    # ------------------------------------------------------------------ arrays
    def asarray(self, a, dtype=None):
        """Host data (numpy or python) -> array on this backend's device (float dtype by default)."""
        dtype = self.fdtype if dtype is None else dtype
        if self.name == "numpy":
            return np.asarray(a, dtype=dtype)
        import torch

        if isinstance(a, torch.Tensor):
            return a.to(device=self.device, dtype=dtype)
        return torch.as_tensor(writable_host(np.asarray(a)), dtype=dtype, device=self.device)

    def as_int(self, a):
        """Integer (int64) array on the device."""
        if self.name == "numpy":
            return np.asarray(a, dtype=np.int64)
        import torch

        return torch.as_tensor(writable_host(np.asarray(a, dtype=np.int64)), device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        """One device-to-host transfer."""
        if self.name == "numpy":
            return np.asarray(a)
        return a.detach().cpu().numpy()

    def zeros(self, shape, dtype=None):
        return self.xp.zeros(shape, dtype=self.fdtype if dtype is None else dtype, device=self.device)

    def matmul_add(self, A, B, C):
        """C + A @ B with the addition fused into the GEMM where the backend can (torch baddbmm).

        A: (S, p, q) or (p, q); B: (S, q, k); C broadcastable to (S, p, k). Returns a new array.
        """
        if self.name == "torch" and self.device == "cuda" and B.ndim == 3:
            import torch

            S = B.shape[0]
            A3 = A if A.ndim == 3 else A.expand(S, *A.shape)
            out_shape = (S, A3.shape[1], B.shape[2])
            return torch.baddbmm(C.expand(out_shape) if C.shape != out_shape else C, A3, B)
        out = A @ B
        out += C
        return out

    @contextlib.contextmanager
    def context(self):
        """The backend's per-call settings for the duration of a run: TF32 matmuls on CUDA when
        asked, restored afterwards (no process-wide switch outlives the run)."""
        if self.name != "torch" or self.device != "cuda":
            yield
            return
        import torch

        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = bool(self.tf32)
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = before

    def synchronize(self):
        """Wait for queued device work (for timing)."""
        if self.name == "torch" and self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    @property
    def eps(self) -> float:
        return float(np.finfo(np.float64 if self.dtype == "float64" else np.float32).eps)


def get_backend(backend="numpy", device="cpu", dtype="float64", tf32=False) -> Backend:
    """Return a :class:`Backend` (an existing one is passed through)."""
    if isinstance(backend, Backend):
        return backend
    return Backend(name=backend, device=device, dtype=dtype, tf32=tf32)


def mT(x):
    """Transpose of the last two axes (works for numpy and torch)."""
    return x.mT


def host_available_bytes() -> int | None:
    """Memory available to new allocations on this machine (Linux MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def capture_cuda_graph(body, backend: Backend, warmup: int = 3):
    """Capture ``body()`` (a step that only updates tensors in place) as a CUDA graph after
    ``warmup`` eager calls on a side stream (compiling, allocating, caching constants); returns the
    graph. Exceptions (an operation that syncs with the host, say) propagate: callers stay eager."""
    import torch

    with backend.context():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                body()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            body()
    return graph


def writable_host(a: np.ndarray) -> np.ndarray:
    """A problem's read-only data as torch may take it: torch shares a CPU array's memory (and cannot
    mark a tensor read-only), so a read-only array is copied once here rather than shared writable."""
    return a if a.flags.writeable else a.copy()
