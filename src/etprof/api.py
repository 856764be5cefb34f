"""etprof's Python API, for notebooks: load a trace, analyse it, get pandas DataFrames back.

    import etprof
    t = etprof.load("sample_traces/mv3_xnnpack_q8.etdp")
    etprof.operators(t).head()        # DataFrame: time per operator type
    etprof.breakdown(t).tables()      # result dataclass; .tables() gives DataFrames

Every function takes a loaded :class:`~etprof.trace.model.Trace` or a path to a trace. Analyses run
through the analyzer registry (``etprof.analyzers``) with the analyzer's own options, passed as
keyword arguments: ``etprof.operators(t, top=5, warmup=2)``. See docs/api.md.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd

from etprof import analyzers
from etprof.errors import InputError
from etprof.trace.loading import load_trace
from etprof.trace.model import Trace

TraceLike = Trace | str | Path

__all__ = [
    "analyze",
    "breakdown",
    "buckets",
    "chrome_trace",
    "diff",
    "events",
    "load",
    "operators",
    "runmodel",
    "summary",
    "timeline",
]


def load(
    path: str | Path,
    pte: str | Path | None = None,
    etrecord: str | Path | None = None,
    *,
    engine: str = "fast",
    method: str | None = None,
) -> Trace:
    """Read an ETDump trace with its metadata (`pte`/`etrecord` for a trace made elsewhere;
    `method`: the method of runs the program's tables cannot tell apart)."""
    return load_trace(
        Path(path), pte=_path(pte), etrecord=_path(etrecord), engine=engine, method=method
    )


def _path(p: str | Path | None) -> Path | None:
    return None if p is None else Path(p)


def _trace(t: TraceLike) -> Trace:
    return t if isinstance(t, Trace) else load(t)


def analyze(name: str, *traces: TraceLike, **options: Any) -> Any:
    """Run analyzer `name` (any registered one) on its traces, options given as keywords.

    ``analyze("operators", t, top=5)``; a comparison takes two: ``analyze("diff", a, b)``.
    """
    entry = analyzers.get(name)
    if len(traces) != entry.inputs:
        raise InputError(
            f"analyzer '{name}' takes {entry.inputs} trace(s), got {len(traces)}",
            f"pass {entry.inputs} trace(s) or paths before the options",
        )
    return entry.func(*(_trace(t) for t in traces), _options(name, options))


def _options(name: str, given: dict[str, Any]) -> Any:
    entry = analyzers.get(name)
    known = [f.name for f in fields(entry.options)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InputError(
            f"analyzer '{name}' has no option '{unknown[0]}'",
            f"use one of: {', '.join(known) or '(none)'}",
        )
    return entry.options(**given)


def events(trace: TraceLike, *, measured: bool = False) -> pd.DataFrame:
    """The event table (one row per profile event; columns in etprof.trace.model), as a copy.

    `measured=True` keeps only the measured iterations (warm-up and loading dropped).
    """
    t = _trace(trace)
    return (t.measured() if measured else t).events.copy()


def runmodel(trace: TraceLike, **options: Any) -> Any:
    """Run-model (Method::execute) latency statistics: `.mean_ms`, `.floored_ms`, `.summary()`."""
    return analyze("runmodel", trace, **options)


def summary(trace: TraceLike, **options: Any) -> Any:
    """What `etprof run` prints: run-model statistics, delegated vs portable, top operators."""
    return analyze("summary", trace, **options)


def operators(trace: TraceLike, **options: Any) -> pd.DataFrame:
    """Time per operator type over the measured iterations (XNNPACK ops and portable kernels)."""
    frame: pd.DataFrame = analyze("operators", trace, **options).frame
    return frame


def buckets(trace: TraceLike, **options: Any) -> pd.DataFrame:
    """Run-model time split into buckets that sum to it exactly (mean ms and share per bucket)."""
    frame: pd.DataFrame = analyze("buckets", trace, **options).table()
    return frame


def breakdown(trace: TraceLike, **options: Any) -> Any:
    """The breakdown analysis (result dataclass; `.tables()` gives its DataFrames)."""
    return analyze("breakdown", trace, **options)


def diff(a: TraceLike, b: TraceLike, **options: Any) -> Any:
    """How B differs from baseline A: significance, buckets, contributors (result dataclass;
    `.tables()` gives its DataFrames, `.headline()` the one-line answer)."""
    return analyze("diff", a, b, **options)


def timeline(
    trace: TraceLike, iteration: int | None = None, *, all_iterations: bool = False
) -> pd.DataFrame:
    """The slices `etprof timeline` exports (nested, clamped; times in ns), as a DataFrame."""
    from etprof.analyzers.timeline import timeline as build

    return build(_trace(trace), iteration, all_iterations=all_iterations).slices


def chrome_trace(
    trace: TraceLike,
    path: str | Path,
    iteration: int | None = None,
    *,
    all_iterations: bool = False,
) -> Path:
    """Write the Chrome-trace/Perfetto JSON of `trace` to `path`; returns the path."""
    from etprof.analyzers.timeline import timeline as build
    from etprof.render.chrome import render
    from etprof.util.output import write_text

    out = Path(path)
    write_text(out, render(build(_trace(trace), iteration, all_iterations=all_iterations)))
    return out
