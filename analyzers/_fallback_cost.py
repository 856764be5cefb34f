"""What each fallback costs: the portable kernels, the boundary glue and the graph breaks charged
per instruction run, attributed to the causes the support table names."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from etprof.analyzers._fallback_program import (
    GLUE,
    BlockEdges,
    Step,
    class_label,
    classify,
    decomposed_label,
    lookup,
)
from etprof.backends import Backend
from etprof.backends.support import SupportTable
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, KERNEL, OPERATOR_CALL, Trace
from etprof.util.grouping import group_sum

from ._fallback_calls import CallCost

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
INSTR_COLUMNS = [
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


def per_instruction_ns(trace: Trace, n: int) -> dict[str, pd.Series]:
    """Mean ns per iteration, by instruction id, of each kind of event."""

    def total(kind: str) -> pd.Series:
        sel = trace.of_kind(kind)
        return group_sum(sel["instruction_id"], sel["duration_ns"]) / n

    return {k: total(k) for k in (OPERATOR_CALL, KERNEL, DELEGATE_CALL, DELEGATE_OP)}


def runs_of(steps: list[Step]) -> list[tuple[int | None, int | None, list[Step]]]:
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


def attribute(
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
    runs = runs_of(steps)
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
                    by_module(row, real) or by_module(row, causes_all) or (real[0] if real else row)
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
                "ops": ", ".join(counted(bare(s.name) for s in run)),
                "causes": ", ".join(counted(bare(c["op"]) for c in causes))
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


def by_module(row: dict[str, Any], causes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cause that shares an nn.Module with the glue `row` (e.g. a constant's _to_copy)."""
    if not row["_modules"]:
        return None
    for c in causes:
        if c is not row and row["_modules"] & c["_modules"]:
            return c
    return None


def bare(op: str) -> str:
    """ "aten::div.out" -> "div.out": the table's cause label (the JSON keeps the full name)."""
    return op.split("::")[-1]


def counted(names: Any) -> list[str]:
    return [f"{name} x{k}" if k > 1 else name for name, k in Counter(names).items()]


def cause_frame(instr: pd.DataFrame, run_model_ms: float, backend: Backend) -> pd.DataFrame:
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
                "cause": f"{bare(op)} ({label})" if label else bare(op),
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
