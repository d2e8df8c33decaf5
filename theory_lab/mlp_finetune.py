"""docs/EXPERIMENTS.md E3: MLP fine-tuning with rank-1 adapters on a small real dataset (scikit-learn digits).

Not covered by the theorems; it shows the methods on a real network. Protocol, with scikit-learn's 8x8
digits standing in for MNIST (64 inputs instead of 784): an MLP 64 -> 64 -> 64 -> 5 (ReLU, dropout 0.1)
is pre-trained on digits 0-4, then fine-tuned on digits 5-9 (relabelled 0-4) with rank-1 adapters on all
three layers, alpha = 1, AdamW at lr 2e-4 (batch 8: digits has 630 fine-tuning images, MNIST about
30,000, so smaller batches keep the number of steps per epoch meaningful), one chain link per epoch: merge the adapter into the layer,
flip the coin (p = P(B sampled, A trained)), re-zero the trained factor, resample the frozen one from
N(0, 1). Reported: median test accuracy over seeds, and trainable parameters.

Methods: ``fpft`` (full fine-tuning), ``lora`` (joint B, A; ``lora-bzero``: B = 0, A random, or
``lora-azero``), ``cola`` (joint, merged every epoch), ``asymm-lora`` (A random and frozen forever,
B trained; ``asymm-lora-b``: B frozen, A trained), ``rac-lora`` (p = 0 or 1 every epoch), and
``bernoulli-lora`` (coin with ``p``). Needs torch and scikit-learn.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("fpft", "lora-bzero", "lora-azero", "cola", "asymm-lora", "asymm-lora-b", "rac-lora-a",
           "rac-lora-b", "bernoulli-lora")


@dataclass
class Data:
    Xp: object
    yp: object
    Xf: object
    yf: object
    Xt: object
    yt: object


def load_digits_split(seed: int = 0):
    """Digits 0-4 (pre-training) and 5-9 (fine-tuning, 70/30 train/test split), standardised."""
    import torch
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    rng = np.random.default_rng(seed)
    pre, fin = y < 5, y >= 5
    idx = rng.permutation(np.flatnonzero(fin))
    cut = int(0.7 * len(idx))
    tr, te = idx[:cut], idx[cut:]
    t = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt)  # noqa: E731
    return Data(t(X[pre]), t(y[pre], torch.long), t(X[tr]), t(y[tr] - 5, torch.long), t(X[te]), t(y[te] - 5, torch.long))


def _mlp(torch, gen):
    nn = torch.nn
    with torch.random.fork_rng():                 # seeded layer init without touching the global state
        torch.manual_seed(int(gen.integers(2 ** 31)))
        return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 64), nn.ReLU(),
                             nn.Dropout(0.1), nn.Linear(64, 5))


def pretrain(data: Data, epochs: int = 60, seed: int = 0):
    """The pre-trained network on digits 0-4 (Adam, lr 1e-3, batch 32), shared by every fine-tuning run."""
    import torch

    gen = np.random.default_rng(seed)
    net = _mlp(torch, gen)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        for b in torch.randperm(len(data.yp), generator=torch.Generator().manual_seed(int(gen.integers(2 ** 31)))).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(data.Xp[b]), data.yp[b]).backward()
            opt.step()
    return net


class Adapted(object):
    """Rank-r adapters (B: out x r, A: r x in) on every Linear of a frozen copy of ``net``."""

    def __init__(self, net, rank: int, torch):
        import copy

        self.net = copy.deepcopy(net)
        self.layers = [m for m in self.net if isinstance(m, torch.nn.Linear)]
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.B = [torch.zeros(l.out_features, rank) for l in self.layers]
        self.A = [torch.zeros(rank, l.in_features) for l in self.layers]
        self.torch, self.rank = torch, rank
        for l, B, A in zip(self.layers, self.B, self.A):
            l.register_forward_hook(lambda mod, inp, out, B=B, A=A: out + inp[0] @ (B @ A).T)

    def merge(self):
        with self.torch.no_grad():
            for l, B, A in zip(self.layers, self.B, self.A):
                l.weight += B @ A

    def link(self, train: str, gen, zero: str | None = None):
        """Start a link: ``train`` in {"A", "B", "both"}; the frozen factor ~ N(0,1), the trained one 0
        (``zero`` picks which of the two is zero when both train)."""
        torch = self.torch
        params = []
        for B, A in zip(self.B, self.A):
            for name, M in (("B", B), ("A", A)):
                trained = train in (name, "both")
                with torch.no_grad():
                    if (train == "both" and name == zero) or (train != "both" and trained):
                        M.zero_()
                    else:
                        M.copy_(torch.as_tensor(gen.standard_normal(tuple(M.shape)), dtype=M.dtype))
                M.requires_grad_(trained)
                if trained:
                    params.append(M)
        return params


def finetune(net, data: Data, method: str, seed: int, epochs: int = 50, p: float = 0.99, lr: float = 2e-4,
             rank: int = 1, batch: int = 8) -> tuple[list[float], int]:
    """Fine-tune a copy of ``net``; returns (test accuracy after each epoch, trainable parameters)."""
    import copy

    import torch

    gen = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    if method == "fpft":
        model = copy.deepcopy(net)
        params = list(model.parameters())
        ad = None
    else:
        ad = Adapted(net, rank, torch)
        model = ad.net
    acc = []
    opt = None
    for epoch in range(epochs):
        if ad is not None:
            if method.startswith("lora"):
                params = ad.link("both", gen, zero="B" if method == "lora-bzero" else "A") if epoch == 0 else params
            elif method == "cola":
                ad.merge() if epoch else None
                params = ad.link("both", gen, zero="B")
            elif method.startswith("asymm"):
                params = ad.link("B" if method == "asymm-lora" else "A", gen) if epoch == 0 else params
            else:
                ad.merge() if epoch else None
                left = {"rac-lora-a": False, "rac-lora-b": True}.get(method, gen.random() < p)
                params = ad.link("A" if left else "B", gen)        # left sketch: B sampled, A trained
            if opt is None or method in ("cola", "rac-lora-a", "rac-lora-b", "bernoulli-lora"):
                opt = torch.optim.AdamW(params, lr=lr)
        elif opt is None:
            opt = torch.optim.AdamW(params, lr=lr)
        model.train()
        for b in torch.randperm(len(data.yf), generator=g).split(batch):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(data.Xf[b]), data.yf[b]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc.append(float((model(data.Xt).argmax(1) == data.yt).float().mean()))
    n_train = sum(p.numel() for p in params)
    return acc, n_train


def run_experiment(methods=METHODS, seeds: int = 20, epochs: int = 50, p: float = 0.99, pretrain_epochs: int = 60,
                   batch: int = 8):
    """Long table: method, seed, epoch, test accuracy, trainable parameters."""
    import pandas as pd
    import torch

    threads = torch.get_num_threads()
    rows = []
    # torch's global generator (layer init, dropout) is seeded inside a fork of its state, and the
    # thread count is restored: nothing outlives the experiment
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        try:
            data = load_digits_split(0)
            net = pretrain(data, pretrain_epochs)
            for method in methods:
                for s in range(seeds):
                    acc, n = finetune(net, data, method, seed=1000 + s, epochs=epochs, p=p, batch=batch)
                    rows += [dict(method=method, seed=s, epoch=e + 1, test_acc=a, trainable=n)
                             for e, a in enumerate(acc)]
        finally:
            torch.set_num_threads(threads)
    return pd.DataFrame(rows)
