"""Statistics over seeds: confidence bounds, verdicts and rate fits (docs/THEORY.md section 7).

The theorems bound expectations, so each checkpoint's S per-seed values give a t-interval for
the mean; K checkpoints are tested as a family with Bonferroni's correction (alpha/K in every
interval), which is valid under any dependence between checkpoints of the same runs.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

SLACK_REL, SLACK_ABS = 1e-9, 1e-15


def numerical_slack(dtype: str) -> float:
    """Relative slack b' = b (1 + rel): 1e-9 in float64 (docs/THEORY.md 7.2), 1e-5 in float32, whose
    rounding (eps = 1.2e-7) already moves t = 0 values by more than 1e-9."""
    return SLACK_REL if dtype == "float64" else 1e-5


def diverged_mask(X: np.ndarray) -> np.ndarray:
    """Per seed: True when any value is inf or NaN: the one divergence rule. A large but finite value
    is a measurement like any other (the statistics scale each checkpoint, :func:`power_of_two_scale`,
    so no square overflows) and is judged against the bound's own scale."""
    return ~np.all(np.isfinite(np.asarray(X, dtype=float)), axis=-1)


def power_of_two_scale(X: np.ndarray) -> np.ndarray:
    """Per column of finite X (S, K): the power of two at or above its largest |x| (1 for a zero
    column). Dividing by it is exact (no rounding), and afterwards every |x| <= 1: sums, squares and
    cubes of the scaled values cannot overflow, whatever the metric's magnitude (1e-300 or 1e300)."""
    top = np.max(np.abs(X), axis=0) if X.size else np.zeros(X.shape[1:])
    _, exp = np.frexp(top)
    return np.where(top > 0, np.ldexp(1.0, exp), 1.0)


@dataclass
class BandStats:
    """Per-checkpoint summary of (S, K) samples: mean, standard error, one-sided bounds, skewness
    and whether Cochran's rule S >= 25 g1^2 holds (docs/THEORY.md 7.3)."""

    mean: np.ndarray
    se: np.ndarray
    lcb: np.ndarray
    ucb: np.ndarray
    tcrit: float
    n_seeds: int
    n_finite: np.ndarray
    skew: np.ndarray = None
    normal_ok: np.ndarray = None
    #: a handful of seeds carry the mean (see :func:`heavy_tailed`): no interval from this sample is
    #: trustworthy on its upper side
    dominated: np.ndarray = None
    #: skewed columns whose upper / lower end is still the t-interval's: ``band(..., widen_now=False)``
    #: left the bootstrap-t to :func:`widen` (None: every interval is final)
    pending: np.ndarray = None
    pending_lower: np.ndarray = None
    _boot: tuple = None

    @property
    def final(self) -> bool:
        return not any(m is not None and m.any() for m in (self.pending, self.pending_lower))

    @property
    def half_width(self) -> np.ndarray:
        return self.ucb - self.mean


def band(X: np.ndarray, alpha: float = 0.05, k: int = 1, two_sided: bool = False, robust: bool = True,
         widen_now: bool = True) -> BandStats:
    """t-bounds of the mean of each column of X (S, K) at level alpha/k (one- or two-sided), with
    each column's skewness and Cochran check.

    Non-finite values make that column's mean infinite (divergence is never dropped); finite values of
    any magnitude are scaled per column by a power of two first, so nothing overflows.
    ``widen_now=False`` leaves the skewed columns' bootstrap-t widening to :func:`widen` (``pending``)."""
    X = np.asarray(X, dtype=float)
    S = X.shape[0]
    finite = np.isfinite(X)
    ok = finite.all(axis=0)
    a = alpha / max(k, 1)
    q = 1 - a / 2 if two_sided else 1 - a
    from scipy import special        # (imported here: a run that judges nothing does not pay for it)

    tcrit = float(special.stdtrit(S - 1, q)) if S > 1 else math.inf      # Student t quantile
    Xf = np.where(finite, X, 0.0)
    scale = power_of_two_scale(Xf)
    Xs = Xf / scale                                   # exact; |Xs| <= 1
    with np.errstate(all="ignore"):
        mean = np.where(ok, Xs.mean(axis=0) * scale, np.inf)
        sd = np.where(ok, Xs.std(axis=0, ddof=1) * scale if S > 1 else np.inf, np.inf)
        se = sd / math.sqrt(S)
        lcb = np.where(ok, mean - tcrit * se, np.inf)
        ucb = np.where(ok, mean + tcrit * se, np.inf)
    g1 = column_skewness(Xs)
    normal_ok = ok & (S >= 25 * g1 ** 2)
    skewed = ok & ~normal_ok & robust
    dominated = ok & heavy_tailed(Xs) & robust
    if dominated.any():
        # where a handful of seeds carry the mean, no interval is trustworthy: the upper end becomes
        # the largest per-seed value observed (a bound must clear every seed to "hold" there)
        ucb[dominated] = np.maximum(ucb[dominated], Xf[:, dominated].max(axis=0))
    boot = skewed & (S > 2)
    # the bootstrap-t's T* does not depend on the scale: it resamples the scaled values
    st = BandStats(mean, se, lcb, ucb, tcrit, S, finite.sum(axis=0), g1, normal_ok, dominated,
                   pending=boot, pending_lower=boot.copy(), _boot=(Xs, a / 2 if two_sided else a, boot))
    return widen(st) if widen_now else st


