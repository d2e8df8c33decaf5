"""Sweeps: grid expansion, a crash-safe parquet result store with cache and resume, executors.

A sweep is the cartesian product of a grid over method parameters (p, rank, sketch, stepsize,
factor, estimator parameters), problem parameters (m, n, cond, ...) and run parameters (iters,
seeds, master_seed). Every configuration is keyed by a hash of its full specification and the
package version. Its result (one row per seed and checkpoint, every parameter as a column, the
theorem's bound and the configuration's verdict where a theorem applies) is written as one part
file, atomically (temporary file, then ``os.replace``), in ``STORE.parts/``; the table ``STORE``
itself is rewritten atomically, under a file lock, from all parts after every sweep. So:

* a finished configuration is never recomputed, and a sweep killed at any moment (SIGKILL
  included) resumes where it stopped and ends with the same table;
* no half-written file is ever visible under its final name;
* two sweeps writing to one store never corrupt it (parts are per-configuration and atomic; the
  consolidation is serialised by ``fcntl.flock``).

Execution: in-process (workers = 1), local processes (``workers = N``, concurrent.futures), or
Dask distributed (``scheduler = "tcp://host:port"`` or a ``distributed.Client``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .check import judge
from .errors import InputError, atomic_write, check_range, open_lock, probe_writable, read_toml
from .estimators import ESTIMATORS
from .methods import METHODS, Method, method_parameters
from .plan import MAX_SEED, available_bytes, estimate_bytes, make_plan
from .problems import FAMILIES, resolve_problem
from .runner import batch_key, execute, execute_batch

RUN_KEYS = {"iters", "seeds", "master_seed"}
#: spec key -> (accepted types, what to say)
SPEC_KEYS = {"problem": (str, "a family name or a problems/NAME.toml path"), "method": (str, "a method name"),
             "iters": (int, "an integer"), "seeds": (int, "an integer"), "seed": (int, "an integer"),
             "theorem": (str, "a theorem ID"), "confidence": ((int, float), "a number in (0, 1)"),
             "backend": (str, "numpy or torch"), "device": (str, "cpu or cuda"), "dtype": (str, "float64 or float32"),
             "problem_params": (dict, "a table"), "method_params": (dict, "a table"),
             "grid": (dict, "a table of lists"), "out": (str, "a parquet file path"), "description": (str, "text"),
             "batch": ((bool, int), "true, false or an integer >= 1 (configurations per batch)")}


# ------------------------------------------------------------------------------ configurations
def _problem_keys(family: str) -> set[str]:
    cls = FAMILIES[family]
    return {"m", "n", "seed"} | set(cls.defaults) | ({"clients", "split"} if cls.finite_sum else set())


def split_params(params: dict[str, Any], family: str, method: str) -> tuple[dict, dict, dict]:
    """Route flat parameters to (problem, method, run) by the signatures of the problem family and
    the method (``Method`` + its estimator + its step rule); ``problem.x`` / ``method.x`` disambiguate."""
    prob, meth, runp = {}, {}, {}
    pkeys, mkeys = _problem_keys(family), set(method_parameters(method))
    seen: dict[tuple, str] = {}
    for key in params:                                   # m and problem.m are one parameter given twice
        if key.startswith(("problem.", "method.")):
            dest = tuple(key.split(".", 1))
        else:
            dest = ("run" if key in RUN_KEYS else "problem" if key in pkeys else "method", key)
        if dest in seen:
            raise InputError(key, f"given twice (also as {seen[dest]!r}); give it once")
        seen[dest] = key
    for key, val in params.items():
        if key.startswith("problem."):
            prob[key[8:]] = val
        elif key.startswith("method."):
            meth[key[7:]] = val
        elif key in RUN_KEYS:
            runp[key] = val
        else:
            in_p, in_m = key in pkeys, key in mkeys
            if in_p and in_m:
                raise InputError(key, f"ambiguous: a parameter of both {family} and {method}; "
                                      f"write problem.{key} or method.{key}")
            if not (in_p or in_m):
                raise InputError(key, f"not a parameter of {family}, {method} or the run; accepted: "
                                      f"{', '.join(sorted(pkeys))} (problem), {', '.join(sorted(mkeys))} (method), "
                                      f"{', '.join(sorted(RUN_KEYS))} (run)")
            (prob if in_p else meth)[key] = val
    return prob, meth, runp


def _split_custom(params: dict[str, Any], method: str) -> tuple[dict, dict, dict]:
    """A user's problem object takes no grid parameters: route to method and run only."""
    mkeys = set(method_parameters(method))
    meth, runp = {}, {}
    for key, val in params.items():
        key2 = key[7:] if key.startswith("method.") else key
        if key2 in RUN_KEYS:
            runp[key2] = val
        elif key2 in mkeys:
            meth[key2] = val
        else:
            raise InputError(key, f"not a parameter of {method} or the run (a problem object takes none); "
                                  f"accepted: {', '.join(sorted(mkeys | RUN_KEYS))}")
    return {}, meth, runp


