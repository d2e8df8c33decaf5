"""Shared test helpers (a module of their own: tests import it, never conftest)."""
import numpy as np

import theory_lab as tl

#: confidence for tests that assert a TRUE formula or bound: at 95% such a test fails by
#: construction about once in twenty draws, so any change of draws would make it flaky
TRUE_CONFIDENCE = 0.999
#: confidence where power matters (deliberately wrong bounds must be caught)
POWER_CONFIDENCE = 0.95


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def has_cuda() -> bool:
    if not has_torch():
        return False
    import torch
    return torch.cuda.is_available()


def mutate(tid, scale=None, rate=None, kind="UPPER"):
    """A too-optimistic copy: the bound times ``scale`` (< 1), or every contraction factor q^t
    replaced by q^(rate t) (rate > 1), evaluated by substituting T -> rate T in the original bound
    where the bound is a pure geometric decay."""
    th = tl.THEOREMS[tid]
    if scale is not None:
        bound = lambda t, c: scale * th.bound(t, c)       # noqa: E731
    else:
        bound = lambda t, c: th.bound(rate * np.asarray(t, float), c)   # noqa: E731
    return tl.Theorem(id=f"{tid}-mutant", metric=th.metric, bound=bound, measure=th.measure, kind=kind,
                      condition=th.condition, max_stepsize=th.max_stepsize,
                      recommended_stepsize=th.recommended_stepsize, skip_t0=th.skip_t0, estimator=th.estimator,
                      needs_smooth=th.needs_smooth, needs_pl=th.needs_pl, applies=th.applies)


def ids(params):
    return [f"{k}={v}" for k, v in params]
