"""Bring your own method: an importance-sampled sketch with a theorem of your own, checked and fuzzed.

The sketch keeps one coordinate per step (rank 1), coordinate i with probability proportional to
(i + 1)^-skew, so E[H] = diag(pi) and lambda_min^p = p min(pi^B) + (1 - p) min(pi^A). The theorem
(GD-PL's bound with this lambda, on the isotropic quadratic) is attained at skew = 0, the corner the
parameter declares; the falsification engine draws it there and catches a 10%-optimistic copy.
"""
import numpy as np

import theory_lab as tl


class Importance(tl.Sketch):
    """One coordinate per step, coordinate i with probability pi_i proportional to (i + 1)^-skew."""

    name = "importance"
    diagonal = True                      # H = Diag(mask): sample returns an (S, d) 0/1 mask
    fuzz = False                         # drawn only for theorems that name it (extra["sketches"])
    isotropic = property(lambda self: self.params.get("skew", 1.0) == 0)
    PARAMS = (tl.Param("skew", 0.0, 2.0, corners=(0.0,), doc="0: uniform coordinates (isotropic)"),)

    def probs(self, d):
        w = (np.arange(d) + 1.0) ** -self.params.get("skew", 1.0)
        return w / w.sum()

    def sample(self, streams, step, d, r):
        u = np.asarray(streams.uniform("sketch", step))                  # (S,): one uniform per seed
        i = np.minimum(np.searchsorted(np.cumsum(self.probs(d)), u), d - 1)
        return (np.arange(d)[None, :] == i[:, None]).astype(float)

    def basis(self, factor, xp):
        return factor

    def moments(self, d, r):                                           # E[H] = diag(pi)
        if r != 1:                                   # checked when the run is planned, before it runs
            raise tl.InputError("rank", "the importance sketch keeps one coordinate: rank 1")
        pi = self.probs(d)
        return tl.SideMoments(float(pi.min()), float(pi.max()))

    def expected_H_diag(self, d, r):
        return self.probs(d)


tl.register_sketch(Importance)

# E f(W^t) - f* <= (1 - 2 mu gamma (1 - L gamma/2) lam)^t (f(W^0) - f*): GD-PL's contraction with this law's lam
THEOREM = tl.Theorem(
    id="IMPORTANCE-PL", metric="f_gap", estimator="gd", needs_pl=True,
    bound=lambda t, c: (1 - 2 * c.mu * c.gamma * (1 - c.L * c.gamma / 2) * c.lam_min) ** t * c.delta0,
    max_stepsize=lambda c: 2 / c.L, recommended_stepsize=lambda c: 1 / c.L,
    rate=lambda c: 1 - 2 * c.mu * c.gamma * (1 - c.L * c.gamma / 2) * c.lam_min,
    applies=lambda problem, method: None if isinstance(method.sketch_left, Importance) else "needs the importance sketch",
    extra={"sketches": ["importance"], "families": ["quadratic-iso", "kron-quadratic", "least-squares"]},
    doc="E[f(W^T) - f*] <= (1 - 2 mu gamma (1 - L gamma/2) lam_min)^T delta0, lam from E[H] = diag(pi).")

if __name__ == "__main__":
    problem = tl.make_problem("least-squares", m=6, n=5, n_samples=30)
    method = tl.Method("bernoulli-lora-gd", p=0.5, rank=1, sketch="importance", skew=0.7)
    print(tl.check(problem, method, iters=300, seeds=256, theorem=THEOREM).table())
    table = tl.fuzz([THEOREM], budget=10, seed=1)                          # random configurations, re-checks
    print(tl.fuzz_summary(table).to_string(index=False))
