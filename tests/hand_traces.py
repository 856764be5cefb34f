"""Hand-built traces of programs etprof's own samples do not cover: several methods, several
backends, a backend that is not XNNPACK. Each is an ETDump written by tests/etdump_builder.py
plus a sidecar whose instruction tables stand in for the `.pte`'s (what `etprof run` records).

Times are chosen so that every figure can be computed by hand: an event's duration is a
whole number of microseconds, distinct per method, iteration and instruction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from etprof.program.types import Instruction, MethodInfo, ProgramInfo
from etprof.trace.sidecar import RunSettings, TraceMeta, sidecar_path

from etdump_builder import Prof, Run, write

US = 1000  # ns


@dataclass(frozen=True)
class Call:
    """One instruction's work in one run: a delegate call with its operators (name, us), or a
    kernel call (its kernel's time and the dispatch around it)."""

    instruction: int
    us: int  # the whole call
    ops: tuple[tuple[str, int], ...] = ()  # delegate operators, or one kernel (name, us)
    delegate: bool = True


def method(name: str, table: list[tuple[str, str]], delegates: tuple[str, ...] = ()) -> MethodInfo:
    """A method whose instruction i is table[i] = (kind, name): ("delegate", backend id) or
    ("operator", "aten::add.out")."""
    instructions = tuple(
        Instruction(
            id=i,
            kind=kind,
            name=op,
            delegate_index=delegates.index(op) if kind == "delegate" else -1,
        )
        for i, (kind, op) in enumerate(table)
    )
    return MethodInfo(name, instructions, delegates)


def execute_run(calls: list[Call], total_us: int, t0: int = 0) -> Run:
    """An Execute run: the calls back to back from t0 (their events as the runtime writes them,
    innermost first), Method::execute around them lasting total_us."""
    events: list[Prof] = []
    t = t0 + 5 * US
    for c in calls:
        start, end = t, t + c.us * US
        inner = start + 1 * US
        if c.delegate:
            for op, us in c.ops:
                events.append(Prof(None, c.instruction, inner, inner + us * US, delegate=op))
                inner += us * US
            events.append(Prof("DELEGATE_CALL", c.instruction, start, end))
        else:
            ((kernel, us),) = c.ops
            events.append(Prof(f"native_call_{kernel}", c.instruction, inner, inner + us * US))
            events.append(Prof("OPERATOR_CALL", c.instruction, start, end))
        t = end
    events.append(Prof("Method::execute", -1, t0, t0 + total_us * US))
    return Run("Execute", events)


def loading(methods: int) -> Run:
    events = []
    for k in range(methods):
        events.append(Prof("Method::init", -1, k * 10 * US, k * 10 * US + 4 * US))
        events.append(Prof("Program::load_method", -1, k * 10 * US, k * 10 * US + 9 * US))
    return Run("Default", events)


def write_trace(
    path: Path,
    runs: list[Run],
    methods: tuple[MethodInfo, ...],
    *,
    schedule: tuple[str, ...] = (),
    sessions: int = 1,
    warmup: int = 1,
    iters: int = 0,
    model: str = "hand",
    sidecar: bool = True,
) -> Path:
    """Write the ETDump and (unless `sidecar` is false) its version-4 metadata."""
    write(path, runs)
    if sidecar:
        first = methods[0]
        program = ProgramInfo(
            path=f"{model}.pte",
            sha256="0" * 64,
            method=first.name,
            model=model,
            instructions=first.instructions,
            delegates=first.delegates,
            methods=methods,
        )
        run = RunSettings(
            iters=iters or len(schedule),
            warmup=warmup,
            threads=1,
            sessions=sessions,
            schedule=schedule,
        )
        sidecar_path(path).write_text(
            TraceMeta(program=program, run=run).to_json(), encoding="utf-8"
        )
    return path
