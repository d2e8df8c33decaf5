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

import hashlib
import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .check import check
from .errors import InputError, check_range, read_toml
from .estimators import ESTIMATORS
from .methods import METHODS, Method
from .problems import FAMILIES, resolve_problem
from .runner import run
from .theorems import select_theorem

METHOD_KEYS = {"p", "rank", "sketch", "stepsize", "factor", "alpha", "left_groups", "right_groups", "init_scale",
               "link_steps"}
ESTIMATOR_KEYS = {"noise", "batch", "replacement", "noise_std", "q", "momentum", "compressor", "k", "s", "kappa"}
RUN_KEYS = {"iters", "seeds", "master_seed"}
SPEC_KEYS = {"problem", "method", "iters", "seeds", "seed", "theorem", "confidence", "backend", "device",
             "dtype", "problem_params", "method_params", "grid", "out", "description", "checkpoints"}


# ------------------------------------------------------------------------------ configurations
def _problem_keys(family: str) -> set[str]:
    return {"m", "n", "seed"} | set(FAMILIES[family].defaults) if family in FAMILIES else {"m", "n", "seed"}


def split_params(params: dict[str, Any], family: str) -> tuple[dict, dict, dict]:
    """Route flat parameters to (problem, method, run); ``problem.x`` / ``method.x`` disambiguate."""
    prob, meth, runp = {}, {}, {}
    pkeys = _problem_keys(family)
    for key, val in params.items():
        if key.startswith("problem."):
            prob[key[8:]] = val
        elif key.startswith("method."):
            meth[key[7:]] = val
        elif key in RUN_KEYS:
            runp[key] = val
        else:
            in_p, in_m = key in pkeys, key in METHOD_KEYS | ESTIMATOR_KEYS
            if in_p and in_m:
                raise InputError(key, f"ambiguous: a parameter of both {family} and the method; "
                                      f"write problem.{key} or method.{key}")
            if not (in_p or in_m):
                raise InputError(key, f"unknown sweep parameter; accepted: {', '.join(sorted(pkeys))} (problem), "
                                      f"{', '.join(sorted(METHOD_KEYS | ESTIMATOR_KEYS))} (method), "
                                      f"{', '.join(sorted(RUN_KEYS))} (run)")
            (prob if in_p else meth)[key] = val
    return prob, meth, runp


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
    """One point of a sweep: problem, method and run settings, validated on construction."""

    def __init__(self, problem, method_name: str, params: dict, base: dict):
        family = problem if isinstance(problem, str) and problem in FAMILIES else None
        probe = resolve_problem(problem) if family is None else None
        family = family or probe.family
        prob, meth, runp = split_params(params, family)
        self.problem_spec = problem if isinstance(problem, str) else problem.family
        self.problem_params = {**base.get("problem_params", {}), **prob}
        self.method_name = method_name
        self.method_params = {**base.get("method_params", {}), **meth}
        self.iters = check_range("iters", runp.get("iters", base.get("iters", 500)), 1, 10_000_000, integer=True)
        self.seeds = check_range("seeds", runp.get("seeds", base.get("seeds", 64)), 2, 10_000_000, integer=True)
        self.master_seed = check_range("seed", runp.get("master_seed", base.get("seed", 0)), 0, None, integer=True)
        self.theorem = base.get("theorem")
        self.confidence = base.get("confidence", 0.95)
        self.backend = base.get("backend", "numpy")
        self.device = base.get("device", "cpu")
        self.dtype = base.get("dtype", "float64")
        self.params = dict(params)
        # validate now (cheap for methods; problems are built once per distinct parameter set)
        self.method().validate(self.problem())

    def problem(self):
        return _cached_problem(self.problem_spec, json.dumps(self.problem_params, sort_keys=True, default=str))

    def method(self) -> Method:
        return Method(self.method_name, **self.method_params)

    def spec(self) -> dict[str, Any]:
        return dict(problem=self.problem_spec, problem_params=self.problem_params, method=self.method_name,
                    method_params=self.method_params, iters=self.iters, seeds=self.seeds,
                    master_seed=self.master_seed, theorem=self.theorem, confidence=self.confidence,
                    backend=self.backend, device=self.device, dtype=self.dtype)

    @property
    def key(self) -> str:
        return config_key(self.spec())


_PROBLEMS: dict[tuple, Any] = {}


def _cached_problem(spec: str, params_json: str):
    k = (spec, params_json)
    if k not in _PROBLEMS:
        _PROBLEMS[k] = resolve_problem(spec, **json.loads(params_json))
    return _PROBLEMS[k]


