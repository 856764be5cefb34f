"""Refuse event tables no real run can produce, before any figure is computed from them.

A flipped bit in a timestamp parses fine and gives `run model mean -21981 ms`. ExecuTorch's own
events are timed on one nanosecond clock and nest: an instruction (OPERATOR_CALL, DELEGATE_CALL)
lies inside its run's Method::execute, a portable kernel inside the OPERATOR_CALL that called
it, and two instructions of a run never overlap (measured on every trace recorded here: no
exception). So a trace breaking any of these is corrupt, and is refused as such. (The order of
whole runs is not judged: hand-built test traces start every run at 0.)

XNNPACK's operators are not checked for nesting: it reports whole microseconds laid end to end
from the delegate's start, so after rounding they may stick out of their DELEGATE_CALL
(docs/timeline.md), and a short call's rounded operators may even add up to more than the call
(a negative delegate overhead, which the attribution keeps so that the buckets still sum to the
run-model time). They, like every event, must still not end before they start.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.errors import CorruptTraceError
from etprof.trace.timing_bounds import check_bounds

_FIX = "re-copy the trace or record it again; its timestamps cannot be real"


def check_events(events: pd.DataFrame, source: str) -> None:
    """Raise CorruptTraceError when `events` (the trace's event table) is impossible."""
    if events.empty:
        return
    start = events["start_ns"].to_numpy(np.int64)
    end = events["end_ns"].to_numpy(np.int64)
    run = events["run"].to_numpy(np.int64)
    is_kind = _kind_masks(events["kind"])
    _no_time_travel(events, start, end, source)
    calls = is_kind("operator_call") | is_kind("delegate_call")
    _inside_execute(
        events, start, end, run, is_kind("run_model"), calls | is_kind("kernel"), source
    )
    low, span = int(start.min()), int(start.max()) - int(start.min()) + 1
    key = _keys(run, start, low, span)  # sorts by (run, start)
    _calls_do_not_overlap(events, start, end, run, key, calls, source)
    _kernels_inside_calls(
        events, end, run, key, is_kind("kernel"), is_kind("operator_call"), source
    )
    check_bounds(events, source)  # the delegate operators' exemption, bounded; runs in order


def _kind_masks(column: pd.Series) -> Callable[[str], npt.NDArray[np.bool_]]:
    """`is_kind(name)`: the rows of that kind, compared by category code (one integer compare
    per row, not one string compare)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        categories = [str(c) for c in column.cat.categories]
        return lambda name: (
            codes == categories.index(name)
            if name in categories
            else np.zeros(codes.size, dtype=bool)
        )
    values = column.astype(str).to_numpy()
    return lambda name: np.asarray(values == name)


def _where(events: pd.DataFrame, row: int) -> str:
    ev = events.iloc[row]
    name = str(ev["name"]) or str(ev["kind"])
    return f"event {int(ev['seq'])} ({name}) of run block {int(ev['run'])}"


def _no_time_travel(
    events: pd.DataFrame, start: npt.NDArray[np.int64], end: npt.NDArray[np.int64], source: str
) -> None:
    # the duration too: timestamps 2**63 ns or more apart overflow it to a negative number
    duration = events["duration_ns"].to_numpy(np.int64)
    bad = np.flatnonzero((end < start) | (duration < 0))
    if bad.size:
        row = int(bad[0])
        raise CorruptTraceError(
            f"{source} is a corrupt trace: {_where(events, row)} ends before it starts "
            f"(start {int(events['start_ns'].iloc[row])} ns, end "
            f"{int(events['end_ns'].iloc[row])} ns; {bad.size} such events)",
            _FIX,
        )


def _inside_execute(
    events: pd.DataFrame,
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    run: npt.NDArray[np.int64],
    execute: npt.NDArray[np.bool_],
    nested: npt.NDArray[np.bool_],
    source: str,
) -> None:
    if not execute.any():
        return
    blocks = int(run.max()) + 1
    first = np.full(blocks, np.iinfo(np.int64).max)
    last = np.full(blocks, np.iinfo(np.int64).min)
    np.minimum.at(first, run[execute], start[execute])
    np.maximum.at(last, run[execute], end[execute])
    has = nested & (last[run] >= first[run])  # runs without a Method::execute are not judged
    bad = np.flatnonzero(has & ((start < first[run]) | (end > last[run])))
    if bad.size:
        raise CorruptTraceError(
            f"{source} is a corrupt trace: {_where(events, int(bad[0]))} "
            "lies outside its Method::execute",
            _FIX,
        )


def _calls_do_not_overlap(
    events: pd.DataFrame,
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    run: npt.NDArray[np.int64],
    key: npt.NDArray[np.int64] | npt.NDArray[np.void],
    calls: npt.NDArray[np.bool_],
    source: str,
) -> None:
    rows = np.flatnonzero(calls)
    rows = rows[np.argsort(key[rows], kind="stable")]
    same_run = run[rows][1:] == run[rows][:-1]
    bad = np.flatnonzero(same_run & (start[rows][1:] < end[rows][:-1]))
    if bad.size:
        a, b = int(rows[bad[0]]), int(rows[bad[0] + 1])
        raise CorruptTraceError(
            f"{source} is a corrupt trace: {_where(events, b)} starts before "
            f"{_where(events, a)} ends (instructions run one at a time)",
            _FIX,
        )


def _kernels_inside_calls(
    events: pd.DataFrame,
    end: npt.NDArray[np.int64],
    run: npt.NDArray[np.int64],
    key: npt.NDArray[np.int64] | npt.NDArray[np.void],
    is_kernel: npt.NDArray[np.bool_],
    is_call: npt.NDArray[np.bool_],
    source: str,
) -> None:
    kernels = np.flatnonzero(is_kernel)
    if not kernels.size:
        return
    calls = np.flatnonzero(is_call)
    calls = calls[np.argsort(key[calls], kind="stable")]
    # the call starting last at or before each kernel, in the kernel's run: its container
    at = np.searchsorted(key[calls], key[kernels], side="right") - 1
    safe = np.clip(at, 0, max(calls.size - 1, 0))
    if calls.size:
        held = (at >= 0) & (run[calls][safe] == run[kernels]) & (end[kernels] <= end[calls][safe])
    else:
        held = np.zeros(kernels.size, dtype=bool)
    bad = np.flatnonzero(~held)
    if bad.size:
        raise CorruptTraceError(
            f"{source} is a corrupt trace: kernel "
            f"{_where(events, int(kernels[bad[0]]))} lies outside every "
            "OPERATOR_CALL",
            _FIX,
        )


def _keys(
    run: npt.NDArray[np.int64], start: npt.NDArray[np.int64], low: int, span: int
) -> npt.NDArray[np.int64] | npt.NDArray[np.void]:
    """Sortable (run, start) pairs, for searchsorted: one int64 when they fit in one (always,
    for a real trace), else a structured pair (slower)."""
    if (int(run.max(initial=0)) + 1) * span < 2**62:
        return run * span + (start - low)
    out = np.empty(run.size, dtype=[("run", np.int64), ("start", np.int64)])
    out["run"], out["start"] = run, start
    return out
