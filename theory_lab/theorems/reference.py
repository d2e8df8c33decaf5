"""The theorems in words: statements, assumptions, symbols, and where each constant of a verdict
comes from. ``theory-lab show ID`` prints :func:`statement`; ``docs/theorems.md`` is
:func:`markdown` (generated, and tested to be in sync with the ``Theorem`` records); with a
configuration, :func:`explain` gives the bound with its constants filled in and how each
assumption holds.
"""
from __future__ import annotations

import math
import types

import numpy as np

#: docs/THEORY.md section 4.0 and the assumptions stated with each estimator
ASSUMPTIONS = {
    "A0": "fresh randomness: each step's sketch (and every coin, minibatch, oracle or compressor draw) is "
          "independent of everything drawn before it",
    "A1": "f is bounded below: f^inf > -infinity (delta0 = f(W0) - f^inf, or f(W0) - f* under PL)",
    "A2": "f is L-smooth: ||grad f(X) - grad f(Y)|| <= L ||X - Y||",
    "A3": "lam = lam_min^p > 0: the averaged projection M_p = p E[H_B] (x) I + (1 - p) I (x) E[H_A] is "
          "positive definite (docs/THEORY.md 1.3)",
    "A4": "PL(mu): ||grad f(W)||^2 >= 2 mu (f(W) - f*) for all W",
    "A5": "ABC oracle: E g = grad f and E||g - grad f||^2 <= 2A (f - f^inf) + (B - 1) ||grad f||^2 + C",
    "A6m": "two-point oracle: unbiased, E||g_xi(W) - grad f(W)||^2 <= sigma2, and the centred two-point "
           "difference is L_pm-Lipschitz in mean square",
    "A7u": "unbiased compressor Q in U(omega): E Q(X) = X, E||Q(X) - X||^2 <= omega ||X||^2",
    "A7c": "contractive compressor C in B(alpha): E||C(X) - X||^2 <= (1 - alpha) ||X||^2",
    "A8": "f convex, W* a minimiser, f* = f(W*), every subgradient has ||g|| <= L0",
    "(VR)": "E e_{t+1} <= (1 - q) E e_t + (1 - q) V E||W^{t+1} - W^t||^2 (PAGE: V = nu L_pm^2; "
            "MARINA: V = omega L_tilde^2/M)",
    "f* known": "the optimal value f* is known (the Polyak step uses it)",
}

#: symbols every theorem may use (a theorem's own are in ``Theorem.symbols``)
SYMBOLS = {
    "t": "the checkpoint (iterations done); T the run's length",
    "T": "iterations of the run",
    "gamma": "the stepsize",
    "L": "smoothness constant of f (A2)",
    "mu": "PL constant (A4)",
    "delta0": "f(W0) - f* under PL, else f(W0) - f_lb (A1)",
    "lam_min": "lam = lambda_min^p, the smallest eigenvalue of M_p (docs/THEORY.md 1.3); conservative "
               "(Monte Carlo error subtracted) in UPPER bounds",
    "lam_max": "Lam = lambda_max^p, the largest eigenvalue of M_p; conservative (error added) in UPPER bounds",
    "p": "probability of a left sketch (train A, sample B)",
    "rank": "sketch rank r",
    "m": "rows of W", "n": "columns of W",
    "A": "ABC constant of the oracle (A5; docs/THEORY.md 4.2 table)",
    "B": "ABC constant of the oracle (A5)",
    "C": "ABC constant of the oracle (A5)",
    "sigma2": "variance bound of the oracle (A6m or N4)",
    "L0": "subgradient bound (A8)",
    "R_M2": "R_M^2 = ||W^0 - W*||^2 in the M_p^-1 norm (docs/THEORY.md 1.3; = ||W^0 - W*||^2/lam for isotropic "
            "sketches)",
    "dist0_sq": "||W^0 - W*||^2",
}

