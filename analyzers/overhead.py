"""The profiler's own cost: the same program timed traced and untraced in the same sessions.

`etprof run` loads the program twice per session, once with ETDump and once without, and times
each measured iteration on both, taking turns which goes first (``run.untraced``). Both are
wall times of the same Python call, so their difference is what ETDump's recording adds. The
two calls of an iteration run back to back, so the interval (etprof.analyzers.stats.significance's paired
bootstrap) resamples pairs: the machine's drift, which both calls of a pair share, cancels. The headline stays the traced run-model time -- it is what the
attribution explains -- and the untraced estimate is it minus the measured difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers.runmodel import RunModelOptions, run_model_stats
from etprof.analyzers.stats.significance import Method, paired_interval
from etprof.trace.model import Trace
from etprof.units import ms_text

NOT_MEASURED = (
    "the profiler's overhead is measured by `etprof run` (untraced iterations beside "
    "the traced ones; not with --no-untraced); this trace has none"
)


@dataclass(frozen=True)
class OverheadOptions:
    warmup: int | None = None


@dataclass(frozen=True)
class PairedTimes:
    """Mean wall ms per call, untraced and traced, and the relative change with its interval."""

    n: int
    untraced_ms: float
    traced_ms: float
    change_pct: float
    ci_low_pct: float
    ci_high_pct: float
    confidence: float


@dataclass(frozen=True)
class Overhead:
    model: str
    run_model_ms: float  # traced, from the trace (the headline)
    paired: PairedTimes | None  # None: not measured
    sessions: int

    schema = "etprof.overhead"

    @property
    def measured(self) -> bool:
        return self.paired is not None

    def untraced_run_model_ms(self) -> float | None:
        """The traced run-model mean less what tracing added to each call."""
        p = self.paired
        return None if p is None else self.run_model_ms - (p.traced_ms - p.untraced_ms)

    def figures(self) -> dict[str, float | None]:
        p = self.paired
        return {
            "run_model_traced_ms": self.run_model_ms,
            "run_model_untraced_ms": self.untraced_run_model_ms(),
            "call_traced_ms": None if p is None else p.traced_ms,
            "call_untraced_ms": None if p is None else p.untraced_ms,
            "overhead_pct": None if p is None else p.change_pct,
            "overhead_ci_low_pct": None if p is None else p.ci_low_pct,
            "overhead_ci_high_pct": None if p is None else p.ci_high_pct,
        }

    def line(self) -> str:
        """ "untraced 8.61 ms; profiling adds +4.5% (95% CI +3.9% .. +5.1%)", or why not known."""
        p = self.paired
        if p is None:
            return "not measured"
        return (
            f"untraced {ms_text(self.untraced_run_model_ms())}; profiling adds "
            f"{p.change_pct:+.1f}% ({round(100 * p.confidence)}% CI {p.ci_low_pct:+.1f}% .. "
            f"{p.ci_high_pct:+.1f}%)"
        )

    def headline(self) -> str:
        return f"{self.model}: run model {ms_text(self.run_model_ms)} traced; {self.line()}"

    def tables(self) -> dict[str, pd.DataFrame]:
        f = self.figures()
        return {
            "profiler overhead": pd.DataFrame(
                [
                    {
                        "traced_run_model_ms": f["run_model_traced_ms"],
                        "untraced_run_model_ms": f["run_model_untraced_ms"],
                        "traced_call_ms": f["call_traced_ms"],
                        "untraced_call_ms": f["call_untraced_ms"],
                        "overhead_pct": f["overhead_pct"],
                        "ci_low_pct": f["overhead_ci_low_pct"],
                        "ci_high_pct": f["overhead_ci_high_pct"],
                        "sessions": self.sessions,
                    }
                ]
            )
        }

    def notes(self) -> list[str]:
        return [] if self.measured else [NOT_MEASURED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            **self.figures(),
            "sessions": self.sessions,
            "pairs": None if self.paired is None else self.paired.n,
        }


@analyzer("overhead", "the profiler's own cost: run-model time traced vs untraced", OverheadOptions)
def overhead(trace: Trace, options: OverheadOptions) -> Overhead:
    stats = run_model_stats(trace, RunModelOptions(options.warmup))
    untraced = trace.meta.run.untraced
    pairs = [(u.untraced_ms, u.traced_ms) for u in untraced]
    paired = None
    if pairs and all(a and len(a) == len(b) for a, b in pairs):
        a = np.concatenate([np.asarray(a) for a, _ in pairs])
        b = np.concatenate([np.asarray(b) for _, b in pairs])
        method = Method()
        change, low, high = paired_interval(a, b, method)
        paired = PairedTimes(
            n=int(a.size),
            untraced_ms=float(a.mean()),
            traced_ms=float(b.mean()),
            change_pct=change,
            ci_low_pct=low,
            ci_high_pct=high,
            confidence=method.confidence,
        )
    return Overhead(
        model=trace.model, run_model_ms=stats.mean_ms, paired=paired, sessions=len(untraced)
    )
