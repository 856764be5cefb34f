"""Why operators of a delegated program ran on portable kernels, and what that cost.

The explainer's target is the backend the program delegates to (target_backend; a program
with no delegate is explained against etprof.backends.default_target()). Each portable operator
instruction is classified against that backend's support table (`Backend.support_table()`):
layout/constant glue, not supported by the backend, supported only at another precision, or
supported but not taken. A run of portable instructions between two delegate calls is a graph
break; its cost is

    the portable instructions' own time (OPERATOR_CALL, dispatch included)
  + the glue operators (layout/precision changes) at the edges of the two delegate blocks
  + the overhead of the delegate call that follows it (DELEGATE_CALL minus its operators),

attributed to the instructions that caused it (glue goes to the cause it serves, by nn.Module
when the trace knows modules). Times are per measured iteration. With a comparison trace (the
same model lowered another way) the fix comes with its measured effect. See docs/fallback.md.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._fallback_program import (
    CLASS_LABELS,
    CONSTRAINT,
    GLUE,
    PRECISION,
    UNSUPPORTED,
    BlockEdges,
    Step,
    block_edges,
    class_label,
    classify,
    decomposed_label,
    edge_glue_ns,
    lookup,
    program_precisions,
    program_steps,
)
from etprof.backends import PRECISION_LABELS, Backend, default_target, explainers
from etprof.backends.support import SupportTable
from etprof.errors import InputError
from etprof.result import records
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, KERNEL, OPERATOR_CALL, RUN_MODEL, Trace
from etprof.util.grouping import group_sum

from ._fallback_calls import NONE as NO_CALLS
from ._fallback_calls import CallCost, call_cost
from ._fallback_context import MethodFacts, program_facts
from ._fallback_notes import explain  # relative: see _fallback_notes

# A cause row: `class` is a key of CLASS_LABELS, `why` its label; SUPPORT the precisions the
# target backend's support table takes (named after the first backend etprof explained: the
# JSON schema keeps the name, docs/fallback.md); `count` cause instructions, `glue` glue
# instructions serving them, `breaks` graph breaks they made; `boundary_ms` the glue at the
# edges of the blocks around those breaks, `calls_ms` the fixed cost of the extra delegate calls.
# JSON schema names from when the explainer knew one backend; they hold the target backend's
SUPPORT = "xnnpack"  # the column of the precisions the target's support table takes
SUPPORT_FROM = "xnnpack_support_from"  # the executorch version that table comes from
CAUSE_COLUMNS = (
    "cause",
    "op",
    "decomposed_from",
    "class",
    "why",
    SUPPORT,
    "count",
    "glue",
    "breaks",
    "portable_ms",
    "boundary_ms",
    "calls_ms",
    "total_ms",
    "share_pct",
)
_SHOWN = [
    "cause",
    "class",
    "count",
    "glue",
    "breaks",
    "portable_ms",
    "boundary_ms",
    "calls_ms",
    "total_ms",
    "share_pct",
]
BREAK_COLUMNS = (
    "break",
    "after",
    "before",
    "ops",
    "causes",
    "portable_ms",
    "boundary_ms",
    "calls_ms",
    "total_ms",
)


@dataclass(frozen=True)
class FallbackOptions:
    warmup: int | None = None  # None: the trace's own setting
    # The same model lowered another way (e.g. with the default mixed partitioner): its measured
    # run model is quoted next to the fix.
    compare: Trace | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Comparison:
    source: str
    model: str
    run_model_ms: float
    partitions: int
    breaks: int
    fallback_ms: float
    # the compared program's own causes (operators on portable kernels that are not glue):
    # the fix is only called measured when the causes of this program are gone from it
    causes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FallbackReport:
    model: str
    measured: int
    run_model_ms: float
    precisions: tuple[str, ...]
    partitions: int  # delegate call instructions
    breaks: int  # runs of portable instructions between two delegate calls
    portable_instructions: int
    causes: pd.DataFrame  # CAUSE_COLUMNS, most expensive first
    break_table: pd.DataFrame  # BREAK_COLUMNS, in program order
    instructions: pd.DataFrame  # one row per portable instruction
    executorch: str  # version the target backend's support table comes from
    backend: Backend  # the target: the backend the program delegates to (or could)
    comparison: Comparison | None = None
    calls: CallCost = NO_CALLS  # one delegate call's fixed cost, what a merge removes
    facts: MethodFacts | None = field(default=None, compare=False, repr=False)  # its .pte's

    schema = "etprof.fallback"

    @property
    def fallback_ms(self) -> float:
        return float(self.causes["total_ms"].sum()) if len(self.causes) else 0.0

    @property
    def fallback_pct(self) -> float:
        return 100.0 * self.fallback_ms / self.run_model_ms if self.run_model_ms else 0.0

    def fallen_back_ops(self) -> list[str]:
        """Operators that caused a fallback (glue excluded)."""
        c = self.causes
        return sorted({str(op) for op in c.loc[c["class"] != GLUE, "op"]})

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"fallback causes": self.causes[_SHOWN], "graph breaks": self.break_table}
        if self.comparison is not None:
            out["comparison"] = self._comparison_frame()
        return out

    def notes(self) -> list[str]:
        return explain(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "measured": self.measured,
            "run_model_ms": self.run_model_ms,
            "precisions": list(self.precisions),
            "partitions": self.partitions,
            "breaks": self.breaks,
            "portable_instructions": self.portable_instructions,
            "fallback_ms": self.fallback_ms,
            "fallback_pct": self.fallback_pct,
            "call_cost": self.calls.to_dict(),
            SUPPORT_FROM: f"executorch {self.executorch}",
            "causes": records(self.causes),
            "graph_breaks": records(self.break_table),
            "instructions": records(self.instructions),
            "comparison": None
            if self.comparison is None
            else {**vars(self.comparison), "causes": list(self.comparison.causes)},
            "explanation": self.notes(),
        }

    def _comparison_frame(self) -> pd.DataFrame:
        c = self.comparison
        assert c is not None
        rows = [
            (self.model, self.run_model_ms, self.partitions, self.breaks, self.fallback_ms),
            (c.model, c.run_model_ms, c.partitions, c.breaks, c.fallback_ms),
        ]
        return pd.DataFrame(
            rows, columns=["model", "run_model_ms", "partitions", "breaks", "fallback_ms"]
        )


@analyzer(
    "fallback",
    "why operators ran on portable kernels, the graph breaks they made and their cost",
    FallbackOptions,
)
def explain_fallbacks(trace: Trace, options: FallbackOptions) -> FallbackReport:
    report = _analyse(trace, options.warmup)
    if options.compare is not None:
        other = _analyse(options.compare, None)
        comparison = Comparison(
            source=options.compare.source,
            model=other.model,
            run_model_ms=other.run_model_ms,
            partitions=other.partitions,
            breaks=other.breaks,
            fallback_ms=other.fallback_ms,
            causes=tuple(other.fallen_back_ops()),
        )
        report = FallbackReport(**{**vars(report), "comparison": comparison})
    return report


def target_backend(trace: Trace) -> Backend:
    """The backend the explainer reasons with: the one the trace's program delegates to, or,
    for a program with no delegate, etprof.backends.default_target(). A delegate whose backend
    etprof has no fallback knowledge of, or two backends with knowledge, are refused (a
    portable operator beside two backends cannot be judged against one support table)."""
    from etprof.analyzers.buckets import delegate_backends

    source = trace.source or "the trace"
    found = list({b.id: b for b in delegate_backends(trace).values()}.values())
    if not found:
        default = default_target()
        if default is None:
            raise InputError(
                f"{source} has no delegate call and no registered backend explains fallbacks",
                "read the buckets and operators",
            )
        return default
    known = ", ".join(b.label for b in explainers()) or "none"
    silent = [
        b.label if b.id else "a delegate of unknown backend (no program table)"
        for b in found
        if not b.explains_fallbacks
    ]
    if silent:
        raise InputError(
            f"{source} delegates to {' and '.join(silent)}: etprof has no fallback "
            f"knowledge of {'it' if len(silent) == 1 else 'them'}",
            "read the buckets and operators; the explanation needs a program "
            f"lowered to a backend etprof explains ({known})",
        )
    if len(found) > 1:
        raise InputError(
            f"{source} delegates to {' and '.join(b.label for b in found)}: etprof "
            "explains the fallbacks of one backend at a time",
            "read the buckets and operators per backend; for the explanation, "
            "profile the model lowered to one of them",
        )
    return found[0]


def _analyse(trace: Trace, warmup: int | None) -> FallbackReport:
    backend = target_backend(trace)
    measured = trace.measured(warmup)
    n = int(measured.of_kind(RUN_MODEL)["iteration"].nunique())
    if n == 0:
        raise InputError(
            f"{trace.source or 'the trace'} has no Method::execute event in its "
            "measured iterations",
            "record it with `etprof run`",
        )
    steps = program_steps(measured)
    if not steps:
        raise InputError(
            f"{trace.source or 'the trace'} has no operator or delegate call events",
            "record the trace with ETDump profiling on (`etprof run`)",
        )
    run_model_ms = measured.run_model_ns() / n / 1e6
    table = backend.support_table()
    assert table is not None  # explains_fallbacks: the backend has one
    precisions = program_precisions(measured, steps, backend)
    per_iter = _per_instruction_ns(measured, n)
    edges = block_edges(measured, backend)
    edge_ns = edge_glue_ns(measured, edges, backend) / n
    calls = call_cost(measured, n)
    rows, breaks = _attribute(steps, table, precisions, per_iter, edges, edge_ns, backend, calls)
    instructions = pd.DataFrame(rows, columns=_INSTR_COLUMNS)
    return FallbackReport(
        model=trace.model,
        measured=n,
        run_model_ms=run_model_ms,
        precisions=precisions,
        partitions=sum(s.kind == "delegate" for s in steps),
        breaks=len(breaks),
        portable_instructions=sum(s.kind == "operator" for s in steps),
        causes=_cause_frame(instructions, run_model_ms, backend),
        break_table=pd.DataFrame(breaks, columns=list(BREAK_COLUMNS)),
        instructions=instructions,
        executorch=table.executorch,
        backend=backend,
        calls=calls,
        facts=program_facts(trace),
    )


_INSTR_COLUMNS = [
    "instruction",
    "op",
    "class",
    "where",
    "run",
    "cause_instruction",
    "cause_op",
    "decomposed_from",
    SUPPORT,
    "modules",
    "own_ms",
    "boundary_ms",
    "calls_ms",
]


def _per_instruction_ns(trace: Trace, n: int) -> dict[str, pd.Series]:
    """Mean ns per iteration, by instruction id, of each kind of event."""

    def total(kind: str) -> pd.Series:
        sel = trace.of_kind(kind)
        return group_sum(sel["instruction_id"], sel["duration_ns"]) / n

    return {k: total(k) for k in (OPERATOR_CALL, KERNEL, DELEGATE_CALL, DELEGATE_OP)}


def _runs(steps: list[Step]) -> list[tuple[int | None, int | None, list[Step]]]:
    """Maximal runs of operator steps with the delegate ids before and after them."""
    out: list[tuple[int | None, int | None, list[Step]]] = []
    prev: int | None = None
    current: list[Step] = []
    for s in steps:
        if s.kind == "delegate":
            if current:
                out.append((prev, s.id, current))
            prev, current = s.id, []
        else:
            current.append(s)
    if current:
        out.append((prev, None, current))
    return out


def _attribute(
    steps: list[Step],
    table: SupportTable,
    precisions: tuple[str, ...],
    t: dict[str, pd.Series],
    edges: dict[int, BlockEdges],
    edge_ns: pd.DataFrame,
    backend: Backend,
    calls: CallCost,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def own_ns(iid: int) -> float:
        v = t[OPERATOR_CALL].get(iid)
        return float(v) if v is not None else float(t[KERNEL].get(iid, 0.0))

    def overhead_ns(iid: int) -> float:
        return float(t[DELEGATE_CALL].get(iid, 0.0)) - float(t[DELEGATE_OP].get(iid, 0.0))

    def edge(iid: int | None, col: str) -> float:
        return float(edge_ns.at[iid, col]) if iid is not None and iid in edge_ns.index else 0.0

    glue_kernels = backend.glue_kernels()
    has_delegate = any(s.kind == "delegate" for s in steps)
    program_ops = [s.name for s in steps if s.kind == "operator"]
    info: dict[int, dict[str, Any]] = {}
    runs = _runs(steps)
    for index, (prev, nxt, run) in enumerate(runs):
        where = (
            "no delegate"
            if not has_delegate
            else "before first partition"
            if prev is None
            else "after last partition"
            if nxt is None
            else "graph break"
        )
        for s in run:
            support = lookup(table, s.name)
            cls = classify(s, support, precisions, glue_kernels)
            if where == "graph break" and all(
                classify(o, None, precisions, glue_kernels) == GLUE for o in run
            ):  # glue alone between two partitions: it is the cause, judge it as an operator
                cls = classify(s, support, precisions, glue_kernels, glue=False)
            label = decomposed_label(
                s, edges.get(prev) if prev is not None else None, program_ops, backend
            )
            info[s.id] = {
                "instruction": s.id,
                "op": s.name,
                "class": cls,
                "where": where,
                "run": index,
                "decomposed_from": label,
                SUPPORT: ", ".join(support.precisions) if support else "",
                "modules": ", ".join(s.modules),
                "own_ms": own_ns(s.id) / 1e6,
                "boundary_ms": 0.0,
                "calls_ms": 0.0,
                "_modules": set(s.modules),
            }
    causes_all = [i for i in info.values() if i["class"] != GLUE]
    breaks: list[dict[str, Any]] = []
    for prev, nxt, run in runs:
        rows = [info[s.id] for s in run]
        real = [r for r in rows if r["class"] != GLUE]
        for row in rows:
            if row["class"] != GLUE:
                cause = row
            else:  # glue serves the cause of its module, else the run's first cause
                cause = (
                    _by_module(row, real)
                    or _by_module(row, causes_all)
                    or (real[0] if real else row)
                )
            row["cause_instruction"], row["cause_op"] = cause["instruction"], cause["op"]
        causes = real or rows  # glue outside any break and serving no cause: its own cause
        if prev is None or nxt is None:
            continue
        glue_ms = (edge(prev, "tail_glue_ns") + edge(nxt, "head_glue_ns")) / 1e6
        call_ms = min(overhead_ns(nxt), calls.fixed_ns) / 1e6  # a merge removes one call
        for c in causes:
            c["boundary_ms"] += glue_ms / len(causes)
            c["calls_ms"] += call_ms / len(causes)
        portable_ms = sum(info[s.id]["own_ms"] for s in run)
        labels = sorted({c["decomposed_from"] for c in causes} - {""})
        breaks.append(
            {
                "break": len(breaks) + 1,
                "after": prev,
                "before": nxt,
                "ops": ", ".join(_counted(_bare(s.name) for s in run)),
                "causes": ", ".join(_counted(_bare(c["op"]) for c in causes))
                + (f" ({', '.join(labels)})" if labels else ""),
                "portable_ms": portable_ms,
                "boundary_ms": glue_ms,
                "calls_ms": call_ms,
                "total_ms": portable_ms + glue_ms + call_ms,
            }
        )
    out = [
        {k: v for k, v in info[s.id].items() if not k.startswith("_")}
        for s in steps
        if s.kind == "operator"
    ]
    return out, breaks


def _by_module(row: dict[str, Any], causes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cause that shares an nn.Module with the glue `row` (e.g. a constant's _to_copy)."""
    if not row["_modules"]:
        return None
    for c in causes:
        if c is not row and row["_modules"] & c["_modules"]:
            return c
    return None


