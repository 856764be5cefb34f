"""Many comparisons at once: :func:`etprof.analyzers.stats.significance.compare` for a list of pairs, vectorised.

`etprof history` judges every run of a store against the runs before it: tens of thousands of
pairs, each the same test and interval as `etprof diff`. One Python call per pair spends its time
on the bootstrap (2,000 resamples gathered and averaged), so pairs are grouped by their sizes
(n_a, n_b) and judged together:

- the bootstrap draws depend only on the seed and the sizes (a fresh generator per pair, A's
  draws first), so one draw serves every pair of a size group; with the mean, a resample's mean
  is (how often it drew each iteration) @ (the iterations) / n: one matrix product for the group;
- the rank test ranks every pair's pooled sample in one call (average ranks and tie sizes from
  the sorted columns), with the same normal approximation and corrections as :func:`rank_test`;
- the between-session interval and the verdict stay :mod:`etprof.analyzers.stats.significance`'s own functions,
  per pair (cheap: they see per-session statistics, not iterations).

The result of each pair is the :class:`Comparison` `compare` returns, to the last few bits of a
float (a matrix product sums in another order than a mean): tests/test_store_scale.py checks
verdicts equal and numbers to 1e-9 against `compare` on real and synthetic pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from etprof.analyzers.stats.significance import (
    NO_CHANGE,
    Comparison,
    FloatArray,
    Method,
    _relative,
    _resample,
    _verdict,
    check_method,
    compare,
    session_interval,
    session_stats,
)

# Bumped when a change here or in etprof.analyzers.stats.significance can change a verdict: stored verdicts of
# another version are judged again (etprof.store.verdicts).
JUDGE_VERSION = 1
_CHUNK = 4096  # pairs per matrix product: bounds memory at resamples x chunk doubles


@dataclass(frozen=True)
class Pair:
    """One comparison to make: A is the baseline; sessions label each value (None: one)."""

    a: FloatArray
    b: FloatArray
    method: Method
    sessions_a: npt.NDArray[np.generic] | None = None
    sessions_b: npt.NDArray[np.generic] | None = None


def compare_many(pairs: Sequence[Pair]) -> list[Comparison]:
    """`[compare(p.a, p.b, p.method, ...) for p in pairs]`, computed in groups."""
    out: list[Comparison | None] = [None] * len(pairs)
    groups: dict[tuple[int, int, Method], list[int]] = {}
    for i, p in enumerate(pairs):
        check_method(p.method)
        if p.a.size == 0 or p.b.size == 0:
            raise ValueError("both samples need at least one value")
        # contention differs per pair but not the draws: group on what the draws depend on
        key = (p.a.size, p.b.size, _draw_key(p.method))
        groups.setdefault(key, []).append(i)
    for (_, _, method), members in groups.items():
        if method.statistic != "mean" or _has_nan(pairs, members):
            for i in members:  # the median's bootstrap has no matrix shortcut: pair by pair
                p = pairs[i]
                out[i] = compare(
                    p.a, p.b, p.method, sessions_a=p.sessions_a, sessions_b=p.sessions_b
                )
            continue
        for start in range(0, len(members), _CHUNK):
            chunk = members[start : start + _CHUNK]
            # one row a pair: a row's mean and median are computed as a 1-d array's are
            a = np.stack([pairs[i].a for i in chunk])
            b = np.stack([pairs[i].b for i in chunk])
            low, high = _bootstrap_means(a, b, method)
            p_values = rank_test_columns(a.T, b.T)
            means = a.mean(axis=1), b.mean(axis=1)
            medians = np.median(a, axis=1), np.median(b, axis=1)
            for j, i in enumerate(chunk):
                out[i] = _finish(
                    pairs[i],
                    float(low[j]),
                    float(high[j]),
                    float(p_values[j]),
                    (float(means[0][j]), float(means[1][j])),
                    (float(medians[0][j]), float(medians[1][j])),
                )
    return [c for c in out if c is not None]


def _draw_key(method: Method) -> Method:
    return Method(
        resamples=method.resamples,
        seed=method.seed,
        statistic=method.statistic,
        resampling=method.resampling,
        confidence=method.confidence,
    )


def _has_nan(pairs: Sequence[Pair], members: list[int]) -> bool:
    return any(np.isnan(pairs[i].a).any() or np.isnan(pairs[i].b).any() for i in members)


def _counts(rng: np.random.Generator, n: int, method: Method) -> FloatArray:
    """How often each of n iterations is drawn in each resample (resamples x n)."""
    rows = _resample(rng, n, method)
    counts = np.zeros((rows.shape[0], n), dtype=np.float64)
    np.add.at(counts, (np.arange(rows.shape[0])[:, None], rows), 1.0)
    return counts


_DRAWS: dict[tuple[int, int, Method], tuple[FloatArray, FloatArray]] = {}


def _draws(n_a: int, n_b: int, method: Method) -> tuple[FloatArray, FloatArray]:
    """The draw counts `bootstrap_interval` makes for sizes (n_a, n_b): A's first, then B's,
    from one generator seeded afresh (so every pair of these sizes draws the same)."""
    key = (n_a, n_b, method)
    if key not in _DRAWS:
        rng = np.random.default_rng(method.seed)
        _DRAWS.clear() if len(_DRAWS) > 64 else None
        _DRAWS[key] = (_counts(rng, n_a, method), _counts(rng, n_b, method))
    return _DRAWS[key]


def _bootstrap_means(a: FloatArray, b: FloatArray, method: Method) -> tuple[FloatArray, FloatArray]:
    """Each row pair's percentile interval of 100 * (mean(B*) / mean(A*) - 1) (one pair a row:
    each pair's resamples lie contiguous for the percentile's partition)."""
    ca, cb = _draws(a.shape[1], b.shape[1], method)
    ra = a @ ca.T  # resample sums; the means' ratio is the sums' ratio times n_a / n_b
    ratio = b @ cb.T
    tail = 100.0 * (1.0 - method.confidence) / 2.0
    scale = a.shape[1] / b.shape[1]
    low = np.full(ra.shape[0], math.nan)
    high = np.full(ra.shape[0], math.nan)
    finite = (ra != 0.0).all(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(ratio, ra, out=ratio)
    if finite.any():
        rows = ratio if finite.all() else ratio[finite]
        # percentiles of an increasing affine map are the map of the percentiles
        q = np.percentile(rows, [tail, 100.0 - tail], axis=1)
        low[finite], high[finite] = 100.0 * (q * scale - 1.0)
    for j in np.flatnonzero(~finite):  # a zero baseline resample: drop it, as the pair's does
        rel = 100.0 * (ratio[j] * scale - 1.0)
        rel = rel[np.isfinite(rel)]
        if rel.size:
            low[j], high[j] = np.percentile(rel, [tail, 100.0 - tail])
    return low, high


def rank_test_columns(a: FloatArray, b: FloatArray) -> FloatArray:
    """:func:`etprof.analyzers.stats.significance.rank_test` of each column of A against the same column of B."""
    n1, n2 = a.shape[0], b.shape[0]
    n = n1 + n2
    from scipy.stats import rankdata

    pooled = np.concatenate([a, b], axis=0)
    lowest = rankdata(pooled, method="min", axis=0).astype(np.float64)
    highest = rankdata(pooled, method="max", axis=0).astype(np.float64)
    ranks = (lowest + highest) / 2.0  # tied values share their mean rank
    size = highest - lowest + 1.0  # how many values share it
    u = ranks[:n1].sum(axis=0) - n1 * (n1 + 1) / 2.0
    ties = (size**2 - 1.0).sum(axis=0)  # sum over runs of t^3 - t, counted per element
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.abs(u - n1 * n2 / 2.0) - 0.5) / np.sqrt(var)
    p = np.array([min(1.0, math.erfc(max(float(x), 0.0) / math.sqrt(2.0))) for x in z])
    return np.where(var > 0, p, 1.0)


def _finish(
    p: Pair,
    low: float,
    high: float,
    p_value: float,
    means: tuple[float, float],
    medians: tuple[float, float],
) -> Comparison:
    """The rest of `compare` for one pair, from its interval, p-value, means and medians."""
    method = p.method
    base, new = means if method.statistic == "mean" else medians
    change = _relative(new, base)
    stats_a = _session_stats(p.a, p.sessions_a, method.statistic, base)
    stats_b = _session_stats(p.b, p.sessions_b, method.statistic, new)
    s_low, s_high = session_interval(stats_a, stats_b, base, new, method.confidence)
    if math.isfinite(s_low) and math.isfinite(s_high):
        low, high = min(low, s_low), max(high, s_high)
    verdict, reason = _verdict(change, low, high, p_value, method)
    return Comparison(
        n_a=int(p.a.size),
        n_b=int(p.b.size),
        mean_a_ms=means[0],
        mean_b_ms=means[1],
        median_a_ms=medians[0],
        median_b_ms=medians[1],
        delta_ms=new - base,
        change_pct=change,
        ci_low_pct=low,
        ci_high_pct=high,
        p_value=p_value,
        significant=verdict != NO_CHANGE,
        verdict=verdict,
        reason=reason,
        method=method,
        sessions_a=int(stats_a.size),
        sessions_b=int(stats_b.size),
        session_ci_low_pct=s_low,
        session_ci_high_pct=s_high,
    )


def _session_stats(
    values: FloatArray, sessions: npt.NDArray[np.generic] | None, statistic: str, whole: float
) -> FloatArray:
    if sessions is None:  # one session: its statistic is the side's
        return np.array([whole])
    return session_stats(values, sessions, statistic)
