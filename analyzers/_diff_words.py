"""How a diff words its figures: milliseconds and percentages, the interval's method, the
sessions, and the notes on noisy, single-session or contended sides."""

from __future__ import annotations

import math
from typing import Any

from etprof.analyzers.stats.significance import (
    IDLE_SHARE_PCT,
    NO_CHANGE,
    Comparison,
    Method,
    block_length,
)

# What each breakdown bucket is called when it explains a change ({backend}: the delegate's
# label, "XNNPACK"; the glue and overhead classes name it only when the sides hold several).
CONTENTION_NOTE_PCT = 0.1  # any contention that widened the band is worth saying
NOISY_CV_PCT = 5.0  # run-model CV above which a side is flagged as measured on a busy machine


def noisy(*sides: tuple[str, Any]) -> list[str]:
    """A busy machine shifts whole runs, which one pair of runs cannot tell from a change."""
    busy = []
    for label, samples in sides:
        mean = float(samples.mean())
        cv = 100.0 * float(samples.std(ddof=1)) / mean if len(samples) > 1 and mean else 0.0
        if cv > NOISY_CV_PCT:
            busy.append(f"{label} (CV {cv:.0f}%)")
    if not busy:
        return []
    return [
        (
            f"run-model times vary from iteration to iteration in {' and '.join(busy)}: the "
            "machine was busy, and runs on a busy machine differ from each other more than "
            "their iterations do; re-run both on a quiet machine before trusting the verdict"
        )
    ]


def resampled(m: Method, n: int) -> str:
    return (
        f"blocks of {block_length(n)} consecutive iterations"
        if m.resampling == "blocks"
        else "single iterations"
    )


def sessions(c: Comparison) -> str:
    return f" in {c.sessions_a} vs {c.sessions_b} sessions" if c.by_session else ""


def interval(c: Comparison) -> str:
    m = c.method
    boot = (
        f"percentile bootstrap over {resampled(m, c.n_a)} ({m.resamples} resamples, seed {m.seed})"
    )
    if not c.by_session:
        return boot
    return (
        f"the hull of a {boot} and a Welch t interval over the session {m.statistic}s "
        f"({pct(c.session_ci_low_pct)} .. {pct(c.session_ci_high_pct)})"
    )


def one_session(c: Comparison) -> list[str]:
    """Without sessions the interval knows nothing of run-to-run variation."""
    if c.by_session or c.verdict == NO_CHANGE:
        return []
    return [
        (
            "both traces are one session each, so the interval covers iteration-to-iteration "
            "noise only; two runs of one program can differ by more than that (docs/diff.md). "
            "Record with `etprof run --sessions 5` (auto does so for fast programs) to account "
            "for it"
        )
    ]


def contention_notes(
    label_a: str, label_b: str, shares: list[float | None], contended: float, method: Method
) -> list[str]:
    """Another process took the runner's core for part of the measured time."""
    if contended < CONTENTION_NOTE_PCT:
        return []
    who = [
        f"{label} had its CPU {share:.0f}% of the measured time"
        for label, share in zip((label_a, label_b), shares, strict=False)
        if share is not None and share < IDLE_SHARE_PCT
    ]
    return [
        (
            f"another process shared the runner's core: {' and '.join(who)}, which can "
            f"stretch its times by {contended:.0f}%; the noise band is widened to "
            f"+/-{method.band_pct:.3g}% (re-run on a quiet machine for a tighter answer)"
        )
    ]


def ms(value: float) -> str:
    v = abs(value)
    digits = 0 if v >= 100 else 1 if v >= 10 else 2 if v >= 1 else 3
    return f"{value:.{digits}f} ms"


def signed_ms(value: float) -> str:
    return ("+" if value >= 0 else "-") + ms(abs(value))


def pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.1f}%"
