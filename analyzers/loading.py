"""Load and first run: what a session costs before its iterations are worth measuring.

From each session's loading events (the "Default" run: ``Program::load_method``, which contains
``Method::init``, where delegates such as XNNPACK build their runtime and pack weights) and its
first iterations: load time, init time, the first inference, and how much more the warm-up
iterations took than the measured median.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from etprof.analyzers import analyzer
from etprof.result import records
from etprof.trace.model import LOAD, RUN_MODEL, Trace

LOAD_METHOD = "Program::load_method"
METHOD_INIT = "Method::init"
NO_LOADING = (
    "The trace has no loading events (Program::load_method): load and init times are "
    "unknown; the runner that made it did not profile the load."
)


@dataclass(frozen=True)
class LoadingOptions:
    warmup: int | None = None  # None: the trace's own setting (10 when unknown)


@dataclass(frozen=True)
class LoadingStats:
    model: str
    warmup: int
    median_ms: float  # measured run-model median, the reference for the excesses
    sessions: pd.DataFrame  # one row per session (see to_dict)

    schema = "etprof.loading"

    @property
    def recorded(self) -> bool:
        """Whether the trace holds loading events at all (another runner may not record them)."""
        return bool(self.sessions["load_ms"].notna().any()) if len(self.sessions) else False

    def mean(self, column: str) -> float | None:
        values = self.sessions[column].dropna()
        return float(values.mean()) if len(values) else None

    def figures(self) -> dict[str, float | None]:
        """The means over sessions that `etprof run` and the breakdown quote."""
        return {
            c: self.mean(c)
            for c in ("load_ms", "init_ms", "first_ms", "first_excess_ms", "warmup_excess_ms")
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"load and first run": self.sessions}

    def notes(self) -> list[str]:
        if not self.recorded:
            return [NO_LOADING]
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "warmup": self.warmup,
            "median_ms": self.median_ms,
            **self.figures(),
            "sessions": records(self.sessions),
        }


@analyzer(
    "loading",
    "load, init and first-inference times, warm-up excess over the median",
    LoadingOptions,
)
def loading(trace: Trace, options: LoadingOptions) -> LoadingStats:
    warmup = trace.warmup if options.warmup is None else options.warmup
    per_iter = trace.executed(RUN_MODEL).groupby("iteration")["duration_ns"].sum() / 1e6
    iters = per_iter.index.to_numpy()
    times = per_iter.to_numpy(dtype=float)
    measured = ~trace.is_warmup(iters, warmup)
    median = float(np.median(times[measured])) if measured.any() else float("nan")
    sessions = max(1, trace.sessions)
    session_of = trace.session_of(iters)
    position = trace.position_in_session(iters)
    load, init = _loading_by_session(trace, sessions)
    rows = []
    for s in range(sessions):
        mine = session_of == s
        first = times[mine & (position == 0)]
        warm = times[mine & (position < warmup)]
        rows.append(
            {
                "session": s + 1,
                "load_ms": load.get(s, float("nan")),
                "init_ms": init.get(s, float("nan")),
                "first_ms": float(first[0]) if first.size else float("nan"),
                "first_excess_ms": float(first[0]) - median if first.size else float("nan"),
                "warmup_excess_ms": float((warm - median).sum()) if warm.size else float("nan"),
            }
        )
    return LoadingStats(
        model=trace.model, warmup=warmup, median_ms=median, sessions=pd.DataFrame(rows)
    )


def _loading_by_session(trace: Trace, sessions: int) -> tuple[dict[int, float], dict[int, float]]:
    """Summed Program::load_method and Method::init ms per session.

    A session's loading run comes before its Execute runs, so its session is the number of
    Execute runs recorded before it, counted in sessions.
    """
    ev = trace.of_kind(LOAD)
    if not len(ev):
        return {}, {}
    runs = trace.events.drop_duplicates("run")[["run", "iteration"]]
    executes = np.sort(runs.loc[runs["iteration"] >= 0, "run"].to_numpy())
    before = np.searchsorted(executes, ev["run"].to_numpy())
    length = max(1, trace.session_length)
    session = np.minimum(before // length, sessions - 1)
    out: list[dict[int, float]] = []
    for name in (LOAD_METHOD, METHOD_INIT):
        is_name = (ev["name"] == name).to_numpy()
        ms = ev["duration_ns"].to_numpy()[is_name] / 1e6
        out.append(
            {int(k): float(v) for k, v in pd.Series(ms).groupby(session[is_name]).sum().items()}
        )
    return out[0], out[1]
