"""The summary `etprof run` prints: run-model statistics, delegated vs portable split, top ops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._cost_rows import Costs, costs
from etprof.analyzers.buckets import BucketOptions, Buckets, buckets
from etprof.analyzers.operators import OperatorOptions, OperatorTable, operators
from etprof.analyzers.runmodel import RunModelOptions, RunModelStats, run_model_stats
from etprof.analyzers.shipped import Shipped, ShippedOptions, shipped
from etprof.errors import InputError
from etprof.result import records
from etprof.trace.model import Trace
from etprof.units import ms_text


@dataclass(frozen=True)
class SummaryOptions:
    warmup: int | None = None
    top: int = 10
    method: str | None = None  # None: each method of the trace in turn
    keep_outliers: bool = False  # preempted iterations count in the shares (docs/attribution.md)

    def __post_init__(self) -> None:  # refused up front, as breakdown refuses them
        if self.top < 1:
            raise InputError(f"--top {self.top} must be at least 1", "use e.g. --top 10")
        if self.warmup is not None and self.warmup < 0:
            raise InputError(f"--warmup {self.warmup} is negative", "use 0 or more")


@dataclass(frozen=True)
class Summary:
    stats: RunModelStats
    buckets: Buckets
    operators: OperatorTable
    settings: dict[str, Any]
    costs: Costs | None = None  # load, memory, profiler overhead
    shipped: Shipped | None = None  # ETDump's own cost taken out (analyzers/shipped.py)

    schema = "etprof.summary"

    def headline(self) -> str:
        """The shipped run model with its interval when the trace has untraced timings, the
        traced mean (what the attribution explains) beside it."""
        method = self.settings.get("method")
        # a method other than forward is named: `run --method encode` times encode, not forward
        of = f" {method}" if method and method != "forward" else ""
        s = self.shipped
        head = f"{self.stats.model}{of}: run model "
        if s is not None and s.status != "not measured":
            head += f"{s.line()}; "
        line = f"{head}{ms_text(self.stats.mean_ms)} traced mean"
        if self.costs is not None and self.costs.overhead.measured:
            line += f" ({self.costs.overhead.line()})"
        return line

    def split(self) -> pd.DataFrame:
        total = self.buckets.run_model_ms
        rows: list[dict[str, Any]] = []
        opaque = {b.id for b in self.buckets.opaque()}
        label = (
            " + ".join(
                f"{b.label}, no operator events" if b.id in opaque else b.label
                for b in self.buckets.backends.values()
            )
            or "delegate"
        )
        delegated = f"delegated ({label})"
        for side, ms in (
            (delegated, self.buckets.delegated_ms()),
            ("portable", self.buckets.portable_ms()),
        ):
            rows.append(
                {"side": side, "mean_ms": ms, "share_pct": 100.0 * ms / total if total else 0.0}
            )
        rest = total - sum(r["mean_ms"] for r in rows)
        rows.append(
            {
                "side": "runtime overhead",
                "mean_ms": rest,
                "share_pct": 100.0 * rest / total if total else 0.0,
            }
        )
        return pd.DataFrame(rows)

    def tables(self) -> dict[str, pd.DataFrame]:
        s = self.stats.summary()
        stats = pd.DataFrame(
            [
                {
                    "model": self.stats.model,
                    "measured": self.stats.n,
                    "dropped": self.stats.iterations - self.stats.n,
                    "mean_ms": s["mean_ms"],
                    "median_ms": s["median_ms"],
                    "p10_ms": s["p10_ms"],
                    "p90_ms": s["p90_ms"],
                    "min_ms": s["min_ms"],
                    "max_ms": s["max_ms"],
                    "cv_pct": s["cv_pct"],
                }
            ]
        )
        top = self.operators.frame.drop(columns=["glue"], errors="ignore")
        out = {"run model": stats, "split": self.split(), "top operators": top}
        if self.shipped is not None:
            out.update(self.shipped.tables(several=len(self.buckets.backends) > 1))
        if self.costs is not None:
            out["load, memory, overhead"] = pd.DataFrame(
                self.costs.rows(), columns=["figure", "value"]
            )
        return out

    def notes(self) -> list[str]:
        costs = self.costs.notes() if self.costs is not None else []
        shipped = self.shipped.notes() if self.shipped is not None else []
        opaque = self.buckets.opaque_notes()
        return (
            costs
            + opaque
            + self.buckets.resolution_notes()
            + self.buckets.outlier_notes()
            + shipped
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "run_model": self.stats.to_dict(),
            "split": records(self.split()),
            "buckets": records(self.buckets.table()),
            "resolution": records(self.buckets.resolution()),
            "top_operators": records(self.operators.frame),
            **(self.costs.to_dict() if self.costs is not None else {}),
            "shipped": None if self.shipped is None else self.shipped.to_dict(),
        }


@dataclass(frozen=True)
class MethodSummaries:
    """The summary of each method of a trace with several, one section per method."""

    sections: tuple[Summary, ...]

    schema = "etprof.summary"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            f"{s.settings['method']}: {name}": t
            for s in self.sections
            for name, t in s.tables().items()
        }

    def notes(self) -> list[str]:
        return []

    def to_dict(self) -> dict[str, Any]:
        return {"methods": [s.to_dict() for s in self.sections]}


@analyzer(
    "summary", "run-model statistics, delegated vs portable split and top operators", SummaryOptions
)
def summary(trace: Trace, options: SummaryOptions) -> Summary | MethodSummaries:
    """One method's summary (`options.method`, or the trace's only one), else one per method."""
    if options.method is not None:
        return _summary(trace.for_method(options.method), options)
    if len(trace.methods) > 1:
        return MethodSummaries(tuple(_summary(trace.for_method(m), options) for m in trace.methods))
    return _summary(trace, options)


def _summary(trace: Trace, options: SummaryOptions) -> Summary:
    meta = trace.meta
    settings = {
        "method": trace.methods[0] if trace.methods else meta.program.method,
        "iterations": trace.iterations,
        "warmup": trace.warmup if options.warmup is None else options.warmup,
        "threads": meta.run.threads if trace.has_meta else None,
        "program": meta.program.path or None,
        "trace": trace.source,
    }
    return Summary(
        stats=run_model_stats(trace, RunModelOptions(options.warmup)),
        buckets=buckets(trace, BucketOptions(options.warmup, options.keep_outliers)),
        operators=operators(trace, OperatorOptions(options.warmup, options.top)),
        settings=settings,
        costs=costs(trace, options.warmup),
        shipped=shipped(trace, ShippedOptions(options.warmup, options.keep_outliers)),
    )
