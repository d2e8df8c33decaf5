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
* Safe format: ``KEY.npz`` read with ``allow_pickle=False`` (arrays as members, the rest as JSON):
  a planted file is data at worst, never code. The folder is created owner-only (0700); a folder
  others can write or another user owns is not used (one stderr line), and an entry that is not a
  regular file of this user is refused.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import atomic_write, open_lock

ENV_DIR = "THEORY_LAB_CACHE"
ENV_MIN_SECONDS = "THEORY_LAB_CACHE_MIN_SECONDS"
FORMAT = 2                      # 1: pickles (never read now); 2: npz + JSON, allow_pickle=False
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


class _Unstorable(TypeError):
    """A state value the safe format does not hold (the problem is then simply not cached)."""


def _encode(obj, arrays: list):
    """JSON-able description of ``obj``; arrays go to ``arrays`` (stored as .npy members). Only plain
    data and the regularisers (by class name and weight) are accepted: nothing that runs code."""
    from . import regularisers

    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise _Unstorable("object array")
        arrays.append(obj)
        return {"__array__": len(arrays) - 1}
    if isinstance(obj, np.generic):
        return _encode(obj.item(), arrays)
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, (list, tuple)):
        return {"__list__" if isinstance(obj, list) else "__tuple__": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return {"__dict__": {k: _encode(v, arrays) for k, v in obj.items()}}
    if type(obj) in (regularisers.Ridge, regularisers.NonConvex):
        return {"__regulariser__": type(obj).__name__, "weight": obj.weight}
    raise _Unstorable(type(obj).__name__)


def _decode(obj, arrays):
    from . import regularisers

    if not isinstance(obj, dict):
        if isinstance(obj, list):
            raise ValueError("bare list")
        return obj
    if "__array__" in obj:
        return arrays[f"a{int(obj['__array__'])}"]
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__list__" in obj:
        return [_decode(v, arrays) for v in obj["__list__"]]
    if "__tuple__" in obj:
        return tuple(_decode(v, arrays) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {str(k): _decode(v, arrays) for k, v in obj["__dict__"].items()}
    if "__regulariser__" in obj:
        cls = {"Ridge": regularisers.Ridge, "NonConvex": regularisers.NonConvex}[obj["__regulariser__"]]
        return cls(float(obj["weight"]))
    raise ValueError("unknown entry")


def _folder_is_private(folder: Path) -> str | None:
    """None when ``folder`` is a real folder of this user that no one else can write, else why not."""
    try:
        st = os.lstat(folder)
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    import stat

    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder (or is a symbolic link)"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return "it belongs to another user"
    if st.st_mode & 0o022:
        return "others can write to it (mode %o)" % (st.st_mode & 0o777)
    return None


_warned: set = set()


def _usable(folder: Path) -> bool:
    """The cache folder may be used: created owner-only (0700) if missing; refused with one stderr line
    (once) when another user owns it, others can write it, or it is a link."""
    if not folder.exists() and not folder.is_symlink():
        try:
            folder.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(folder, 0o700)
        except OSError:
            return False
    why = _folder_is_private(folder)
    if why is not None and str(folder) not in _warned:
        _warned.add(str(folder))
        print(f"theory-lab: problem cache {folder} is not used: {why}; problems are built without it",
              file=sys.stderr)
    return why is None


def load(key: str):
    """The stored state of ``key``, or None (missing, refused, or damaged: then removed).

    Entries are ``.npz`` archives read with ``allow_pickle=False``: arrays as ``.npy`` members and
    everything else as JSON (``__meta__``), so a planted file can at worst be data, never code. An
    entry that is not a regular file owned by this user is refused."""
    folder = cache_dir()
    if folder is None or not folder.is_dir() or not _usable(folder):
        return None
    path = folder / f"{key}.npz"
    try:
        st = os.lstat(path)
    except OSError:
        return None
    import stat

    if not stat.S_ISREG(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        print(f"theory-lab: problem cache entry {path} is refused (not a regular file of this user); rebuilding",
              file=sys.stderr)
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["__meta__"]).decode("utf-8"))
            arrays = {name: z[name] for name in z.files if name != "__meta__"}
        if not isinstance(meta, dict) or meta.get("key") != key or meta.get("format") != FORMAT:
            raise ValueError("wrong key")
        state = _decode(meta["state"], arrays)
        if not isinstance(state, dict):
            raise ValueError("not a state")
        return state
    except Exception as exc:                   # truncated, garbage, another key: rebuild
        print(f"theory-lab: problem cache entry {path} is damaged ({type(exc).__name__}); rebuilding",
              file=sys.stderr)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def store(key: str, state: dict) -> bool:
    """Write ``state`` under ``key`` atomically and owner-only (``errors.atomic_write``) in the safe
    format of :func:`load`; False (and nothing written) if the folder is not usable or a value is not
    plain data."""
    folder = cache_dir()
    if folder is None or not _usable(folder):
        return False
    arrays: list = []
    try:
        meta = {"format": FORMAT, "key": key, "state": _encode(state, arrays)}
    except _Unstorable:
        return False

    def write(tmp):
        members = {f"a{i}": a for i, a in enumerate(arrays)}
        blob = np.frombuffer(json.dumps(meta, allow_nan=False).encode("utf-8"), dtype=np.uint8)
        with open(tmp, "wb") as fh:
            np.savez(fh, __meta__=blob, **members)

    try:
        atomic_write(folder / f"{key}.npz", write, private=True)
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

            if not _usable(folder):
                raise OSError("unusable cache folder")
            lock = os.fdopen(open_lock(folder / f"{key}.lock"), "r+b")
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
    for f in folder.glob("*.npz"):
        if len(f.stem) != 24 or f.is_symlink():             # only entries this cache wrote
            continue
        with contextlib.suppress(OSError):
            f.unlink()
            n += 1
    return n


__all__ = ["configure", "cache_dir", "problem_key", "load", "store", "building", "clear", "generator_version"]
