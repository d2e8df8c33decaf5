"""The figure set: each recipe sweeps its data through ``tl.sweep`` (cached in a parquet store, so a
re-run only plots) and draws it with :mod:`theory_lab.plotting`.

``make(names, out_dir, quick)``; ``theory-lab figures [NAME ...] [--out DIR] [--quick]``. Quick mode
makes the whole set in well under two minutes on 2 cores; the full mode uses the paper's sizes
(docs/EXPERIMENTS.md E1/E2: m = n = 64 with scikit-learn's make_regression data, ranks up to 32).
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from . import plotting as P
from .methods import Method
from .problems import make_problem
from .sketches import get_sketch, lambda_min, monte_carlo_EH
from .sweep import sweep
from .theorems import THEOREMS

FIGURES: dict[str, callable] = {}


def figure(fn):
    FIGURES[fn.__name__] = fn
    return fn


def _pick(size: str, tiny, quick, full):
    """The value for the figure size: "tiny" (smoke tests), "quick" or "full" (the paper's)."""
    return {"tiny": tiny, "quick": quick, "full": full}[size]


#: run options for every recipe's sweeps (backend, device, dtype, workers), set by ``make``
_OPTIONS: dict = {}


def _sweep(*args, **kw):
    """``tl.sweep`` with the figure set's run options (backend, device, dtype, workers)."""
    return sweep(*args, **{**_OPTIONS, **kw})


def _progress(size: str) -> bool:
    return size == "full" and _OPTIONS.get("progress", False)


def _store(store_dir, name):
    return None if store_dir is None else Path(store_dir) / f"{name}.parquet"


# ------------------------------------------------------------------------------ recipes
@figure
def convergence(out, size, store_dir):
    """Mean f_gap with 95% bands and the theorem's bound (dashed): GD-PL on least squares and
    SGD-PL with additive noise on a Kronecker quadratic (the noise floor), p in {0, 0.5, 1}."""
    T, S = _pick(size, (30, 8), (300, 64), (1500, 1024))
    lsq = make_problem("least-squares", m=16, n=48, n_samples=96)
    a = _sweep(lsq, "bernoulli-lora-gd", {"p": [0.0, 0.5, 1.0]}, iters=T, seeds=S, method_params={"rank": 2},
              store=_store(store_dir, "convergence"), progress=False)
    kron = make_problem("kron-quadratic", m=8, n=24)
    b = _sweep(kron, "bernoulli-lora-sgd", {"p": [0.0, 0.5, 1.0]}, iters=T, seeds=S,
              method_params={"rank": 2, "noise_std": 0.3}, store=_store(store_dir, "convergence"), progress=False)
    with P.style():
        fig, ax = P.new_figure(2, squeeze=False)
        for axis, table, title in [(ax[0, 0], a, "GD-PL, least squares 16x48, r=2"),
                                   (ax[0, 1], b, "SGD-PL, Kronecker 8x24 + noise, r=2")]:
            P.plot_curves(axis, P.summarize(table, "f_gap", by=("p",)), "p", label=lambda v: f"p = {v:g}")
            axis.set(title=title, xlabel="iteration t", ylabel=r"$E[f(W^t)] - f^*$")
        ax[0, 0].legend(title="solid: mean, band: 95% CI\ndashed: bound")
        return P.save(fig, out, "convergence")


@figure
def p_rank_heatmap(out, size, store_dir):
    """log(q_hat)/log(q_th) over p x rank for GD on least squares 16x48 (> 1: faster than the bound)."""
    T, S = _pick(size, (30, 4), (200, 32), (600, 256))
    lsq = make_problem("least-squares", m=16, n=48, n_samples=96)
    ps = _pick(size, [0.0, 0.5, 1.0], [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0], [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
    t = _sweep(lsq, "bernoulli-lora-gd", {"p": ps, "rank": _pick(size, [1, 2], [1, 2, 4, 8], [1, 2, 4, 8])},
              iters=T, seeds=S, store=_store(store_dir, "p_rank_heatmap"), progress=False)
    with P.style():
        fig, ax = P.new_figure(1, width=4.0, height=3.0, squeeze=False)
        P.plot_heatmap(ax[0, 0], P.rate_map(t), r"$\log \hat q / \log q_{th}$")
        ax[0, 0].set_title("fitted rate vs GD-PL rate, least squares 16x48")
        return P.save(fig, out, "p_rank_heatmap")


@figure
def collapse(out, size, store_dir):
    """f_gap / f0 against t * lam_min^p for every p and r: the curves fall on exp(-(2g - g^2) x)."""
    T, S = _pick(size, (30, 8), (120, 64), (400, 1024))
    iso = make_problem("quadratic-iso", m=16, n=48)
    t = _sweep(iso, "bernoulli-lora-gd", {"p": [0.0, 0.5, 1.0], "rank": [1, 2, 4]}, iters=T, seeds=S,
              method_params={"stepsize": 0.5}, store=_store(store_dir, "collapse"), progress=False)
    t = t.assign(x=t.iteration * t.lam_min, y=t.f_gap / iso.delta0)
    with P.style():
        fig, ax = P.new_figure(1, width=3.6, height=2.7, squeeze=False)
        axis = ax[0, 0]
        ps, ranks = sorted(t.p.unique()), sorted(t["rank"].unique())
        for (p, r), g in t.groupby(["p", "rank"]):
            m = g.groupby("iteration")[["x", "y"]].mean()
            axis.plot(m.x, m.y, color=P.OKABE_ITO[ps.index(p)], linestyle=["-", "-.", ":"][ranks.index(r) % 3],
                      linewidth=1.0, label=f"p={p:g}, r={r}")
        xs = np.linspace(0, t.x.max(), 200)
        axis.plot(xs, np.exp(-(2 * 0.5 - 0.25) * xs), "k--", linewidth=1.2, label="exp(-(2g-g^2) x)")
        axis.set(yscale="log", xlabel=r"$t\,\lambda_{\min}^p$", ylabel=r"$E f(W^t) / f(W^0)$",
                 title="collapse: isotropic quadratic 16x48, g = 0.5")
        axis.legend(ncol=2, fontsize=6)
        return P.save(fig, out, "collapse")


@figure
def lambda_vs_p(out, size, store_dir):
    """lambda_min^p against p (lines: exact; dots: Monte Carlo E[H]) for square and rectangular W."""
    K = _pick(size, 50, 400, 20000)
    shapes = [(64, 64), (16, 64), (64, 16)]
    ps = np.linspace(0, 1, 11)
    with P.style():
        fig, ax = P.new_figure(3, width=2.4, height=2.3, squeeze=False)
        for j, (m, n) in enumerate(shapes):
            axis = ax[0, j]
            for i, r in enumerate([1, 4, 16]):
                c = P.OKABE_ITO[i]
                axis.plot(ps, [lambda_min("gaussian", m, n, r, p) for p in ps], color=c, label=f"r = {r}")
                lamL = np.linalg.eigvalsh(monte_carlo_EH(get_sketch("gaussian"), m, r, K, seed=r)[0])[0]
                lamR = np.linalg.eigvalsh(monte_carlo_EH(get_sketch("gaussian"), n, r, K, seed=r + 1)[0])[0]
                axis.plot(ps[::2], ps[::2] * lamL + (1 - ps[::2]) * lamR, "o", color=c, markersize=3)
            axis.set(title=f"W {m}x{n}", xlabel="p", yscale="log")
        ax[0, 0].set_ylabel(r"$\lambda_{\min}^p$ (Gaussian sketches)")
        ax[0, 0].legend()
        return P.save(fig, out, "lambda_vs_p")


def _paper_problem(size):
    """docs/EXPERIMENTS.md E1's problem (scikit-learn's make_regression data, a dependency of the
    package), at the paper's size or smaller."""
    m, N, Np = _pick(size, (6, 300, 1000), (16, 2000, 4000), (64, 10000, 90000))
    return make_problem("linreg-noncvx", m=m, n=m, n_samples=N, data="make_regression", init="pretrained",
                        pretrain_samples=Np)


def paper_e1(pr, size: str, store=None):
    """docs/EXPERIMENTS.md E1's grid on problem ``pr``: Bernoulli-LoRA-GD over rank x factor x p,
    RAC-LoRA on both sides, full GD; returns the three sweep tables (run options from ``make``)."""
    ranks = _pick(size, [1, 2], [1, 2, 4, 8], [1, 2, 4, 8, 16, 32])
    ps = _pick(size, [0.5], [0.2, 0.5, 0.8], [0.01, 0.2, 0.4, 0.6, 0.8, 0.99])
    factors = _pick(size, [1.0], [1.0, 2.0], [1.0, 2.0])
    T, S = _pick(size, (40, 4), (400, 8), (4000, 20))
    kw = dict(iters=T, seeds=S, store=store, progress=_progress(size))
    bl = _sweep(pr, "bernoulli-lora-gd", {"rank": ranks, "factor": factors, "p": ps}, **kw)
    rac = _sweep(pr, "rac-lora", {"rank": ranks, "factor": factors, "p": [0.0, 1.0]}, **kw)
    gd = _sweep(pr, "gd", {"factor": factors}, **{**kw, "iters": _pick(size, 40, 100, 100)})
    return bl, rac, gd


@figure
def paper_linreg(out, size, store_dir):
    """docs/EXPERIMENTS.md E1: median ||grad f||^2 of Bernoulli-LoRA-GD (several p), RAC-LoRA with random
    A (p=0) and random B (p=1), and full GD, one panel per rank and stepsize factor; and E2: SGD and
    PAGE (b = 100 at the paper's size) against epochs, up to 200 epochs."""
    pr = _paper_problem(size)
    st = _store(store_dir, "paper_linreg")
    t0 = time.perf_counter()
    bl, rac, gd = paper_e1(pr, size, st)
    ranks, factors = sorted(bl["rank"].unique()), sorted(bl.factor.unique())
    T, S = int(bl.iteration.max()), int(bl.seed.nunique())
    t_e1 = time.perf_counter() - t0
    n1 = sum(t["config"].nunique() for t in (bl, rac, gd))
    print(f"paper_linreg: E1 {n1} configurations x {S} seeds x {T} steps: {t_e1:.1f} s "
          f"({_OPTIONS.get('backend', 'numpy')} {_OPTIONS.get('device', 'cpu')}; stored configurations take 0 s)",
          file=sys.stderr)
    b = _pick(size, 10, 20, 100)
    N = pr.n_samples
    # up to 200 epochs at full size: an SGD step costs b/N, a PAGE step q + (1 - q) 2b/N on average
    epochs = _pick(size, 2, 20, 200)
    q = b / (b + N)
    sgd_iters = int(math.ceil(epochs * N / b))
    page_iters = int(math.ceil(epochs / (q + (1 - q) * 2 * b / N)))
    sgd_kw = dict(iters=sgd_iters, seeds=S, store=st, progress=_progress(size),
                  method_params={"rank": 2, "batch": b, "stepsize": 1 / (16 * pr.L)})
    sgd = _sweep(pr, "bernoulli-lora-sgd", {"p": [0.5]}, **sgd_kw)
    rsgd = _sweep(pr, "rac-lora-sgd", {"p": [0.0, 1.0]}, **sgd_kw)
    page = _sweep(pr, "bernoulli-lora-page", {"p": [0.5]}, iters=page_iters, seeds=S, store=st,
                  progress=_progress(size), method_params={"rank": 2, "batch": b, "stepsize": 1 / pr.L})
    n2 = sum(t["config"].nunique() for t in (sgd, rsgd, page))
    print(f"paper_linreg: E2 {n2} configurations ({sgd_iters} SGD / {page_iters} PAGE steps, b = {b}): "
          f"{time.perf_counter() - t0 - t_e1:.1f} s", file=sys.stderr)
    with P.style():
        fig, ax = P.new_figure(len(ranks) + 1, nrows=len(factors), width=2.3, height=2.2, squeeze=False)
        for i, fac in enumerate(factors):
            gd_sum = P.summarize(gd[gd.factor == fac], "grad_sq", by=("method",), stat="median")
            for j, r in enumerate(ranks):
                axis = ax[i, j]
                sub = bl[(bl["rank"] == r) & (bl.factor == fac)]
                P.plot_curves(axis, P.summarize(sub, "grad_sq", by=("p",), stat="median"), "p", bound=False,
                              label=lambda v: f"B-LoRA p={v:g}")
                racs = P.summarize(rac[(rac["rank"] == r) & (rac.factor == fac)], "grad_sq", by=("p",),
                                   stat="median")
                P.plot_curves(axis, racs, "p", bound=False, colors=["#000000", "#999999"],
                              label=lambda v: "RAC-LoRA random " + ("A" if v == 0 else "B"))
                axis.plot(gd_sum.iteration, gd_sum.center, color="#D55E00", linestyle=":", label="full GD")
                axis.set(title=f"rank {r}, stepsize {fac:g}/L", xlabel="iteration", yscale="log")
            ax[i, 0].set_ylabel(r"median $\|\nabla f(W^t)\|^2$")
        ax[0, 0].legend(fontsize=5.5)
        axis = ax[0, len(ranks)]
        for table, name, colors in [(sgd, "B-LoRA-SGD", None), (rsgd, "RAC-LoRA-SGD", ["#000000", "#999999"]),
                                    (page, "B-LoRA-PAGE", ["#CC79A7"])]:
            s = P.summarize(table, "grad_sq", by=("p",), stat="median")
            cost = table.groupby("iteration")["epochs"].mean()              # measured cost (PAGE: random)
            s["epochs"] = s.iteration.map(cost).to_numpy()
            P.plot_curves(axis, s, "p", x="epochs", bound=False, colors=colors,
                          label=lambda v, n=name: f"{n} p={v:g}")
        axis.set(title=f"E2: SGD, PAGE, b={b}, rank 2", xlabel="epochs (gradient cost)", yscale="log")
        axis.legend(fontsize=5.5)
        for i in range(1, len(factors)):
            ax[i, len(ranks)].axis("off")
        fig.suptitle(f"linear regression with non-convex regulariser, W {pr.m}x{pr.n} ({pr.params['data']} data, "
                     f"N = {N}), {S} seeds; theory: lam = r/{pr.m} for every p", fontsize=8)
        return P.save(fig, out, "paper_linreg")


@figure
def variants(out, size, store_dir):
    """Every variant's PL theorem (and NS-POLYAK): the measured quantity (mean, 95% band; a Lyapunov
    function where the theorem bounds one) under its bound (dashed), p = 0.5, rank 2, Gaussian sketches
    (stratified for NS-POLYAK, whose Gaussian case is an identity); and error against bits per client."""
    T, S = _pick(size, (30, 8), (150, 48), (600, 1000))
    st = _store(store_dir, "variants")
    shards = make_problem("least-squares", m=8, n=12, n_samples=40, clients=4)
    lsq = make_problem("least-squares", m=8, n=12, n_samples=40)
    logit = make_problem("softmax-regression", m=8, n=12, n_samples=60)
    l1 = make_problem("l1-regression", m=8, n=12, n_samples=40)
    panels = [
        ("QGD-PL, 4 clients, RandK24", shards, "bernoulli-lora-qgd", {"compressor": "randk", "k": 24}),
        ("PAGE-PL, least squares, b=1", lsq, "bernoulli-lora-page", {"batch": 1}),
        ("MVR-PL, softmax, a=0.1", logit, "bernoulli-lora-mvr", {"momentum": 0.1}),
        ("MARINA-PL, 4 clients, RandK8", shards, "bernoulli-lora-marina", {"compressor": "randk", "k": 8}),
        ("EF21-PL, 4 clients, Top8", shards, "bernoulli-lora-ef21", {"k": 8}),
        ("NS-POLYAK, L1, stratified", l1, "bernoulli-lora-subgd",
         {"stepsize": "polyak", "sketch": "stratified", "left_groups": [2, 6], "right_groups": [3, 9]}),
    ]
    tables = [_sweep(pr, meth, {"p": [0.5]}, iters=T, seeds=S, method_params={"rank": 2, **mp}, store=st,
                    progress=False) for _, pr, meth, mp in panels]
    with P.style():
        fig, ax = P.new_figure(4, 2, width=2.6, height=2.2, squeeze=False)
        for k, ((title, *_), table) in enumerate(zip(panels, tables)):
            axis = ax[k // 4, k % 4]
            metric = THEOREMS[table.theorem.iloc[0]].metric          # what the checked theorem bounds
            P.plot_curves(axis, P.summarize(table, metric, by=("p",)), "p", label=lambda v: "measured",
                          logy=metric != "polyak_sum")
            axis.set(title=title, xlabel="iteration")
            axis.set_ylabel({"lyapunov": r"$E\,\Phi_t$", "polyak_sum": r"$P_T$"}.get(metric, r"$E f - f^*$"))
        axis = ax[1, 2]
        gd = _sweep(shards, "bernoulli-lora-gd", {"p": [0.5]}, iters=T, seeds=S, method_params={"rank": 2},
                   store=st, progress=False)
        d = shards.m * shards.n
        for i, (name, table) in enumerate([("QGD RandK24", tables[0]), ("MARINA RandK8", tables[3]),
                                           ("EF21 Top8", tables[4]), ("GD (32 d bits/step)", gd)]):
            m = table.groupby("iteration").agg(f=("f_gap", "mean"), bits=("bits", "mean"))
            bits = m.bits if name[:2] != "GD" else m.index * 32.0 * d
            axis.plot(bits, m.f, color=P.OKABE_ITO[i], label=name)
        axis.set(xscale="log", yscale="log", xlabel="bits sent per client", ylabel=r"$E f - f^*$",
                 title="error against communication")
        axis.legend(fontsize=6)
        ax[1, 3].axis("off")
        ax[1, 3].text(0, 0.5, "solid: measured mean\nband: 95% CI over seeds\ndashed: the theorem's bound\n"
                      f"{S} seeds, T = {T}", fontsize=8, va="center")
        return P.save(fig, out, "variants")


@figure
def mlp_finetune(out, size, store_dir):
    """docs/EXPERIMENTS.md E3 on scikit-learn digits: median test accuracy of rank-1 fine-tuning methods
    against epochs (band: quartiles over seeds), with trainable parameter counts."""
    import pandas as pd

    from .mlp_finetune import run_experiment

    seeds, epochs, pre = _pick(size, (1, 2, 5), (2, 25, 60), (20, 50, 60))
    cache = _store(store_dir, f"mlp_finetune_{seeds}x{epochs}x{pre}")
    if cache is not None and cache.is_file():
        df = pd.read_parquet(cache)
    else:
        df = run_experiment(seeds=seeds, epochs=epochs, pretrain_epochs=pre)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            df.to_parquet(cache, index=False)
    final = df[df.epoch == df.epoch.max()].groupby("method").agg(acc=("test_acc", "median"),
                                                                  n=("trainable", "first"))
    final = final.sort_values("acc")
    with P.style():
        fig, ax = P.new_figure(2, width=3.6, height=2.8, squeeze=False)
        axis = ax[0, 0]
        for i, (method, g) in enumerate(df.groupby("method")):
            q = g.groupby("epoch").test_acc.quantile([0.25, 0.5, 0.75]).unstack()
            c = P.OKABE_ITO[i % 8]
            axis.plot(q.index, q[0.5], color=c, linestyle="-" if i < 8 else "--", label=method)
            axis.fill_between(q.index, q[0.25], q[0.75], color=c, alpha=0.15, linewidth=0)
        axis.set(xlabel="epoch (one chain link each)", ylabel="median test accuracy", title="digits 5-9 after 0-4")
        axis.legend(fontsize=5.5, ncol=2)
        axis = ax[0, 1]
        axis.barh(range(len(final)), final.acc, color=P.OKABE_ITO[0])
        axis.set_yticks(range(len(final)), [f"{m} ({n})" for m, n in zip(final.index, final.n)], fontsize=6.5)
        for i, a in enumerate(final.acc):
            axis.text(a, i, f" {100 * a:.1f}", va="center", fontsize=6.5)
        axis.set(xlim=(0, 1.1), xlabel=f"median accuracy, {seeds} seeds (trainable parameters)", title="final")
        return P.save(fig, out, "mlp_finetune")


# ------------------------------------------------------------------------------ driver
def make(names=None, out="figures/out", quick: bool | str = True, store_dir="results/figures", echo=print,
         backend: str = "numpy", device: str = "cpu", dtype: str = "float64", workers: int = 1,
         progress: bool = False):
    """Make the named figures (default: all); returns {name: [paths]}. ``quick``: True (small sizes,
    the whole set in about a minute), False (the paper's sizes) or "tiny" (smoke tests).
    ``backend``, ``device``, ``dtype`` and ``workers`` go to every sweep of the recipes (a figure's
    sweeps resume from ``store_dir``); ``progress`` shows the full-size sweeps' bars."""
    from .errors import InputError

    _OPTIONS.clear()
    _OPTIONS.update(backend=backend, device=device, dtype=dtype, workers=workers, progress=progress)

    from pathlib import Path

    from .backend import get_backend

    size = quick if quick == "tiny" else ("quick" if quick else "full")
    names = list(names or FIGURES)
    for n in names:
        if n not in FIGURES:
            raise InputError("figure", f"unknown figure {n!r}; accepted: {', '.join(FIGURES)}")
    get_backend(backend, device, dtype)                 # checked before any figure is made
    for field, folder in (("out", Path(out)), ("store", Path(store_dir))):
        if folder.exists() and not folder.is_dir() or folder.is_symlink():
            raise InputError(field, f"{str(folder)!r} exists and is not a folder (or is a link); give a folder")
    done = {}
    for n in names:
        t0 = time.perf_counter()
        done[n] = FIGURES[n](out, size, store_dir)
        echo(f"{n:16s} {time.perf_counter() - t0:6.1f} s  -> {', '.join(str(p) for p in done[n])}")
    return done


def script_main(name: str, argv=None):
    """Entry point of the one-figure scripts in figures/: ``python figures/NAME.py [--quick] [--out DIR]``."""
    import argparse

    ap = argparse.ArgumentParser(description=(FIGURES[name].__doc__ or name).strip().splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--out", default="figures/out")
    ap.add_argument("--store", default="results/figures", help="parquet cache of the figure's sweeps")
    a = ap.parse_args(argv)
    make([name], a.out, a.quick, a.store)
