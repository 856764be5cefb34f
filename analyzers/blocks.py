"""Per delegate block: each DELEGATE_CALL instruction, the operators inside it, its overhead.

A block is keyed by its instruction id: a backend may number operators afresh in every delegate
(XNNPACK's ``Convert (NC) #1`` names a different operator in each block). Delegate operator
events carry the instruction id of the DELEGATE_CALL that ran them; a trace holds one method
here (instruction ids are per method).

Times are per measured iteration (the total over those iterations divided by their number), so
a block's operators plus its overhead equal its DELEGATE_CALL time exactly. The overhead is a
subtraction and may come out negative (see docs/attribution.md, "whole microseconds");
``below_res_ms`` says how much of it may be operators below the backend's timer resolution.
A call that recorded no operator event at all is an opaque block of its backend (OpenVINO's
every call): its time is ``opaque_ms``, not overhead, and its one row in the block operators is
OPAQUE_EVENT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._delegate_calls import opaque_calls
from etprof.analyzers.buckets import delegate_backends, glue_flags, unresolved_by_instruction
from etprof.analyzers.modules import instruction_modules, module_label
from etprof.result import records
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, RUN_MODEL, Trace
from etprof.util.grouping import group_codes, group_count, group_first, group_min, group_sum

OVERHEAD_EVENT = "(delegate overhead)"
OPAQUE_EVENT = "(no operator events)"
BLOCK_COLUMNS = (
    "instruction",
    "backend",
    "ops",
    "main_ops",
    "module",
    "call_ms",
    "compute_ms",
    "glue_ms",
    "opaque_ms",
    "overhead_ms",
    "below_res_ms",
    "share_pct",
)
OP_COLUMNS = ("instruction", "event", "part", "count", "mean_ms", "block_share_pct", "share_pct")


@dataclass(frozen=True)
class BlockOptions:
    warmup: int | None = None


@dataclass(frozen=True)
class BlockTable:
    model: str
    measured: int
    run_model_ms: float
    blocks: pd.DataFrame  # one row per delegate instruction: BLOCK_COLUMNS
    operators: pd.DataFrame  # one row per operator event of a block, plus its overhead: OP_COLUMNS
    negative: pd.DataFrame  # (instruction, iteration, overhead_ns) where the overhead is < 0

    schema = "etprof.blocks"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"delegate blocks": self.blocks, "block operators": self.operators}

    def notes(self) -> list[str]:
        return negative_overhead_notes(self.negative, self.measured)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "measured": self.measured,
            "run_model_ms": self.run_model_ms,
            "blocks": records(self.blocks),
            "block_operators": records(self.operators),
        }


def negative_overhead_notes(negative: pd.DataFrame, measured: int) -> list[str]:
    if negative.empty:
        return []
    worst = int(negative["overhead_ns"].min())
    blocks = negative["instruction"].nunique()
    note = (
        f"{len(negative)} of the measured block calls ({blocks} block(s)) have a negative "
        f"delegate overhead, down to {worst / 1e3:.3f} us: the delegate (XNNPACK) times its "
        "operators itself, in "
        "whole microseconds and on its own clock, so they can add up to a little more than the "
        "DELEGATE_CALL the runtime measured; the overhead is kept negative, not clipped, so the "
        "buckets still sum exactly."
    )
    return [note]


def _empty(columns: tuple[str, ...], strings: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c in strings else "float64") for c in columns}
    )


def block_tables(trace: Trace) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(blocks, block operators, negative overheads) over the iterations present in `trace`."""
    n = max(1, trace.iterations_present())
    run_model_ns = float(trace.executed(RUN_MODEL)["duration_ns"].sum()) / n
    calls = trace.executed(DELEGATE_CALL)
    ops = trace.executed(DELEGATE_OP)
    if calls.empty:
        return (
            _empty(BLOCK_COLUMNS, ("backend", "main_ops", "module")),
            _empty(OP_COLUMNS, ("event", "part")),
            pd.DataFrame({"instruction": [], "iteration": [], "overhead_ns": []}),
        )
    glue = glue_flags(ops, delegate_backends(trace))
    # `op`, `event` and `part` stay categorical (grouped with observed=True): one string per
    # row, made and hashed, cost more than the rest of the table on long traces.
    part = pd.Categorical.from_codes(glue.astype(np.int8), categories=["compute", "glue"])
    ops = ops.assign(part=part, event=ops["delegate_op"])
    c_iid = calls["instruction_id"].to_numpy(np.int64)
    o_iid = ops["instruction_id"].to_numpy(np.int64)
    c_dur = calls["duration_ns"].to_numpy(np.int64)
    o_dur = ops["duration_ns"].to_numpy(np.int64)
    neg = _negative_overheads(calls, ops)

    call_ns = group_sum(c_iid, c_dur).astype(float) / n
    opaque_ns = (
        group_sum(c_iid, np.where(opaque_calls(calls, ops), c_dur, 0)).astype(float) / n
    ).reindex(call_ns.index, fill_value=0.0)
    parts = (
        pd.DataFrame(
            {
                "compute": group_sum(o_iid, np.where(glue, 0, o_dur)),
                "glue": group_sum(o_iid, np.where(glue, o_dur, 0)),
            }
        ).reindex(index=call_ns.index, fill_value=0)
        / n
    )
    counts = group_count(o_iid).reindex(call_ns.index, fill_value=0) / n
    ids, first = np.unique(c_iid, return_index=True)
    backend = pd.Series(calls["op"].to_numpy()[first].astype(str), index=ids)
    main = _main_ops(ops, n)
    modules = instruction_modules(trace)
    share = 100.0 / run_model_ns if run_model_ns else 0.0
    frame = pd.DataFrame(
        {
            "instruction": call_ns.index.astype("int64"),
            "backend": [b or "(unknown)" for b in backend.reindex(call_ns.index)],
            "ops": counts.to_numpy(),
            "main_ops": [main.get(i, OPAQUE_EVENT) for i in call_ns.index],
            "module": [module_label(modules.get(int(i), ())) for i in call_ns.index],
            "call_ms": call_ns.to_numpy() / 1e6,
            "compute_ms": parts["compute"].to_numpy() / 1e6,
            "glue_ms": parts["glue"].to_numpy() / 1e6,
            "opaque_ms": opaque_ns.to_numpy() / 1e6,
            "overhead_ms": (call_ns - parts["compute"] - parts["glue"] - opaque_ns).to_numpy()
            / 1e6,
            # of overhead_ms, what may be operators below the backend's timer resolution (the
            # buckets' delegate_unresolved, per block)
            "below_res_ms": (
                unresolved_by_instruction(trace).reindex(call_ns.index, fill_value=0).to_numpy()
                / n
                / 1e6
            ),
            "share_pct": call_ns.to_numpy() * share,
        }
    )
    return frame[list(BLOCK_COLUMNS)], _operator_rows(ops, call_ns, opaque_ns, n, share), neg


