"""Load a trace file into a :class:`~etprof.trace.model.Trace`, with its metadata.

Metadata comes from the sidecar `etprof run` wrote; `--pte` supplies the instruction table for a
trace made elsewhere (e.g. executor_runner on a phone) and is checked against the trace.

A sidecar is bound to its trace: a version 4 one records the trace's size and sha256, and one
written for another trace is refused (or, given `--pte`, set aside); an older one is checked
the way a `--pte` is, its instruction table against the trace's events.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from etprof.errors import InputError, MismatchError
from etprof.program.types import ProgramInfo
from etprof.trace.consistency import check_events
from etprof.trace.etdump.reader import RawDump, parse_dump, read_trace_bytes
from etprof.trace.events import events_frame
from etprof.trace.model import Trace
from etprof.trace.sidecar import TraceMeta, read_sidecar, sidecar_path

ENGINES = ("fast", "inspector")


def load_trace(
    path: Path | str,
    *,
    pte: Path | None = None,
    etrecord: Path | None = None,
    engine: str = "fast",
    method: str | None = None,
) -> Trace:
    """The trace at `path` with its metadata (or `pte`'s instruction tables).

    `method`: the method of the Execute runs whose method neither the sidecar's schedule nor the
    program's instruction tables can tell (every run, for a program read with `pte` whose
    methods cannot be told apart).
    """
    path = Path(path)
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}'", f"use one of: {', '.join(ENGINES)}")
    data = read_trace_bytes(path)  # refuses a missing, special, huge or foreign file up front
    meta = _bound_sidecar(path, data, pte)
    has_meta = meta is not None
    unbound = meta is not None and meta.trace is None
    meta = meta or TraceMeta()
    if pte is not None or etrecord is not None:
        program = _program_info(pte, etrecord, method)
        if has_meta and not unbound:
            _same_program(meta, program, path)
        meta = replace(meta, program=program)
    if engine == "inspector":
        from etprof.trace.etdump.inspector_engine import read_with_inspector

        raw = read_with_inspector(path)
    else:
        raw = parse_dump(data, str(path))
    events = events_frame(raw, meta, method)
    check_events(events, str(path))  # an impossible trace never becomes numbers
    trace = Trace(
        events=events,
        meta=meta,
        source=str(path),
        has_meta=has_meta,
        allocations=_allocations(raw),
        debug_event_count=raw.debug_event_count,
        etdump_version=raw.version,
    )
    if pte is not None:
        check_program_matches(
            trace, str(pte), f"pass the .pte {path.name} was recorded from instead of {pte.name}"
        )
    elif unbound and meta.program.instructions:
        check_program_matches(
            trace,
            f"the instruction table of {sidecar_path(path)}",
            "delete the stale sidecar, or pass --pte with the program the trace was recorded from",
        )
    _check_sessions(trace)
    return trace


def _bound_sidecar(path: Path, data: bytes | memoryview, pte: Path | None) -> TraceMeta | None:
    """The sidecar of the trace at `path` (holding `data`), if it belongs to that trace.

    One written for another trace is refused; given `--pte`, it is set aside instead (the user
    named the program, and the stale document's settings belong to another run).
    """
    sidecar = sidecar_path(path)
    if sidecar.is_dir():  # not silently skipped: the trace would lose its metadata unseen
        raise InputError(
            f"{sidecar}, where the trace's metadata would be, is a directory",
            f"rename or move the directory {sidecar.name}: that name is the trace's metadata",
        )
    meta = read_sidecar(path)
    if meta is None or meta.trace is None:
        return meta
    bound = meta.trace
    digest = hashlib.sha256(data).hexdigest() if bound.size == len(data) else ""
    if digest == bound.sha256:
        return meta
    if pte is not None:
        return None
    found = f"{len(data)} bytes" + (f", sha256 {digest[:12]}..." if digest else "")
    raise MismatchError(
        f"{sidecar} belongs to another trace, not {path} (it was written for {bound.size} bytes, "
        f"sha256 {bound.sha256[:12]}...; this trace has {found})",
        f"pass --pte with the program {path.name} was recorded from, or delete the stale "
        f"{sidecar.name}",
    )


def _same_program(meta: TraceMeta, program: ProgramInfo, path: Path) -> None:
    """A sidecar bound to the trace records what its program holds (version 4 ``content``):
    refuse a `--pte` whose instructions or delegate blobs are not those."""
    recorded, given = meta.program.content, program.content
    if recorded is None or given is None or meta.program.sha256 == program.sha256:
        return
    what = recorded.difference(given)
    if what:
        raise MismatchError(
            f"{program.path} is not the program {path} was recorded from: {what} differ from "
            f"those its sidecar {sidecar_path(path).name} records for {meta.program.path}",
            f"pass the .pte {path.name} was recorded from, or drop --pte (the sidecar already "
            "has its instruction table)",
        )


def _check_sessions(trace: Trace) -> None:
    """A multi-session trace must hold every session's iterations, and a scheduled one every
    run of its schedule, or none lines up."""
    run = trace.meta.run
    sessions, per = trace.sessions, run.runs_per_session()
    if (sessions > 1 or run.schedule) and trace.execute_runs != sessions * per:
        what = f"a schedule of {per} runs" if run.schedule else f"{per} iterations"
        raise MismatchError(
            f"{trace.source} has {trace.execute_runs} Execute runs, but its metadata says "
            f"{sessions} sessions of {what}",
            "pair the trace with the .etprof.json written with it, or run the model again",
        )


def _program_info(pte: Path | None, etrecord: Path | None, method: str | None) -> ProgramInfo:
    if pte is None:
        raise InputError("--etrecord needs --pte too", "pass the .pte the trace was made from")
    from etprof.backends.graphs import program_info
    from etprof.program.reader import Program

    program = Program.read(pte)
    info = replace(program_info(program, method), memory=program.memory)
    if etrecord is not None:
        from etprof.program.etrecord import attach_modules

        info = attach_modules(info, etrecord)
    return info


def check_program_matches(trace: Trace, table_from: str = "", fix: str = "") -> None:
    """Refuse a --pte (or a sidecar's table, `table_from`) whose instructions cannot have
    produced the trace's events (each method's events checked against that method's table)."""
    program = trace.meta.program
    several = len(trace.methods) > 1
    for method in trace.methods:
        info = program.method_info(method)
        table = {i.id: i for i in info.instructions} if info is not None else {}
        for kind, wanted in (("delegate_call", "delegate"), ("operator_call", "operator")):
            of = trace.of_kind(kind)  # cached: the analyses select the same events
            if several:
                of = of[(of["method"] == method).to_numpy()]
            ids = set(np.unique(of["instruction_id"].to_numpy()).tolist())
            bad = sorted(i for i in ids if i not in table or table[i].kind != wanted)
            if bad:
                found = (
                    table[bad[0]].kind + " " + table[bad[0]].name if bad[0] in table else "absent"
                )
                where = f" of method '{method}'" if len(program.all_methods()) > 1 else ""
                raise MismatchError(
                    f"{table_from or program.path} does not match {trace.source}: instruction {bad[0]}{where} "
                    f"is a {kind.replace('_', ' ')} in the trace but {found} in the program",
                    fix or "pass the .pte the trace was recorded from",
                )
    from etprof.trace.program_check import check_structure

    check_structure(
        trace, table_from or program.path, fix or "pass the .pte the trace was recorded from"
    )


def _allocations(raw: RawDump) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run": raw.alloc_run,
            "allocator_id": raw.alloc_allocator,
            "size": raw.alloc_size.astype("int64"),
        }
    )
