"""The facts `etprof diff` shows beside the latency change: load time, planned memory, resident
memory and the profiler's overhead, A beside B.

Planned sizes are one number per program, so they are compared as facts. Load times and resident
peaks are one sample per session: with two or more sessions on each side the rank test of
etprof.analyzers.stats.significance gives a p-value, with one it is left out (a single load says nothing about
the next one's noise).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from etprof.analyzers._cost_rows import Costs, costs
from etprof.analyzers.stats.significance import rank_test
from etprof.trace.model import Trace

COLUMNS = ["fact", "unit", "a", "b", "delta", "change_pct", "p_value"]


def facts_table(a: Trace, b: Trace, warmup: int | None) -> pd.DataFrame:
    ca, cb = costs(a, warmup), costs(b, warmup)
    rows = []
    for name, unit, get in _FACTS:
        va, vb = get(ca), get(cb)
        if va is None and vb is None:
            continue
        ma = float(np.mean(va)) if va is not None and len(va) else math.nan
        mb = float(np.mean(vb)) if vb is not None and len(vb) else math.nan
        p = math.nan
        if va is not None and vb is not None and min(len(va), len(vb)) >= 2:
            p = rank_test(va, vb)
        rows.append(
            {
                "fact": name,
                "unit": unit,
                "a": ma,
                "b": mb,
                "delta": mb - ma,
                "change_pct": 100.0 * (mb / ma - 1.0) if ma else math.nan,
                "p_value": p,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


Values = list[float] | None
Getter = Callable[[Costs], Values]


def _session_column(column: str) -> Getter:
    def get(c: Costs) -> Values:
        rows = c.loading.sessions
        if not c.loading.recorded or column not in rows:
            return None
        values = rows[column].dropna().tolist()
        return [float(v) for v in values] or None

    return get


def _memory_column(column: str) -> Getter:
    def get(c: Costs) -> Values:
        if not c.memory.measured:
            return None
        values = c.memory.sessions()[column].dropna().tolist()
        return [float(v) for v in values] or None

    return get


def _planned(figure: str) -> Getter:
    def get(c: Costs) -> Values:
        value = c.memory.figures()[figure]
        return None if value is None else [value / 1e6]

    return get


def _overhead(c: Costs) -> Values:
    value = c.overhead.figures()["overhead_pct"]
    return None if value is None else [value]


_FACTS: list[tuple[str, str, Getter]] = [
    ("load (Program::load_method)", "ms", _session_column("load_ms")),
    ("init (Method::init)", "ms", _session_column("init_ms")),
    ("first inference", "ms", _session_column("first_ms")),
    ("planned weights", "MB", _planned("weights_bytes")),
    ("planned activations", "MB", _planned("activations_bytes")),
    ("delegate blobs", "MB", _planned("delegate_blobs_bytes")),
    ("resident growth by the first runs", "MB", _memory_column("footprint_mb")),
    ("resident peak, measured iterations", "MB", _memory_column("measured_peak_mb")),
    ("profiler overhead", "pct", _overhead),
]