# ------------------------------------------------------------------------------ computing one
def compute(config: Config) -> pd.DataFrame:
    """Run (and check, where a theorem applies) one configuration; the long table of its results."""
    problem, method = config.problem(), config.method()
    theorem = config.theorem or select_theorem(problem, method)
    verdict = theorem_id = None
    bound = None
    if theorem is not None:
        rep = check(problem, method, iters=config.iters, seeds=config.seeds, theorem=theorem,
                    confidence=config.confidence, seed=config.master_seed, backend=config.backend,
                    device=config.device, dtype=config.dtype)
        result, verdict, theorem_id = rep.result, rep.verdict, rep.theorem
        if rep.bound_curve is not None:
            bound = dict(zip(rep.checkpoints.tolist(), np.asarray(rep.bound_curve, float).tolist()))
    else:
        result = run(problem, method, iters=config.iters, seeds=config.seeds, seed=config.master_seed,
                     backend=config.backend, device=config.device, dtype=config.dtype)
    frame = result.to_frame()
    frame["bound"] = frame["iteration"].map(bound).astype(float) if bound else np.nan
    frame["theorem"] = theorem_id or ""
    frame["verdict"] = verdict or ""
    frame["lam_min"] = result.lam_min
    frame["config"] = config.key
    for k, v in config.params.items():
        frame[k] = v if not isinstance(v, (list, dict)) else json.dumps(v)
    return frame


def _compute_payload(args) -> tuple[str, pd.DataFrame]:
    problem, method_name, params, base = args
    cfg = Config(problem, method_name, params, base)
    return cfg.key, compute(cfg)


# ------------------------------------------------------------------------------ the store
class Store:
    """Parquet result store: ``path`` (the table) and ``path.parts/<config>.parquet``."""

    def __init__(self, path):
        self.path = Path(path)
        self.parts = self.path.with_name(self.path.name + ".parts")

    def has(self, key: str) -> bool:
        return (self.parts / f"{key}.parquet").is_file()

    def write_part(self, key: str, frame: pd.DataFrame) -> None:
        self.parts.mkdir(parents=True, exist_ok=True)
        _atomic_parquet(frame, self.parts / f"{key}.parquet")

    def read(self, keys=None) -> pd.DataFrame:
        files = sorted(self.parts.glob("*.parquet")) if keys is None else [self.parts / f"{k}.parquet" for k in keys]
        frames = [pd.read_parquet(f) for f in files if f.is_file()]
        if not frames:
            return pd.DataFrame()
        table = pd.concat(frames, ignore_index=True)
        for col in table.columns:                    # a grid mixing numbers and words ("theory", 0.1)
            if table[col].dtype == object and table[col].map(type).nunique() > 1:
                table[col] = table[col].astype(str)
        return table

    def consolidate(self) -> pd.DataFrame:
        """Rewrite the table from all parts, atomically and under an exclusive lock."""
        import fcntl

        self.parts.mkdir(parents=True, exist_ok=True)
        with open(self.parts / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            table = self.read()
            if not table.empty:
                table = table.sort_values(["config", "seed", "iteration"], kind="stable").reset_index(drop=True)
            _atomic_parquet(table, self.path)
            return table


def _atomic_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ------------------------------------------------------------------------------ the sweep
def sweep(problem, method, grid: dict[str, list], iters: int = 500, seeds: int = 64, store=None,
          workers: int = 1, scheduler=None, seed: int = 0, theorem=None, confidence: float = 0.95,
          backend: str = "numpy", device: str = "cpu", dtype: str = "float64", progress: bool = True,
          problem_params: dict | None = None, method_params: dict | None = None) -> pd.DataFrame:
    """Sweep the cartesian product of ``grid``; returns the long table of this sweep's configurations.

    ``problem``: family name, TOML path or Problem; ``method``: a method name or a Method (whose
    parameters become the fixed method parameters). The returned frame's ``attrs`` hold
    ``computed`` and ``cached`` (configuration counts) and ``store``.
    """
    if isinstance(method, Method):
        method_params = {**method.sketch_params, **{k: v for k, v in method.params().items()
                                                    if k not in ("method",)}, **(method_params or {})}
        method_params = {k: v for k, v in method_params.items() if v is not None}
        method = method.name
    if method not in METHODS:
        raise InputError("method", f"unknown method {method!r}; accepted: {', '.join(METHODS)}")
    if not isinstance(problem, str):
        problem_params = {"m": problem.m, "n": problem.n, "seed": problem.seed, **problem.params,
                          **(problem_params or {})}
        problem = problem.family
    workers = check_range("workers", workers, 1, 4096, integer=True)
    if theorem is not None and not isinstance(theorem, str):
        raise InputError("theorem", "sweeps take a theorem ID (the cache key and worker processes need a name); "
                         "register a user Theorem with theory_lab.theorems.register(th) and pass th.id")
    base = dict(problem_params=problem_params or {}, method_params=method_params or {}, iters=iters,
                seeds=seeds, seed=seed, theorem=theorem,
                confidence=confidence, backend=backend, device=device, dtype=dtype)
    points = expand_grid(grid)
    configs = [Config(problem, method, pt, base) for pt in points]      # validates everything first
    keys = [c.key for c in configs]
    st = Store(store) if store is not None else None
    todo = [(k, pt) for k, pt in zip(keys, points) if st is None or not st.has(k)]
    todo = list(dict((k, pt) for k, pt in todo).items())               # a key once
    results: dict[str, pd.DataFrame] = {}
    payloads = [(problem, method, pt, base) for _, pt in todo]
    for key, frame in _execute(payloads, workers, scheduler, progress):
        if st is not None:
            st.write_part(key, frame)
        results[key] = frame
    if st is not None:
        st.consolidate()
        table = st.read(list(dict.fromkeys(keys)))
    else:
        table = pd.concat([results[k] for k in dict.fromkeys(keys)], ignore_index=True)
    table = table.sort_values(["config", "seed", "iteration"], kind="stable").reset_index(drop=True)
    table.attrs.update(computed=len(todo), cached=len(set(keys)) - len(todo), store=str(store) if store else None)
    return table


def _execute(payloads, workers, scheduler, progress):
    """Yield (key, frame) as configurations finish, with a tqdm bar (configurations, time left)."""
    if not payloads:
        return
    bar = _bar(len(payloads), progress)
    try:
        if scheduler is not None:
            yield from _execute_dask(payloads, scheduler, bar)
        elif workers == 1:
            for pl in payloads:
                out = _compute_payload(pl)
                bar.update(1)
                yield out
        else:
            import concurrent.futures as cf
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_compute_payload, pl) for pl in payloads]
                for fut in cf.as_completed(futures):
                    bar.update(1)
                    yield fut.result()
    finally:
        bar.close()


