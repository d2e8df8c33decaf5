"""Problem families (docs/THEORY.md section 3) and named instances (problems/*.toml)."""
from __future__ import annotations

import re
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
    if "family" in params:
        raise InputError("params.family", f"in {path}: the family is named once, at the top level (family = ...)")
    clash = set(spec) & set(params)
    if clash:
        raise InputError(sorted(clash)[0], f"given twice in {path} (top level and [params])")
    return make_problem(family, **spec, **params)


def resolve_problem(name_or_file, allow_files: bool = False, **params) -> Problem:
    """A family name, a path to a TOML file, ``module:function``, or a ready Problem.

    ``allow_files``: also accept ``path/to/file.py:function`` (which runs that file); off by default,
    so a spec or a command line that names a file path never executes it unasked."""
    if isinstance(name_or_file, Problem):
        return name_or_file
    s = str(name_or_file)
    if ":" in s and not s.endswith(".toml") and not Path(s).is_file():
        if params:
            raise InputError("problem", f"{s} builds its own problem; parameters (-P) are not accepted")
        return problem_from_function(s, allow_files)
    if s.endswith(".toml") or Path(s).is_file():
        problem = load_problem(s)
        return problem if not params else make_problem(problem.family, **{
            "m": problem.m, "n": problem.n, "seed": problem.seed, **problem.params, **params})
    return make_problem(s, **params)


_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def problem_from_function(spec: str, allow_files: bool = False) -> Problem:
    """``module:function``: a module importable from the current folder (a dotted name) whose function
    returns a Problem, e.g. one made with ``tl.custom_problem``. A file path (``dir/file.py:function``)
    is run only with ``allow_files`` (CLI ``--allow-file-problem``). Importing the module and calling
    the function run the user's code by design; whatever they raise is reported in one line."""
    import importlib
    import importlib.util
    import sys

    mod_name, _, fn_name = spec.rpartition(":")
    if not fn_name.isidentifier():
        raise InputError("problem", f"{spec!r}: expected MODULE:FUNCTION with a function name after the colon")
    is_file = mod_name.endswith(".py") or "/" in mod_name or "\\" in mod_name
    if is_file and not allow_files:
        raise InputError("problem", f"{mod_name!r} is a file path; problems load by module name (module:function, "
                         "importable from the current folder); to run a file, pass --allow-file-problem "
                         "(allow_files=True in Python)")
    if not is_file and not _MODULE.fullmatch(mod_name):
        raise InputError("problem", f"{mod_name!r} is not a module name (dotted Python identifiers)")
    try:
        if is_file:
            sp = importlib.util.spec_from_file_location(Path(mod_name).stem, mod_name)
            if sp is None or sp.loader is None:
                raise ImportError(f"cannot load {mod_name}")
            module = importlib.util.module_from_spec(sp)
            sp.loader.exec_module(module)
        else:
            if "" not in sys.path and "." not in sys.path:
                sys.path.insert(0, "")
            module = importlib.import_module(mod_name)
    except InputError:
        raise
    except Exception as exc:               # the user's module: ImportError, SyntaxError, or its own fault
        raise InputError("problem", f"cannot import {mod_name!r} for {spec!r}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise InputError("problem", f"{mod_name!r} has no function {fn_name!r}")
    try:
        out = fn()
    except InputError:
        raise
    except Exception as exc:
        raise InputError("problem", f"{spec}() raised {type(exc).__name__}: {exc}") from None
    if not isinstance(out, Problem):
        raise InputError("problem", f"{spec}() returned {type(out).__name__}, not a Problem (use tl.custom_problem)")
    return out


__all__ = ["problem_from_function", "FAMILIES", "Problem", "make_problem", "load_problem", "resolve_problem"]
