"""Time per nn.Module path, when the trace knows the program's module paths (from an ETRecord).

Each instruction's time goes to one module: the deepest module that contains all the graph nodes
behind the instruction (``Instruction.modules`` in the trace metadata). A portable kernel call
has one node, so it lands on its own module; a delegate call covering ``features.3.conv.0`` and
``features.3.conv.1`` lands on ``features.3.conv``, and one covering the whole network lands on
the root. XNNPACK operators inherit their DELEGATE_CALL's instruction (their events do not say
which graph nodes they came from). Because every instruction lands on exactly one module, the
table sums, with the runtime-overhead row, to run model exactly: nothing is split or counted
twice. Times per measured iteration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from etprof.analyzers import analyzer
from etprof.backends import resolve
from etprof.program.types import Instruction
from etprof.result import records
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, OPERATOR_CALL, RUN_MODEL, Trace
from etprof.units import ms_text

ROOT = "(root)"
UNKNOWN = "(unknown)"
RUNTIME = "(runtime overhead)"
COLUMNS = (
    "module",
    "calls",
    "delegated_ms",
    "portable_ms",
    "total_ms",
    "share_pct",
    "cum_share_pct",
)


@dataclass(frozen=True)
class ModuleOptions:
    warmup: int | None = None


@dataclass(frozen=True)
class ModuleTable:
    model: str
    measured: int
    known: bool  # False: the trace has no module paths (no ETRecord was found or given)
    frame: pd.DataFrame  # COLUMNS, most expensive first, the runtime-overhead row last
    placement: Placement = field(default_factory=lambda: Placement())

    schema = "etprof.modules"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"modules": self.frame}

    def run_model_ns(self) -> float:
        return float(self.frame["total_ms"].sum()) * 1e6

    def notes(self) -> list[str]:
        if self.known:
            p = self.placement
            if p.unplaced_ns <= 0:
                return []
            total = self.run_model_ns()
            where = ", ".join(
                f"{m} {ms_text(ns / 1e6)}"
                for m, ns in sorted(p.unplaced_by_module.items(), key=lambda kv: -kv[1])
            )
            placed = (
                f"; {ms_text(p.placed_ns / 1e6)} of operator time went to the operators' "
                "own modules"
                if p.placed_ns
                else ""
            )
            note = (
                f"{ms_text(p.unplaced_ns / 1e6)} ({100.0 * p.unplaced_ns / total:.1f}% of "
                "run model) of delegate time could not be placed below the common module of "
                f"its delegate's nodes ({where}): delegate overhead, and operators the "
                f"delegate's graph does not tie to a module's node{placed}"
            )
            return [note]
        note = (
            "module paths are unknown for this trace (no ETRecord was found when it was "
            "recorded): every instruction is listed under (unknown); pass --pte and "
            "--etrecord, or record with the ETRecord beside the .pte"
        )
        return [note]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "measured": self.measured,
            "known": self.known,
            "modules": records(self.frame),
            **self.placement_dict(),
        }

    def placement_dict(self) -> dict[str, Any]:
        p = self.placement
        total = self.run_model_ns()
        return {
            "placed_ms": p.placed_ns / 1e6,
            "unplaced_ms": p.unplaced_ns / 1e6,
            "unplaced_pct": 100.0 * p.unplaced_ns / total if total else 0.0,
        }


def instruction_modules(trace: Trace) -> dict[int, tuple[str, ...]]:
    return {i.id: i.modules for i in trace.meta.program.instructions}


def common_module(paths: tuple[str, ...] | list[str]) -> str:
    """The deepest module containing all `paths` ("" for the root), by dotted components."""
    if not paths:
        return ""
    split = [p.split(".") if p else [] for p in paths]
    prefix: list[str] = []
    for parts in zip(*split, strict=False):
        if any(p != parts[0] for p in parts):
            break
        prefix.append(parts[0])
    return ".".join(prefix)


def module_label(paths: tuple[str, ...]) -> str:
    """How a table shows an instruction's module: its common module, (root) or (unknown).

    An empty path is a graph node outside every module (quantize/dequantize nodes inserted by
    quantization, getitems): it does not pull a delegate's time up to the root when the
    delegate also holds nodes of real modules.
    """
    if not paths:
        return UNKNOWN
    named = tuple(p for p in paths if p)
    return common_module(named) or ROOT if named else ROOT


@dataclass(frozen=True)
class Placement:
    """How much delegate time went to the modules of its own operators, and how much stayed on
    the common module of a delegate spanning several (ns per iteration)."""

    placed_ns: float = 0.0  # operator time charged to the operator's own module
    unplaced_ns: float = 0.0  # delegate time left on a common module above the operators'
    unplaced_by_module: dict[str, float] = field(default_factory=dict)


def module_frame(trace: Trace) -> tuple[pd.DataFrame, bool]:
    """The module table over the iterations present in `trace`, and whether paths were known."""
    frame, known, _ = module_table(trace)
    return frame, known


def _operator_modules(trace: Trace, instr: Instruction) -> dict[str, str]:
    """For one delegate instruction, the module of each of its operators (by the runtime's
    event name), where its backend lines them up with its graph's nodes and the node has one."""
    if not instr.graph_modules or not any(instr.graph_modules):
        return {}
    ops = trace.executed(DELEGATE_OP)
    mine = ops[ops["instruction_id"].to_numpy() == instr.id].sort_values("seq")
    names = [str(n) for n in pd.unique(mine["delegate_op"].astype(str))]
    nodes = resolve(instr.name).align(names, instr.graph)
    return {
        name: instr.graph_modules[j]
        for name, j in zip(names, nodes, strict=True)
        if j is not None and j < len(instr.graph_modules) and instr.graph_modules[j]
    }


