"""Fingerprints: one hash for everything that changes a stored number or verdict.

A stored sweep configuration is reused only when its fingerprint matches, so the fingerprint must
move whenever the numbers or the verdict could: the resolved run (problem data, method, stepsize,
seeds, backend), the theorem (its bound, condition and every other function it carries, not just
its ID), a user objective's functions (f, grad, f_i, grad_i) and declared constants, and the code
of theory-lab itself.

* :func:`code_version`: the package version and a hash of every module's source (once per process).
* :func:`callable_fingerprint`: a function's bytecode, constants, defaults, closure values and the
  globals it names (functions recursively, arrays by content, numbers by value), so editing a
  lambda's body, a captured array, or a helper it calls changes the hash, while the same source
  gives the same hash in every process.
"""
from __future__ import annotations

import functools
import hashlib
import re
import types
from pathlib import Path
from typing import Any

import numpy as np

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``VERSION:HASH``: the package version and a hash of the source of every module of theory_lab."""
    from ._version import __version__

    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return f"{__version__}:{h.hexdigest()[:16]}"


def callable_fingerprint(fn) -> str:
    """A hash of what ``fn`` computes (module docstring); None hashes to a fixed value."""
    h = hashlib.sha256()
    _feed(h, fn, depth=0, seen=set())
    return h.hexdigest()[:16]


def value_fingerprint(*values) -> str:
    """A hash of plain values (numbers, strings, arrays, containers, functions)."""
    h = hashlib.sha256()
    for v in values:
        _feed(h, v, depth=0, seen=set())
    return h.hexdigest()[:16]


def _feed(h, obj: Any, depth: int, seen: set) -> None:
    """Add ``obj`` to the hash ``h``: by value where it is data, by code where it is a function."""
    if depth > 12:
        h.update(b"<deep>")
        return
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
        return
    if isinstance(obj, np.ndarray):
        h.update(f"nd{obj.dtype.str}{obj.shape};".encode())
        h.update(np.ascontiguousarray(obj).tobytes() if obj.dtype != object else repr(obj.tolist()).encode())
        return
    if isinstance(obj, np.generic):
        h.update(f"np:{obj!r};".encode())
        return
    if isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__}[{len(obj)}".encode())
        for v in obj:
            _feed(h, v, depth + 1, seen)
        h.update(b"]")
        return
    if isinstance(obj, dict):
        h.update(f"dict[{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            _feed(h, k, depth + 1, seen)
            _feed(h, obj[k], depth + 1, seen)
        h.update(b"]")
        return
    if isinstance(obj, (set, frozenset)):
        _feed(h, sorted(obj, key=repr), depth + 1, seen)
        return
    if isinstance(obj, types.ModuleType):
        h.update(f"module:{obj.__name__};".encode())
        return
    if id(obj) in seen:                                  # recursion (a function naming itself)
        h.update(b"<seen>")
        return
    seen.add(id(obj))
    if isinstance(obj, types.MethodType):
        _feed(h, obj.__func__, depth + 1, seen)
        _feed(h, obj.__self__, depth + 1, seen)
        return
    if isinstance(obj, functools.partial):
        _feed(h, (obj.func, obj.args, obj.keywords), depth + 1, seen)
        return
    if isinstance(obj, types.FunctionType):
        _feed_function(h, obj, depth, seen)
        return
    if isinstance(obj, types.CodeType):
        _feed_code(h, obj, depth, seen)
        return
    if isinstance(obj, (types.BuiltinFunctionType, type)) or callable(obj) and not hasattr(obj, "__dict__"):
        h.update(f"named:{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', repr(obj))};".encode())
        return
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):   # a torch tensor
        _feed(h, obj.detach().cpu().numpy(), depth + 1, seen)
        return
    # any other object: its class (and __call__'s code for callables) and its attributes
    cls = type(obj)
    h.update(f"obj:{cls.__module__}.{cls.__qualname__};".encode())
    call = getattr(cls, "__call__", None)
    if isinstance(call, types.FunctionType):
        _feed_function(h, call, depth + 1, seen)
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        _feed(h, {k: v for k, v in state.items() if not k.startswith("_bound")}, depth + 1, seen)
    else:
        h.update(_ADDRESS.sub("", repr(obj)).encode())


def _feed_function(h, fn: types.FunctionType, depth: int, seen: set) -> None:
    h.update(f"fn:{fn.__qualname__};".encode())
    _feed_code(h, fn.__code__, depth, seen)
    _feed(h, fn.__defaults__, depth + 1, seen)
    _feed(h, fn.__kwdefaults__, depth + 1, seen)
    for cell in fn.__closure__ or ():
        try:
            _feed(h, cell.cell_contents, depth + 1, seen)
        except ValueError:                               # an empty cell
            h.update(b"<empty>")
    g = fn.__globals__
    for name in _global_names(fn.__code__):
        if name in g:
            h.update(f"global:{name};".encode())
            _feed(h, g[name], depth + 1, seen)


def _feed_code(h, code: types.CodeType, depth: int, seen: set) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(h, const, depth + 1, seen)
        else:
            _feed(h, const, depth + 1, seen)


def _global_names(code: types.CodeType) -> list[str]:
    """Names a code object (and the functions defined in it) may read from its globals."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_global_names(const))
    return sorted(set(names))


__all__ = ["code_version", "callable_fingerprint", "value_fingerprint"]