def _execute_dask(payloads, scheduler, bar):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError("scheduler", "Dask is not installed: pip install 'theory-lab[dask]'") from None
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        futures = client.map(_compute_payload, payloads, pure=False)
        for fut in as_completed(futures):
            bar.update(1)
            yield fut.result()
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
    """Read and validate a sweep spec (DESIGN.md); errors name the field."""
    path = Path(path)
    spec = read_toml(path, "spec")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise InputError(sorted(unknown)[0], f"unknown key in the sweep spec; accepted: {', '.join(sorted(SPEC_KEYS))}")
    for req in ("problem", "method"):
        if req not in spec:
            raise InputError(req, f"missing in {path}")
    if not isinstance(spec.get("grid", {}), dict):
        raise InputError("grid", "must be a table of lists")
    prob = spec["problem"]
    if prob.endswith(".toml") and not Path(prob).is_absolute():
        cand = path.parent / prob
        spec["problem"] = str(cand if cand.is_file() else Path(prob))
    return spec


def sweep_from_spec(path, out=None, workers: int = 1, scheduler=None, progress: bool = True) -> pd.DataFrame:
    spec = load_spec(path)
    out = out or spec.get("out") or str(Path("results") / (Path(path).stem + ".parquet"))
    return sweep(spec["problem"], spec["method"], spec.get("grid", {}) or {"p": [spec.get("method_params", {})
                                                                                   .get("p", 0.5)]},
                 iters=spec.get("iters", 500), seeds=spec.get("seeds", 64), store=out, workers=workers,
                 scheduler=scheduler, seed=spec.get("seed", 0), theorem=spec.get("theorem"),
                 confidence=spec.get("confidence", 0.95), backend=spec.get("backend", "numpy"),
                 device=spec.get("device", "cpu"), dtype=spec.get("dtype", "float64"), progress=progress,
                 problem_params=spec.get("problem_params"), method_params=spec.get("method_params"))


__all__ = ["sweep", "sweep_from_spec", "load_spec", "Store", "expand_grid", "config_key", "ESTIMATORS"]
