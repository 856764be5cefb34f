"""Is B faster or slower than A? Significance of a latency change, computed in one place.

Two samples of per-iteration times are compared with

- a Mann-Whitney U rank test (two-sided): does one side tend to take longer? Rank-based, so a
  few preempted iterations (a 12 ms stall in a 3 ms op) cannot decide the answer alone;
- a percentile bootstrap confidence interval of the relative change of the chosen statistic
  (mean by default), resampling each side independently with a seeded generator, so the same
  inputs always give the same interval. It resamples blocks of consecutive iterations (a
  circular block bootstrap): iterations of one run are not independent -- the machine drifts
  (frequency, cache, a neighbour's load) -- and resampling single iterations would hide that
  drift and make the interval too narrow;
- when a side was recorded in several sessions (`etprof run --sessions`: the program loaded and
  run afresh each time), a Welch t interval over the per-session statistics: two runs of one
  program differ by more than their iterations suggest (where its memory lands, what the machine
  does that second), and only the spread between sessions measures that. The interval reported
  is the hull of the two, so neither source of noise is left out;
- a noise band: a change is only called significant when the test rejects *and* the whole
  interval lies outside +/- (noise_pct + contention_pct). Two runs of one program differ by
  more than their iterations suggest; noise_pct is the part of a change the user declares too
  small to trust, and contention_pct how much another process's use of the runner's core can
  have stretched the times (docs/diff.md).

Renderers never recompute any of this: they format a :class:`Comparison`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from etprof.errors import InputError

FASTER = "faster"
SLOWER = "slower"
NO_CHANGE = "no significant change"
# the words every output uses for a comparison's outcome, the CI gate's vocabulary
# (etprof.analyzers.stats.gate): faster, slower, no change, or inconclusive and why
NO_CHANGE_WORD = "no change"
INCONCLUSIVE = "inconclusive"
STATISTICS = ("mean", "median")
RESAMPLING = ("blocks", "iterations")
IDLE_SHARE_PCT = 99.0  # a runner with at least this share of its core had it to itself

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Method:
    """How a comparison is judged (the knobs of docs/diff.md)."""

    noise_pct: float = 1.0
    alpha: float = 0.05
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    statistic: str = "mean"  # the statistic whose relative change the interval is about
    resampling: str = "blocks"  # "blocks" of consecutive iterations, or single "iterations"
    # Added to the band: how much another process's use of the CPU can have inflated a side's
    # times (see contention_pct); 0 when the runs had their cores to themselves.
    contention_pct: float = 0.0

    @property
    def band_pct(self) -> float:
        return self.noise_pct + self.contention_pct


@dataclass(frozen=True)
class Comparison:
    """Everything said about A -> B; `delta_ms` and `change_pct` use `method.statistic`."""

    n_a: int
    n_b: int
    mean_a_ms: float
    mean_b_ms: float
    median_a_ms: float
    median_b_ms: float
    delta_ms: float  # B - A of the chosen statistic
    change_pct: float  # 100 * (B / A - 1) of the chosen statistic
    ci_low_pct: float
    ci_high_pct: float
    p_value: float
    significant: bool
    verdict: str  # FASTER | SLOWER | NO_CHANGE
    reason: str  # why a change is not significant ("" when it is)
    method: Method
    sessions_a: int = 1
    sessions_b: int = 1
    # the between-session interval (NaN when both sides are one session); the reported
    # ci_low/high_pct is its hull with the bootstrap interval
    session_ci_low_pct: float = math.nan
    session_ci_high_pct: float = math.nan

    @property
    def by_session(self) -> bool:
        return max(self.sessions_a, self.sessions_b) > 1

    @property
    def mean_delta_ms(self) -> float:
        return self.mean_b_ms - self.mean_a_ms

    @property
    def median_delta_ms(self) -> float:
        return self.median_b_ms - self.median_a_ms

    def outcome(self) -> tuple[str, str]:
        """(faster | slower | no change | inconclusive, why), in the gate's words: no change
        only when the interval lies within the noise band (a change beyond it is ruled out)
        and, on a busy machine (band widened for CPU contention), includes 0; anything else
        without a significant change is inconclusive."""
        if self.verdict in (FASTER, SLOWER):
            return self.verdict, ""
        band = self.method.band_pct
        finite = all(math.isfinite(v) for v in (self.change_pct, self.ci_low_pct, self.ci_high_pct))
        if not finite:
            return INCONCLUSIVE, "no relative change exists (a baseline time of zero)"
        conf = f"{100 * self.method.confidence:g}%"
        if self.method.contention_pct and (self.ci_low_pct > 0 or self.ci_high_pct < 0):
            return INCONCLUSIVE, (
                f"busy machine: the interval excludes 0 but the +/-{band:.3g}% noise band, "
                f"{self.method.contention_pct:.1f}% of it for CPU contention, covers it"
            )
        if -band <= self.ci_low_pct and self.ci_high_pct <= band:
            return NO_CHANGE_WORD, f"the {conf} interval lies within the +/-{band:.3g}% noise band"
        return INCONCLUSIVE, (
            f"{self.reason}; the {conf} interval reaches beyond the +/-{band:.3g}% noise band, "
            "so a change beyond it is not ruled out"
        )

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["method"] = asdict(self.method)
        doc["outcome"], doc["outcome_reason"] = self.outcome()
        return {k: _finite(v) for k, v in doc.items()}


def compare(
    a_ms: npt.ArrayLike,
    b_ms: npt.ArrayLike,
    method: Method | None = None,
    *,
    sessions_a: npt.ArrayLike | None = None,
    sessions_b: npt.ArrayLike | None = None,
) -> Comparison:
    """Compare two samples of per-iteration times (ms): A is the baseline.

    `sessions_a`/`sessions_b` give each time's session (any labels; None: one session).
    """
    method = method or Method()
    check_method(method)
    a = np.asarray(a_ms, dtype=np.float64)
    b = np.asarray(b_ms, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples need at least one value")
    base, new = _stat(a, method.statistic), _stat(b, method.statistic)
    change = _relative(new, base)
    low, high = bootstrap_interval(a, b, method)
    stats_a = session_stats(a, sessions_a, method.statistic)
    stats_b = session_stats(b, sessions_b, method.statistic)
    s_low, s_high = session_interval(stats_a, stats_b, base, new, method.confidence)
    if math.isfinite(s_low) and math.isfinite(s_high):
        low, high = min(low, s_low), max(high, s_high)
    p = rank_test(a, b)
    verdict, reason = _verdict(change, low, high, p, method)
    return Comparison(
        n_a=int(a.size),
        n_b=int(b.size),
        mean_a_ms=float(a.mean()),
        mean_b_ms=float(b.mean()),
        median_a_ms=float(np.median(a)),
        median_b_ms=float(np.median(b)),
        delta_ms=new - base,
        change_pct=change,
        ci_low_pct=low,
        ci_high_pct=high,
        p_value=p,
        significant=verdict != NO_CHANGE,
        verdict=verdict,
        reason=reason,
        method=method,
        sessions_a=int(stats_a.size),
        sessions_b=int(stats_b.size),
        session_ci_low_pct=s_low,
        session_ci_high_pct=s_high,
    )


def session_stats(values: FloatArray, sessions: npt.ArrayLike | None, statistic: str) -> FloatArray:
    """The statistic of each session's values, in order of first appearance."""
    if sessions is None:
        return np.array([_stat(values, statistic)])
    labels = np.asarray(sessions)
    if labels.shape != values.shape:
        raise ValueError("one session label per value is needed")
    _, first, codes = np.unique(labels, return_index=True, return_inverse=True)
    out = np.array([_stat(values[codes == k], statistic) for k in np.argsort(first)])
    return np.asarray(out, dtype=np.float64)