def expand_grid(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Cartesian product of the grid, in the grid's key order."""
    for k, v in grid.items():
        if not isinstance(v, (list, tuple)) or len(v) == 0:
            raise InputError(f"grid.{k}", f"expected a non-empty list of values, got {v!r}")
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def config_key(spec: dict[str, Any]) -> str:
    """Hash of a configuration's full specification and the package version."""
    blob = json.dumps({**spec, "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Config:
    """One point of a sweep: problem, method and run settings, validated on construction.

    ``problem`` is a family name or a Problem (a TOML file is read by the sweep first); the key
    hashes the resolved problem (family, every parameter, the data's fingerprint), so editing a
    problem file or a generator never reuses stale results."""

    def __init__(self, problem, method_name: str, params: dict, base: dict):
        family = problem if isinstance(problem, str) else problem.family
        self._object = None if isinstance(problem, str) else problem       # a user's problem object
        if family not in FAMILIES and self._object is None:
            raise InputError("problem", f"unknown family {family!r}; accepted: {', '.join(sorted(FAMILIES))} "
                             "or a .toml file")
        prob, meth, runp = split_params(params, family, method_name) if self._object is None else \
            _split_custom(params, method_name)
        self.problem_spec = family
        self.problem_params = {**base.get("problem_params", {}), **prob}
        self.method_name = method_name
        self.method_params = {**base.get("method_params", {}), **meth}
        self.iters = check_range("iters", runp.get("iters", base.get("iters", 500)), 1, 10_000_000, integer=True)
        self.seeds = check_range("seeds", runp.get("seeds", base.get("seeds", 64)), 2, 10_000_000, integer=True)
        self.master_seed = check_range("seed", runp.get("master_seed", base.get("seed", 0)), 0, MAX_SEED,
                                       integer=True)
        self.theorem = base.get("theorem")
        self.confidence = check_range("confidence", base.get("confidence", 0.95), 0.0, 1.0, low_open=True,
                                      high_open=True)
        self.backend = base.get("backend", "numpy")
        self.device = base.get("device", "cpu")
        self.dtype = base.get("dtype", "float64")
        self.params = dict(params)
        self._plan = None
        self.plan()                     # validates everything (problem, method, theorem, memory) now
        self._check_memory()
        self.key = config_key(self.spec())

    def _check_memory(self) -> None:
        """Refuse a configuration whose run, verdict and long table (``plan.estimate_bytes``) exceed
        the memory there is, before anything runs."""
        plan = self._plan
        need, have = estimate_bytes(plan, len(self.params)), available_bytes(plan.backend)
        if have is not None and need > have:
            rows = plan.seeds * len(plan.checkpoints)
            raise InputError("seeds", f"this sweep configuration needs about {need / 2**30:.1f} GiB (its run and its "
                             f"long table of {rows:,} rows: {plan.seeds} seeds x {len(plan.checkpoints)} checkpoints); "
                             f"{have / 2**30:.1f} GiB available: use fewer seeds or iterations")

    def problem(self):
        if self._object is not None:
            return self._object
        return _cached_problem(self.problem_spec, json.dumps(self.problem_params, sort_keys=True, default=str))

    def method(self) -> Method:
        return Method(self.method_name, **self.method_params)

    def plan(self):
        """The configuration's run plan, resolved (and so validated) once, in the parent process. It
        travels to the worker with the configuration (its theorem by registered ID and fingerprint);
        a built-in family's data does not: the worker builds the same problem (or loads it from the
        problem cache) and checks it against the parent's fingerprint before running."""
        if self._plan is None:
            self._plan = make_plan(self.problem(), self.method(), self.iters, self.seeds, self.master_seed,
                                   self.backend, self.device, self.dtype, theorem=self.theorem, min_seeds=2)
        elif self._plan.problem is None:                     # arrived in a worker without its data
            pr = self.problem()
            if pr.fingerprint() != self._problem_fp:
                raise InputError("problem", f"{pr.describe()} builds other data in this worker process than in the "
                                 "sweep's process (fingerprints differ: another numpy, or a changed generator)")
            self._plan = dataclasses.replace(self._plan, problem=pr)
        return self._plan

    def __getstate__(self):
        state = dict(self.__dict__)
        plan = state.get("_plan")
        if plan is not None and self._object is None and plan.problem is not None:
            state.update(_plan=dataclasses.replace(plan, problem=None), _problem_fp=plan.problem.fingerprint())
        return state

    def spec(self) -> dict[str, Any]:
        """What the configuration's key hashes: the resolved run (``Plan.config``: problem, method with
        every estimator and sketch parameter as resolved, so ``rank = 2.0`` and ``2`` are one
        configuration; the stepsize; seeds; backend), the problem's data and functions
        (``Problem.fingerprint``), the theorem's own fingerprint (its bound and condition, not only its
        ID), the confidence, and the code version (``fingerprint.code_version``)."""
        from .fingerprint import code_version

        plan = self.plan()
        return dict(run=plan.config(), sketch_params=repr(sorted(plan.method.sketch_params.items())),
                    problem_data=plan.problem.fingerprint(), seeds=self.seeds, checkpoints=list(plan.checkpoints),
                    theorem=None if plan.theorem is None else [plan.theorem.id, plan.theorem.fingerprint()],
                    confidence=self.confidence, code=code_version())


_PROBLEMS: dict[tuple, Any] = {}


def _cached_problem(spec: str, params_json: str):
    k = (spec, params_json)
    if k not in _PROBLEMS:
        _PROBLEMS[k] = resolve_problem(spec, **json.loads(params_json))
    return _PROBLEMS[k]


# ------------------------------------------------------------------------------ computing
def compute(config: Config) -> pd.DataFrame:
    """Run (and judge, where a theorem applies) one configuration; the long table of its results,
    with the configuration's key in every row (the store checks it on reading)."""
    plan = config.plan()
    return _frame(config, plan, execute(plan))


def compute_group(configs: list[Config]) -> list[tuple[str, pd.DataFrame]]:
    """Run configurations that share a ``batch_key`` as one batched trajectory set
    (``runner.execute_batch``) and return each one's (key, table), as ``compute`` would."""
    plans = [c.plan() for c in configs]
    results = execute_batch(plans)
    frames = group_frames(results, [_extra(c, pl, r) for c, pl, r in zip(configs, plans, results)])
    return [(c.key, f) for c, f in zip(configs, frames)]


def _frame(config: Config, plan, result) -> pd.DataFrame:
    return result.to_frame(_extra(config, plan, result))


def _extra(config: Config, plan, result) -> dict:
    """The verdict and configuration columns of a configuration's long table."""
    verdict = theorem_id = reason = ""
    bound, rate = None, math.nan
    if plan.theorem is not None:
        rep = judge(plan, result, config.confidence, verdict_only=True)   # the table holds no intervals
        verdict, theorem_id, reason = rep.verdict, rep.theorem, rep.reason
        if rep.bound_curve is not None:
            bound = dict(zip(rep.checkpoints.tolist(), np.asarray(rep.bound_curve, float).tolist()))
        if plan.theorem.rate is not None and plan.reason is None:
            try:
                rate = float(plan.theorem.rate(plan.constants))
            except (ArithmeticError, TypeError, ValueError, AttributeError):
                rate = math.nan
    # the bound per checkpoint (NaN where the theorem skips one), repeated for every seed's rows
    per_ck = [bound.get(int(c), np.nan) for c in result.checkpoints] if bound else None
    rows = result.seeds * len(result.checkpoints)
    # the reason is a per-configuration value: on the configuration's first row only (no copy per row)
    reasons = np.full(rows, None, dtype=object)
    reasons[0] = reason
    c = plan.constants
    return {"bound": np.tile(np.asarray(per_ck, float), result.seeds) if bound else np.nan,
            "theorem": theorem_id, "verdict": verdict, "reason": reasons, "lam_min": result.lam_min,
            "lam_max": float(c.lam_max), "lam_bar": plan.method.lam_bar(plan.problem), "rate_theory": rate,
            "mu": float(c.get("mu")) if c.get("mu") is not None else math.nan,
            "diverged": result.diverged("f_gap") if "f_gap" in result.metrics else 0, "config": config.key,
            **{k: (v if not isinstance(v, (list, dict)) else json.dumps(v)) for k, v in config.params.items()}}


def group_frames(results, extras) -> list[pd.DataFrame]:
    """The long tables of a batch's configurations (``RunResult.to_frame(extra)`` each), built as
    one table and cut into one frame per configuration, with the same columns, dtypes and values.
    Configurations whose columns differ in name or kind (a grid of "theory" and 0.1) get their own
    tables."""
    import pandas as pd

    from .runner import repeated_strings

    first = results[0]
    S, ck = first.seeds, first.checkpoints
    cols = [{**r.config, **e} for r, e in zip(results, extras)]
    if len(results) < 2 or not all(r.seeds == S and np.array_equal(r.checkpoints, ck) and
                                   list(r.metrics) == list(first.metrics) and list(c) == list(cols[0])
                                   for r, c in zip(results, cols)):
        return [r.to_frame(e) for r, e in zip(results, extras)]
    n, C = S * len(ck), len(results)
    data = {"seed": np.tile(np.repeat(np.arange(S), len(ck)), C), "iteration": np.tile(ck, S * C)}
    for name in first.metrics:
        data[name] = np.concatenate([r.metrics[name].reshape(-1) for r in results])
    for k in cols[0]:
        vals = [c[k] if not isinstance(c[k], (list, dict, tuple)) else str(c[k]) for c in cols]
        kinds = {_kind(v, n) for v in vals}
        if kinds == {"rows", np.dtype(float)} and all(v.dtype == float for v in vals if isinstance(v, np.ndarray)):
            vals = [v if isinstance(v, np.ndarray) else np.full(n, v) for v in vals]    # the bound: NaN where none
            kinds = {"rows"}
        if len(kinds) != 1:
            return [r.to_frame(e) for r, e in zip(results, extras)]
        kind = kinds.pop()
        if kind == "rows":
            data[k] = np.concatenate(vals)
        elif kind == "str":
            data[k] = repeated_strings(vals, n)
        elif kind == "none":
            data[k] = np.full(n * C, None, dtype=object)
        else:
            data[k] = np.repeat(np.asarray(vals, dtype=kind), n)
    table = pd.DataFrame(data)
    return [table.iloc[i * n:(i + 1) * n].reset_index(drop=True) for i in range(C)]


def _kind(v, n: int):
    """How ``RunResult.to_frame`` stores a column value: per-row values, text, None, or the numpy
    dtype ``np.full`` gives a number."""
    if isinstance(v, np.ndarray) and v.ndim == 1:
        return "rows" if v.size == n else ("bad", id(v))
    if isinstance(v, str):
        return "str"
    if v is None:
        return "none"
    return np.asarray(v).dtype


def group_configs(configs: list[Config], workers: int = 1, batch: bool | int = True) -> list[list[Config]]:
    """Split configurations into batches that run as one trajectory set each.

    Configurations with equal ``runner.batch_key`` (same problem instance, method, rank, sketch
    sides, ...; p, stepsize and the estimator's scalar parameters may differ) are grouped; a group
    is cut so that its memory estimate fits in half of what the machine has, into at most ``batch``
    configurations when ``batch`` is an integer, and into enough pieces to keep ``workers`` busy.
    ``batch=False`` (or 1): one configuration per batch."""
    cap = len(configs) if batch is True else max(1, int(batch))
    buckets: dict[Any, list[Config]] = {}
    for c in configs:
        k = batch_key(c.plan()) if cap > 1 else None
        buckets.setdefault(("alone", c.key) if k is None else k, []).append(c)
    have = available_bytes(configs[0].plan().backend) if configs else None
    total = len(configs)
    groups = []
    for members in buckets.values():
        need = sum(estimate_bytes(c.plan(), len(c.params)) for c in members)
        pieces = max(-(-len(members) // cap), -(-need // (have // 2)) if have else 1,
                     min(len(members), round(workers * len(members) / total)) if workers > 1 else 1)
        pieces = min(max(pieces, 1), len(members))
        size = -(-len(members) // pieces)
        groups.extend(members[i:i + size] for i in range(0, len(members), size))
    return groups


def _compute_payload(group: list[Config]) -> list[tuple[str, pd.DataFrame]]:
    return [(group[0].key, compute(group[0]))] if len(group) == 1 else compute_group(group)


# ------------------------------------------------------------------------------ the store
#: the schema metadata key that marks a parquet file as a theory-lab table (only such files are
#: ever replaced)
MARKER = b"theory-lab"


class Store:
    """Parquet result store: ``path`` (the table) and ``path.parts/<config>.parquet``.

    Each part holds its configuration's key in its ``config`` column; a part that cannot be read,
    is empty, or holds another key is damaged: ``repair`` removes it (so it is recomputed) and
    says so on one line. Damaged parts of *other* sweeps sharing the store are restored from the
    previous table when it holds their rows, else named on stderr (and in ``table.attrs``), never
    dropped silently.

    Safety: the store only ever replaces files it wrote (a table marked ``theory-lab`` in its
    parquet metadata, its own parts and temporaries); a symbolic link anywhere in it, or an
    existing ``path`` that is not a theory-lab table, is refused with one line naming ``out``. The
    lock is opened without following links and without truncating, temporaries carry the writer's
    pid and a random part (``errors.atomic_write``), and only those of writers that are gone are
    removed."""

    def __init__(self, path):
        self.path = Path(path)
        self.parts = self.path.with_name(self.path.name + ".parts")
        self.damaged: list[str] = []

    def check_writable(self) -> None:
        """InputError naming ``out`` unless the store can be written without touching anything that
        is not theory-lab's: ``path`` is new or a theory-lab table, nothing in it is a link, and
        its folders can be created and written (tried with probe files, before any computation)."""
        what = f"the store {str(self.path)!r}"
        if self.path.is_symlink() or self.parts.is_symlink():
            raise InputError("out", f"{what} is a symbolic link; theory-lab does not write through links: "
                             "give the real path")
        if self.path.is_dir():
            raise InputError("out", f"{what} is a folder; choose another --out")
        if self.path.exists() and not own_table(self.path):
            raise InputError("out", f"{str(self.path)!r} exists and is not a theory-lab result table; theory-lab only "
                             "replaces its own files: choose another --out")
        if self.parts.exists() and not self.parts.is_dir():
            raise InputError("out", f"{str(self.parts)!r} exists and is not a folder; choose another --out")
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError("out", f"cannot write {what} ({exc.strerror or exc}); choose another --out") from None
        for entry in self.parts.iterdir():
            if entry.is_symlink():
                raise InputError("out", f"{str(entry)!r} is a symbolic link, which theory-lab did not write; "
                                 "remove it or choose another --out")
        probe_writable("out", self.parts, what)
        probe_writable("out", self.path.parent, what)

    def _part(self, key: str) -> Path:
        return self.parts / f"{key}.parquet"

    def has(self, key: str) -> bool:
        part = self._part(key)
        return part.is_file() and not part.is_symlink()

    def part_ok(self, key: str) -> bool:
        """The part exists, reads, has rows, and every row carries ``key``."""
        import pandas as pd
        if not self.has(key):
            return False
        try:
            col = pd.read_parquet(self._part(key), columns=["config"])["config"]
        except Exception:                  # truncated, garbage, empty file, no config column
            return False
        return len(col) > 0 and bool((col == key).all())

    def repair(self, keys) -> list[str]:
        """Remove damaged parts among ``keys`` (and stale temporaries); return the removed keys."""
        self.clean_temporaries()
        bad = [k for k in keys if self.has(k) and not self.part_ok(k)]
        for k in bad:
            self._part(k).unlink(missing_ok=True)
        if bad:
            print(f"theory-lab: store {self.path}: {len(bad)} damaged part(s) removed and recomputed "
                  f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})", file=sys.stderr)
        return bad

    def clean_temporaries(self) -> int:
        """Remove this store's own temporaries (``.<name>.tl-<pid>-<random>.tmp``, for the table or a
        part) whose writer process is gone; returns how many. Nothing else is touched."""
        removed = 0
        parent = self.path.parent if str(self.path.parent) else Path(".")
        for folder, ours in ((self.parts, lambda target: _PART_NAME.fullmatch(target) is not None),
                             (parent, lambda target: target == self.path.name)):
            if not folder.is_dir():
                continue
            for tmp in folder.glob(".*.tmp"):
                own = own_temporary(tmp.name)
                if own is None or tmp.is_symlink() or not tmp.is_file() or not ours(own[0]) or _alive(own[1]):
                    continue
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed

    def write_part(self, key: str, frame: pd.DataFrame) -> None:
        self.parts.mkdir(parents=True, exist_ok=True)
        _atomic_parquet(frame, self._part(key))

    def read(self, keys=None) -> pd.DataFrame:
        """The rows of ``keys`` (default: every part); parts that cannot be read or hold another key
        are left out and listed in ``self.damaged``."""
        import pandas as pd
        if keys is None:
            keys = [f.stem for f in sorted(self.parts.glob("*.parquet")) if not f.is_symlink()]
        frames, self.damaged = [], []
        for k in keys:
            if not self.has(k):
                continue
            try:
                frame = pd.read_parquet(self._part(k))
            except Exception:
                frame = None
            if frame is not None and len(frame) and "config" in frame and (frame["config"] == k).all():
                frames.append(frame)
            else:
                self.damaged.append(k)
        if not frames:
            return pd.DataFrame()
        table = pd.concat(frames, ignore_index=True)
        for col in table.columns:                    # a grid mixing numbers and words ("theory", 0.1)
            if table[col].dtype == object and table[col].map(type).nunique() > 1:
                table[col] = table[col].astype(str)
        return table

    def consolidate(self) -> pd.DataFrame:
        """Rewrite the table from all parts, atomically and under an exclusive lock. A damaged part
        (another sweep's, say) is restored from the previous table when that holds its rows, else
        named on one stderr line; it is never dropped without a word."""
        import fcntl

        self.parts.mkdir(parents=True, exist_ok=True)
        fd = _open_lock(self.parts / ".lock")
        with os.fdopen(fd, "r+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            table = self.read()                  # parts in key order, each by seed and checkpoint
            if self.damaged:
                table = self._restore(table)
                if not table.empty:
                    by = [c for c in ("config", "seed", "iteration") if c in table]
                    table = table.sort_values(by, kind="stable").reset_index(drop=True)
            _atomic_parquet(table, self.path)
            return table

    def _restore(self, table: pd.DataFrame) -> pd.DataFrame:
        """Parts in ``self.damaged``: rewritten from the previous table's rows where it has them."""
        import pandas as pd

        old = None
        if self.path.is_file() and own_table(self.path):
            try:
                old = pd.read_parquet(self.path)
            except Exception:
                old = None
        restored, lost = [], []
        for k in self.damaged:
            rows = old[old["config"] == k].reset_index(drop=True) if old is not None and "config" in old else None
            if rows is not None and len(rows):
                _atomic_parquet(rows, self._part(k))
                restored.append(rows)
            else:
                lost.append(k)
        if restored:
            print(f"theory-lab: store {self.path}: {len(restored)} damaged part(s) of other sweeps restored from "
                  "the previous table", file=sys.stderr)
        if lost:
            print(f"theory-lab: store {self.path}: {len(lost)} part(s) cannot be read and are NOT in the table "
                  f"({', '.join(lost[:3])}{', ...' if len(lost) > 3 else ''}); re-run the sweep that wrote them",
                  file=sys.stderr)
        self.damaged = lost
        return pd.concat([table, *restored], ignore_index=True) if restored else table


_PART_NAME = re.compile(r"[0-9a-f]{16}\.parquet")


def load_table(path) -> pd.DataFrame:
    """A stored sweep's long table, read safely: ``path`` is the table a sweep wrote (or, when only
    its parts exist, the parts are read). A symbolic link, or a file that is not a theory-lab table,
    is refused with one line naming ``store``; nothing is written."""
    import pandas as pd

    from .summary import SweepTable

    path = Path(path)
    st = Store(path)
    if path.is_symlink() or st.parts.is_symlink():
        raise InputError("store", f"{str(path)!r} is a symbolic link; give the real path")
    if path.is_file():
        if not own_table(path):
            raise InputError("store", f"{str(path)!r} is not a theory-lab result table")
        try:
            table = pd.read_parquet(path)
        except Exception as exc:
            raise InputError("store", f"{str(path)!r} cannot be read ({type(exc).__name__}: {exc})") from None
    elif st.parts.is_dir():
        table = st.read()
    else:
        raise InputError("store", f"{str(path)!r} does not exist (give the --out of a sweep)")
    if table.empty:
        raise InputError("store", f"{str(path)!r} holds no rows")
    return SweepTable(table)


def own_temporary(name: str) -> tuple[str, int] | None:
    """(target file name, writer pid) of a temporary ``errors.atomic_write`` made, else None."""
    from .errors import TEMP_PATTERN

    m = TEMP_PATTERN.fullmatch(name)
    return (m.group("target"), int(m.group("pid"))) if m else None


def own_table(path: Path) -> bool:
    """``path`` is a regular file (not a link) holding a parquet table theory-lab wrote: marked in its
    schema metadata, or (tables written before the marker) with config / seed / iteration columns."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
    except Exception:
        return False
    meta = schema.metadata or {}
    return MARKER in meta or {"config", "seed", "iteration"} <= set(schema.names)


def _open_lock(path: Path) -> int:
    """The lock file's descriptor: created owner-only if missing, never truncated, never through a link."""
    try:
        return open_lock(path)
    except OSError as exc:
        raise InputError("out", f"cannot open the store's lock {str(path)!r} ({exc.strerror or exc}; a symbolic "
                         "link there is refused); remove it or choose another --out") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _atomic_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` atomically, with the umask's permissions (``errors.atomic_write``),
    marked as theory-lab's in the parquet metadata."""
    def write(tmp):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), MARKER: b"1"})
        pq.write_table(table, tmp)

    atomic_write(path, write)


# ------------------------------------------------------------------------------ the sweep
def sweep(problem, method, grid: dict[str, list], iters: int = 500, seeds: int = 64, store=None,
          workers: int = 1, scheduler=None, seed: int = 0, theorem=None, confidence: float = 0.95,
          backend: str = "numpy", device: str = "cpu", dtype: str = "float64", progress: bool = True,
          problem_params: dict | None = None, method_params: dict | None = None,
          batch: bool | int = True, allow_files: bool = False) -> pd.DataFrame:
    """Sweep the cartesian product of ``grid``; returns the long table of this sweep's configurations.

    ``problem``: family name, TOML path or Problem; ``method``: a method name or a Method (whose
    parameters become the fixed method parameters). Every grid point is validated (its plan
    resolved) before anything is computed. The returned frame's ``attrs`` hold ``computed``,
    ``cached``, ``repaired`` (configuration counts), ``diverged`` (configurations with a diverged
    seed) and ``store``.

    ``batch``: grid points that can share one batched state run as one trajectory set
    (:func:`group_configs`; each still gets its own stored part and the numbers it has alone);
    False runs one configuration at a time, an integer caps the configurations per batch.
    """
    import pandas as pd
    if isinstance(method, Method):
        method_params = {**method.sketch_params, **{k: v for k, v in method.params().items()
                                                    if k not in ("method",)}, **(method_params or {})}
        method_params = {k: v for k, v in method_params.items() if v is not None}
        method = method.name
    if method not in METHODS:
        raise InputError("method", f"unknown method {method!r}; accepted: {', '.join(METHODS)}")
    if not isinstance(problem, str) or problem not in FAMILIES:
        problem = resolve_problem(problem, allow_files=allow_files)
        if problem.family in FAMILIES:
            problem_params = {"m": problem.m, "n": problem.n, "seed": problem.seed, **problem.params,
                              **(problem_params or {})}
            problem = problem.family
        elif (workers != 1 or scheduler is not None) and not _pickles(problem):
            raise InputError("workers", "this problem object cannot be sent to worker processes (its functions do "
                             "not pickle: module-level functions do, lambdas and closures do not): use workers = 1")
    workers = check_range("workers", workers, 1, 4096, integer=True)
    if theorem is not None and not isinstance(theorem, str):
        raise InputError("theorem", "sweeps take a theorem ID (the cache key and worker processes need a name); "
                         "register a user Theorem with theory_lab.theorems.register(th) and pass th.id")
    base = dict(problem_params=problem_params or {}, method_params=method_params or {}, iters=iters,
                seeds=seeds, seed=seed, theorem=theorem,
                confidence=confidence, backend=backend, device=device, dtype=dtype)
    configs = [Config(problem, method, pt, base) for pt in expand_grid(grid)]   # validates everything first
    keys = list(dict.fromkeys(c.key for c in configs))
    st = Store(store) if store is not None else None
    if st is not None:
        st.check_writable()
    repaired = st.repair(keys) if st is not None else []
    todo = list({c.key: c for c in configs if st is None or not st.has(c.key)}.values())
    results: dict[str, pd.DataFrame] = {}
    if not (isinstance(batch, bool) or (isinstance(batch, int) and batch >= 1)):
        raise InputError("batch", f"got {batch!r}; accepted: true, false or an integer >= 1")
    groups = group_configs(todo, workers, batch) if todo else []
    for key, frame in _execute(groups, workers, scheduler, progress):
        if st is not None:
            st.write_part(key, frame)            # with a store the frame is not kept: it is read back once
        else:
            results[key] = frame
    # ordered by (config, seed, iteration): parts in key order, each part by seed then checkpoint
    # as ``RunResult.to_frame`` writes it (no sort of the whole table)
    damaged: list[str] = []
    if st is not None:
        whole = st.consolidate()
        damaged = st.damaged
        mine = set(keys)
        if "config" in whole and not set(whole["config"].unique()) <= mine:
            whole = whole[whole["config"].isin(mine)].reset_index(drop=True)
        table = whole
    else:
        table = pd.concat([results[k] for k in sorted(keys)], ignore_index=True)
    div = table.groupby("config")["diverged"].max() if "diverged" in table else pd.Series(dtype=int)
    from .summary import SweepTable

    table = SweepTable(table)
    table.attrs.update(computed=len(todo), cached=len(keys) - len(todo), repaired=len(repaired),
                       diverged=int((div > 0).sum()), store=str(store) if store else None, damaged=damaged)
    return table


def _pickles(obj) -> bool:
    import pickle

    try:
        pickle.dumps(obj)
        return True
    except Exception:                      # PicklingError, AttributeError (local objects), TypeError
        return False


def _execute(groups, workers, scheduler, progress):
    """Yield (key, frame) as batches of configurations finish, with a tqdm bar (configurations,
    time left)."""
    if not groups:
        return
    bar = _bar(sum(len(g) for g in groups), progress)
    try:
        if scheduler is not None:
            yield from _execute_dask(groups, scheduler, bar)
        elif workers == 1:
            for group in groups:
                out = _compute_payload(group)
                bar.update(len(out))
                yield from out
        else:
            import concurrent.futures as cf
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_die_with_parent,
                                        initargs=(os.getpid(),)) as pool:
                futures = [pool.submit(_compute_payload, group) for group in groups]
                try:
                    for fut in cf.as_completed(futures):
                        out = fut.result()
                        bar.update(len(out))
                        yield from out
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
    finally:
        bar.close()


def _die_with_parent(parent_pid: int) -> None:
    """Worker initialiser: exit as soon as the parent process is gone (even after SIGKILL).

    Linux's PR_SET_PDEATHSIG delivers SIGKILL when the parent dies; a watchdog thread that polls
    the parent pid covers every other platform."""
    import signal
    import sys
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)        # Ctrl-C is the parent's to handle
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
        except OSError:
            pass

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def _execute_dask(payloads, scheduler, bar):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError("scheduler", "Dask is not installed: pip install 'theory-lab[dask]'") from None
    own = not isinstance(scheduler, Client)
    if own:
        try:
            client = Client(str(scheduler), timeout="10s")
        except (OSError, ValueError, TypeError) as exc:
            raise InputError("scheduler", f"cannot reach a Dask scheduler at {scheduler!r} ({type(exc).__name__}); "
                             "accepted: an address such as tcp://host:8786 or a distributed.Client") from None
    else:
        client = scheduler
    try:
        futures = client.map(_compute_payload, payloads, pure=False)
        for fut in as_completed(futures):
            out = fut.result()
            bar.update(len(out))
            yield from out
    finally:
        if own:
            client.close()


def _bar(total, enabled):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        class _Null:
            def update(self, n):
                pass

            def close(self):
                pass
        return _Null()
    return tqdm(total=total, unit="config", desc="sweep", disable=not enabled)


# ------------------------------------------------------------------------------ TOML specs
def load_spec(path) -> dict[str, Any]:
    """Read and validate a sweep spec (docs/DESIGN.md); errors name the field."""
    path = Path(path)
    spec = read_toml(path, "spec")
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise InputError(sorted(unknown)[0], f"unknown key in the sweep spec; accepted: {', '.join(sorted(SPEC_KEYS))}")
    for req in ("problem", "method"):
        if req not in spec:
            raise InputError(req, f"missing in {path}")
    for key, value in spec.items():
        types, what = SPEC_KEYS[key]
        if (isinstance(value, bool) and key != "batch") or not isinstance(value, types):
            raise InputError(key, f"got {value!r}; expected {what}")
    prob = spec["problem"]
    if prob.endswith(".toml") and not Path(prob).is_absolute():
        cand = path.parent / prob
        spec["problem"] = str(cand if cand.is_file() else Path(prob))
    return spec


def sweep_from_spec(path, out=None, workers: int = 1, scheduler=None, progress: bool = True,
                    batch: bool | int | None = None, allow_files: bool = False) -> pd.DataFrame:
    spec = load_spec(path)
    batch = spec.get("batch", True) if batch is None else batch
    out = out or spec.get("out") or str(Path("results") / (Path(path).stem + ".parquet"))
    return sweep(spec["problem"], spec["method"], spec.get("grid", {}) or {"p": [spec.get("method_params", {})
                                                                                   .get("p", 0.5)]},
                 iters=spec.get("iters", 500), seeds=spec.get("seeds", 64), store=out, workers=workers,
                 scheduler=scheduler, seed=spec.get("seed", 0), theorem=spec.get("theorem"),
                 confidence=spec.get("confidence", 0.95), backend=spec.get("backend", "numpy"),
                 device=spec.get("device", "cpu"), dtype=spec.get("dtype", "float64"), progress=progress,
                 problem_params=spec.get("problem_params"), method_params=spec.get("method_params"), batch=batch,
                 allow_files=allow_files)


__all__ = ["sweep", "sweep_from_spec", "load_spec", "Store", "expand_grid", "config_key", "ESTIMATORS"]
