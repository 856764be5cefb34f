"""Chrome trace event format (Perfetto, chrome://tracing, speedscope) export of a trace's timeline.

One process per trace; one thread track holds the execution, nested as the runtime ran it::

    Method::execute                                   depth 0  cat "runtime"
      DELEGATE_CALL XnnpackBackend / OPERATOR_CALL    depth 1  cat "delegated" / "portable"
        XNNPACK operator / native_call_<kernel>       depth 2  cat "delegated" / "portable"

and, with every iteration selected, a second track holds loading (Program::load_method ...).

The format requires that slices on one track either nest fully or do not overlap. ExecuTorch's own
events (ns clock) always do, but XNNPACK reports its operators in whole microseconds laid end to
end from the delegate's start, so after rounding an operator may start before or end after its
DELEGATE_CALL, or overlap the next operator. Those operators are clamped: into their
DELEGATE_CALL's window, and to start no earlier than the previous operator's end. A clamped slice
keeps its recorded times in ``args`` (``recorded_ts_us``, ``recorded_dur_us``); the document's
``otherData.clamped`` counts them. A last pass enforces nesting on every track, so the rule holds
for any input. Timestamps are µs with ns precision (three decimals), counted from the first event
in the trace file. See docs/timeline.md.
"""

from __future__ import annotations

import json
from typing import Any

from etprof.analyzers.timeline import INSTRUCTION_KINDS, PID, SCHEMA, TID_EXECUTE, TRACKS, Timeline
from etprof.errors import InputError
from etprof.result import JSON_SCHEMA_VERSION


def _us(ns: int) -> float:
    return round(ns / 1000, 3)


def chrome_events(t: Timeline) -> list[dict[str, Any]]:
    """Metadata events naming the process and tracks, then one complete ("X") event per slice."""
    s = t.slices
    used = sorted(set(s["tid"].tolist())) or [TID_EXECUTE]
    out: list[dict[str, Any]] = [
        {
            "ph": "M",
            "pid": PID,
            "tid": 0,
            "name": "process_name",
            "args": {"name": f"etprof: {t.model} ({t.selection})"},
        },
    ]
    for tid in used:
        out.append(
            {
                "ph": "M",
                "pid": PID,
                "tid": tid,
                "name": "thread_name",
                "args": {"name": TRACKS[tid]},
            }
        )
        out.append(
            {
                "ph": "M",
                "pid": PID,
                "tid": tid,
                "name": "thread_sort_index",
                "args": {"sort_index": tid},
            }
        )
    for row in s.itertuples(index=False):
        args: dict[str, Any] = {"kind": row.kind, "iteration": row.iteration}
        if isinstance(row.op, str):
            args["op"] = row.op
        if row.kind in INSTRUCTION_KINDS:
            args["instruction"] = row.instruction_id
        if isinstance(row.module, str):
            args["module"] = row.module
        if row.clamped:
            args["recorded_ts_us"] = _us(row.recorded_start_ns - t.origin_ns)
            args["recorded_dur_us"] = _us(row.recorded_end_ns - row.recorded_start_ns)
        out.append(
            {
                "ph": "X",
                "pid": PID,
                "tid": row.tid,
                "name": row.name,
                "cat": row.cat,
                "ts": _us(row.start_ns - t.origin_ns),
                "dur": _us(row.end_ns - row.start_ns),
                "args": args,
            }
        )
    return out


def document(t: Timeline) -> dict[str, Any]:
    return {
        "traceEvents": chrome_events(t),
        "displayTimeUnit": "ms",
        "otherData": {
            "schema": SCHEMA,
            "version": JSON_SCHEMA_VERSION,
            "model": t.model,
            "source": t.source,
            "selection": t.selection,
            "origin_ns": t.origin_ns,
            "clamped": t.clamped,
        },
    }


def render(result: Timeline, *, width: int = 100, table: str | None = None) -> str:
    if not isinstance(result, Timeline):
        raise InputError(
            "the Chrome trace format only applies to `etprof timeline`",
            "use --format table, json or csv",
        )
    return json.dumps(document(result), separators=(",", ":"), allow_nan=False) + "\n"