def session_interval(
    stats_a: FloatArray, stats_b: FloatArray, base: float, new: float, confidence: float
) -> tuple[float, float]:
    """Welch t interval of 100 * (B / A - 1) from per-session statistics, on a log scale.

    Each side's estimate varies by (its sessions' relative variance) / (its session count). A
    side of one session borrows the other side's relative variance (same machine, same kind of
    run). NaN when neither side has two sessions, or a time is not positive.
    """
    ka, kb = stats_a.size, stats_b.size
    if max(ka, kb) < 2 or base <= 0 or new <= 0:
        return math.nan, math.nan
    rel_a = float(np.var(stats_a / base, ddof=1)) if ka > 1 else math.nan
    rel_b = float(np.var(stats_b / new, ddof=1)) if kb > 1 else math.nan
    rel_a = rel_b if ka < 2 else rel_a
    rel_b = rel_a if kb < 2 else rel_b
    var_a, var_b = rel_a / ka, rel_b / kb
    center = math.log(new / base)
    total = var_a + var_b
    if total <= 0:
        return _relative(new, base), _relative(new, base)
    from scipy.stats import t as student

    if min(ka, kb) < 2:  # one variance estimate serves both sides: its degrees of freedom
        dof = float(max(ka, kb) - 1)
    else:  # Welch-Satterthwaite
        dof = total**2 / (var_a**2 / (ka - 1) + var_b**2 / (kb - 1))
    half = float(student.ppf(0.5 + confidence / 2.0, dof)) * math.sqrt(total)
    return 100.0 * math.expm1(center - half), 100.0 * math.expm1(center + half)