def with_opaque(columns: list[str], blocks: pd.DataFrame) -> list[str]:
    """`columns` with the blocks' opaque time before their overhead, when some call had no
    operator events (the column stays out of the tables of backends that always have some)."""
    if "opaque_ms" not in blocks or not blocks["opaque_ms"].any():
        return columns
    at = columns.index("overhead_ms")
    return [*columns[:at], "opaque_ms", *columns[at:]]


def _negative_overheads(calls: pd.DataFrame, ops: pd.DataFrame) -> pd.DataFrame:
    """The (instruction, iteration) pairs whose call took less than its operators summed (a
    clock or nesting problem worth a warning), with that negative overhead in ns."""
    c_it = calls["iteration"].to_numpy(np.int64)
    o_it = ops["iteration"].to_numpy(np.int64)
    low = int(min(c_it.min(), o_it.min(initial=c_it.min())))
    width = int(max(c_it.max(), o_it.max(initial=c_it.max()))) - low + 1

    def key(ev: pd.DataFrame, it: np.ndarray) -> np.ndarray:
        return np.asarray(ev["instruction_id"].to_numpy(np.int64) * width + (it - low))

    per_call = group_sum(key(calls, c_it), calls["duration_ns"])
    per_op = group_sum(key(ops, o_it), ops["duration_ns"]).reindex(per_call.index, fill_value=0)
    overhead = per_call - per_op
    bad = overhead[overhead < 0]
    keys = bad.index.to_numpy(np.int64)
    return pd.DataFrame(
        {
            "instruction": keys // width,
            "iteration": keys % width + low,
            "overhead_ns": bad.to_numpy(),
        }
    )