def widen(st: BandStats, upper_only: bool = False) -> BandStats:
    """docs/THEORY.md 7.3: where the t-interval is untrustworthy (the skewed columns), widen it to the
    bootstrap-t interval, in place: both ends, or with ``upper_only`` the upper end alone (one tail
    of T* ranked). Always over every skewed column at once, so the numbers do not depend on what
    was asked for before."""
    if st.final:
        return st
    Xf, a, cols = st._boot
    do_upper, do_lower = st.pending.any(), not upper_only and st.pending_lower.any()
    if not (do_upper or do_lower):
        return st
    blo, bhi = bootstrap_t(Xf[:, cols], a, upper=do_lower)
    if do_upper:
        st.ucb[cols] = _upper_ends(st, cols, blo)
        st.pending = np.zeros_like(cols)
    with np.errstate(invalid="ignore", over="ignore"):
        if do_lower:
            lo_b = np.nan_to_num(st.mean[cols] - bhi * st.se[cols], nan=-np.inf)
            st.lcb[cols] = np.minimum(st.lcb[cols], lo_b)
            st.pending_lower = np.zeros_like(cols)
    if st.final:
        st._boot = None
    return st


def _upper_ends(st: BandStats, cols, blo=None) -> np.ndarray:
    """The UCBs of columns ``cols`` (a mask or indices) widened to their bootstrap-t upper ends;
    ``blo``: those columns' q_a when already computed (else one lower-tail bootstrap over them)."""
    if blo is None:
        Xf, a, _ = st._boot
        blo, _ = bootstrap_t(Xf[:, cols], a, upper=False)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.maximum(st.ucb[cols], np.nan_to_num(st.mean[cols] - blo * st.se[cols], nan=np.inf))


def heavy_tailed(X: np.ndarray, min_seeds: float = 10.0, top_share: float = 0.5) -> np.ndarray:
    """Per column of X (S, K): True when the mean is carried by too few seeds for any interval from
    this sample (t or bootstrap) to be trusted on its upper side.

    Two signs, either suffices:

    * the top max(3, S/200) seeds hold more than ``top_share`` of the column's sum: typical of
      multiplicative processes (a rare kind of step multiplies the value), where each rarer event
      is larger and the events that carry E X are rarer than the sample can show;
    * the positive values' log-spread sigma describes a lognormal whose mean is carried by its upper
      Phi(-sigma) tail, with S Phi(-sigma) < ``min_seeds``.

    A flagged checkpoint's upper end becomes the largest per-seed value (an UPPER bound must clear every
    seed there to hold). Tails heavier than any sample of this size shows remain undetectable, as for
    any finite S."""
    import warnings

    S = X.shape[0]
    k = max(3, int(math.ceil(S / 200)))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # all-zero columns: empty nan-means
        A = np.abs(X)
        total = np.sum(A, axis=0)
        top = np.sum(np.sort(A, axis=0)[-k:], axis=0) if S > k else total
        share = np.where(total > 0, top / np.where(total > 0, total, 1.0), 0.0)
        logs = np.where(X > 0, np.log(np.where(X > 0, X, 1.0)), np.nan)
        n_pos = np.sum(X > 0, axis=0)
        sigma = np.sqrt(np.nanmean((logs - np.nanmean(logs, axis=0)) ** 2, axis=0) * n_pos / np.maximum(n_pos - 1, 1))
    from scipy import special

    tail_seeds = S * special.ndtr(-np.nan_to_num(sigma, nan=0.0))       # S Phi(-sigma)
    return ((share > top_share) & (S > k)) | ((n_pos >= 3) & (tail_seeds < min_seeds))