def check_method(method: Method) -> None:
    """Refuse settings under which the words "significant" would mean nothing."""
    if method.statistic not in STATISTICS:
        raise InputError(
            f"unknown statistic '{method.statistic}'", f"use one of: {', '.join(STATISTICS)}"
        )
    if not (math.isfinite(method.noise_pct) and method.noise_pct >= 0):
        raise InputError(
            f"--noise {method.noise_pct} is not a percentage >= 0",
            "use e.g. --noise 1.0 (a +/-1% band)",
        )
    if not 0 < method.alpha < 1:
        raise InputError(
            f"significance level {method.alpha} is not between 0 and 1", "use e.g. 0.05"
        )
    if not 0 < method.confidence < 1:
        raise InputError(f"confidence {method.confidence} is not between 0 and 1", "use e.g. 0.95")
    if method.resampling not in RESAMPLING:
        raise InputError(
            f"unknown resampling '{method.resampling}'", f"use one of: {', '.join(RESAMPLING)}"
        )
    if method.resamples < 100:
        raise InputError(
            f"{method.resamples} bootstrap resamples are too few for an interval",
            "use 1000 or more",
        )


def rank_test(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Two-sided Mann-Whitney U p-value; 1.0 when the samples cannot be told apart at all.

    The normal approximation with tie and continuity corrections (scipy's
    ``mannwhitneyu(method="asymptotic")``; tests/unit/analyzers/test_attribution.py checks it against scipy).
    This is etprof's one rank test: the diff and the iterations analyzer's step test use it.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0 or np.isnan(x).any() or np.isnan(y).any():
        return 1.0
    n = n1 + n2
    _, inverse, ties = np.unique(np.concatenate([x, y]), return_inverse=True, return_counts=True)
    average_rank = np.cumsum(ties) - (ties - 1) / 2.0  # tied values share their mean rank
    u = float(average_rank[inverse[:n1]].sum()) - n1 * (n1 + 1) / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - float((ties**3 - ties).sum()) / (n * (n - 1)))
    if var <= 0:  # every value tied: nothing to rank
        return 1.0
    z = (abs(u - n1 * n2 / 2.0) - 0.5) / math.sqrt(var)
    return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2.0)))


def rank_tests(a: FloatArray, b: FloatArray) -> FloatArray:
    """Column-wise :func:`rank_test` of two (iterations x columns) matrices."""
    return np.array([rank_test(a[:, j], b[:, j]) for j in range(a.shape[1])], dtype=np.float64)


def bootstrap_interval(a: FloatArray, b: FloatArray, method: Method) -> tuple[float, float]:
    """Percentile bootstrap interval of 100 * (stat(B) / stat(A) - 1), seeded."""
    rng = np.random.default_rng(method.seed)
    ra = _row_stat(a[_resample(rng, a.size, method)], method.statistic)
    rb = _row_stat(b[_resample(rng, b.size, method)], method.statistic)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 100.0 * (rb / ra - 1.0)
    rel = rel[np.isfinite(rel)]
    if rel.size == 0:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - method.confidence) / 2.0
    low, high = np.percentile(rel, [tail, 100.0 - tail])
    return float(low), float(high)