#: what each metric measures (per seed; the theorem bounds the mean over seeds)
METRICS = {
    "f_gap": "E[f(W^T) - f*]",
    "grad_sq": "E||grad f(W^T)||^2",
    "avg_grad_sq": "Q_T = (1/T) sum_{t<T} E||grad f(W^t)||^2",
    "wavg_grad_sq": "Q_T^w = sum_{t<T} w_t E||grad f(W^t)||^2 / W_T, w_t = (1+u)^-(t+1)",
    "lyapunov": "E Phi_T, the Lyapunov function Phi (see symbols)",
    "avg_f_gap": "Q_T^f = (1/T) sum_{t<T} E[f(W^t) - f*]",
    "polyak_sum": "P_T = sum_{t<T} E[(f(W^t) - f*)^2/||g^t||^2]",
    "identity": "the identity's left-hand side, per seed",
    "dist_sq": "E||W^T - W*||^2",
}

#: the functions of a theorem whose constants a verdict reads
_FUNCTIONS = ("bound", "condition", "max_stepsize", "recommended_stepsize", "rate", "floor", "measure", "weight_u")


def constant_names(th) -> list[str]:
    """The constants (``c.NAME``) the theorem's functions read, following the helpers they call
    (cached on the theorem, keyed by its functions)."""
    key = tuple(id(getattr(th, fn, None)) for fn in _FUNCTIONS)
    cached = th.__dict__.get("_constant_names")
    if cached is not None and cached[0] == key:
        return list(cached[1])
    names = _walk_names(th)
    th.__dict__["_constant_names"] = (key, tuple(names))
    return names


def _walk_names(th) -> list[str]:
    names: list[str] = []
    seen: set[int] = set()

    def visit(f, depth):
        if not isinstance(f, types.FunctionType) or id(f) in seen or depth > 4:
            return
        seen.add(id(f))
        walk(f.__code__, f.__globals__, depth)
        for cell in f.__closure__ or ():
            try:
                visit(cell.cell_contents, depth + 1)
            except ValueError:
                pass

    def walk(code, glb, depth):
        ops = list(_attribute_loads(code))
        for name in ops:
            if name not in names:
                names.append(name)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                walk(const, glb, depth)
        for name in code.co_names:
            visit(glb.get(name), depth + 1)

    for fn in _FUNCTIONS:
        visit(getattr(th, fn, None), 0)
    return [n for n in names if n not in ("replace", "get", "as_dict")]


def _attribute_loads(code):
    """Names read as ``c.NAME`` where ``c`` is the code's constants argument (any local)."""
    import dis

    prev = None
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and prev is not None and prev.opname in (
                "LOAD_FAST", "LOAD_DEREF", "LOAD_FAST_LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW") \
                and str(prev.argval) == "c":
            yield str(ins.argval)
        prev = ins


def symbol(th, name: str) -> str:
    """The definition of a symbol for theorem ``th`` ('' when the project has none)."""
    own = th.symbols.get(name) if th is not None else None
    return own or SYMBOLS.get(name, "")


def _assumption_lines(th) -> list[str]:
    out = []
    for part in [a.strip() for a in th.assumptions.replace(";", ",").split(",") if a.strip()]:
        if "-" in part and part[0] == "A" and part.count("A") == 2:          # a range "A0-A4"
            lo, hi = part.split("-")
            keys = [f"A{k}" for k in range(int(lo[1:]), int(hi[1:]) + 1)]
        else:
            keys = [part]
        for k in keys:
            out.append(f"  {k}: {ASSUMPTIONS.get(k, '(stated by the theorem)')}")
    return out


