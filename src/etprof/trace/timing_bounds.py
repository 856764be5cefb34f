"""Bounds on a trace's timestamps that no real run breaks, beyond the nesting rules.

`etprof.consistency` exempts a delegate's operators from nesting, because XNNPACK reports
whole microseconds laid end to end from the call's start and after rounding they may stick
out of their DELEGATE_CALL. That exemption is bounded here: rounding moves each operator by
less than one timer tick, so the operators of one call lie within the call widened by one tick
per operator -- not a flipped bit's minutes or days (a single flip once read as 434,249,300 %
of an 18 µs run).

The other bounds hold for every trace recorded with one clock (all measured here, see
docs/guarantees.md): run blocks follow one another (a block that starts later than the one
before it starts after that one ends; hand-built traces that start every run at 0 are not
judged), and Method::execute does nothing before its first instruction and after its last but
return, so a run with instructions does not spend more than MAX_IDLE_NS there (measured: at
most 27 µs). A timestamp moved by a flipped high bit breaks one of these, and the trace is
refused instead of reporting a run of 104 days.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.backends import get as backend_of
from etprof.backends import registered
from etprof.errors import CorruptTraceError

_FIX = "re-copy the trace or record it again; its timestamps cannot be real"
MAX_IDLE_NS = 1_000_000_000  # time a Method::execute may spend outside its instructions


def check_bounds(events: pd.DataFrame, source: str) -> None:
    """Raise CorruptTraceError when `events` break a bound of the module's docstring."""
    if events.empty:
        return
    run = events["run"].to_numpy(np.int64)
    start = events["start_ns"].to_numpy(np.int64)
    end = events["end_ns"].to_numpy(np.int64)
    kind = events["kind"].astype(str).to_numpy()
    _delegate_ops_near_their_call(events, run, start, end, kind, source)
    _blocks_in_order(run, start, end, source)
    _execute_not_idle(run, start, end, kind, source)


def _tick_ns(backend: str) -> int:
    """One timer tick of a backend; a backend that does not say may round like any known one."""
    found = backend_of(backend).timer_resolution_ns if backend else None
    if found:
        return found
    known = [backend_of(b).timer_resolution_ns or 0 for b in registered()]
    return max(known, default=0) or 1000


def _delegate_ops_near_their_call(
    events: pd.DataFrame,
    run: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    kind: npt.NDArray[np.str_],
    source: str,
) -> None:
    ops = np.flatnonzero(kind == "delegate_op")
    if not ops.size:
        return
    calls = np.flatnonzero(kind == "delegate_call")
    instr = events["instruction_id"].to_numpy(np.int64)
    call_key = pd.MultiIndex.from_arrays([run[calls], instr[calls]])
    op_key = pd.MultiIndex.from_arrays([run[ops], instr[ops]])
    span = pd.DataFrame({"start": start[calls], "end": end[calls]}, index=call_key)
    span = span.groupby(level=[0, 1]).agg({"start": "min", "end": "max"})
    backend = events["backend"].astype(str).to_numpy()[ops]
    ticks = np.array([_tick_ns(b) for b in backend.tolist()], dtype=np.int64)
    per_call = (
        pd.DataFrame({"n": np.ones(ops.size, dtype=np.int64), "tick": ticks}, index=op_key)
        .groupby(level=[0, 1])
        .agg({"n": "sum", "tick": "max"})
    )
    at = span.index.get_indexer(op_key)
    orphan = np.flatnonzero(at < 0)
    if orphan.size:
        row = int(ops[orphan[0]])
        raise CorruptTraceError(
            f"{source} is a corrupt trace: {_where(events, row)} is a "
            "delegate operator outside every DELEGATE_CALL of its run",
            _FIX,
        )
    slack = (per_call["n"] * per_call["tick"]).reindex(span.index).to_numpy(np.int64)[at]
    lo = span["start"].to_numpy(np.int64)[at] - slack
    hi = span["end"].to_numpy(np.int64)[at] + slack
    bad = np.flatnonzero((start[ops] < lo) | (end[ops] > hi))
    if bad.size:
        row, i = int(ops[bad[0]]), int(bad[0])
        raise CorruptTraceError(
            f"{source} is a corrupt trace: {_where(events, row)} lies outside its DELEGATE_CALL "
            f"by more than its backend's rounding ({int(max(lo[i] - start[row], end[row] - hi[i]))}"
            f" ns beyond {int(slack[i])} ns)",
            _FIX,
        )


def _blocks_in_order(
    run: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    source: str,
) -> None:
    blocks, at = np.unique(run, return_inverse=True)
    first = np.full(blocks.size, np.iinfo(np.int64).max)
    last = np.full(blocks.size, np.iinfo(np.int64).min)
    np.minimum.at(first, at, start)
    np.maximum.at(last, at, end)
    later = first[1:] > first[:-1]  # equal starts: a hand-built trace, not judged
    bad = np.flatnonzero(later & (first[1:] < last[:-1]))
    if bad.size:
        i = int(bad[0])
        raise CorruptTraceError(
            f"{source} is a corrupt trace: run block {int(blocks[i + 1])} starts "
            f"{_ns(int(last[i]) - int(first[i + 1]))} before run block {int(blocks[i])} ends "
            "(runs follow one another)",
            _FIX,
        )


def _execute_not_idle(
    run: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    kind: npt.NDArray[np.str_],
    source: str,
) -> None:
    execute = np.flatnonzero(kind == "run_model")
    calls = np.flatnonzero((kind == "operator_call") | (kind == "delegate_call"))
    if not execute.size or not calls.size:
        return
    size = int(run.max()) + 1
    first = np.full(size, np.iinfo(np.int64).max)
    last = np.full(size, np.iinfo(np.int64).min)
    np.minimum.at(first, run[calls], start[calls])
    np.maximum.at(last, run[calls], end[calls])
    r = run[execute]
    has = last[r] >= first[r]
    head = np.where(has, first[r] - start[execute], 0)
    tail = np.where(has, end[execute] - last[r], 0)
    bad = np.flatnonzero(np.maximum(head, tail) > MAX_IDLE_NS)
    if bad.size:
        i = int(bad[0])
        where = "before its first" if head[i] > MAX_IDLE_NS else "after its last"
        raise CorruptTraceError(
            f"{source} is a corrupt trace: the Method::execute of run block {int(r[i])} spends "
            f"{_ns(int(max(head[i], tail[i])))} {where} instruction, where the runtime does "
            f"nothing (at most {_ns(MAX_IDLE_NS)} is believed)",
            _FIX,
        )


def _ns(ns: int) -> str:
    return f"{ns / 1e9:,.3f} s" if ns >= 10**8 else f"{ns / 1e3:,.1f} µs"


def _where(events: pd.DataFrame, row: int) -> str:
    ev = events.iloc[row]
    name = str(ev["name"]) or str(ev.get("delegate_op", "")) or str(ev["kind"])
    return f"event {int(ev['seq'])} ({name}) of run block {int(ev['run'])}"
