"""Load a trace file into a :class:`~etprof.trace.Trace`, with its metadata.

Metadata comes from the sidecar `etprof run` wrote; `--pte` supplies the instruction table for a
trace made elsewhere (e.g. executor_runner on a phone) and is checked against the trace.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from etprof.errors import InputError, MismatchError
from etprof.etdump.reader import RawDump, read_dump
from etprof.metadata import ProgramInfo, TraceMeta, read_sidecar
from etprof.trace import Trace, events_frame

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
    if not path.exists():
        raise InputError(f"no such trace: {path}", "check the path, or make one with `etprof run`")
    meta = read_sidecar(path)
    has_meta = meta is not None
    meta = meta or TraceMeta()
    if pte is not None or etrecord is not None:
        meta = replace(meta, program=_program_info(pte, etrecord, method))
    if engine == "inspector":
        from etprof.etdump.inspector_engine import read_with_inspector

        raw = read_with_inspector(path)
    else:
        raw = read_dump(path)
    events = events_frame(raw, meta, method)
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
        check_program_matches(trace)
    _check_sessions(trace)
    return trace


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
    from etprof.program import read_program

    info = read_program(pte, method)
    if etrecord is not None:
        from etprof.modules import attach_modules

        info = attach_modules(info, etrecord)
    return info


def check_program_matches(trace: Trace) -> None:
    """Refuse a --pte whose instructions cannot have produced the trace's events (each
    method's events checked against that method's table)."""
    program = trace.meta.program
    ev = trace.events
    for method in trace.methods:
        info = program.method_info(method)
        table = {i.id: i for i in info.instructions} if info is not None else {}
        of = ev[ev["method"].astype(str).to_numpy() == method]
        for kind, wanted in (("delegate_call", "delegate"), ("operator_call", "operator")):
            ids = set(of.loc[of["kind"] == kind, "instruction_id"].unique().tolist())
            bad = sorted(i for i in ids if i not in table or table[i].kind != wanted)
            if bad:
                found = table[bad[0]].kind + " " + table[bad[0]].name if bad[0] in table \
                    else "absent"
                where = f" of method '{method}'" if len(program.all_methods()) > 1 else ""
                raise MismatchError(
                    f"{program.path} does not match {trace.source}: instruction {bad[0]}{where} "
                    f"is a {kind.replace('_', ' ')} in the trace but {found} in the program",
                    "pass the .pte the trace was recorded from",
                )


def _allocations(raw: RawDump) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run": raw.alloc_run,
            "allocator_id": raw.alloc_allocator,
            "size": raw.alloc_size.astype("int64"),
        }
    )
