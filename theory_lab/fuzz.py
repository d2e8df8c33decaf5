"""The falsification engine: random configurations inside each theorem's assumptions.

``fuzz(theorems=None, budget=60, seed=0, store=None, configs=None)`` (CLI ``theory-lab fuzz``):

1. **Random phase.** Round-robin over the theorems, draw a configuration: a family the theorem
   applies to (with random shape and family parameters), p with mass on 0 and 1, a rank, a sketch
   law (mixes LEFT/RIGHT included), the estimator's parameters, the stepsize as a fraction of the
   largest one the theorem's own condition admits (found by bisection on the condition), T and S.
   Configurations outside the assumptions (``plan.reason``) are redrawn, never checked.
2. **Re-check.** Every ``violated`` / ``mismatch`` is re-run with 4x the seeds, a fresh master
   seed and confidence 0.9999 (a confirmation must not fail by chance across thousands of
   configurations); one that persists is a false verdict (or a false theorem): ``persisting = True``.
3. **Tightest configuration.** Per theorem, a local search from the configuration with the largest
   measured/bound (at t > 0) over its continuous parameters (p, stepsize fraction, estimator scalars),
   keeping moves that raise it: where a bound is nearly tight is what a theorist wants to know.

Every configuration is one row with its exact reproducer (the Python call and the CLI line); with a
``store`` the rows are parts of a sweep store, so a campaign resumes where it stopped. Draws depend
only on (seed, theorem, index), so a campaign is reproducible. ``summary(table)`` is the per-theorem
table: configurations, verdict counts, worst tightness and its reproducer.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .check import judge
from .errors import BudgetExceeded, InputError, check_range
from .estimators import ESTIMATORS
from .methods import FACTOR_PARAM, METHODS, Method
from .plan import make_plan
from .problems import FAMILIES, make_problem
from .sketches import SKETCHES
from .theorems import THEOREMS, Theorem, resolve_theorem

#: the confirmation re-check runs at this confidence: a campaign of N configurations then expects
#: at most N x 0.05 x 1e-4 persisting false verdicts from chance alone (0.07 for 14,000)
RECHECK_CONFIDENCE = 0.9999
#: probability of the corners where bounds are attained: an isotropic sketch law, the stepsize at the
#: edge of the theorem's condition (the families' and estimators' own corners are in their declarations)
ISOTROPIC_MASS = 0.25
EDGE_MASS = 0.25
#: probability of a draw at the joint corner: every declared parameter at its corner (PAGE's q = 1,
#: k = d, MVR's momentum 1 with tiny noise, ...), the family's isotropic instance, an isotropic sketch
#: and the stepsize at the edge of the theorem's condition: where the bounds are attained
CORNER_MASS = 0.2


@dataclass(frozen=True)
class Draw:
    """One fuzz configuration (everything needed to rebuild and re-run it)."""

    theorem: str
    family: str
    problem: dict
    method: str
    params: dict
    iters: int
    seeds: int
    seed: int
    fraction: float = math.nan           # stepsize as a fraction of the largest admissible one
    phase: str = "random"
    extra: dict = field(default_factory=dict)
    #: the theorem's fingerprint (``Theorem.fingerprint``): a stored row is reused only for the same bound
    theorem_fp: str = ""

    @property
    def key(self) -> str:
        from .fingerprint import code_version

        blob = json.dumps([self.theorem, self.family, self.problem, self.method, self.params, self.iters,
                           self.seeds, self.seed, self.theorem_fp, code_version()], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def build(self):
        return _build_problem(self.family, self.problem), Method(self.method, **self.params)

    def python(self) -> str:
        prob = ", ".join(f"{k}={v!r}" for k, v in self.problem.items())
        meth = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        user = self.family in USER_PROBLEMS
        where = "problem" if user else f"tl.make_problem({self.family!r}, {prob})"
        return (f"tl.check({where}, tl.Method({self.method!r}, {meth}), "
                f"iters={self.iters}, seeds={self.seeds}, theorem={self.theorem!r}, seed={self.seed})"
                + (f"  # problem = your {USER_PROBLEMS[self.family].describe()}" if user else ""))

    def cli(self) -> str:
        if self.family in USER_PROBLEMS:
            return "(a user's problem object: use the Python reproducer, or --problem MODULE:FUNCTION)"
        parts = [f"theory-lab check --problem {self.family}"]
        parts += [f"-P {k}={_cli_value(v)}" for k, v in self.problem.items()]
        parts.append(f"--method {self.method}")
        own = {"p": "--p", "rank": "--rank", "sketch": "--sketch", "stepsize": "--stepsize", "factor": "--factor"}
        for k, v in self.params.items():
            parts.append(f"{own[k]} {_cli_value(v)}" if k in own else f"-M {k}={_cli_value(v)}")
        parts.append(f"--iters {self.iters} --seeds {self.seeds} --theorem {self.theorem} --seed {self.seed}")
        return " ".join(parts)


def _cli_value(v) -> str:
    return json.dumps(v) if isinstance(v, (list, tuple)) else (f"'{v}'" if isinstance(v, str) and " " in v else str(v))


# ------------------------------------------------------------------------------ drawing
#: the user's problem objects of this campaign (``fuzz(problems=...)``), under "user:NAME:FINGERPRINT"
USER_PROBLEMS: dict[str, Any] = {}


def _register(problem) -> str:
    from .problems import resolve_problem

    pr = resolve_problem(problem)
    key = f"user:{getattr(pr, 'name', pr.family)}:{pr.fingerprint()[:8]}"
    USER_PROBLEMS[key] = pr
    return key


def _build_problem(family: str, params: dict):
    return USER_PROBLEMS[family] if family in USER_PROBLEMS else make_problem(family, **params)


def _space(th: Theorem, user: tuple = ()) -> tuple[tuple, tuple]:
    """The methods and families a theorem is drawn on, from their declarations: the Bernoulli-LoRA
    methods of the theorem's estimator, and every family with a ``fuzz_params`` whose class fits the
    estimator (a finite sum for PAGE; smooth or not as the estimator and theorem need). A user theorem
    may narrow them with ``extra={"methods": [...], "families": [...]}``."""
    methods = th.extra.get("methods") if th.extra else None
    families = th.extra.get("families") if th.extra else None
    est = ESTIMATORS[th.estimator or "gd"]
    if not methods:
        methods = [name for name, spec in METHODS.items() if spec.estimator == est.name and spec.sketched
                   and not spec.one_side and spec.rule.theory]
    if not families and not user:
        smooth = est.smooth and th.needs_smooth
        families = [name for name, cls in FAMILIES.items() if cls.fuzz_params(np.random.default_rng(0)) is not None
                    and cls.smooth == smooth and (cls.finite_sum or not est.needs_finite_sum)]
    return tuple(methods), tuple(user or families)


def _problem_params(rng: np.random.Generator, family: str, corner: bool = False) -> dict:
    if family in USER_PROBLEMS:
        return {}                                        # a user's problem: the object itself, no parameters
    return FAMILIES[family].fuzz_params(rng, corner)


def _sketch(rng: np.random.Generator, laws=None, corner: bool = False) -> str:
    """A sketch law: an isotropic one with probability ``ISOTROPIC_MASS`` (where lam_min = lam_max and
    the bounds can be attained), else any drawable law (``laws``: those a theorem names), for both
    sides or a LEFT/RIGHT mix (30%)."""
    laws = list(laws) if laws else [name for name, cls in SKETCHES.items() if cls.fuzz]
    iso = [name for name in laws if SKETCHES[name].isotropic is True]      # a property: depends on its parameters
    if corner:
        # at the corner stepsize a diagonal law zeroes the coordinates it picks, and the run reaches
        # f = f* exactly, where a rate cannot be measured: a rotation-invariant law instead
        smooth = [name for name in iso if not SKETCHES[name].diagonal]
        iso = smooth or iso
    if iso and (corner or rng.random() < ISOTROPIC_MASS):
        return str(rng.choice(iso))
    pair = [str(rng.choice(laws)), str(rng.choice(laws))]
    return pair[0] if rng.random() < 0.7 else "/".join(pair)


def _law_params(rng: np.random.Generator, sketch: str, problem, corner: bool = False) -> dict:
    """The declared parameters of the laws in ``sketch`` (``Sketch.PARAMS``), corners included."""
    from .params import Context, draw_all

    out: dict[str, Any] = {}
    for side in sketch.split("/"):
        out.update(draw_all(SKETCHES[side].PARAMS, rng, Context(problem.m, problem.n, problem.n_samples),
                            skip=lambda k: k in out, corner=corner))
    return out


def _method_params(rng: np.random.Generator, method: str, problem, laws=None, corner: bool = False) -> dict:
    """p (mass on 0 and 1), a rank, a sketch law with its declared parameters, and the estimator's
    own declared parameters (``corner``: every declared parameter at its corner, an isotropic law)."""
    from .methods import P_PARAM, RANK_PARAM
    from .params import Context

    ctx = Context(problem.m, problem.n, problem.n_samples)
    p = P_PARAM.draw(rng, ctx)                       # its declared mass on p = 0 and p = 1
    sketch = _sketch(rng, laws, corner)
    # at the corner, a rank below the side's size (a full-rank sketch at the corner stepsize solves an
    # isotropic problem in one step)
    top = RANK_PARAM.high(ctx)
    rank = dataclasses.replace(RANK_PARAM, high=top - 1 if corner and top > 1 else top)
    out: dict[str, Any] = dict(p=round(p, 6), rank=rank.draw(rng, ctx), sketch=sketch)
    out.update(_law_params(rng, sketch, problem, corner))
    out.update(ESTIMATORS[METHODS[method].estimator].fuzz_params(rng, problem, corner))
    return out


def draw(th: Theorem, rng: np.random.Generator, seed: int, tries: int = 40, user: tuple = (),
         deadline: float | None = None, why: dict | None = None) -> Draw | None:
    """A configuration inside ``th``'s assumptions, or None if none was found in ``tries`` draws
    (on the user's problems ``user``, keys of USER_PROBLEMS, when given) or ``deadline``
    (``time.monotonic()``) passed. ``why``: filled with the last reason a draw was refused, by theorem."""
    methods, families = _space(th, user)
    fp = th.fingerprint()
    for _ in range(tries):
        if deadline is not None and time.monotonic() > deadline:
            return None
        family, method = str(rng.choice(families)), str(rng.choice(methods))
        corner = bool(rng.random() < CORNER_MASS)
        prob = _problem_params(rng, family, corner)
        try:
            pr = _build_problem(family, prob)
            params = _method_params(rng, method, pr, th.extra.get("sketches") if th.extra else None, corner)
            if th.stepsize_rule is not None:                 # the theorem's own rule, from the object
                polyak = th.stepsize_rule == "polyak"
                params["stepsize"] = "polyak" if polyak else "constant"
                if polyak and th.kind != "EXACT":
                    lam, Lam = Method(method, **params).lam(pr)
                    if Lam > 0:
                        params["kappa"] = float(rng.uniform(0.05, 0.999) * 2 * lam / Lam)
                elif not polyak:
                    params["factor"] = FACTOR_PARAM.draw(rng)      # its declared fuzz range
            T, S = int(rng.integers(10, 200)), int(rng.integers(100, 600))
            base = make_plan(pr, Method(method, **params), T, S, seed, theorem=th, min_seeds=2)
            fraction = math.nan
            if th.stepsize_rule is None:
                if base.reason is not None and not base.reason.startswith("stepsize"):
                    _why(why, th, base.reason)
                    continue
                gmax = th.largest_stepsize(base.constants)
                if gmax == math.inf:                       # no upper limit: up to 64x the recommendation
                    gmax = 64.0 * th.recommended(base.constants)
                if gmax is None or not math.isfinite(gmax) or gmax <= 0:
                    _why(why, th, "its stepsize condition admits no positive stepsize on the drawn configurations")
                    continue
                # the edge of the condition (where bounds are attained) or mass near it
                fraction = 1.0 if corner or rng.random() < EDGE_MASS else float(1.0 - rng.beta(1.0, 3.0) * 0.98)
                params["stepsize"] = float(fraction * gmax * (1 - 1e-9))
            d = Draw(th.id, family, prob, method, params, T, S, seed, fraction, phase="corner" if corner else "random",
                     theorem_fp=fp)
            # the drawn plan differs from ``base`` only in its stepsize (resolved once, not again):
            # everything make_plan checks before the stepsize condition passed there
            reason = base.reason if th.stepsize_rule is not None else th.stepsize_reason(
                base.constants.replace(gamma=params["stepsize"]))
            if reason is None:
                return d
            _why(why, th, reason)
        except InputError as exc:
            _why(why, th, str(exc))
        except (TypeError, ValueError, ZeroDivisionError, AttributeError, ArithmeticError) as exc:
            _why(why, th, f"{th.id}'s functions fail on the drawn configurations ({type(exc).__name__}: {exc})")
    return None


def _why(why: dict | None, th: Theorem, reason: str) -> None:
    if why is not None:
        why[th.id] = reason


# ------------------------------------------------------------------------------ running
def evaluate(d: Draw, theorem: Theorem | None = None, recheck: bool = True, deadline: float | None = None) -> dict:
    """Check one configuration (re-checking violated / mismatch with 4x seeds and a fresh master seed).
    ``deadline`` (``time.monotonic()``): past it the runs stop with ``errors.BudgetExceeded``."""
    from .plan import check_memory
    from .runner import execute

    th = theorem or resolve_theorem(d.theorem)
    pr, me = d.build()
    t0 = time.perf_counter()
    plan = make_plan(pr, me, d.iters, d.seeds, d.seed, theorem=th, min_seeds=2)   # resolved once per draw
    rep = judge(plan, execute(plan, deadline))
    row = dict(key=d.key, theorem=d.theorem, phase=d.phase, family=d.family, method=d.method,
               problem=json.dumps(d.problem), params=json.dumps(d.params), iters=d.iters, seeds=d.seeds,
               seed=d.seed, fraction=d.fraction, verdict=rep.verdict, reason=rep.reason,
               max_tightness=rep.max_tightness, tightness=rep.tightness, late_tightness=rep.late_tightness,
               decided_at=rep.decided_at if rep.decided_at is not None else -1, max_skewness=rep.max_skewness,
               diverged=rep.diverged, recheck="", persisting=False, python=d.python(), cli=d.cli(),
               theorem_fp=d.theorem_fp)
    if recheck and rep.verdict in ("violated", "mismatch"):
        fresh = int(np.random.default_rng([d.seed, 7]).integers(0, 2 ** 62))
        bigger = dataclasses.replace(plan, seeds=4 * d.seeds, seed=fresh)   # the same plan, more seeds
        check_memory(bigger)
        again = judge(bigger, execute(bigger, deadline), RECHECK_CONFIDENCE)
        row.update(recheck=again.verdict, persisting=again.verdict in ("violated", "mismatch"),
                   recheck_python=d.python().replace(f"seeds={d.seeds}", f"seeds={4 * d.seeds}")
                   .replace(f"seed={d.seed})", f"seed={fresh}, confidence={RECHECK_CONFIDENCE})"))
    row["seconds"] = time.perf_counter() - t0
    return row


def objective(row: dict, th: Theorem) -> float:
    """What the search maximises: measured/bound past the first tenth of the run for rate theorems
    (their rate, not their first step), else over every t > 0."""
    key = "late_tightness" if th.rate is not None and np.isfinite(row.get("late_tightness", np.nan)) else "max_tightness"
    return float(row[key])


def _search(best: Draw, best_t: float, th: Theorem, rng: np.random.Generator, steps: int, deadline: float):
    """Hill-climb :func:`objective` from ``best`` over p, the stepsize fraction (jumping to the edge of
    the condition with probability ``EDGE_MASS``) and the estimator's declared parameters (jumping to
    their corners with their declared mass)."""
    from .params import Context

    rows = []
    decl = {p.name: p for p in ESTIMATORS[METHODS[best.method].estimator].PARAMS}
    for side in str(best.params.get("sketch", "")).split("/"):
        decl.update({p.name: p for p in getattr(SKETCHES.get(side), "PARAMS", ())})
    for i in range(steps):
        if time.monotonic() > deadline:
            break
        params = dict(best.params)
        if rng.random() < 0.5 and 0.0 < params.get("p", 0.5) < 1.0:
            params["p"] = float(np.clip(params["p"] + rng.normal(0, 0.15), 0.0, 1.0))
        pr = _build_problem(best.family, best.problem)
        ctx = Context(pr.m, pr.n, pr.n_samples)
        jump = rng.random() < CORNER_MASS                    # every declared parameter to its corner at once
        for k, value in best.params.items():
            if k in decl and (jump or rng.random() < 0.5):
                params[k] = decl[k].corner_values(ctx)[0] if jump and decl[k].corners else decl[k].perturb(value, rng, ctx)
        fraction = best.fraction
        try:
            if isinstance(params.get("stepsize"), float) and math.isfinite(best.fraction):
                # a fraction of the largest stepsize the condition admits with the new parameters
                fraction = 1.0 if jump or rng.random() < EDGE_MASS else float(np.clip(
                    best.fraction + rng.normal(0, 0.1), 0.02, 1.0))
                params.pop("stepsize")
                c = make_plan(pr, Method(best.method, **params), best.iters, 2, best.seed, theorem=th,
                              min_seeds=2).constants
                gmax = th.largest_stepsize(c)
                if gmax is None or not gmax > 0:
                    continue
                gmax = 64.0 * th.recommended(c) if gmax == math.inf else gmax
                params["stepsize"] = float(fraction * gmax * (1 - 1e-9))
            d = Draw(best.theorem, best.family, best.problem, best.method, params, best.iters, best.seeds,
                     best.seed + i + 1, fraction, phase="search", theorem_fp=best.theorem_fp)
            pr, me = d.build()
            if make_plan(pr, me, d.iters, d.seeds, d.seed, theorem=th, min_seeds=2).reason is not None:
                continue
            row = evaluate(d, th, deadline=deadline)
        except (InputError, BudgetExceeded, TypeError, ValueError, ZeroDivisionError, AttributeError, ArithmeticError):
            continue                               # (a user's theorem whose functions fail here: as in draw)
        rows.append(row)
        value = objective(row, th)
        if np.isfinite(value) and value > best_t:
            best, best_t = d, value
    return rows


def fuzz(theorems=None, budget: float = 60, seed: int = 0, store=None, workers: int = 1,
         search_fraction: float = 0.2, progress: bool = False, echo=None, problems=None,
         configs: int | None = None, search_steps: int = 8) -> pd.DataFrame:
    """Run a falsification campaign for ``budget`` seconds (module docstring); one row per configuration.

    ``configs``: at most this many random-phase configurations; ``search_steps``: at most this many
    local-search steps per theorem (0: no search). With ``configs`` the campaign's rows depend on the
    seed alone, not on the machine's speed, as long as the budget (still a hard limit) is not spent first.

    ``theorems``: IDs or Theorem objects (default: every registered theorem); a user Theorem may name
    the methods, families and sketch laws it is about in ``extra={"methods": [...], "families": [...],
    "sketches": [...]}`` (default: the theorem's estimator's methods, every family that fits, every law).
    ``problems``: the user's own problems (``tl.custom_problem`` objects, or any Problem) to draw on
    instead of the built-in families; method, p, rank, sketch, estimator parameters and the stepsize
    are drawn as usual (the campaign then runs in this process).
    ``store``: a parquet path; existing configurations are reused (resume) and new ones added."""
    import pandas as pd
    budget = check_range("budget", budget, 0.0, 7 * 24 * 3600.0, low_open=True)
    seed = check_range("seed", seed, 0, 2 ** 63 - 1, integer=True)
    workers = check_range("workers", workers, 1, 4096, integer=True)
    if configs is not None:
        configs = check_range("configs", configs, 1, 10 ** 9, integer=True)
    search_steps = check_range("search_steps", search_steps, 0, 10 ** 6, integer=True)
    ths = [resolve_theorem(t) for t in (theorems or list(THEOREMS))]
    if not ths:
        raise InputError("theorems", "no theorem to fuzz: give IDs or Theorem objects")
    from .sweep import Store

    st = Store(store) if store is not None else None
    if st is not None:
        st.check_writable()
    start = time.monotonic()
    end = start + budget                                  # the hard limit of everything below
    deadline = start + budget * (1 - search_fraction)
    rngs = {th.id: np.random.default_rng([seed, int(hashlib.sha256(th.id.encode()).hexdigest()[:8], 16)]) for th in ths}
    registered = all(THEOREMS.get(th.id) is th for th in ths)
    empty: dict[str, str] = {}
    rows: list[dict] = []
    with _hard_limit(end):
        try:
            user = tuple(_register(p) for p in (problems or ()))
            rows = _random_phase(ths, rngs, seed, deadline, end, st, workers if registered and not user else 1, echo,
                                 user, empty, configs)
            for th in ths:
                mine = [r for r in rows if r["theorem"] == th.id and np.isfinite(objective(r, th))]
                if not mine or not search_steps or time.monotonic() > end:
                    continue
                top = max(mine, key=lambda r: objective(r, th))
                best = _row_draw(top)
                share = (end - time.monotonic()) / max(1, len(ths))
                for row in _search(best, objective(top, th), th, rngs[th.id], search_steps, time.monotonic() + share):
                    _save(st, row)
                    rows.append(row)
        except BudgetExceeded:
            pass                                          # the budget is spent: keep what finished
    for tid, why in empty.items():
        if echo:
            echo(f"no configuration of {tid} could be drawn: {why}")
    if st is not None:
        st.consolidate()
    table = pd.DataFrame(rows)
    table.attrs.update(seconds=time.monotonic() - start, seed=seed, empty=empty)
    return table


@contextlib.contextmanager
def _hard_limit(end: float):
    """In the main thread, an interval timer raises ``BudgetExceeded`` at ``end`` (plus a second's
    grace) even inside a user's Python function that never returns; elsewhere the deadlines checked
    by the loops are the limit."""
    import signal
    import threading

    usable = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if not usable:
        yield
        return

    def ring(signum, frame):
        raise BudgetExceeded("the fuzz budget ran out")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(end - time.monotonic(), 0.0) + 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _draws(ths, rngs, seed, deadline, user=(), empty=None, limit=None):
    """The campaign's draws, round-robin over the theorems; deterministic in (seed, theorem, index).
    A theorem none of whose last 3 x 40 draws fits its assumptions is dropped and named in ``empty``
    with the last reason; the generator ends at ``deadline``, after ``limit`` draws, or when every
    theorem is dropped."""
    live, misses, why = list(ths), {th.id: 0 for th in ths}, {}
    i = given = 0
    while live and time.monotonic() < deadline and (limit is None or given < limit):
        th = live[i % len(live)]
        d = draw(th, rngs[th.id], seed=int(seed * 1_000_003 + i) % (2 ** 63), user=user, deadline=deadline, why=why)
        i += 1
        if d is not None:
            misses[th.id] = 0
            given += 1
            yield th, d
        elif time.monotonic() < deadline:
            misses[th.id] += 1
            if misses[th.id] >= 3:
                live.remove(th)
                if empty is not None:
                    empty[th.id] = why.get(th.id, "no draw fits its assumptions")


def _random_phase(ths, rngs, seed, deadline, end, st, workers, echo, user=(), empty=None, limit=None) -> list[dict]:
    rows: list[dict] = []

    def keep(row):
        _save(st, row)
        rows.append(row)
        if echo and row.get("persisting"):
            echo(f"persisting {row['verdict']}: {row['python']}")

    draws = _draws(ths, rngs, seed, deadline, user, empty, limit)
    if workers == 1:
        for th, d in draws:
            try:
                keep(_cached(st, d) or evaluate(d, th, deadline=end))
            except BudgetExceeded:
                break
            except InputError as exc:              # a user's variant refusing the drawn configuration mid-run
                if echo:
                    echo(f"{th.id}: configuration skipped ({exc}): {d.python()}")
        return rows
    import concurrent.futures as cf
    import multiprocessing as mp
    import os

    from .sweep import _die_with_parent

    pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent,
                                  initargs=(os.getpid(),))
    running: set = set()
    try:
        more = True
        while (more and time.monotonic() < deadline) or (running and time.monotonic() < end):
            while more and time.monotonic() < deadline and len(running) < 2 * workers:
                nxt = next(draws, None)
                if nxt is None:
                    more = False
                    break
                th, d = nxt
                hit = _cached(st, d)
                if hit:
                    keep(hit)
                else:
                    running.add(pool.submit(evaluate, d, None, True, end))
            if not running:
                continue
            done, running = cf.wait(running, timeout=min(1.0, max(end - time.monotonic(), 0.01)),
                                    return_when=cf.FIRST_COMPLETED)
            for fut in done:
                try:
                    keep(fut.result())
                except BudgetExceeded:
                    pass
    finally:
        # past the hard end: workers still running (a user function that does not return) are stopped
        procs = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        if running:
            for proc in procs:
                proc.terminate()
    return rows


def _row_draw(row: dict) -> Draw:
    return Draw(row["theorem"], row["family"], json.loads(row["problem"]), row["method"], json.loads(row["params"]),
                int(row["iters"]), int(row["seeds"]), int(row["seed"]), float(row["fraction"]),
                theorem_fp=str(row.get("theorem_fp", "")))


def _cached(st, d: Draw) -> dict | None:
    import pandas as pd
    if st is None or not st.has(d.key) or not st.part_ok(d.key):
        return None
    frame = pd.read_parquet(st._part(d.key))
    return frame.drop(columns=["config"]).iloc[0].to_dict()


def _save(st, row: dict) -> None:
    import pandas as pd
    if st is not None:
        st.write_part(row["key"], pd.DataFrame([{**row, "config": row["key"]}]))


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per theorem: configurations, verdict counts, persisting false verdicts, the worst tightness
    (measured/bound at t > 0) among decided configurations (holds / tight / match: an inconclusive
    sample's mean is not trustworthy) and the reproducer of that configuration."""
    import pandas as pd
    if table.empty:
        return pd.DataFrame()
    out = []
    for tid, g in table.groupby("theorem", sort=True):
        counts = g.verdict.value_counts().to_dict()
        tight = g[np.isfinite(g.max_tightness) & g.verdict.isin(["holds", "tight", "match"])]
        worst = tight.loc[tight.max_tightness.idxmax()] if len(tight) else None
        out.append(dict(theorem=tid, configurations=len(g), **{v: int(counts.get(v, 0)) for v in
                   ("holds", "tight", "inconclusive", "match", "violated", "mismatch")},
                   persisting=int(g.persisting.sum()),
                   worst_tightness=float(worst.max_tightness) if worst is not None else math.nan,
                   reproducer=worst.python if worst is not None else ""))
    return pd.DataFrame(out)


__all__ = ["fuzz", "summary", "draw", "evaluate", "Draw"]