def module_table(trace: Trace) -> tuple[pd.DataFrame, bool, Placement]:
    """`module_frame`, with how much delegate time could be placed on operators' own modules."""
    n = max(1, trace.iterations_present())
    run_model_ns = float(trace.executed(RUN_MODEL)["duration_ns"].sum()) / n
    table = instruction_modules(trace)
    known = any(table.values())
    calls = trace.executed(DELEGATE_CALL, OPERATOR_CALL)
    # Sum per (instruction, kind) first, on integers and the categorical: a few hundred rows
    # instead of one per call, so the module and side strings are made once per instruction.
    per_instr = (
        calls.groupby([calls["instruction_id"].astype("int64"), "kind"], observed=True)[
            "duration_ns"
        ]
        .sum()
        .reset_index()
    )
    ids = per_instr["instruction_id"]
    labels = {i: module_label(table.get(i, ())) for i in ids.unique().tolist()}
    side = (
        per_instr["kind"].astype(str).map({DELEGATE_CALL: "delegated", OPERATOR_CALL: "portable"})
    )
    frame = pd.DataFrame(
        {
            "module": ids.map(labels),
            "side": side,
            "instruction": ids,
            "ns": per_instr["duration_ns"],
        }
    )
    frame, placement = _place_operators(trace, frame, labels, n)
    ns = (
        frame.groupby(["module", "side"])["ns"]
        .sum()
        .unstack(fill_value=0)
        .reindex(columns=["delegated", "portable"], fill_value=0)
        / n
    )
    out = pd.DataFrame(
        {
            "module": ns.index.astype(str),
            # distinct call instructions; "calls" keeps the header short so module paths fit
            "calls": frame.groupby("module")["instruction"].nunique().reindex(ns.index).to_numpy(),
            "delegated_ms": ns["delegated"].to_numpy() / 1e6,
            "portable_ms": ns["portable"].to_numpy() / 1e6,
            "total_ms": (ns["delegated"] + ns["portable"]).to_numpy() / 1e6,
        }
    )
    out = out.sort_values(["total_ms", "module"], ascending=[False, True])
    runtime_ns = run_model_ns - float(calls["duration_ns"].sum()) / n
    tail = pd.DataFrame(
        [
            {
                "module": RUNTIME,
                "calls": 0,
                "delegated_ms": 0.0,
                "portable_ms": 0.0,
                "total_ms": runtime_ns / 1e6,
            }
        ]
    )
    out = pd.concat([out, tail], ignore_index=True) if len(out) else tail
    out["calls"] = out["calls"].astype("int64")
    out["share_pct"] = 100.0 * out["total_ms"] * 1e6 / run_model_ns if run_model_ns else 0.0
    out["cum_share_pct"] = out["share_pct"].cumsum()
    return out[list(COLUMNS)].reset_index(drop=True), known, placement


def _place_operators(
    trace: Trace, frame: pd.DataFrame, labels: dict[int, str], n: int
) -> tuple[pd.DataFrame, Placement]:
    """Move each delegate operator's time from its instruction's common module to its own
    module, where the delegate's graph ties it to a node of a module; what is left of a call
    spanning several modules (its overhead, operators tied to no node) stays on the common one."""
    by_id = {i.id: i for i in trace.meta.program.instructions}
    ops = trace.executed(DELEGATE_OP)
    moved: list[dict[str, Any]] = []
    placed = unplaced = 0.0
    left: dict[str, float] = {}
    for row in frame[frame["side"] == "delegated"].itertuples(index=False):
        instr = by_id.get(int(row.instruction))
        if instr is None or (len(instr.modules) < 2 and not instr.graph_modules):
            continue
        own = _operator_modules(trace, instr)
        mine = ops[ops["instruction_id"].to_numpy() == instr.id]
        per_name = mine.groupby(mine["delegate_op"].astype(str))["duration_ns"].sum()
        out_ns = 0.0
        for name, ns in per_name.items():
            target = own.get(str(name))
            if target is not None and target != row.module:
                moved.append(
                    {
                        "module": target,
                        "side": "delegated",
                        "instruction": row.instruction,
                        "ns": float(ns),
                    }
                )
                out_ns += float(ns)
        placed += out_ns / n
        rest = float(row.ns) - out_ns
        if len({p for p in instr.modules if p}) > 1:  # spans several modules: rest is unplaced
            unplaced += rest / n
            left[str(row.module)] = left.get(str(row.module), 0.0) + rest / n
        if out_ns:
            moved.append(
                {
                    "module": row.module,
                    "side": "delegated",
                    "instruction": row.instruction,
                    "ns": -out_ns,
                }
            )
    if moved:
        frame = pd.concat([frame, pd.DataFrame(moved)], ignore_index=True)
    return frame, Placement(placed_ns=placed, unplaced_ns=unplaced, unplaced_by_module=left)


@analyzer(
    "modules",
    "run-model time per nn.Module path (needs module paths from an ETRecord)",
    ModuleOptions,
)
def modules(trace: Trace, options: ModuleOptions) -> ModuleTable:
    measured = trace.measured(options.warmup)
    frame, known, placement = module_table(measured)
    n = measured.iterations_present()
    return ModuleTable(model=trace.model, measured=n, known=known, frame=frame, placement=placement)
