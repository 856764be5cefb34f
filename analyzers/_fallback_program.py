"""The program-level facts the fallback explainer reasons on, read from a trace only.

- the program order of operator and delegate instructions (from the instruction table in the
  trace's metadata, or rebuilt from one iteration's events when there is none);
- what each portable instruction is with respect to the target backend (glue, unsupported,
  supported only at another precision, or supported but not taken), from its support table;
- the program's precision, from the quantize ops and the backend's operator names;
- each delegate block's edges: the glue and element-wise operators the backend runs at the start
  and end of a block, where the layout and precision changes of a partition boundary sit.

No torch, no executorch: everything comes from the trace and the target backend
(etprof.backends: `Backend.support_table`, `glue_kernels`, `is_glue`, `is_elementwise`,
`program_precisions`, `decomposed_label`); no backend's naming is matched here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from etprof.backends import Backend
from etprof.backends.support import OpSupport, SupportTable
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, KERNEL, OPERATOR_CALL, Trace
from etprof.util.grouping import group_cumcount, group_sum

GLUE = "glue"
UNSUPPORTED = "unsupported"
PRECISION = "precision"
CONSTRAINT = "constraint"
# what each class means, "{backend}" standing for the target backend's label (class_label)
CLASS_LABELS = {
    GLUE: "layout/constant glue",
    UNSUPPORTED: "not supported by {backend}",
    PRECISION: "supported by {backend} only at another precision",
    CONSTRAINT: "supported by {backend}, this instance not taken",
}


def class_label(cls: str, backend: Backend) -> str:
    """ "not supported by XYZ": what class `cls` means for the target backend."""
    return CLASS_LABELS[cls].format(backend=backend.label)


@dataclass(frozen=True)
class Step:
    """One operator or delegate instruction, in program order."""

    id: int
    kind: str  # "operator" | "delegate"
    name: str  # "aten::div.out" (or "div.out" when rebuilt from events); a delegate: backend id
    modules: tuple[str, ...] = ()


def kernel_base(name: str) -> str:
    """ "aten::div.out" -> "div"; "div.out" -> "div"."""
    return name.split("::")[-1].split(".")[0]


def program_steps(trace: Trace) -> list[Step]:
    """Operator and delegate instructions in program order."""
    table = [i for i in trace.meta.program.instructions if i.kind in ("operator", "delegate")]
    if table:
        return [Step(i.id, i.kind, i.name, tuple(i.modules)) for i in table]
    ev = trace.events
    first = ev.loc[ev["iteration"] >= 0, "iteration"]
    if first.empty:
        return []
    one = ev[ev["iteration"] == int(first.min())]
    kernels = (
        one[one["kind"] == KERNEL].groupby("instruction_id")["op"].first().astype(str).to_dict()
    )
    steps: dict[int, Step] = {}
    for row in one[one["kind"].isin([OPERATOR_CALL, DELEGATE_CALL])].itertuples():
        iid = int(row.instruction_id)
        if row.kind == DELEGATE_CALL:
            steps[iid] = Step(iid, "delegate", str(row.op) or "delegate")
        else:
            steps[iid] = Step(iid, "operator", kernels.get(iid, str(row.op)) or "?")
    return [steps[i] for i in sorted(steps)]


def lookup(table: SupportTable, name: str) -> OpSupport | None:
    found = table.lookup(name)
    if found is None and "::" not in name:  # rebuilt from kernel names: no namespace
        for candidate in (
            f"aten::{name}",
            f"quantized_decomposed::{name}",
            f"dim_order_ops::{name}",
        ):
            found = table.lookup(candidate)
            if found is not None:
                break
    return found


def program_precisions(trace: Trace, steps: list[Step], backend: Backend) -> tuple[str, ...]:
    """The quantization schemes the program uses, or ("fp32",) when it uses none."""
    ops = [str(o) for o in trace.of_kind(DELEGATE_OP)["op"].unique()]
    return backend.program_precisions(
        ops, [kernel_base(s.name) for s in steps if s.kind == "operator"]
    )


def classify(
    step: Step,
    support: OpSupport | None,
    precisions: tuple[str, ...],
    glue_kernels: frozenset[str],
    glue: bool = True,
) -> str:
    """Why `step` can be on a portable kernel, as far as the backend's support table tells
    (`glue_kernels`: its glue). With glue=False a glue kernel is judged like any operator (it
    breaks the graph by itself)."""
    if glue and kernel_base(step.name) in glue_kernels:
        return GLUE
    if support is None:
        return UNSUPPORTED
    quantized = [p for p in precisions if p != "fp32"]
    if quantized and not set(quantized) & set(support.precisions):
        return PRECISION
    if not quantized and "fp32" not in support.precisions:
        return PRECISION
    return CONSTRAINT


@dataclass(frozen=True)
class BlockEdges:
    """The delegate operators of one delegate block, and which positions form its edges."""

    ops: tuple[str, ...]
    head: frozenset[int]  # positions of the leading glue/element-wise operators
    tail: frozenset[int]  # positions of the trailing ones (never overlapping head)

    def tail_ops(self) -> tuple[str, ...]:
        """The operators at the block's end (glue and element-wise), in order."""
        return tuple(self.ops[pos] for pos in sorted(self.tail))