def statement(th) -> str:
    """The theorem as plain text: statement, assumptions, measured quantity, stepsize condition and
    where it comes from, every constant its functions read with its definition, where it is attained."""
    lines = [f"{th.id}  ({th.kind}; provenance {th.provenance}"
             + (f"; docs/THEORY.md section {th.section})" if th.section else ")")]
    lines.append(f"  {th.doc}" if th.doc else "  (no statement given)")
    lines.append(f"measured: {th.metric}: {METRICS.get(th.metric, 'a metric of the run')}"
                 + (" (t > 0 only)" if th.skip_t0 else ""))
    if th.assumptions:
        lines.append(f"assumptions: {th.assumptions}")
        lines += _assumption_lines(th)
    if th.stepsize_text or th.stepsize_rule:
        lines.append(f"stepsize: {th.stepsize_text or th.stepsize_rule}")
    if th.stepsize_from:
        lines.append(f"  where it comes from: {th.stepsize_from}")
    names = constant_names(th)
    own = [k for k in th.symbols if k not in names]
    if names or own:
        lines.append("constants:")
        for k in names + own:
            lines.append(f"  {k}: {symbol(th, k) or '(no definition recorded)'}")
    if th.rate is not None:
        lines.append("rate: linear; the per-step contraction q_th is " + ("a one-step contraction of the "
                     "measured quantity X: E X_{t+1} <= q_th E X_t" if th.one_step else "the bound's geometric factor"))
    if th.attained:
        lines.append(f"attained: {th.attained}")
    return "\n".join(lines)


def markdown(theorems) -> str:
    """docs/theorems.md: every registered theorem's :func:`statement` (generated; do not edit)."""
    head = ["# Theorem reference", "",
            "Generated from the `Theorem` records by `theory-lab show --all --markdown`; a test keeps it in sync.",
            "The mathematics and proofs are in [THEORY.md](THEORY.md) (section numbers below).", "",
            "## Assumptions", ""]
    head += [f"* **{k}** {v}" for k, v in ASSUMPTIONS.items()]
    head += ["", "## Common symbols", ""] + [f"* `{k}`: {v}" for k, v in SYMBOLS.items()] + [""]
    body = []
    for th in theorems:
        body += [f"## {th.id}", "", "```", statement(th), "```", ""]
    return "\n".join(head + body)


# ------------------------------------------------------------------------------ with a configuration
def sources(plan) -> dict[str, str]:
    """Where each constant of ``plan.constants`` comes from, in words."""
    c, pr, me = plan.constants, plan.problem, plan.method
    out: dict[str, str] = {}
    est = me.estimator.constants(pr)
    cert = pr.__dict__.get("_certificate")                 # a user's problem, certified by the plan
    for k in c.as_dict():
        if k in ("lam_min", "lam_max"):
            err = c.get("lam_err") or 0.0
            law = me.sketch_name if me.spec.sketched else "no sketch (H = I)"
            out[k] = (f"closed form for {law}" if err == 0 else
                      f"Monte Carlo for {law}, +-{err:.2g}" + (", used conservatively" if plan.theorem is None
                                                              or plan.theorem.kind == "UPPER" else ""))
        elif k == "gamma":
            out[k] = plan.stepsize.source if not plan.stepsize.per_step else "per step (Polyak)"
        elif k in ("p", "rank"):
            out[k] = "method"
        elif k == "T":
            out[k] = "run length"
        elif k == "R_M2":
            out[k] = "computed from W0, W* and E[H] (docs/THEORY.md 1.3)"
        elif k in est:
            out[k] = f"the {me.spec.estimator} estimator (its parameters and the problem's constants)"
        elif cert is not None:
            status = cert.status.get(k)
            if status == "estimated":
                out[k] = "SAMPLED lower estimate (tl.certify)"
            elif status is not None:
                out[k] = f"declared; tl.certify: {status}"
            else:
                out[k] = "declared" if c.get(k) is not None else "not given"
        else:
            out[k] = f"exact, from the {pr.family} data" if c.get(k) is not None else "not given"
    return out


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "n/a" if not math.isfinite(v) else f"{float(v):.6g}"
    return "n/a" if v is None else str(v)


