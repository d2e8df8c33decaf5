"""theory-lab: check convergence theory of Bernoulli-LoRA by measurement.

See docs/DESIGN.md for the public contract; docs/THEORY.md for the mathematics (theorem IDs).
"""
from __future__ import annotations

from ._version import __version__

from .backend import Backend, get_backend
from .check import CheckResult, check
from .custom import Certificate, certify, custom_problem
from .errors import InputError
from .fuzz import fuzz
from .fuzz import summary as fuzz_summary
from .estimators import ESTIMATORS, Estimator, evolve
from .estimators import register as register_estimator
from .methods import METHODS, Method, StepRule, register_method
from .params import Param
from .problems import FAMILIES, Problem, load_problem, make_problem
from .runner import RunResult, run
from .sketches import SKETCHES, SideMoments, Sketch, lambda_max, lambda_min, monte_carlo_EH
from .sketches import register as register_sketch
from .summary import SweepTable, summarise
from .theorems import THEOREMS, Constants, Theorem, get_theorem
from . import sweep as _sweep_module  # noqa: E402  (loaded first so that ``tl.sweep`` stays the function)

sweep = _sweep_module.sweep


__all__ = [
    "Backend", "Certificate", "CheckResult", "certify", "custom_problem", "Constants", "ESTIMATORS", "FAMILIES", "InputError", "METHODS", "Method",
    "Problem", "RunResult", "SKETCHES", "THEOREMS", "Theorem", "check", "fuzz", "get_backend", "get_theorem",
    "lambda_max", "lambda_min", "load_problem", "make_problem", "monte_carlo_EH", "run", "sweep", "__version__",
    "summarise", "SweepTable", "plot_sweep", "load_table", "Estimator", "Sketch", "SideMoments", "StepRule", "Param",
    "register_estimator", "register_sketch", "register_method", "evolve", "fuzz_summary",
]


def plot_sweep(data, x: str, y: str = "rate", hue: str | None = None, **kw):
    """``plotting.plot_sweep``: any sweep (long table, summary or store path) in the paper style."""
    from .plotting import plot_sweep as _plot, style

    if isinstance(data, (str, __import__("os").PathLike)):
        data = load_table(data)
    with style():
        return _plot(data, x, y, hue, **kw)


def load_table(path):
    """A stored sweep's long table (``sweep.load_table``), with ``.summary()``."""
    from .sweep import load_table as _load

    return _load(path)
