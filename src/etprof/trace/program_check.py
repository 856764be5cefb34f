"""Whether a program (a `--pte`, or a sidecar's table) can have produced a trace, beyond the
instruction kinds :func:`etprof.trace.loading.check_program_matches` checks first.

A program that is one delegate call has one instruction, so any other single-call program
passes the kind check. Two more checks tell them apart, per method of the trace:

- every operator and delegate instruction of the method ran (when its chain has no jumps, each
  Execute runs each instruction), so a program with instructions the trace never ran is refused;
- the operators one call of each delegate ran, in order, can come from the delegate's serialized
  graph (its backend judges: :meth:`etprof.backends.Backend.graph_mismatch`; XNNPACK lines them
  up with the graph's nodes, etprof.backends.xnnpack_graph), so another model's delegate, or another
  precision's, is refused.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etprof.backends import resolve
from etprof.errors import MismatchError
from etprof.program.types import Instruction
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, OPERATOR_CALL, Trace


def check_structure(trace: Trace, source: str, fix: str) -> None:
    """Refuse `source` (the program's name in the message) when it cannot have made `trace`."""
    program = trace.meta.program
    for method in trace.methods:
        info = program.method_info(method)
        if info is None or not info.instructions:
            continue
        events = trace.events
        if len(trace.methods) > 1:
            events = events[(events["method"] == method).to_numpy()]
        where = f" of method '{method}'" if len(program.all_methods()) > 1 else ""
        head = f"{source} does not match {trace.source}"
        if not any(i.kind == "jump" for i in info.instructions):
            _all_ran(events, info.instructions, f"{head}: the program{where}", fix)
        for instr in info.instructions:
            if instr.kind != "delegate" or not instr.graph:
                continue
            runtime = _first_call(events, instr.id)
            if not runtime:
                continue
            reason = resolve(instr.name).graph_mismatch(runtime, instr.graph)
            if reason:
                raise MismatchError(
                    f"{head}: in its delegate call (instruction {instr.id}{where}) {reason}", fix
                )


def _all_ran(events: pd.DataFrame, table: tuple[Instruction, ...], head: str, fix: str) -> None:
    for kind, wanted in ((DELEGATE_CALL, "delegate"), (OPERATOR_CALL, "operator")):
        ran = events["instruction_id"].to_numpy()[(events["kind"] == kind).to_numpy()]
        if not ran.size:
            continue  # the runner traced no calls of this kind: nothing to count
        seen = set(np.unique(ran).tolist())
        missing = [i for i in table if i.kind == wanted and i.id not in seen]
        if missing:
            total = sum(i.kind == wanted for i in table)
            raise MismatchError(
                f"{head} has {total} {wanted} instructions and "
                f"{len(missing)} of them never ran in the trace (first: instruction "
                f"{missing[0].id}, {missing[0].name})",
                fix,
            )


def _first_call(events: pd.DataFrame, instruction: int) -> list[str]:
    """The operator names the first call of a delegate instruction reported, in order."""
    mine = events[
        (events["instruction_id"] == instruction).to_numpy() & (events["iteration"] >= 0).to_numpy()
    ]
    if not len(mine):
        return []
    first = mine[mine["iteration"] == mine["iteration"].min()]
    ops = first[(first["kind"] == DELEGATE_OP).to_numpy()]
    names: list[str] = ops.sort_values(["run", "seq"])["delegate_op"].astype(str).tolist()
    calls = int((first["kind"] == DELEGATE_CALL).sum())
    if not names or any(not n for n in names):
        return []  # the runtime named its operators another way: nothing to line up
    if calls > 1:
        if len(names) % calls:
            return []
        names = names[: len(names) // calls]
    return names
