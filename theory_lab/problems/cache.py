"""On-disk cache of built problems.

A problem whose build takes long (``paper_linreg``: minutes and gigabytes of make_regression and
pre-training) is stored once and reloaded in seconds. The key hashes the family, the shape, the
seed, every parameter, the generator's version (``Problem.generator_version`` and the source of the
modules that build the family, so an edited generator never reloads stale data) and numpy's and
scikit-learn's versions (their random generators make the data).

* Location: ``$THEORY_LAB_CACHE`` (a folder; ``off`` disables the cache), else
  ``$XDG_CACHE_HOME/theory-lab/problems``, else ``~/.cache/theory-lab/problems``.
  :func:`configure` sets it (and the build-time threshold) from Python.
* Only builds slower than ``min_seconds`` (default 1 s; ``$THEORY_LAB_CACHE_MIN_SECONDS``) are
  stored: small problems build faster than they load.
* Safe under concurrent builds: entries are written to a temporary file and renamed, so a reader
  never sees half an entry. A problem whose data reach ``lock_bytes`` (default 64 MiB, estimated by
  ``Problem.host_bytes`` before building) is built under an exclusive ``flock`` on ``KEY.lock``, so a
  second process asking for it waits and then loads the first one's file instead of building it
  again; small problems build without a lock (and leave no lock file). An entry that
  cannot be read is removed (one line on stderr) and the problem is rebuilt.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np

from ..errors import atomic_write

ENV_DIR = "THEORY_LAB_CACHE"
ENV_MIN_SECONDS = "THEORY_LAB_CACHE_MIN_SECONDS"
FORMAT = 1
_settings: dict = {}


def configure(directory=None, min_seconds: float | None = None, enabled: bool | None = None,
              lock_bytes: int | None = None) -> None:
    """Set the cache folder, the build-time threshold above which a problem is stored, whether the
    cache is used at all, and the data size from which builds wait on each other (overrides the
    environment for this process)."""
    if directory is not None:
        _settings["dir"] = Path(directory)
    if lock_bytes is not None:
        _settings["lock_bytes"] = int(lock_bytes)
    if min_seconds is not None:
        _settings["min_seconds"] = float(min_seconds)
    if enabled is not None:
        _settings["enabled"] = bool(enabled)


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is off."""
    if _settings.get("enabled") is False:
        return None
    if "dir" in _settings:
        return _settings["dir"]
    env = os.environ.get(ENV_DIR, "")
    if env.lower() in ("off", "0", "no", "false"):
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "theory-lab" / "problems"


def min_seconds() -> float:
    if "min_seconds" in _settings:
        return _settings["min_seconds"]
    try:
        return float(os.environ.get(ENV_MIN_SECONDS, "1.0"))
    except ValueError:
        return 1.0


def lock_bytes() -> int:
    return _settings.get("lock_bytes", 64 * 2 ** 20)


def generator_version(cls) -> str:
    """The declared version and a hash of the source that builds ``cls`` (its module, the base
    class's and the regularisers'; read once per process)."""
    return f"{getattr(cls, 'generator_version', 1)}:{_source_hash(cls)}"


@functools.lru_cache(maxsize=None)
def _source_hash(cls) -> str:
    h = hashlib.sha256()
    for obj in (cls, *cls.__mro__[1:]):
        mod = sys.modules.get(obj.__module__)
        if mod is None or not mod.__name__.startswith("theory_lab"):
            continue
        with contextlib.suppress(OSError, TypeError):
            h.update(inspect.getsource(mod).encode())
    with contextlib.suppress(ImportError, OSError, TypeError):
        from . import regularisers

        h.update(inspect.getsource(regularisers).encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _sklearn_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("scikit-learn")         # (importing sklearn itself takes seconds)
    except metadata.PackageNotFoundError:
        return None


def problem_key(problem) -> str:
    """The cache key (the source hashes and versions are computed once per process: keys are made
    for every problem built, thousands in a fuzz campaign)."""
    blob = json.dumps([FORMAT, problem.family, problem.m, problem.n, problem.seed, problem.params,
                       generator_version(type(problem)), np.__version__, _sklearn_version()], sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def load(key: str):
    """The stored state of ``key``, or None (missing, or damaged: then removed)."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"{key}.pkl"
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            state = pickle.load(fh)
        if not isinstance(state, dict) or state.get("_cache_key") != key:
            raise ValueError("wrong key")
        return state
    except Exception as exc:                   # truncated, garbage, another key: rebuild
        print(f"theory-lab: problem cache entry {path} is damaged ({type(exc).__name__}); rebuilding",
              file=sys.stderr)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def store(key: str, state: dict) -> bool:
    """Write ``state`` under ``key`` atomically and owner-only (``errors.atomic_write``); False (and
    nothing written) if the folder is not writable."""
    folder = cache_dir()
    if folder is None:
        return False

    def write(tmp):
        with open(tmp, "wb") as fh:
            pickle.dump({**state, "_cache_key": key}, fh, protocol=pickle.HIGHEST_PROTOCOL)

    try:
        atomic_write(folder / f"{key}.pkl", write, private=True)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def building(key: str, nbytes: int):
    """Hold the build lock of ``key`` when the problem's data reach ``lock_bytes`` (other processes
    building the same problem wait); smaller builds are not serialised."""
    folder = cache_dir()
    lock = None
    if folder is not None and nbytes >= lock_bytes():
        try:
            import fcntl

            folder.mkdir(parents=True, exist_ok=True)
            lock = open(folder / f"{key}.lock", "w")
            fcntl.flock(lock, fcntl.LOCK_EX)
        except (OSError, ImportError):
            lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.close()


def clear() -> int:
    """Remove every cached problem; returns how many."""
    folder = cache_dir()
    if folder is None or not folder.is_dir():
        return 0
    n = 0
    for f in folder.glob("*.pkl"):
        with contextlib.suppress(OSError):
            f.unlink()
            n += 1
    return n


__all__ = ["configure", "cache_dir", "problem_key", "load", "store", "building", "clear", "generator_version"]