def explain(plan) -> dict:
    """The theorem on one configuration: each constant it reads with value and source, how each
    checkable assumption holds, the stepsize against its admissible maximum, and the bound and
    rate at a few checkpoints. Plain values (for JSON and :func:`explain_text`)."""
    th, c = plan.theorem, plan.constants
    src = sources(plan)
    names = constant_names(th) if th is not None else []
    constants = {k: dict(value=c.get(k), source=src.get(k, ""), meaning=symbol(th, k))
                 for k in names if k in c.as_dict()}
    missing = [k for k in names if k not in c.as_dict() and k not in th.symbols]
    holds = []
    pr = plan.problem
    if th is not None:
        if th.needs_smooth:
            holds.append(f"A2 (L-smooth): L = {_fmt(c.get('L'))} ({src.get('L', '')})")
        if th.needs_pl:
            holds.append(f"A4 (PL): mu = {_fmt(c.get('mu'))} ({src.get('mu', '')}), f* = {_fmt(c.get('f_star'))}")
        lam = c.get("lam_min")
        holds.append(f"A3 (lam > 0): lam_min^p = {_fmt(lam)} ({src.get('lam_min', '')})"
                     + ("" if lam and lam > 0 else "  FAILS"))
        if not th.needs_smooth:
            holds.append(f"A8 (convex, ||g|| <= L0): L0 = {_fmt(c.get('L0'))} ({src.get('L0', '')})")
    step = stepsize_info(plan)
    out = dict(theorem=th.id if th else None, problem=pr.describe(), method=repr(plan.method),
               constants=constants, missing=missing, assumptions=holds, stepsize=step,
               applies=plan.reason is None, reason=plan.reason)
    if th is not None and plan.reason is None:
        T = plan.iters
        ts = np.array(sorted({0, max(T // 10, 1), T // 2, T}), dtype=float)
        try:
            with np.errstate(all="ignore"):
                b = th.evaluate(ts, c)
            out["bound"] = {str(int(t)): float(v) for t, v in zip(ts, b)}
        except Exception as exc:                  # a user's bound: its failure is named, not raised
            out["bound"] = f"cannot be evaluated ({type(exc).__name__}: {exc})"
        if th.rate is not None:
            try:
                out["rate_theory"] = float(th.rate(c))
            except Exception as exc:
                out["rate_theory"] = f"cannot be evaluated ({type(exc).__name__}: {exc})"
    return out


def stepsize_info(plan) -> dict:
    """The stepsize, where it comes from, and the largest one the theorem's condition admits."""
    th, c = plan.theorem, plan.constants
    info = dict(gamma=None if plan.stepsize.per_step else plan.gamma, source=plan.stepsize.source,
                rule=th.stepsize_text if th is not None else "", max_admissible=None)
    if th is None or plan.stepsize.per_step:
        return info
    try:
        g = th.largest_stepsize(c)
        info["max_admissible"] = None if g is None else float(g)
    except Exception:                         # a user's condition that fails here: no maximum to show
        pass
    return info


def explain_text(info: dict) -> str:
    lines = [f"{info['theorem']} on {info['problem']}", f"  method {info['method']}"]
    lines.append("constants (value, source, meaning):")
    width = max([len(k) for k in info["constants"]] + [4])
    for k, v in info["constants"].items():
        lines.append(f"  {k.ljust(width)} = {_fmt(v['value']):>12}  {v['source']}" + (f"; {v['meaning']}"
                                                                                        if v["meaning"] else ""))
    for k in info["missing"]:
        lines.append(f"  {k.ljust(width)} = not given by this problem or method")
    lines.append("assumptions:")
    lines += [f"  {a}" for a in info["assumptions"]]
    st = info["stepsize"]
    if st["gamma"] is not None:
        mx = st["max_admissible"]
        lines.append(f"stepsize: gamma = {_fmt(st['gamma'])} ({st['source']}); largest admissible "
                     f"{_fmt(mx)}" + (f" (gamma/max = {st['gamma'] / mx:.3g})" if mx else "")
                     + (f"; condition: {st['rule']}" if st["rule"] else ""))
    else:
        lines.append(f"stepsize: {st['source']}" + (f"; {st['rule']}" if st["rule"] else ""))
    if not info["applies"]:
        lines.append(f"does NOT apply: {info['reason']}")
    if isinstance(info.get("bound"), dict):
        lines.append("bound: " + ", ".join(f"t = {t}: {_fmt(v)}" for t, v in info["bound"].items()))
    elif "bound" in info:
        lines.append(f"bound: {info['bound']}")
    if "rate_theory" in info:
        lines.append(f"theoretical per-step rate q_th = {_fmt(info['rate_theory'])}")
    return "\n".join(lines)
