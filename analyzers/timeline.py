"""The timeline of a trace laid out for export (`etprof timeline`): the slices of the selected
iterations on tracks, clamped so that they nest strictly as the Chrome trace format requires.

One track holds the execution, nested as the runtime ran it (Method::execute; DELEGATE_CALL /
OPERATOR_CALL; XNNPACK operator / native_call_<kernel>), and, with every iteration selected, a
second track holds loading. XNNPACK reports its operators in whole microseconds laid end to end
from the delegate's start, so after rounding an operator may start before or end after its
DELEGATE_CALL, or overlap the next operator: those are clamped into their DELEGATE_CALL's window
and to start no earlier than the previous operator's end, keeping their recorded times. A last
pass enforces nesting on every track, so the rule holds for any input. A delegate call that
recorded no operator event is one opaque block of its backend (cat "opaque"). The Chrome document itself
is written by etprof.render.chrome (docs/timeline.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from etprof.analyzers import analyzer
from etprof.errors import InputError
from etprof.result import records
from etprof.trace.model import (
    DELEGATE_CALL,
    DELEGATE_OP,
    KERNEL,
    LOAD,
    OPERATOR_CALL,
    RUN_MODEL,
    Trace,
)

SCHEMA = "etprof.timeline"
PID = 1
TID_EXECUTE = 1
TID_LOAD = 2
TRACKS = {TID_EXECUTE: "execution (Method::execute)", TID_LOAD: "loading"}

# kind -> (category, depth); depth is the intended level under Method::execute
_PLACE = {
    RUN_MODEL: ("runtime", 0),
    DELEGATE_CALL: ("delegated", 1),
    OPERATOR_CALL: ("portable", 1),
    DELEGATE_OP: ("delegated", 2),
    KERNEL: ("portable", 2),
    LOAD: ("load", 0),
}
# a child kind and the kind of the instruction-level event it belongs to
_PARENT_KIND = {DELEGATE_OP: DELEGATE_CALL, KERNEL: OPERATOR_CALL}
INSTRUCTION_KINDS = (DELEGATE_CALL, OPERATOR_CALL, DELEGATE_OP, KERNEL)
SLICE_COLUMNS = [
    "tid",
    "depth",
    "iteration",
    "name",
    "cat",
    "kind",
    "op",
    "instruction_id",
    "module",
    "start_ns",
    "end_ns",
    "recorded_start_ns",
    "recorded_end_ns",
    "clamped",
]


@dataclass(frozen=True)
class Timeline:
    """The slices of the selected iterations, laid out on tracks so that they nest strictly."""

    model: str
    source: str
    selection: str  # "iteration 10" or "all iterations"
    iterations: tuple[int, ...]
    origin_ns: int  # ts 0: the first event of the trace file
    slices: pd.DataFrame = field(repr=False)  # SLICE_COLUMNS, times in ns (absolute)

    schema = SCHEMA

    @property
    def clamped(self) -> int:
        return int(self.slices["clamped"].sum())

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"slices": self.slices}

    def notes(self) -> list[str]:
        n = self.clamped
        if not n:
            return []
        return [
            (
                f"{n} XNNPACK operator slice{'s' if n != 1 else ''} clamped to nest in the "
                "Chrome format (whole-µs operator times); recorded times kept in args"
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "source": self.source,
            "selection": self.selection,
            "iterations": list(self.iterations),
            "origin_ns": self.origin_ns,
            "clamped": self.clamped,
            "slices": records(self.slices),
        }


@dataclass(frozen=True)
class TimelineOptions:
    iteration: int | None = None  # default: the first measured one
    all_iterations: bool = False
    method: str | None = None  # default: the trace's first


@analyzer(
    "timeline",
    "one iteration (or all) laid out as nested slices, for a Chrome trace",
    TimelineOptions,
)
def timeline_of(trace: Trace, options: TimelineOptions) -> Timeline:
    return timeline(
        trace, options.iteration, all_iterations=options.all_iterations, method=options.method
    )


def timeline(
    trace: Trace,
    iteration: int | None = None,
    *,
    all_iterations: bool = False,
    method: str | None = None,
) -> Timeline:
    """Lay out one iteration (default: the first measured one) or all of `trace` for export,
    of `method` (default: the trace's first method; iterations are counted per method)."""
    several = len(trace.methods) > 1
    if method is not None or several:
        trace = trace.for_method(method or trace.methods[0])
    of = f"{trace.methods[0]} " if several or (method is not None and trace.methods) else ""
    ev = trace.events
    if all_iterations:
        if iteration is not None:
            raise InputError("--iteration and --all were both given", "pass one of them")
        chosen = ev
        its = tuple(range(trace.iterations))
        selection = f"{of}all iterations"
    else:
        it = _pick_iteration(trace, iteration)
        chosen = ev[ev["iteration"] == it]
        its = (it,)
        selection = f"{of}iteration {it}"
    origin = int(ev["start_ns"].min()) if len(ev) else 0
    return Timeline(
        model=trace.model,
        source=trace.source,
        selection=selection,
        iterations=its,
        origin_ns=origin,
        slices=layout(chosen, _modules(trace)),
    )


def _pick_iteration(trace: Trace, iteration: int | None) -> int:
    n = trace.iterations
    label = trace.source or "the trace"
    if n == 0:
        raise InputError(
            f"{label} has no Execute runs (no Method::execute recorded)",
            "profile with `etprof run`, or executor_runner with --etdump_path",
        )
    if iteration is None:
        if trace.session_length <= trace.warmup:
            raise InputError(
                f"{label} has {n} iterations, all of them warm-up ({trace.warmup})",
                f"pick one with --iteration 0..{n - 1}, or export them all with --all",
            )
        return trace.warmup
    if not 0 <= iteration < n:
        raise InputError(
            f"--iteration {iteration} is out of range: {label} has {n} iterations",
            f"use 0..{n - 1} (the first measured one is {min(trace.warmup, n - 1)})",
        )
    return iteration


def _modules(trace: Trace) -> dict[int, str]:
    return {i.id: " | ".join(i.modules) for i in trace.meta.program.instructions if i.modules}


def layout(events: pd.DataFrame, modules: dict[int, str] | None = None) -> pd.DataFrame:
    """Slices for `events` (rows of a Trace's event table), clamped so every track nests."""
    ev = events[events["kind"].isin(list(_PLACE)) | (events["iteration"] >= 0)]
    ev = ev.sort_values(["run", "seq"]).reset_index(drop=True)
    kind = ev["kind"].astype(str)
    place = kind.map(lambda k: _PLACE.get(k, ("runtime", 1)))
    op = ev["op"].astype(str)
    name = ev["name"].astype(str)
    delegate = ev["delegate_op"].astype(str)
    # instruction-level events are named after what they run; delegate ops keep their own name
    label = name.where(~kind.isin([DELEGATE_CALL, OPERATOR_CALL]) | (op == ""), name + " " + op)
    label = label.where(kind != DELEGATE_OP, delegate.where(delegate != "", "delegate operator"))
    label = label.where(label != "", "(unnamed)")
    opaque = _opaque(ev, kind)
    label = label.where(~opaque, label + " (no operator events)")
    if "phase" in ev:  # an LLM run's Method::execute says its phase: "Method::execute (decode)"
        phase = ev["phase"].astype(str)
        label = label.where((kind != RUN_MODEL) | (phase == ""), label + " (" + phase + ")")
    modules = modules or {}
    out = pd.DataFrame(
        {
            "tid": kind.map(lambda k: TID_LOAD if k == LOAD else TID_EXECUTE).astype("int64"),
            "depth": place.map(lambda p: p[1]).astype("int64"),
            "iteration": ev["iteration"].astype("int64"),
            "name": label,
            "cat": place.map(lambda p: p[0]).where(~opaque, "opaque"),
            "kind": kind,
            "op": op.mask(op == ""),  # missing: NaN, so a CSV reads back the same
            "instruction_id": ev["instruction_id"].astype("int64"),
            # only instruction-level events run an instruction (Method::execute's id is 0 too)
            "module": ev["instruction_id"]
            .map(modules)
            .where((ev["iteration"] >= 0) & kind.isin(list(INSTRUCTION_KINDS))),
            "start_ns": ev["start_ns"].astype("int64"),
            "end_ns": ev["end_ns"].astype("int64"),
            "recorded_start_ns": ev["start_ns"].astype("int64"),
            "recorded_end_ns": ev["end_ns"].astype("int64"),
        }
    )
    start = out["start_ns"].to_numpy().copy()
    end = out["end_ns"].to_numpy().copy()
    for parent, children in _families(ev):
        _clamp_children(start, end, parent, children)
    level = out["depth"].to_numpy()
    # Of slices starting together, the intended parent comes first, then an instant (XNNPACK's
    # 0 µs operators) so it stays a sibling, then the longer outside the shorter.
    order = sorted(
        range(len(out)), key=lambda i: (start[i], int(level[i]), end[i] > start[i], -end[i], i)
    )
    out["depth"] = _enforce_nesting(start, end, out["tid"].to_numpy(), order)
    out["start_ns"], out["end_ns"] = start, end
    out["clamped"] = (out["start_ns"] != out["recorded_start_ns"]) | (
        out["end_ns"] != out["recorded_end_ns"]
    )
    return out.iloc[order].reset_index(drop=True)[SLICE_COLUMNS]


def _opaque(ev: pd.DataFrame, kind: pd.Series) -> pd.Series:
    """Whether each row is a DELEGATE_CALL with no operator event of its own (same run and
    instruction): one opaque block of its backend (OpenVINO's every call), named
    "DELEGATE_CALL OpenvinoBackend (no operator events)", cat "opaque"."""
    calls = kind == DELEGATE_CALL
    ops = ev.loc[kind == DELEGATE_OP, ["run", "instruction_id"]]
    if not len(ops):
        return calls
    has_ops = pd.MultiIndex.from_frame(ev[["run", "instruction_id"]]).isin(
        pd.MultiIndex.from_frame(ops)
    )
    return pd.Series(calls.to_numpy() & ~has_ops, index=ev.index)


def _families(ev: pd.DataFrame) -> Iterable[tuple[int, list[int]]]:
    """(parent row, child rows) for each DELEGATE_CALL/OPERATOR_CALL and each Method::execute.

    The runtime records an event when it ends, so a kernel or XNNPACK operator comes before its
    instruction's event in the block, with the same instruction id: its parent is the next
    instruction event of that id. Instructions belong to their block's Method::execute.
    """
    kind = ev["kind"].astype(str).to_numpy()
    runs = ev["run"].to_numpy()
    instr = ev["instruction_id"].to_numpy()
    pending: dict[tuple[int, str, int], list[int]] = {}
    top: dict[int, list[int]] = {}
    parents: dict[int, int] = {}
    families: dict[int, list[int]] = {}
    for row in range(len(ev)):  # rows are in (run, seq) order
        k, run = kind[row], int(runs[row])
        if k in _PARENT_KIND:
            pending.setdefault((run, _PARENT_KIND[k], int(instr[row])), []).append(row)
        elif k in (DELEGATE_CALL, OPERATOR_CALL):
            families[row] = pending.pop((run, k, int(instr[row])), [])
            top.setdefault(run, []).append(row)
        elif k == RUN_MODEL:
            parents[run] = row
    for run, row in parents.items():
        yield row, top.get(run, [])
    yield from families.items()


def _clamp_children(start: Any, end: Any, parent: int, children: Sequence[int]) -> None:
    """Move children inside [parent start, parent end], each starting after the previous ends."""
    lo, hi = int(start[parent]), int(end[parent])
    cursor = lo
    for c in sorted(children, key=lambda c: (int(start[c]), c)):
        s = min(max(int(start[c]), cursor), hi)
        e = min(max(int(end[c]), s), hi)
        start[c], end[c] = s, e
        cursor = e


def _enforce_nesting(start: Any, end: Any, tid: Any, order: Sequence[int]) -> list[int]:
    """Last guard: a slice overlapping an open one on its track is cut to end inside it.

    Returns each slice's depth on its track, as a viewer will draw it.
    """
    depth = [0] * len(order)
    stacks: dict[int, list[int]] = {}
    for i in order:
        stack = stacks.setdefault(int(tid[i]), [])
        while stack and end[stack[-1]] <= start[i]:  # closed before i starts: not a parent
            stack.pop()
        if stack and end[i] > end[stack[-1]]:
            end[i] = end[stack[-1]]
        depth[i] = len(stack)
        stack.append(i)
    return depth