def block_edges(trace: Trace, backend: Backend) -> dict[int, BlockEdges]:
    """Per delegate instruction, its operators (from the first measured iteration) and edges
    (the backend's glue and element-wise operators)."""
    ops = trace.executed(DELEGATE_OP)
    if ops.empty:
        return {}
    one = ops[ops["iteration"] == int(ops["iteration"].min())].sort_values(["run", "seq"])
    out: dict[int, BlockEdges] = {}
    for iid, group in one.groupby("instruction_id", sort=True):
        names = tuple(group["op"].astype(str))
        edge = [backend.is_glue(n) or backend.is_elementwise(n) for n in names]
        head = 0
        while head < len(names) and edge[head]:
            head += 1
        tail = len(names)
        while tail > head and edge[tail - 1]:
            tail -= 1
        out[int(iid)] = BlockEdges(
            names, frozenset(range(head)), frozenset(range(tail, len(names)))
        )
    return out


def edge_glue_ns(trace: Trace, edges: dict[int, BlockEdges], backend: Backend) -> pd.DataFrame:
    """Per delegate instruction: total ns of the glue operators at its head and at its tail."""
    ops = _in_trace_order(trace.executed(DELEGATE_OP))
    cols = {"head_glue_ns": 0, "tail_glue_ns": 0}
    if ops.empty:
        return pd.DataFrame(columns=list(cols), dtype="int64")
    ids = ops["instruction_id"].to_numpy(np.int64)
    it = ops["iteration"].to_numpy(np.int64)
    # each operator's position in its block's call (per iteration)
    pos = group_cumcount(
        (it - it.min()) * (int(ids.max()) - int(ids.min()) + 1) + (ids - ids.min())
    )
    glue = backend.glue_mask(ops["op"])
    # Whole-array membership instead of a Python test per event (a 1000-iteration trace has
    # ~280k operator events but only a few hundred (instruction, position) edge entries):
    # each (instruction, position) pair becomes one int64 key, matched with np.isin.
    low = min(int(ids.min()), min(edges, default=0))
    width = 1 + max([int(pos.max())] + [p for e in edges.values() for p in (*e.head, *e.tail)])
    key = (ids - low) * width + pos

    def keys(side: str) -> np.ndarray:
        return np.array(
            [(i - low) * width + p for i, e in edges.items() for p in getattr(e, side)],
            dtype=np.int64,
        )

    dur = ops["duration_ns"].to_numpy(np.int64)
    out = pd.DataFrame(
        {
            "head_glue_ns": group_sum(ids, np.where(glue & np.isin(key, keys("head")), dur, 0)),
            "tail_glue_ns": group_sum(ids, np.where(glue & np.isin(key, keys("tail")), dur, 0)),
        }
    )
    out.index.name = "instruction_id"
    return out


def _in_trace_order(ev: pd.DataFrame) -> pd.DataFrame:
    """Events sorted by (run, seq), skipping the sort when they already are (the reader's
    order)."""
    run, seq = ev["run"].to_numpy(np.int64), ev["seq"].to_numpy(np.int64)
    if run.size < 2 or bool(
        ((run[1:] > run[:-1]) | ((run[1:] == run[:-1]) & (seq[1:] > seq[:-1]))).all()
    ):
        return ev
    return ev.sort_values(["run", "seq"])


def decomposed_label(
    step: Step, before: BlockEdges | None, program_ops: list[str], backend: Backend
) -> str:
    """ "hardswish" when `step` is the portable piece of a decomposition the backend recognises
    (judged by the block before it, or by the program's other portable operators), else ""."""
    return backend.decomposed_label(
        step.name, before.tail_ops() if before is not None else (), program_ops
    )