def bootstrap_t(X: np.ndarray, a: float, seed: int = 20261129, upper: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Studentized bootstrap quantiles (q_a, q_{1-a}) of T* = (mean* - mean)/SE* per column of X (S, K).

    The bootstrap-t interval is [mean - q_{1-a} SE, mean - q_a SE]: on right-skewed samples its upper
    end moves up, where the t-interval's is too low. B grows with 1/a (at least 20 resamples beyond
    the quantile, at most 20,000); resampling weights are multinomial, so every resample's moments
    are one matrix product. Fixed seed: verdicts are deterministic.

    With few seeds many of the B resamples repeat (S = 8: 4,585 distinct of 20,000): each distinct
    resample's T* is computed once and counted as often as it was drawn, which gives the same order
    statistics as computing all B. ``upper=False``: only q_a (the interval's upper end), q_{1-a} NaN."""
    S, K = X.shape
    B = int(min(20_000, max(2_000, math.ceil(20 / a)), max(2_000, 8_000_000 // S)))   # <= 64 MB of weights
    WtT, counts = _distinct_resamples(S, B, seed)         # (S, U), multiplicities (U,) or None (all 1)
    U = WtT.shape[1]
    i_lo, i_hi = int(math.floor(a * (B - 1))), int(math.ceil((1 - a) * (B - 1)))   # "lower" / "higher"
    lo, hi = np.empty(K), np.empty(K)
    # Centred values: the weights of a resample sum to one, so (X - mean) @ w is mean* - mean. The
    # resampled variance var* = sum_{s<t} w_s w_t (x_s - x_t)^2 is a sum of non-negative terms: no
    # cancellation where a resample piles on a few close values (the tails of T*), and exactly 0
    # where its values are all equal. With many seeds (too many pairs) it is E* x^2 - (E* x)^2 of
    # the centred values, where such resamples are too rare to reach the tails.
    XT = np.ascontiguousarray(X.T)                         # (K, S): every row one column of X
    XT = XT - XT.mean(axis=1)[:, None]
    # T* does not depend on the scale: each column divided by its largest |x - mean|, so squares
    # neither overflow nor underflow whatever the metric's magnitude (1e-200 or 1e150)
    top = np.max(np.abs(XT), axis=1, keepdims=True)
    XT /= np.where(top > 0, top, 1.0)
    pairwise = S <= _PAIRWISE_MAX_S
    if pairwise:
        s_, t_ = np.triu_indices(S, 1)
        Q, WQ = (XT[:, s_] - XT[:, t_]) ** 2, _pair_weights(S, B, seed)     # (K, pairs), (pairs, U)
    else:
        Q, WQ = XT * XT, WtT
    # Columns in chunks whose (chunk, U) arrays stay in cache, in buffers allocated once (a fresh
    # large array per chunk costs page faults that exceed the arithmetic); the order statistics of
    # a few chunks at once. With few seeds each chunk has its own products; with many, one GEMM for
    # all columns (re-reading S x U weights per chunk would cost more than the products save).
    step = max(1, _CHUNK // U)
    group = step * max(1, _RANK_CHUNKS)
    whole = S > 64
    if whole:
        D, E = XT @ WtT, Q @ WQ
    else:
        bd, be = np.empty((step, U)), np.empty((step, U))
    bt = np.empty((min(group, K), U))
    bv = None if pairwise else np.empty((step, U))
    scale = math.sqrt(S - 1)                               # SE* = sqrt(var* / (S - 1))
    for g in range(0, K, group):
        for j in range(g, min(g + group, K), step):
            n = min(step, K - j)
            sl = slice(j, j + n)
            if whole:
                d, e = D[sl], E[sl]
            else:
                d, e = np.matmul(XT[sl], WtT, out=bd[:n]), np.matmul(Q[sl], WQ, out=be[:n])
            T = bt[j - g:j - g + n]
            # ranked as sign(T*) T*^2 / (S - 1) = d |d| / var*, which orders the resamples as T*
            # does (x -> x |x| increases) without a square root per resample
            with np.errstate(all="ignore"):
                if pairwise:
                    var = e                                 # e is var*
                else:
                    var = np.multiply(d, d, out=bv[:n])
                    np.subtract(e, var, out=var)
                    np.maximum(var, 0.0, out=var)           # var* (rounding may leave it below 0)
                np.abs(d, out=T)
                np.multiply(T, d, out=T)
                np.divide(T, var, out=T)
            if not np.isfinite(T).all():                    # se* = 0: T* is +-inf by the sign of mean* - mean
                bad = ~np.isfinite(T)
                T[bad] = np.where(d[bad] > 0, np.inf, -np.inf)
        # order statistics (no interpolation: between two infinite T* it would give NaN)
        n = min(group, K - g)
        lo[g:g + n], hi[g:g + n] = _order_statistics(bt[:n], i_lo, i_hi, counts, upper)
    with np.errstate(invalid="ignore"):
        lo, hi = (np.sign(v) * np.sqrt(np.abs(v)) * scale for v in (lo, hi))     # back to T*
    return np.nan_to_num(lo, nan=-np.inf), np.nan_to_num(hi, nan=np.inf)


#: elements per chunk of ``bootstrap_t`` (a few such float64 arrays fit in a core's L2 cache), and
#: chunks per ranking (fewer, larger calls of ``_order_statistics``)
_CHUNK, _RANK_CHUNKS = 32_768, 4
#: up to this many seeds ``bootstrap_t`` forms var* from pairs of seeds (S (S - 1) / 2 products)
_PAIRWISE_MAX_S = 10


def _order_statistics(T: np.ndarray, i_lo: int, i_hi: int, counts: np.ndarray | None = None,
                      upper: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The i_lo-th and i_hi-th smallest (0-based) of every row's draws, where column u of T stands
    for ``counts[u]`` equal draws (None: one each), exactly as a full partition of all draws gives
    them. In about one pass when both lie in the tails: a first partition of a tenth of the columns
    bounds each from the right side (every column there is at least one draw), and only the few
    values beyond that bound are ranked."""
    U = T.shape[1]
    n_draws = U if counts is None else int(counts.sum())
    n_top = n_draws - 1 - i_hi
    sub = U // 20
    if sub < 20 * (max(i_lo, n_top) + 1):                 # not in the tails
        if counts is None:
            part = np.partition(T, (i_lo, i_hi), axis=1)
            return part[:, i_lo], part[:, i_hi]
        everything = np.ones(T.shape, dtype=bool)
        return _kth_of_selected(T, everything, everything if upper else None, counts, i_lo, n_top)
    head = np.partition(T[:, :sub], (i_lo, sub - 1 - n_top) if upper else i_lo, axis=1)
    # at least i_lo + 1 draws of the row are <= thr_lo, and n_top + 1 are >= thr_hi
    thr_lo, thr_hi = head[:, i_lo], head[:, sub - 1 - n_top]
    return _kth_of_selected(T, T <= thr_lo[:, None], T >= thr_hi[:, None] if upper else None, counts, i_lo, n_top)


def _kth_of_selected(T: np.ndarray, low: np.ndarray, high: np.ndarray | None, counts, k_low: int, k_high: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per row of T, the k_low-th smallest draw among the entries where ``low`` holds and the
    k_high-th largest among those where ``high`` holds, entry u counting ``counts[u]`` draws (each
    selection holds more than k draws and every draw beyond the answer). Both tails of all rows in
    one ranking: the selected entries sorted by (row, value), the upper tail's values negated."""
    R, U = T.shape
    f_lo = np.flatnonzero(low)                                      # (faster than a 2-d nonzero)
    f_hi = np.flatnonzero(high) if high is not None else f_lo[:0]     # None: the upper tail not asked for (NaN)
    lines = 2 * R if high is not None else R
    flat = np.concatenate((f_lo, f_hi))
    rows, cols = np.divmod(flat, U)
    rows[f_lo.size:] += R                                  # the upper tail: rows R .. 2R - 1
    vals = T.reshape(-1)[flat]
    vals[f_lo.size:] *= -1.0
    w = np.ones(rows.size, dtype=np.int64) if counts is None else counts[cols]
    # rows are in order (row-major selection, the upper tail after the lower): each row's entries
    # into one padded line (+inf, no draws), of which only the k + 1 smallest can hold the answer
    # (every entry is at least one draw)
    start = np.searchsorted(rows, np.arange(lines))
    pos = np.arange(rows.size) - start[rows]
    width = int(pos.max()) + 1
    M = np.full((lines, width), np.inf)
    Wm = np.zeros((lines, width), dtype=np.int64)
    M[rows, pos], Wm[rows, pos] = vals, w
    kk = min((max(k_low, k_high) if high is not None else k_low) + 1, width)
    if kk < width:
        idx = np.argpartition(M, kk - 1, axis=1)[:, :kk]
        M, Wm = np.take_along_axis(M, idx, axis=1), np.take_along_axis(Wm, idx, axis=1)
    o = np.argsort(M, axis=1)
    M, Wm = np.take_along_axis(M, o, axis=1), np.take_along_axis(Wm, o, axis=1)
    before = np.cumsum(Wm, axis=1) - Wm                    # draws ahead of each entry in its row
    k = np.where(np.arange(lines) < R, k_low, k_high)[:, None]
    # the answer is the last entry of its row with at most k draws ahead of it
    out = M[np.arange(lines), np.sum(before <= k, axis=1) - 1]
    return out[:R], -out[R:] if high is not None else np.full(R, np.nan)


@functools.lru_cache(maxsize=8)
def _resampling_weights(S: int, B: int, seed: int) -> np.ndarray:
    """(S, B) multinomial resampling weights / S of ``bootstrap_t`` (deterministic; cached)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, S, size=(B, S)) + (np.arange(B) * S)[:, None]
    Wt = np.ascontiguousarray((np.bincount(idx.ravel(), minlength=B * S).reshape(B, S) / S).T)
    Wt.setflags(write=False)
    return Wt


@functools.lru_cache(maxsize=8)
def _pair_weights(S: int, B: int, seed: int) -> np.ndarray:
    """(S (S - 1) / 2, U) products w_s w_t (s < t) of every distinct resample's weights."""
    W, _ = _distinct_resamples(S, B, seed)
    s, t = np.triu_indices(S, 1)
    P = np.ascontiguousarray(W[s] * W[t])
    P.setflags(write=False)
    return P


@functools.lru_cache(maxsize=8)
def _distinct_resamples(S: int, B: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The distinct columns of ``_resampling_weights`` (in order of first draw) and how often each
    was drawn; the full weights and None when fewer than a third of the draws repeat."""
    Wt = _resampling_weights(S, B, seed)
    _, first, counts = np.unique(Wt.T, axis=0, return_index=True, return_counts=True)
    if first.size > 2 * B // 3:
        return Wt, None
    # a fixed random order: the first tenth of the columns, where ``_order_statistics`` finds its
    # bounds, is then a fair sample (in order of first draw the rare, extreme resamples come last)
    order = np.random.default_rng(seed).permutation(first.size)
    W = np.ascontiguousarray(Wt[:, first[order]])
    counts = counts[order].astype(np.int64)
    W.setflags(write=False)
    counts.setflags(write=False)
    return W, counts


def column_skewness(X: np.ndarray) -> np.ndarray:
    """Sample skewness g1 of every column (0 for a constant column)."""
    X = np.asarray(X, dtype=float)
    with np.errstate(all="ignore"):
        D = X - X.mean(axis=0)
        m2 = np.mean(D * D, axis=0)
        m3 = np.mean(D * D * D, axis=0)
        # below relative rounding level the column is constant: its skewness is 0, not noise
        flat = m2 <= (1e-12 * np.maximum(np.abs(X.mean(axis=0)), np.finfo(float).tiny)) ** 2
        g = np.where(flat, 0.0, m3 / np.where(flat, 1.0, m2) ** 1.5)
    return np.where(np.isfinite(g), g, 0.0)


def slack(bound: np.ndarray, rel: float = SLACK_REL, floor: float = 0.0) -> np.ndarray:
    """b' = b (1 + 1e-9) + max(1e-15, floor) (docs/THEORY.md 7.2); ``rel`` is raised for float32 runs and
    ``floor`` is the absolute resolution of the measured quantity (the problem's evaluation error)."""
    return np.asarray(bound) * (1 + rel) + max(SLACK_ABS, floor)


@dataclass
class Verdict:
    verdict: str
    stats: BandStats
    reason: str = ""

    def __iter__(self):                      # (verdict, stats) unpacking, as before
        return iter((self.verdict, self.stats))

    def __getitem__(self, i):
        return (self.verdict, self.stats)[i]


def upper_verdict(X: np.ndarray, bound: np.ndarray, alpha: float = 0.05, tau: float = 0.05,
                  rel: float = SLACK_REL, floor: float = 0.0, t=None, lazy: bool = False) -> Verdict:
    """Verdict of an UPPER bound tested at K checkpoints (columns of X).

    Intervals are Bonferroni t-intervals, widened to bootstrap-t where Cochran's rule fails (see
    :func:`band`). violated: some LCB > b'; holds: every UCB <= b'; tight: otherwise, if every
    undecided checkpoint has (UCB - LCB) <= 2 tau b; inconclusive: otherwise, with the reason (skewed
    samples needing more seeds, or a bound below the float64 resolution of the measured quantity).

    ``lazy``: the same verdict and reason, without the bootstrap where the t-intervals already
    decide them (widening only lowers LCBs and raises UCBs); the returned intervals may then be the
    t-intervals (``stats.final`` is False)."""
    K = X.shape[1]
    st = band(X, alpha, K, widen_now=not lazy)
    bound = np.asarray(bound, dtype=float)
    bp = slack(bound, rel, floor)
    t = np.arange(K) if t is None else np.asarray(t)
    unresolved = bound < floor                  # the bound is below what the evaluation resolves
    if not st.final:
        v = _without_bootstrap(st, bound, bp, unresolved, tau, t, floor)
        if v is not None:
            return v
        may_violate = ((st.lcb > bp) & ~unresolved & st.pending_lower).any()
        if not may_violate and not ((st.ucb > bp) | unresolved).any():
            v = _holds_unless(st, bound, bp, unresolved, tau, t, floor)
            if v is not None:
                return v
        # no column can be violated without a pending lower end above b': then all at once;
        # else the upper ends first (they decide holds and the undecided set, so the reason),
        # the lower ends only if the tight test still depends on them
        widen(st, upper_only=not may_violate)
        undecided = (st.ucb > bp) | unresolved
        if undecided.any() and not _not_tight(st, undecided, unresolved, tau, bound):
            widen(st)
    if np.any((st.lcb > bp) & ~unresolved):
        return Verdict("violated", st)
    undecided = (st.ucb > bp) | unresolved
    if not undecided.any():
        return Verdict("holds", st)
    with np.errstate(all="ignore"):                  # an infinite interval is wide, not an error
        narrow = np.all((st.ucb - st.lcb)[undecided] <= 2 * tau * bound[undecided])
    if not (unresolved | (undecided & st.dominated)).any() and narrow:
        return Verdict("tight", st)
    return Verdict("inconclusive", st, _reason(st, t, undecided & (~st.normal_ok | st.dominated), unresolved, floor))


def _without_bootstrap(st: BandStats, bound, bp, unresolved, tau, t, floor):
    """The verdict ``upper_verdict`` reaches with every interval widened, when the t-intervals
    already decide it (else None). Widening lowers LCBs and raises UCBs of the pending columns only:

    * violated: a column that is not pending has LCB > b' (a pending one needs its bootstrap);
    * inconclusive: no pending column has LCB > b' (so none can violate), some column is undecided
      already (UCB > b' or unresolved; widening keeps it so), and the tight test already fails
      (an unresolved or dominated undecided column, or an undecided interval wider than 2 tau b:
      widening only widens). The reason names the most skewed undecided column; pending columns
      can only join that set, and only the upper ends of those at least as skewed as its most
      skewed member are computed to see which join (a bootstrap over those columns alone: the
      same numbers as over all, up to the GEMM's rounding for a different set of rows)."""
    pend = st.pending
    viol = (st.lcb > bp) & ~unresolved
    if (viol & ~pend).any():
        return Verdict("violated", st)
    if (viol & pend).any():
        return None
    undecided = (st.ucb > bp) | unresolved
    if not undecided.any():
        return None                                    # holds unless a pending UCB moves above b'
    if not _not_tight(st, undecided, unresolved, tau, bound):
        return None                                    # tight is still possible
    named = undecided & (~st.normal_ok | st.dominated)
    joinable = pend & ~undecided
    if joinable.any():
        # pending columns that widening makes undecided join ``named``; only those at least as
        # skewed as the most skewed named one can change the checkpoint the reason names, and only
        # their upper ends (one tail of T*) decide whether they join
        top = np.max(np.abs(st.skew[named])) if named.any() else -1.0
        cand = joinable & (np.abs(st.skew) >= top)
        if cand.any():
            named = named.copy()
            named[np.flatnonzero(cand)[_upper_ends(st, cand) > bp[cand]]] = True
    return Verdict("inconclusive", st, _reason(st, t, named, unresolved, floor))


def _not_tight(st: BandStats, undecided, unresolved, tau, bound) -> bool:
    """The tight test fails on the intervals as they are (an unresolved or dominated undecided
    checkpoint, or an undecided interval wider than 2 tau b), so it fails after any widening."""
    with np.errstate(all="ignore"):
        wide = (st.ucb - st.lcb)[undecided] > 2 * tau * bound[undecided]
    return bool(unresolved.any() or (undecided & st.dominated).any() or wide.any())


def _holds_unless(st: BandStats, bound, bp, unresolved, tau, t, floor, first: int = 16):
    """Lazy ``upper_verdict`` where the t-intervals say holds and no column can be violated: the
    pending upper ends, most skewed first, in blocks of doubling size. All below b': holds. Else
    the first block with an undecided checkpoint holds the most skewed undecided one (the reason's);
    inconclusive if the tight test already fails there (dominated, or wider than 2 tau b with the
    t lower end: widening only widens); None when the tight test still depends on the rest.
    (Blocks of columns: the same numbers as one bootstrap over all, up to the GEMM's rounding.)"""
    cols = np.flatnonzero(st.pending)
    cols = cols[np.argsort(-np.abs(st.skew[cols]), kind="stable")]       # ties: lower index first
    start, size = 0, first
    while start < cols.size:
        blk = cols[start:start + size]
        ucb = _upper_ends(st, blk)
        with np.errstate(all="ignore"):
            up = ucb > bp[blk]
            wide = (ucb - st.lcb[blk]) > 2 * tau * bound[blk]
        if up.any():
            if not (st.dominated[blk[up]].any() or wide[up].any()):
                return None
            named = np.zeros(st.mean.size, dtype=bool)
            named[blk[up]] = True
            return Verdict("inconclusive", st, _reason(st, t, named, unresolved, floor))
        start, size = start + size, 2 * size
    return Verdict("holds", st)


def exact_verdict(X: np.ndarray, formula: np.ndarray, alpha: float = 0.05, rel: float = SLACK_REL,
                  floor: float = 0.0, t=None, st: BandStats | None = None) -> Verdict:
    """EXACT / IDENTITY: two-sided Bonferroni intervals (bootstrap-t where Cochran's rule fails;
    ``st``: those intervals, when already computed for X and only the formula changes).

    match: the formula lies in every interval. mismatch: the formula lies BELOW some interval (the
    measured mean is significantly larger; under right skew the lower end is conservative, so this
    stands on any sample). A formula ABOVE an interval is not taken as a mismatch: the per-seed
    values of these methods are products of random per-step factors, whose mean is carried by
    events rarer than any S seeds show (the fuzz campaign found such false mismatches on samples
    with skewness 1 to 35, some persisting at 4x the seeds); the verdict is then inconclusive, with
    that reason. Checkpoints whose formula is below the float64 resolution are not judged."""
    K = X.shape[1]
    st = band(X, alpha, K, two_sided=True) if st is None else st
    f = np.asarray(formula, dtype=float)
    tol = np.abs(f) * rel + max(SLACK_ABS, floor)
    below, above = f < st.lcb - tol, f > st.ucb + tol
    t = np.arange(K) if t is None else np.asarray(t)
    unresolved = np.abs(f) < floor
    if (below & ~unresolved).any():
        return Verdict("mismatch", st)
    if above.any() or below.any():
        k = int(np.argmax(above | below))
        why = (f"the formula {f[k]:.4g} at t = {int(t[k])} lies above the measured interval "
               f"[{st.lcb[k]:.4g}, {st.ucb[k]:.4g}]; a mean below its formula is not evidence against it when "
               "rare seeds carry the mean (multiplicative per-step factors): re-run with more seeds")
        if not (above & ~unresolved).any():
            why = _reason(st, t, np.zeros(K, bool), unresolved, floor)
        return Verdict("inconclusive", st, why)
    return Verdict("match", st)


def _reason(st: BandStats, t, skewed, unresolved, floor) -> str:
    parts = []
    if skewed.any():
        k = int(np.argmax(np.where(skewed, np.abs(st.skew), -1)))
        need = int(math.ceil(25 * st.skew[k] ** 2))
        what = ("a handful of seeds carry the mean there, so the bound must clear the largest seed value"
                if st.dominated[k] else "bootstrap-t interval used there")
        parts.append(f"skewed samples: g1 = {st.skew[k]:.2f} at t = {int(t[k])} ({what}; Cochran's rule asks for "
                     f"S >= 25 g1^2 = {need} seeds, {st.n_seeds} given; more seeds help only where the events "
                     "that carry the mean become visible)")
    if unresolved.any():
        k = int(np.argmax(unresolved))
        parts.append(f"the bound at t = {int(t[k])} is below the float64 resolution {floor:.2g} of the measured "
                     "quantity")
    return "; ".join(parts)


def skewness(x: np.ndarray) -> float:
    """Sample skewness g1 of the finite values (0 for constant samples)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)][:, None]
    return float(column_skewness(x / power_of_two_scale(x))[0]) if x.size >= 3 else 0.0


def fit_linear_rate(t: np.ndarray, X: np.ndarray, floor: float = 0.0, n_boot: int = 200,
                    seed: int = 0, level: float = 0.95):
    """Fit log mean_s X_s(t) = a + t log q on the window where the mean exceeds
    max(10 floor, 1e-12 m_0) (docs/THEORY.md 7.4). Returns (q_hat, (q_low, q_high)) with a bootstrap
    percentile interval over seeds, or (nan, (nan, nan)) when fewer than 3 points qualify."""
    t = np.asarray(t, dtype=float)
    X = np.asarray(X, dtype=float)
    if not np.all(np.isfinite(X)):
        return math.nan, (math.nan, math.nan)

    def slopes(M):
        """Per row of M (means over seeds, one row per resample): exp of the least-squares slope of
        log M against t over the row's window (the initial run of points above the threshold)."""
        thr = np.maximum(np.maximum(10 * floor, 1e-12 * M[:, 0]), np.finfo(float).tiny)
        ok = M > thr[:, None]
        stop = np.where(ok.all(axis=1), M.shape[1], np.argmin(ok, axis=1))     # window length per row
        with np.errstate(all="ignore"):
            y = np.where(ok, np.log(np.where(ok, M, 1.0)), 0.0)
        tc = t - t[0]                                      # centred times: sums without cancellation
        z = np.zeros((M.shape[0], 1))
        cy = np.concatenate([z, np.cumsum(y, axis=1)], axis=1)
        cty = np.concatenate([z, np.cumsum(y * tc, axis=1)], axis=1)
        ct, ctt = np.concatenate([[0.0], np.cumsum(tc)]), np.concatenate([[0.0], np.cumsum(tc * tc)])
        rows = np.arange(M.shape[0])
        n, st, stt = stop.astype(float), ct[stop], ctt[stop]
        sy, sty = cy[rows, stop], cty[rows, stop]
        with np.errstate(all="ignore"):
            b = (n * sty - st * sy) / (n * stt - st * st)
        return np.where(stop >= 3, np.exp(b), np.nan)

    q = float(slopes(X.mean(axis=0)[None])[0])
    if not math.isfinite(q):
        return math.nan, (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    S = X.shape[0]
    idx = rng.integers(0, S, size=(n_boot, S)) + (np.arange(n_boot) * S)[:, None]
    counts = np.bincount(idx.ravel(), minlength=n_boot * S).reshape(n_boot, S)
    boots = slopes(counts @ X / S)                         # resampled means, one matrix product
    boots = boots[np.isfinite(boots)]
    lo, hi = np.percentile(boots, [50 * (1 - level), 100 - 50 * (1 - level)]) if boots.size else (math.nan,) * 2
    return q, (float(lo), float(hi))


def fit_loglog_slope(t: np.ndarray, X: np.ndarray) -> float:
    """Slope of log mean X against log t over the second half of the checkpoints (t > 0)."""
    t = np.asarray(t, dtype=float)
    m = np.asarray(X, dtype=float).mean(axis=0)
    ok = (t > 0) & np.isfinite(m) & (m > 0)
    t, m = t[ok], m[ok]
    if t.size < 3:
        return math.nan
    half = t >= np.sqrt(t[0] * t[-1])
    if half.sum() < 2:
        half[:] = True
    return float(np.polyfit(np.log(t[half]), np.log(m[half]), 1)[0])


def cochran_ok(skew: float, n_seeds: int) -> bool:
    """Cochran's rule S >= 25 g1^2 for trusting t-intervals on skewed data."""
    return n_seeds >= 25 * skew ** 2
