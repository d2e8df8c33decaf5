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
    if s.endswith(".toml") or Path(s).is_file():
        problem = load_problem(s)
        return problem if not params else make_problem(problem.family, **{
            "m": problem.m, "n": problem.n, "seed": problem.seed, **problem.params, **params})
    return make_problem(s, **params)


__all__ = ["FAMILIES", "Problem", "make_problem", "load_problem", "resolve_problem"]
