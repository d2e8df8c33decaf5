"""The ``theory-lab`` command line.

Exit codes: 0 holds / tight / inconclusive / match, 1 violated / mismatch, 2 bad input
(one line naming the field and the accepted range; also a check whose theorem is not applicable).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys

from ._version import __version__
from .errors import InputError, check_range


def _value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise InputError("param", f"cannot parse list {text!r}; use JSON, e.g. [1, 3]") from None
    return text


def _pairs(items, field):
    out = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise InputError(field, f"expected KEY=VALUE, got {item!r}")
        key = key.replace("-", "_")
        if key == "allow_files":
            raise InputError(field, "allow_files is not a parameter; use --allow-file-problem")
        out[key] = _value(val)
    return out


class _Parser(argparse.ArgumentParser):
    """argparse with the package's error style: one line naming the option, exit code 2."""

    def error(self, message):
        head, sep, rest = message.partition(": ")
        if head.startswith("argument --") and sep and rest.split(":")[0] == head[11:].split("/")[0].replace("-", "_"):
            message = rest                       # our typed options already name the field
        else:
            message += f" (see {self.prog} --help)"
        print(f"theory-lab: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _number(field: str, low=None, high=None, integer: bool = False, **kw):
    """An argparse type that names the option and its accepted range on bad input."""
    def parse(text):
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            value = text
        try:
            return check_range(field, value, low, high, integer=integer, **kw)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = field
    return parse


def _method_options(parser, rank: int) -> None:
    """The method and run-length options ``check`` and ``show`` share."""
    parser.add_argument("--p", type=_number("p", 0.0, 1.0), default=None, help="probability of a left sketch, in [0, 1]")
    parser.add_argument("--rank", type=_number("rank", 1, None, integer=True), default=rank,
                        help="sketch rank r in [1, min(m, n)]")
    parser.add_argument("--sketch", default="gaussian", help="law for both sides, or LEFT/RIGHT")
    parser.add_argument("--stepsize", default="theory", help="theory, constant, polyak or a positive number")
    parser.add_argument("--factor", type=_number("factor", 0.0, None, low_open=True), default=1.0,
                        help="multiplies the theory stepsize")
    parser.add_argument("--iters", type=_number("iters", 1, 10_000_000, integer=True), default=500)


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="theory-lab", description="Check Bernoulli-LoRA convergence "
                                 "theory by measurement (docs/THEORY.md theorem IDs).")
    ap.add_argument("--version", action="version", version=f"theory-lab {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("check", help="run many seeds and judge a theorem's bound")
    c.add_argument("--problem", default="least-squares", help="family name or problems/NAME.toml")
    c.add_argument("--method", default="bernoulli-lora-gd")
    _method_options(c, rank=2)
    c.add_argument("--seeds", type=_number("seeds", 2, 100_000_000, integer=True), default=256)
    c.add_argument("--seed", type=_number("seed", 0, 2 ** 64 - 1, integer=True), default=0,
                   help="master seed of the runs' random streams, in [0, 2^64 - 1]")
    c.add_argument("--backend", default="numpy", choices=None)
    c.add_argument("--device", default="cpu")
    c.add_argument("--dtype", default="float64")
    c.add_argument("--theorem", default=None, help="theorem ID (default: the one matching)")
    c.add_argument("--confidence", type=_number("confidence", 0.0, 1.0, low_open=True, high_open=True), default=0.95)
    c.add_argument("-P", "--problem-param", action="append", metavar="KEY=VALUE",
                   help="problem parameter, e.g. -P m=32 -P cond=100")
    c.add_argument("-M", "--method-param", action="append", metavar="KEY=VALUE",
                   help="estimator parameter, e.g. -M batch=4 -M replacement=true")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--allow-file-problem", action="store_true",
                    help="accept a file path (dir/file.py:function) as the problem and run that file")

    sw = sub.add_parser("sweep", help="sweep a TOML spec's grid (resumes by default)")
    sw.add_argument("spec", help="sweep spec (TOML; see docs/DESIGN.md)")
    sw.add_argument("--out", default=None, help="parquet store (default: the spec's out, or results/SPEC.parquet)")
    sw.add_argument("--workers", type=_number("workers", 1, 4096, integer=True), default=1,
                    help="local worker processes")
    sw.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://host:port)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.add_argument("--allow-file-problem", action="store_true",
                    help="accept a file path (dir/file.py:function) as the problem and run that file")
    sw.add_argument("--no-batch", action="store_true",
                    help="run one configuration at a time (default: configurations sharing a problem run batched)")

    fg = sub.add_parser("figures", help="make the paper-style figure set")
    fg.add_argument("names", nargs="*", help="figures to make (default: all)")
    fg.add_argument("--out", default="figures/out")
    size = fg.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes: the whole set in under two minutes")
    size.add_argument("--full", action="store_true", help="the paper's sizes (the default)")
    fg.add_argument("--backend", default="numpy", choices=("numpy", "torch"))
    fg.add_argument("--device", default="cpu", help="cpu or cuda (torch backend)")
    fg.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    fg.add_argument("--workers", type=_number("workers", 1, 4096, integer=True), default=1,
                    help="local worker processes for the sweeps")
    fg.add_argument("--store", default="results/figures", help="parquet cache of the figures' sweeps")

    b = sub.add_parser("bench", help="time one step against its unavoidable matrix products")
    b.add_argument("--backend", default="numpy")
    b.add_argument("--device", default="cpu")
    b.add_argument("--dtype", default="float64")
    b.add_argument("--tf32", action="store_true", help="TF32 tensor-core matmuls (CUDA float32; ~1e-3 relative)")
    b.add_argument("--sizes", default="64,256,1024", help="comma-separated m = n")
    b.add_argument("--no-graph", action="store_true", help="CUDA: time the eager step, not the captured graph")
    b.add_argument("--ranks", default="1,8")
    b.add_argument("--seeds", default="8")
    b.add_argument("--repeat", type=_number("repeat", 1, 10_000, integer=True), default=5)
    b.add_argument("--csv", default="bench.csv", help="CSV output file")

    fz = sub.add_parser("fuzz", help="falsification campaign: random configurations inside each theorem's "
                        "assumptions, re-checks, tightest configurations")
    fz.add_argument("--theorem", action="append", default=None, metavar="ID", help="theorem(s) to fuzz (default: all)")
    fz.add_argument("--problem", action="append", default=None, metavar="MODULE:FUNCTION",
                    help="your own problem(s) to draw on instead of the built-in families (runs in-process)")
    fz.add_argument("--budget", type=_number("budget", 0.0, 7 * 24 * 3600.0, low_open=True), default=60.0,
                    help="seconds of checking (a hard limit)")
    fz.add_argument("--configs", type=_number("configs", 1, 10 ** 9, integer=True), default=None, metavar="N",
                    help="at most N random configurations (then the local search): the rows then depend "
                    "on the seed alone, not on the machine's speed")
    fz.add_argument("--search-steps", type=_number("search_steps", 0, 10 ** 6, integer=True), default=8, metavar="N",
                    help="local-search steps per theorem from its tightest configuration (0: no search)")
    fz.add_argument("--seed", type=_number("seed", 0, 2 ** 63 - 1, integer=True), default=0)
    fz.add_argument("--out", default=None, help="parquet store (resumable); default: no store")
    fz.add_argument("--workers", type=_number("workers", 1, 4096, integer=True), default=1)
    fz.add_argument("--allow-file-problem", action="store_true",
                    help="accept a file path (dir/file.py:function) as the problem and run that file")

    ce = sub.add_parser("certify", help="check a problem's gradient and declared constants (L, mu, f*)")
    ce.add_argument("problem", help="family name, problems/NAME.toml, or module:function returning a Problem")
    ce.add_argument("-P", "--problem-param", action="append", metavar="KEY=VALUE")
    ce.add_argument("--seed", type=_number("seed", 0, 2 ** 63 - 1, integer=True), default=0)
    ce.add_argument("--json", action="store_true", help="print one JSON object")
    ce.add_argument("--allow-file-problem", action="store_true",
                    help="accept a file path (dir/file.py:function) as the problem and run that file")

    sh = sub.add_parser("show", help="a theorem's statement, assumptions, constants and stepsize condition "
                        "(docs/theorems.md); with --problem/--method, its constants filled in")
    sh.add_argument("theorem", nargs="?", default=None, help="theorem ID (see `theory-lab list theorems`)")
    sh.add_argument("--all", action="store_true", help="every registered theorem")
    sh.add_argument("--markdown", action="store_true", help="with --all: the text of docs/theorems.md")
    sh.add_argument("--problem", default=None, help="family name or problems/NAME.toml: fill in the constants")
    sh.add_argument("--method", default=None, help="method (default: the theorem's own estimator's)")
    _method_options(sh, rank=1)
    sh.add_argument("-P", "--problem-param", action="append", metavar="KEY=VALUE")
    sh.add_argument("-M", "--method-param", action="append", metavar="KEY=VALUE")
    sh.add_argument("--json", action="store_true", help="print one JSON object")
    sh.add_argument("--allow-file-problem", action="store_true",
                    help="accept a file path (dir/file.py:function) as the problem and run that file")

    pl = sub.add_parser("plot", help="draw a stored sweep in the paper style (PDF and PNG)")
    pl.add_argument("store", help="a sweep's parquet store (its --out)")
    pl.add_argument("--x", required=True, help="horizontal axis: a swept parameter (p, rank, ...) or iteration")
    pl.add_argument("--y", default="rate", help="rate (default), slack, slack_lam, slack_mu, slack_other, tightness, "
                    "late_tightness, measured, bound; or a metric (f_gap, ...) with --x iteration")
    pl.add_argument("--hue", default=None, help="one line per value of this parameter")
    pl.add_argument("--logy", action="store_true", help="logarithmic vertical axis")
    pl.add_argument("--confidence", type=_number("confidence", 0.0, 1.0, low_open=True, high_open=True), default=0.95)
    pl.add_argument("--out", default=None, help="output name without extension (default: STORE-Y-vs-X beside the store)")

    sm = sub.add_parser("summary", help="one row per configuration of a stored sweep: verdict, reason, tightness, "
                        "fitted and theoretical rate, slack decomposition")
    sm.add_argument("store", help="a sweep's parquet store (its --out)")
    sm.add_argument("--csv", default=None, help="also write the table to this CSV file")
    sm.add_argument("--all-columns", action="store_true", help="print every column (default: the varying "
                    "parameters and the results)")

    ls = sub.add_parser("list", help="list problems, methods, theorems or sketches")
    ls.add_argument("what", choices=["problems", "methods", "theorems", "sketches"])
    return ap