def _operator_rows(
    ops: pd.DataFrame, call_ns: pd.Series, opaque_ns: pd.Series, n: int, share: float
) -> pd.DataFrame:
    """One row per operator event of each block (in execution order), then the block's opaque
    calls (when some recorded no operator event), then its overhead."""
    grouped = _by_instruction_and(ops, "event")
    grouped["part"] = ops["part"].to_numpy()[grouped["first"].to_numpy()]
    grouped = grouped.sort_values(["instruction_id", "seq"], kind="stable")
    by_block: dict[int, list[Any]] = {}  # a few rows per block: one pass, no sub-frames
    for r in grouped.itertuples(index=False):
        by_block.setdefault(int(r.instruction_id), []).append(r)
    rows = []
    for instr, block_ns in call_ns.items():
        ops_ns = 0.0
        for r in by_block.get(int(instr), ()):
            ns = float(r.total) / n
            ops_ns += ns
            rows.append(
                (
                    int(instr),
                    str(r.event),
                    str(r.part),
                    r.count / n,
                    ns / 1e6,
                    100.0 * ns / block_ns if block_ns else 0.0,
                    ns * share,
                )
            )
        opaque = float(opaque_ns.get(instr, 0.0))
        if opaque:
            rows.append(
                (
                    int(instr),
                    OPAQUE_EVENT,
                    "opaque",
                    1.0,
                    opaque / 1e6,
                    100.0 * opaque / block_ns if block_ns else 0.0,
                    opaque * share,
                )
            )
        rest = float(block_ns) - ops_ns - opaque
        rows.append(
            (
                int(instr),
                OVERHEAD_EVENT,
                "overhead",
                1.0,
                rest / 1e6,
                100.0 * rest / block_ns if block_ns else 0.0,
                rest * share,
            )
        )
    return pd.DataFrame(rows, columns=list(OP_COLUMNS))


def _by_instruction_and(ops: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per (instruction, value of categorical `column`) present: the value, its event count,
    total ns, smallest seq and first row; sorted by instruction then category code."""
    cat = ops[column].array
    codes = np.asarray(cat.codes, dtype=np.int64) + 1  # -1 (missing) becomes 0
    iid = ops["instruction_id"].to_numpy(np.int64)
    keys, groups = group_codes(iid * (len(cat.categories) + 1) + codes)
    k = keys.size
    first = group_first(groups, k)
    return pd.DataFrame(
        {
            "instruction_id": iid[first],
            column: cat.take(first),
            "count": np.bincount(groups, minlength=k).astype(np.int64),
            "total": group_sum(groups, ops["duration_ns"]).to_numpy(),  # every group has rows
            "seq": group_min(groups, k, ops["seq"]),
            "first": first,
        }
    )


def _main_ops(ops: pd.DataFrame, n: int, limit: int = 3) -> dict[int, str]:
    """Per block, its most expensive operator types: "Convolution (NHWC, QC8) IGEMM x3, ..."."""
    by_op = _by_instruction_and(ops, "op").rename(columns={"total": "sum", "count": "size"})
    by_op["op"] = by_op["op"].astype(str)  # ties sort by name, not by category order
    by_op = by_op.sort_values(
        ["instruction_id", "sum", "size", "op"], ascending=[True, False, False, True]
    )
    out = {}
    for instr, group in by_op.groupby("instruction_id", sort=False):
        parts = [
            f"{op} x{round(size / n)}"
            for op, size in zip(group["op"][:limit], group["size"][:limit], strict=False)
        ]
        more = len(group) - limit
        out[int(instr)] = ", ".join(parts) + (f", +{more} more" if more > 0 else "")
    return out


@analyzer("blocks", "each delegate block (DELEGATE_CALL): its operators and overhead", BlockOptions)
def blocks(trace: Trace, options: BlockOptions) -> BlockTable:
    measured = trace.measured(options.warmup)
    frame, ops, negative = block_tables(measured)
    n = measured.iterations_present()
    rm = measured.executed(RUN_MODEL)["duration_ns"].sum() / max(1, n) / 1e6
    return BlockTable(
        model=trace.model,
        measured=n,
        run_model_ms=rm,
        blocks=frame,
        operators=ops,
        negative=negative,
    )