def paired_interval(
    a: npt.ArrayLike, b: npt.ArrayLike, method: Method | None = None
) -> tuple[float, float, float]:
    """(change, low, high) of 100 * (mean(B) / mean(A) - 1) for pairs measured side by side
    (``a[i]`` and ``b[i]`` one right after the other, as the untraced and traced calls of one
    iteration): the bootstrap resamples blocks of pairs, so drift a pair shares cancels."""
    method = method or Method()
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.size == 0:
        raise ValueError("paired samples need the same, non-zero length")
    change = _relative(float(y.mean()), float(x.mean()))
    rows = _resample(np.random.default_rng(method.seed), x.size, method)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 100.0 * (y[rows].mean(axis=1) / x[rows].mean(axis=1) - 1.0)
    rel = rel[np.isfinite(rel)]
    if rel.size == 0:
        return change, math.nan, math.nan
    tail = 100.0 * (1.0 - method.confidence) / 2.0
    low, high = np.percentile(rel, [tail, 100.0 - tail])
    return change, float(low), float(high)


def contention_pct(*cpu_share_pct: float | None) -> float:
    """How much CPU contention can have inflated the slower-served side, in percent.

    A runner thread that had its core ``s`` percent of the measured wall time can have had its
    iteration times stretched by up to ``100 / s - 1``: 80% -> +25%. Shares of 99% and more
    count as 100: an idle machine's interrupts and timer ticks take that much from every run.
    Unknown shares count as 100.
    """
    known = [s for s in cpu_share_pct if s is not None and s > 0]
    if not known or min(known) >= IDLE_SHARE_PCT:
        return 0.0
    return 100.0 * (100.0 / min(known) - 1.0)


def block_length(n: int) -> int:
    """Iterations resampled together: about sqrt(n) (7 of 50), long enough to keep a drift over
    several iterations inside one block, short enough to leave several blocks to draw."""
    return max(1, round(math.sqrt(n)))


def _resample(rng: np.random.Generator, n: int, method: Method) -> npt.NDArray[np.int64]:
    """Indices of `method.resamples` resamples (rows) of n iterations."""
    if method.resampling == "iterations":
        return rng.integers(0, n, size=(method.resamples, n))
    length = block_length(n)
    blocks = -(-n // length)
    starts = rng.integers(0, n, size=(method.resamples, blocks, 1))
    rows = (starts + np.arange(length)) % n  # circular: a block may wrap to the first iterations
    return rows.reshape(method.resamples, blocks * length)[:, :n]


def _verdict(change: float, low: float, high: float, p: float, method: Method) -> tuple[str, str]:
    if not (math.isfinite(change) and math.isfinite(low) and math.isfinite(high)):
        return NO_CHANGE, "the baseline time is zero, so no relative change exists"
    if p >= method.alpha:
        return NO_CHANGE, f"the rank test does not reject (p={p:.2g} >= {method.alpha:g})"
    band = method.band_pct
    if low > band:
        return SLOWER, ""
    if high < -band:
        return FASTER, ""
    widened = (
        f" (+/-{method.noise_pct:g}% plus {method.contention_pct:.1f}% for CPU contention)"
        if method.contention_pct
        else ""
    )
    return NO_CHANGE, (
        f"the {100 * method.confidence:g}% interval reaches into the "
        f"+/-{band:.3g}% noise band{widened}"
    )


def _relative(new: float, base: float) -> float:
    return 100.0 * (new / base - 1.0) if base else math.nan


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _stat(values: FloatArray, statistic: str) -> float:
    return float(np.median(values)) if statistic == "median" else float(values.mean())


def _row_stat(matrix: FloatArray, statistic: str) -> FloatArray:
    """The statistic of each row (one bootstrap resample per row)."""
    out = np.median(matrix, axis=1) if statistic == "median" else matrix.mean(axis=1)
    return np.asarray(out, dtype=np.float64)
