"""Run-model latency statistics over the measured iterations (the seed's headline number)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from etprof.analyzers import analyzer
from etprof.result import records
from etprof.trace.model import RUN_MODEL, Trace


@dataclass(frozen=True)
class RunModelOptions:
    warmup: int | None = None  # None: the trace's own setting (10 when unknown)


@dataclass(frozen=True)
class RunModelStats:
    model: str
    iterations: int  # recorded in the trace
    warmup: int  # dropped
    samples_ms: tuple[float, ...] = field(repr=False)  # one per measured iteration

    schema = "etprof.runmodel"

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.samples_ms))

    @property
    def floored_ms(self) -> int:
        """The seed's figure: the mean, floored to whole milliseconds."""
        return math.floor(self.mean_ms)

    def summary(self) -> dict[str, float]:
        s = np.asarray(self.samples_ms)
        mean = float(s.mean())
        std = float(s.std(ddof=1)) if s.size > 1 else 0.0
        return {
            "mean_ms": mean,
            "floored_ms": float(self.floored_ms),
            "median_ms": float(np.median(s)),
            "p10_ms": float(np.percentile(s, 10)),
            "p90_ms": float(np.percentile(s, 90)),
            "min_ms": float(s.min()),
            "max_ms": float(s.max()),
            "std_ms": std,
            "cv_pct": 100.0 * std / mean if mean else 0.0,
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        row = {
            "model": self.model,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "measured": self.n,
            **self.summary(),
        }
        return {"run model": pd.DataFrame([row])}

    def notes(self) -> list[str]:
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "measured": self.n,
            **self.summary(),
            "samples_ms": list(self.samples_ms),
        }


def run_model_samples(trace: Trace) -> pd.Series:
    """Method::execute duration (ns) per iteration of `trace`, indexed by iteration."""
    rm = trace.of_kind(RUN_MODEL)
    return rm.groupby("iteration")["duration_ns"].sum()


@analyzer(
    "runmodel", "run-model (Method::execute) latency over the measured iterations", RunModelOptions
)
def run_model_stats(trace: Trace, options: RunModelOptions) -> RunModelStats:
    measured = trace.measured(options.warmup)
    samples = run_model_samples(measured) / 1e6
    return RunModelStats(
        model=trace.model,
        iterations=trace.iterations,
        warmup=trace.warmup if options.warmup is None else options.warmup,
        samples_ms=tuple(float(x) for x in samples.to_numpy()),
    )


__all__ = ["RunModelOptions", "RunModelStats", "records", "run_model_samples", "run_model_stats"]
