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

from dataclasses import dataclass
from typing import Any

import pandas as pd

from etprof.analyzers import analyzer
from etprof.result import records
from etprof.trace import DELEGATE_CALL, OPERATOR_CALL, RUN_MODEL, Trace

ROOT = "(root)"
UNKNOWN = "(unknown)"
RUNTIME = "(runtime overhead)"
COLUMNS = ("module", "calls", "delegated_ms", "portable_ms", "total_ms", "share_pct",
           "cum_share_pct")


@dataclass(frozen=True)
class ModuleOptions:
    warmup: int | None = None


@dataclass(frozen=True)
class ModuleTable:
    model: str
    measured: int
    known: bool  # False: the trace has no module paths (no ETRecord was found or given)
    frame: pd.DataFrame  # COLUMNS, most expensive first, the runtime-overhead row last

    schema = "etprof.modules"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"modules": self.frame}

    def notes(self) -> list[str]:
        if self.known:
            return []
        note = ("module paths are unknown for this trace (no ETRecord was found when it was "
                "recorded): every instruction is listed under (unknown); pass --pte and "
                "--etrecord, or record with the ETRecord beside the .pte")
        return [note]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "measured": self.measured, "known": self.known,
                "modules": records(self.frame)}


def instruction_modules(trace: Trace) -> dict[int, tuple[str, ...]]:
    return {i.id: i.modules for i in trace.meta.program.instructions}


def common_module(paths: tuple[str, ...] | list[str]) -> str:
    """The deepest module containing all `paths` ("" for the root), by dotted components."""
    if not paths:
        return ""
    split = [p.split(".") if p else [] for p in paths]
    prefix: list[str] = []
    for parts in zip(*split):
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


def module_frame(trace: Trace) -> tuple[pd.DataFrame, bool]:
    """The module table over the iterations present in `trace`, and whether paths were known."""
    n = max(1, trace.iterations_present())
    run_model_ns = float(trace.executed(RUN_MODEL)["duration_ns"].sum()) / n
    table = instruction_modules(trace)
    known = any(table.values())
    calls = trace.executed(DELEGATE_CALL, OPERATOR_CALL)
    # Sum per (instruction, kind) first, on integers and the categorical: a few hundred rows
    # instead of one per call, so the module and side strings are made once per instruction.
    per_instr = (calls.groupby([calls["instruction_id"].astype("int64"), "kind"], observed=True)
                 ["duration_ns"].sum().reset_index())
    ids = per_instr["instruction_id"]
    labels = {i: module_label(table.get(i, ())) for i in ids.unique().tolist()}
    side = per_instr["kind"].astype(str).map({DELEGATE_CALL: "delegated",
                                              OPERATOR_CALL: "portable"})
    frame = pd.DataFrame({"module": ids.map(labels), "side": side, "instruction": ids,
                          "ns": per_instr["duration_ns"]})
    ns = (frame.groupby(["module", "side"])["ns"].sum().unstack(fill_value=0)
          .reindex(columns=["delegated", "portable"], fill_value=0) / n)
    out = pd.DataFrame({
        "module": ns.index.astype(str),
        # distinct call instructions; "calls" keeps the header short so module paths fit
        "calls": frame.groupby("module")["instruction"].nunique().reindex(ns.index).to_numpy(),
        "delegated_ms": ns["delegated"].to_numpy() / 1e6,
        "portable_ms": ns["portable"].to_numpy() / 1e6,
        "total_ms": (ns["delegated"] + ns["portable"]).to_numpy() / 1e6,
    })
    out = out.sort_values(["total_ms", "module"], ascending=[False, True])
    runtime_ns = run_model_ns - float(calls["duration_ns"].sum()) / n
    tail = pd.DataFrame([{"module": RUNTIME, "calls": 0, "delegated_ms": 0.0,
                          "portable_ms": 0.0, "total_ms": runtime_ns / 1e6}])
    out = pd.concat([out, tail], ignore_index=True) if len(out) else tail
    out["calls"] = out["calls"].astype("int64")
    out["share_pct"] = 100.0 * out["total_ms"] * 1e6 / run_model_ns if run_model_ns else 0.0
    out["cum_share_pct"] = out["share_pct"].cumsum()
    return out[list(COLUMNS)].reset_index(drop=True), known


@analyzer("modules", "run-model time per nn.Module path (needs module paths from an ETRecord)",
          ModuleOptions)
def modules(trace: Trace, options: ModuleOptions) -> ModuleTable:
    measured = trace.measured(options.warmup)
    frame, known = module_frame(measured)
    n = measured.iterations_present()
    return ModuleTable(model=trace.model, measured=n, known=known, frame=frame)
