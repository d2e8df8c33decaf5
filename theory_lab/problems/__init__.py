"""Problem families (THEORY.md section 3) and named instances (problems/*.toml)."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError, read_toml
from .base import FAMILIES, Problem
from . import l1, least_squares, linreg, quadratic, softmax  # noqa: F401  (register the families)


def make_problem(family: str, **params) -> Problem:
    """Build a problem of ``family`` (``m``, ``n``, ``seed`` and family parameters)."""
    if family not in FAMILIES:
        raise InputError("problem", f"unknown family {family!r}; accepted: {', '.join(sorted(FAMILIES))} "
                         "or a .toml file")
    return FAMILIES[family](**params)


def load_problem(path) -> Problem:
    """Load a named instance: a TOML file with ``family = "..."`` and the family's parameters."""
    spec = read_toml(path, "problem")
    spec.pop("description", None)
    family = spec.pop("family", None)
    if family is None:
        raise InputError("family", f"{path} does not name a family; accepted: {', '.join(sorted(FAMILIES))}")
    if not isinstance(family, str):
        raise InputError("family", f"got {family!r} in {path}; accepted: {', '.join(sorted(FAMILIES))}")
    params = spec.pop("params", {})
    if not isinstance(params, dict):
        raise InputError("params", f"got {params!r} in {path}; expected a table of the family's parameters")
    clash = set(spec) & set(params)
    if clash:
        raise InputError(sorted(clash)[0], f"given twice in {path} (top level and [params])")
    return make_problem(family, **spec, **params)


def resolve_problem(name_or_file, **params) -> Problem:
    """A family name, a path to a TOML file, or a ready Problem."""
    if isinstance(name_or_file, Problem):
        return name_or_file
    s = str(name_or_file)
    if ":" in s and not s.endswith(".toml") and not Path(s).is_file():
        if params:
            raise InputError("problem", f"{s} builds its own problem; parameters (-P) are not accepted")
        return problem_from_function(s)
    if s.endswith(".toml") or Path(s).is_file():
        problem = load_problem(s)
        return problem if not params else make_problem(problem.family, **{
            "m": problem.m, "n": problem.n, "seed": problem.seed, **problem.params, **params})
    return make_problem(s, **params)


def problem_from_function(spec: str) -> Problem:
    """``module:function`` (a module importable from the current folder or a .py path) whose function
    returns a Problem, e.g. one made with ``tl.custom_problem``."""
    import importlib
    import importlib.util
    import sys

    mod_name, _, fn_name = spec.rpartition(":")
    try:
        if mod_name.endswith(".py"):
            sp = importlib.util.spec_from_file_location(Path(mod_name).stem, mod_name)
            if sp is None:
                raise ImportError(mod_name)
            module = importlib.util.module_from_spec(sp)
            sp.loader.exec_module(module)
        else:
            if "" not in sys.path and "." not in sys.path:
                sys.path.insert(0, "")
            module = importlib.import_module(mod_name)
    except (ImportError, FileNotFoundError, SyntaxError) as exc:
        raise InputError("problem", f"cannot import {mod_name!r} for {spec!r}: {exc}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise InputError("problem", f"{mod_name!r} has no function {fn_name!r}")
    out = fn()
    if not isinstance(out, Problem):
        raise InputError("problem", f"{spec}() returned {type(out).__name__}, not a Problem (use tl.custom_problem)")
    return out


__all__ = ["problem_from_function", "FAMILIES", "Problem", "make_problem", "load_problem", "resolve_problem"]