def _cmd_check(a) -> int:
    from .check import check
    from .methods import Method
    from .problems import resolve_problem

    problem = resolve_problem(a.problem, allow_files=a.allow_file_problem, **_pairs(a.problem_param, "problem-param"))
    options = dict(p=a.p, rank=a.rank, sketch=a.sketch, stepsize=a.stepsize, factor=a.factor)
    extra = _pairs(a.method_param, "method-param")
    for key in set(extra) & set(options):
        raise InputError(key, f"has its own option --{key}; do not pass it with -M")
    method = Method(a.method, **options, **extra)
    res = check(problem, method, iters=a.iters, seeds=a.seeds, seed=a.seed, theorem=a.theorem,
                confidence=a.confidence, backend=a.backend, device=a.device, dtype=a.dtype)
    print(res.to_json() if a.json else res.table())
    if res.verdict == "not-applicable":
        print(f"theory-lab: not applicable: {res.reason}", file=sys.stderr)
        return 2
    return 1 if res.verdict in ("violated", "mismatch") else 0


def _cmd_show(a) -> int:
    from .theorems import THEOREMS, get_theorem
    from .theorems.reference import explain, explain_text, markdown, statement

    if a.all:
        if a.theorem or a.problem:
            raise InputError("show", "--all shows every theorem's statement; give no ID and no --problem")
        ths = list(THEOREMS.values())
        if a.json:
            print(json.dumps({th.id: statement(th) for th in ths}))
        else:
            print(markdown(ths) if a.markdown else "\n\n".join(statement(th) for th in ths))
        return 0
    if a.theorem is None:
        raise InputError("theorem", f"give a theorem ID or --all; accepted: {', '.join(THEOREMS)}")
    th = get_theorem(a.theorem)
    if a.problem is None:
        print(json.dumps({"theorem": th.id, "statement": statement(th)}) if a.json else statement(th))
        return 0
    from .methods import METHODS, Method
    from .plan import make_plan
    from .problems import resolve_problem

    name = a.method or next((k for k, s in METHODS.items() if s.estimator == th.estimator), "bernoulli-lora-gd")
    problem = resolve_problem(a.problem, allow_files=a.allow_file_problem, **_pairs(a.problem_param, "problem-param"))
    extra = _pairs(a.method_param, "method-param")
    method = Method(name, p=a.p, rank=a.rank, sketch=a.sketch, stepsize=a.stepsize, factor=a.factor, **extra)
    info = explain(make_plan(problem, method, a.iters, 2, 0, theorem=th, min_seeds=2))
    if a.json:
        from .jsonout import strict

        print(json.dumps(strict({"statement": statement(th), **info}), allow_nan=False))
    else:
        print(statement(th) + "\n\n" + explain_text(info))
    return 0 if info["applies"] else 2