def _bare(op: str) -> str:
    """ "aten::div.out" -> "div.out": the table's cause label (the JSON keeps the full name)."""
    return op.split("::")[-1]


def _counted(names: Any) -> list[str]:
    return [f"{name} x{k}" if k > 1 else name for name, k in Counter(names).items()]


def _cause_frame(instr: pd.DataFrame, run_model_ms: float, backend: Backend) -> pd.DataFrame:
    if instr.empty:
        return pd.DataFrame(
            {
                c: pd.Series(dtype="float64" if c.endswith(("ms", "pct")) else object)
                for c in CAUSE_COLUMNS
            }
        )
    rows = []
    causes = instr[instr["cause_instruction"] == instr["instruction"]]
    keys = ["op", "class", "decomposed_from"]
    for (op, cls, label), group in causes.groupby(keys, sort=False):
        ids = set(group["instruction"])
        served = instr[instr["cause_instruction"].isin(ids)]
        portable = float(served["own_ms"].sum())
        glue = float(group["boundary_ms"].sum())
        call = float(group["calls_ms"].sum())
        total = portable + glue + call
        rows.append(
            {
                "cause": f"{_bare(op)} ({label})" if label else _bare(op),
                "op": op,
                "decomposed_from": label,
                "class": cls,
                "why": class_label(cls, backend),
                SUPPORT: group[SUPPORT].iloc[0],
                "count": len(group),
                "glue": len(served) - len(group),
                "breaks": int(group.loc[group["where"] == "graph break", "run"].nunique()),
                "portable_ms": portable,
                "boundary_ms": glue,
                "calls_ms": call,
                "total_ms": total,
                "share_pct": 100.0 * total / run_model_ms if run_model_ms else 0.0,
            }
        )
    frame = pd.DataFrame(rows, columns=list(CAUSE_COLUMNS))
    return frame.sort_values(["total_ms", "cause"], ascending=[False, True]).reset_index(drop=True)


__all__ = [
    "CLASS_LABELS",
    "CONSTRAINT",
    "GLUE",
    "PRECISION",
    "PRECISION_LABELS",
    "UNSUPPORTED",
    "Comparison",
    "FallbackOptions",
    "FallbackReport",
    "explain_fallbacks",
    "target_backend",
]
