"""Every iteration, warm-up included (flagged as dropped), and whether the measured ones are stable.

Warm-up and drift are only visible iteration by iteration. Over the measured iterations:

- noisy: coefficient of variation (sample std / mean) above NOISY_CV_PCT;
- trending: Spearman's rank correlation of run-model time with iteration number is significant
  (two-sided p < TREND_P; a steady drift), or the medians of the first and second half differ by
  more than HALF_CHANGE_PCT *and* a Mann-Whitney U test says the halves differ (p < TREND_P; a
  step). The test keeps a stationary but bimodal run, whose half medians jump between the modes
  by chance, from being called a trend. Both p-values use the normal approximation (no scipy at
  run time; tests/unit/analyzers/test_attribution.py checks them against scipy); the halves' test is
  :func:`etprof.analyzers.stats.significance.rank_test`, the one the diff uses. Not judged below MIN_TREND_N
  iterations;
- outlier: an iteration above median + max(OUTLIER_MADS x MAD, OUTLIER_MIN_PCT % of the median)
  (MAD scaled to a normal sigma).

Thresholds and their reasons are in docs/attribution.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers.buckets import bucket_frame
from etprof.analyzers.stats.significance import rank_test
from etprof.errors import InputError
from etprof.result import records
from etprof.trace.model import Trace

NOISY_CV_PCT = 10.0
TREND_P = 0.01
HALF_CHANGE_PCT = 5.0
MIN_TREND_N = 10
OUTLIER_MADS = 5.0
OUTLIER_MIN_PCT = 5.0

COLUMNS = (
    "iteration",
    "dropped",
    "outlier",
    "run_model_ms",
    "delegate_ops_ms",
    "delegate_unres_ms",
    "delegate_ovh_ms",
    "portable_ms",
    "dispatch_ms",
    "runtime_ms",
)


@dataclass(frozen=True)
class IterationOptions:
    warmup: int | None = None


@dataclass(frozen=True)
class Stability:
    measured: int
    mean_ms: float
    median_ms: float
    cv_pct: float
    spearman_rho: float | None  # None when fewer than MIN_TREND_N iterations (or constant times)
    spearman_p: float | None
    first_half_median_ms: float
    second_half_median_ms: float
    half_change_pct: float
    halves_p: float | None  # Mann-Whitney U, first half vs second half
    outliers: int
    noisy: bool
    trending: bool

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["thresholds"] = {
            "noisy_cv_pct": NOISY_CV_PCT,
            "trend_p": TREND_P,
            "half_change_pct": HALF_CHANGE_PCT,
            "min_trend_n": MIN_TREND_N,
            "outlier_mads": OUTLIER_MADS,
            "outlier_min_pct": OUTLIER_MIN_PCT,
        }
        return out


@dataclass(frozen=True)
class IterationTable:
    model: str
    warmup: int
    frame: pd.DataFrame  # COLUMNS, one row per recorded iteration
    stability: Stability

    schema = "etprof.iterations"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"iterations": self.frame}

    def notes(self) -> list[str]:
        return stability_notes(self.stability, self.frame, self.warmup)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "warmup": self.warmup,
            "stability": self.stability.to_dict(),
            "iterations": records(self.frame),
        }


def spearman(values: np.ndarray) -> tuple[float, float] | None:
    """Spearman's rho of `values` against their order, and its two-sided p (normal approx.)."""
    n = values.size
    if n < MIN_TREND_N:
        return None
    ranks = pd.Series(values).rank().to_numpy()
    order = np.arange(1, n + 1, dtype=float)
    if np.all(ranks == ranks[0]):
        return None
    rho = float(np.corrcoef(order, ranks)[0, 1])
    z = abs(rho) * math.sqrt(n - 1)
    return rho, math.erfc(z / math.sqrt(2))


def stability(samples_ms: np.ndarray) -> Stability:
    s = np.asarray(samples_ms, dtype=float)
    n = s.size
    mean = float(s.mean())
    std = float(s.std(ddof=1)) if n > 1 else 0.0
    median = float(np.median(s))
    half = n // 2
    first = float(np.median(s[:half])) if half else median
    second = float(np.median(s[n - half :])) if half else median
    change = 100.0 * (second - first) / first if first else 0.0
    trend = spearman(s)
    halves_p = rank_test(s[:half], s[n - half :]) if n >= MIN_TREND_N else None
    step = halves_p is not None and halves_p < TREND_P and abs(change) > HALF_CHANGE_PCT
    cv = 100.0 * std / mean if mean else 0.0
    return Stability(
        measured=n,
        mean_ms=mean,
        median_ms=median,
        cv_pct=cv,
        spearman_rho=None if trend is None else trend[0],
        spearman_p=None if trend is None else trend[1],
        first_half_median_ms=first,
        second_half_median_ms=second,
        half_change_pct=change,
        halves_p=halves_p,
        outliers=int(outlier_mask(s).sum()),
        noisy=cv > NOISY_CV_PCT,
        # with fewer iterations, halves of a handful of samples say nothing: no verdict
        trending=n >= MIN_TREND_N and ((trend is not None and trend[1] < TREND_P) or step),
    )