def _cmd_plot(a) -> int:
    from pathlib import Path

    from .plotting import plot_sweep, save, style
    from .sweep import load_table

    table = load_table(a.store)
    with style():
        fig, _ = plot_sweep(table, x=a.x, y=a.y, hue=a.hue, confidence=a.confidence, logy=a.logy or None)
        out = Path(a.out) if a.out else Path(a.store).with_name(f"{Path(a.store).stem}-{a.y}-vs-{a.x}")
        paths = save(fig, out.parent, out.name)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _cmd_summary(a) -> int:
    from .errors import atomic_write
    from .summary import RESULTS
    from .sweep import load_table

    s = load_table(a.store).summary()
    cols = list(s.columns) if a.all_columns else s.attrs.get("varying", []) + [c for c in RESULTS if c in s.columns]
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_colwidth", 60):
        print(s[cols].to_string(index=False))
    if a.csv:
        atomic_write(a.csv, lambda tmp: s.to_csv(tmp, index=False))
        print(f"wrote {a.csv}")
    return 0


def _cmd_list(a) -> int:
    from .methods import METHODS
    from .problems import FAMILIES
    from .sketches import SKETCHES
    from .theorems import THEOREMS

    if a.what == "problems":
        for name, cls in sorted(FAMILIES.items()):
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            print(f"{name:16s} {doc}")
    elif a.what == "methods":
        for name, spec in METHODS.items():
            print(f"{name:20s} {spec.summary}")
    elif a.what == "theorems":
        for tid, th in THEOREMS.items():
            print(f"{tid:14s} {th.kind:6s} metric={th.metric:13s} {th.doc}")
    else:
        for name, cls in SKETCHES.items():
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            print(f"{name:12s} {doc}")
    return 0


