"""Iterations the machine preempted, told apart from the program by the session's own spread.

A run preempted by another process is the program plus a stretch of time off the CPU (a time
slice: milliseconds), so it lands far above the rest of its session. The rule is Tukey's
far-out fence on the session's own values, with a floor so that a tight session does not lose
its ordinary spread:

    outlier = value > max(Q3 + 3 x (Q3 - Q1), 1.5 x median)

per session (sessions differ by where their memory landed; one session's slow median is not
preemption). Under `MIN_SAMPLES` values nothing is set aside: the quartiles of a few values
say nothing. The thread's CPU time over the measured iterations (``run.cpu_share_pct``) is the
evidence shown beside the count: a share well below 100% says another process had the core.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MIN_SAMPLES = 5
FENCE_IQR = 3.0  # Tukey's "far out"
FLOOR_MEDIAN = 1.5  # never closer than half the median above it


def far_out(values: npt.ArrayLike, groups: npt.ArrayLike | None = None) -> npt.NDArray[np.bool_]:
    """Whether each value is far out above its group's (session's) own distribution."""
    v = np.asarray(values, dtype=np.float64)
    g = np.zeros(v.size, dtype=np.int64) if groups is None else np.asarray(groups)
    out = np.zeros(v.size, dtype=bool)
    for k in np.unique(g):
        mine = g == k
        x = v[mine]
        if x.size < MIN_SAMPLES:
            continue
        q1, med, q3 = np.percentile(x, (25, 50, 75))
        fence = max(q3 + FENCE_IQR * (q3 - q1), FLOOR_MEDIAN * med)
        out[mine] = x > fence
    return out


def fence_text(values: npt.ArrayLike, mask: npt.NDArray[np.bool_]) -> str:
    """ "2 of 150 (8.16 ms and 3.75 ms; the rest's median 0.52 ms)": what was set aside."""
    v = np.asarray(values, dtype=np.float64)
    n = int(mask.sum())
    if n == 0:
        return f"none of {v.size}"
    shown = sorted(v[mask], reverse=True)[:3]
    more = ", ..." if n > 3 else ""
    rest = float(np.median(v[~mask])) if (~mask).any() else float("nan")
    return (
        f"{n} of {v.size} ({', '.join(_ms(x) for x in shown)}{more}; the rest's median {_ms(rest)})"
    )


def set_aside_notes(run_model_ms: npt.ArrayLike, mask: npt.NDArray[np.bool_]) -> list[str]:
    """The note of a table whose shares left the `mask` iterations out; [] when none."""
    if not mask.any():
        return []
    return [
        (
            f"set aside from the shares as preempted: {fence_text(run_model_ms, mask)} -- "
            "far above their session's own distribution (docs/attribution.md); means stay "
            "over every measured iteration; --keep-outliers counts them in the shares too"
        )
    ]


def aside_warnings(a: int, b: int) -> list[str]:
    """diff's warning when preempted iterations were left out of the contributors."""
    if not (a or b):
        return []
    return [
        f"contributors leave out the iterations preempted ({a} of A's, {b} of B's: far above "
        "their session's own distribution), so their deltas sum to the mean delta of the rest; "
        "--keep-outliers counts them"
    ]


def _ms(x: float) -> str:
    from etprof.units import ms_text

    return ms_text(x)