def in_session_order(trace: Trace, frame: pd.DataFrame) -> np.ndarray:
    """The measured run-model times of an iteration frame, ordered by position within their
    session with the sessions interleaved: a warm-up trend the sessions share is a trend in this
    order, a level difference between sessions is not."""
    kept = frame.loc[~frame["dropped"]]
    values = np.asarray(kept["run_model_ms"].to_numpy(), dtype=float)
    if trace.sessions <= 1:
        return values
    it = kept["iteration"].to_numpy()
    order = np.lexsort((trace.session_of(it), trace.position_in_session(it)))
    ordered: np.ndarray = values[order]  # typed: numpy < 2.4's stubs say Any
    return ordered


def outlier_mask(s: np.ndarray) -> np.ndarray:
    if s.size < 3:
        return np.zeros(s.size, dtype=bool)
    median = np.median(s)
    mad = 1.4826 * float(np.median(np.abs(s - median)))
    # On a quiet machine the MAD can be a fraction of a percent: a floor keeps a 3% wobble from
    # being called an outlier.
    result: np.ndarray = s > median + max(OUTLIER_MADS * mad, OUTLIER_MIN_PCT / 100 * median)
    return result


def stability_notes(st: Stability, frame: pd.DataFrame, warmup: int) -> list[str]:
    notes = []
    if st.noisy:
        notes.append(
            f"warning: the measured iterations are noisy (CV {st.cv_pct:.1f}% > {NOISY_CV_PCT:g}%"
            + (f"; {st.outliers} outlier iteration(s)" if st.outliers else "")
            + "): the machine was busy; prefer the median, or record again on a quiet machine"
        )
    if st.trending:
        why = []
        if st.spearman_p is not None and st.spearman_p < TREND_P:
            why.append(f"Spearman rho {st.spearman_rho:+.2f} vs iteration, p={st.spearman_p:.1g}")
        if abs(st.half_change_pct) > HALF_CHANGE_PCT and (st.halves_p or 1.0) < TREND_P:
            why.append(
                f"second-half median {st.half_change_pct:+.1f}% vs first half, "
                f"Mann-Whitney p={st.halves_p:.1g}"
            )
        notes.append(
            f"warning: the measured iterations are still trending ({'; '.join(why)}): drop more "
            "warm-up (--warmup) or record more iterations"
        )
    dropped = frame[frame["dropped"]]
    if len(dropped) and st.median_ms:
        first = float(dropped["run_model_ms"].iloc[0])
        notes.append(
            f"warm-up: {warmup} iteration(s) dropped; the first took {first:.3f} ms, "
            f"{first / st.median_ms:.1f}x the measured median"
        )
    return notes


def iteration_frame(trace: Trace, warmup: int) -> pd.DataFrame:
    """One row per recorded iteration (warm-up included), bucket times in ms."""
    ns = bucket_frame(trace)
    # sum in integer ns, then convert: the ms values are the exact ns / 1e6
    # a call without operator events (an opaque block) is the backend's work, not overhead
    b = (
        ns.assign(delegate_ops=ns["delegate_compute"] + ns["delegate_glue"] + ns["delegate_opaque"])
        / 1e6
    )
    run_model = b["run_model"].to_numpy()
    dropped = trace.is_warmup(b.index.to_numpy(), warmup)
    outlier = np.zeros(len(b), dtype=bool)
    outlier[~dropped] = outlier_mask(run_model[~dropped])
    frame = pd.DataFrame(
        {
            "iteration": b.index.to_numpy().astype("int64"),
            "dropped": dropped,
            "outlier": outlier,
            "run_model_ms": run_model,
            "delegate_ops_ms": b["delegate_ops"].to_numpy(),
            "delegate_unres_ms": b["delegate_unresolved"].to_numpy(),
            "delegate_ovh_ms": b["delegate_overhead"].to_numpy(),
            "portable_ms": b["portable_kernels"].to_numpy(),
            "dispatch_ms": b["dispatch_overhead"].to_numpy(),
            "runtime_ms": b["runtime_overhead"].to_numpy(),
        }
    )
    return frame[list(COLUMNS)]


@analyzer(
    "iterations",
    "every iteration (warm-up flagged), with noise and drift warnings",
    IterationOptions,
)
def iterations(trace: Trace, options: IterationOptions) -> IterationTable:
    warmup = trace.warmup if options.warmup is None else options.warmup
    trace.measured(warmup)  # the same refusals as every analyzer: no runs, too few iterations
    frame = iteration_frame(trace, warmup)
    measured = frame.loc[~frame["dropped"], "run_model_ms"].to_numpy()
    if measured.size == 0:
        raise InputError(
            f"{trace.source or 'the trace'} has no Method::execute event in its measured "
            "iterations",
            "record the trace with ETDump profiling on (`etprof run`)",
        )
    return IterationTable(
        model=trace.model,
        warmup=warmup,
        frame=frame,
        stability=stability(in_session_order(trace, frame)),
    )