def _ints(text: str, field: str) -> list[int]:
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise InputError(field, f"expected comma-separated integers, got {text!r}") from None


def _cmd_sweep(a) -> int:
    from .sweep import sweep_from_spec

    table = sweep_from_spec(a.spec, out=a.out, workers=a.workers, scheduler=a.scheduler, progress=not a.quiet,
                            batch=False if a.no_batch else None, allow_files=a.allow_file_problem)
    per = table.groupby("config").agg(verdict=("verdict", "first"), theorem=("theorem", "first"))
    counts = per.verdict.replace("", "no theorem").value_counts().to_dict()
    print(f"{table.attrs['computed']} configurations computed, {table.attrs['cached']} cached; "
          f"{len(table)} rows in {table.attrs['store']}")
    print("verdicts: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f"; configurations with diverged seeds (inf/NaN): {table.attrs['diverged']}")
    return 1 if (per.verdict == "violated").any() else 0


def _cmd_fuzz(a) -> int:
    from .fuzz import fuzz, summary
    from .problems import resolve_problem

    problems = [resolve_problem(p, allow_files=a.allow_file_problem) for p in a.problem] if a.problem else None
    table = fuzz(a.theorem, budget=a.budget, seed=a.seed, store=a.out, workers=a.workers, problems=problems,
                 configs=a.configs, search_steps=a.search_steps, echo=lambda line: print(line, file=sys.stderr))
    s = summary(table)
    print(f"{len(table)} configurations in {table.attrs['seconds']:.0f} s (seed {a.seed})")
    if table.empty and table.attrs.get("empty"):
        return 2                        # nothing could be drawn: each theorem's reason is on stderr
    if not s.empty:
        cols = ["theorem", "configurations", "holds", "tight", "inconclusive", "match", "violated", "mismatch",
                "persisting", "worst_tightness"]
        print(s[cols].to_string(index=False))
        print("\ntightest configuration per theorem:")
        for _, r in s.iterrows():
            print(f"  {r.theorem}: {r.worst_tightness:.4g}  {r.reproducer}")
    bad = table[table.persisting] if "persisting" in table else table.iloc[:0]
    for _, r in bad.iterrows():
        print(f"PERSISTING {r.verdict} -> {r.recheck}: {r.python}", file=sys.stderr)
    return 1 if len(bad) else 0


def _cmd_certify(a) -> int:
    from .custom import certify
    from .problems import resolve_problem

    cert = certify(resolve_problem(a.problem, allow_files=a.allow_file_problem,
                                   **_pairs(a.problem_param, "problem-param")), seed=a.seed)
    print(json.dumps(cert.to_dict(), allow_nan=False) if a.json else cert.table())
    return 1 if cert.refuted else 0


def _cmd_figures(a) -> int:
    from .gallery import make

    make(a.names, a.out, a.quick, a.store, backend=a.backend, device=a.device, dtype=a.dtype, workers=a.workers,
         progress=sys.stderr.isatty())
    return 0


def _cmd_bench(a) -> int:
    from .bench import run_bench

    run_bench(_ints(a.sizes, "sizes"), _ints(a.ranks, "ranks"), _ints(a.seeds, "seeds"), a.backend, a.device,
              a.dtype, a.tf32, a.repeat, a.csv, graph=not a.no_graph)
    print(f"wrote {a.csv}")
    return 0


@contextlib.contextmanager
def _clean_stdout(enabled: bool):
    """With ``--json``: whatever native code (LAPACK, BLAS) writes on file descriptor 1 goes to stderr
    instead, so standard output holds exactly one JSON object; the command's own output is kept and
    written to the real stdout at the end."""
    if not enabled:
        yield
        return
    import io
    import os

    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    buffer, real = io.StringIO(), sys.stdout
    sys.stdout = buffer
    try:
        yield
    finally:
        sys.stdout = real
        os.dup2(saved, 1)
        os.close(saved)
        real.write(buffer.getvalue())
        real.flush()


def main(argv=None) -> int:
    ap = _parser()
    try:
        a = ap.parse_args(argv)
    except SystemExit as exc:             # --help (0) or a bad option (2, one line already printed)
        return int(exc.code or 0)
    with _clean_stdout(bool(getattr(a, "json", False))):
        return _dispatch(a)


def _dispatch(a) -> int:
    try:
        if a.command == "check":
            return _cmd_check(a)
        if a.command == "bench":
            return _cmd_bench(a)
        if a.command == "sweep":
            return _cmd_sweep(a)
        if a.command == "figures":
            return _cmd_figures(a)
        if a.command == "fuzz":
            return _cmd_fuzz(a)
        if a.command == "certify":
            return _cmd_certify(a)
        if a.command == "show":
            return _cmd_show(a)
        if a.command == "plot":
            return _cmd_plot(a)
        if a.command == "summary":
            return _cmd_summary(a)
        return _cmd_list(a)
    except InputError as exc:
        print(f"theory-lab: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:                # output piped into `head` and closed: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("theory-lab: interrupted (finished configurations are stored; re-run to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
