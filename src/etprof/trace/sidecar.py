"""The trace metadata document that `etprof run` writes beside every trace.

It makes a trace self-describing: how it was measured, on what, and the program's instruction
table (instruction id -> operator or delegate), so that later analysis needs neither the `.pte`
nor the ETRecord. Format history (bump FORMAT_VERSION and document in docs/trace-metadata.md):

- 1: first version.
- 2: ``run.cpu_share_pct`` and ``run.load_average``: how much of the measured iterations' wall
  time the runner's thread was on a CPU, and the 1-minute load average after them (docs/diff.md
  uses them to tell contention from change). Version 1 documents are still read (both null).
- 3: ``run.sessions``: the program was loaded and run that many times, ``run.iters`` iterations
  each (the trace holds their Execute runs one session after another), ``run.spread_s``, the
  seconds they were spread over, and ``run.interleaved_with``, the programs whose sessions took
  turns with this one's. Older documents: 1, 0 and none.
- 4: ``program.memory``: the memory the program plans (activation arenas per method, weights,
  delegate blobs; etprof.program.memory), ``run.memory``: per session, resident memory before
  and after the load and its peaks (etprof.record.rss), ``run.untraced``: per session, the wall time of
  each measured iteration traced and untraced (the profiler's own cost). Older documents: none.
  ``program.methods``: every method of the program with its own instruction table and
  delegates (``program.instructions``/``program.delegates`` stay those of ``program.method``);
  ``run.schedule``: the method of each Execute run of one session, in order (every session runs
  the same schedule; empty: every run is ``program.method``). Older documents: one method,
  ``program.method``, whose table is ``program.instructions``. ``graph`` on a delegate
  instruction: the operators of the delegate's serialized graph in execution order (XNNPACK),
  which name the operators XNNPACK reports as "Invalid Unary Op"; ``graph_handles`` and
  ``graph_modules``: per node of that graph, its debug handle and, when an ETRecord was found,
  its nn.Module path (older documents: none, and a delegate's time stays on the common module of
  its nodes). ``trace``: the size and
  sha256 of the ETDump the document belongs to, checked when the trace is loaded (a sidecar left
  beside another trace is refused; older documents get a structure check instead). Older
  documents: none. ``program.llm``: what an LLM program's constant metadata methods and
  ``forward(tokens, input_pos)`` say (etprof.program.llm.LlmInfo; null: not an LLM); ``run.phases``: the
  phase (prefill/decode), first position and token count of each Execute run of one session
  (parallel to ``run.schedule``; empty: not an LLM run). Older documents: null and none.
  ``program.content``: the program by content, a sha256 over every method's instruction table
  and the sha256 and size of each delegate blob (a `--pte` whose content differs is refused;
  two traces of equal content are one program); ``program.source_model``: the model the
  program was exported from, as ``etprof run --model`` named it (diff's "same model").
  Older documents: null and "".

Every document is checked against SCHEMA (below) when read: a field of the wrong type or out of
range is refused in one line naming it. A new field goes into SCHEMA with its dataclass field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from etprof.errors import InputError
from etprof.program.llm import LlmInfo, Step
from etprof.program.memory import PlannedMemory
from etprof.program.types import (
    BlobDigest,
    Instruction,
    MethodInfo,
    ProgramContent,
    ProgramInfo,
)
from etprof.trace.sidecar_schema import SCHEMA
from etprof.util import methodology
from etprof.util.jsonspec import (
    SchemaViolation,
    check,
    known,
)

FORMAT_NAME = "etprof-trace-metadata"
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
SIDECAR_SUFFIX = ".etprof.json"


@dataclass(frozen=True)
class SessionMemory:
    """Resident memory of one session's process, in bytes (None: not measurable there)."""

    before_load_bytes: int | None = None
    after_load_bytes: int | None = None
    untraced_copy_bytes: int | None = None  # added by the untraced copy (its load and warm-up)
    warmup_peak_bytes: int | None = None  # high-water mark over the warm-up (the first runs)
    measured_start_bytes: int | None = None
    measured_peak_bytes: int | None = None  # high-water mark over the measured iterations
    peak_reset: bool = False  # False: the peaks are the process's since it started


@dataclass(frozen=True)
class UntracedTimes:
    """Wall ms of each measured iteration of one session, the traced and the untraced call."""

    traced_ms: tuple[float, ...] = ()
    untraced_ms: tuple[float, ...] = ()


@dataclass(frozen=True)
class RunSettings:
    iters: int = 0
    warmup: int = methodology.WARMUP
    threads: int = 1
    inputs: str = ""
    started: str = ""
    # 100 * thread CPU time / wall time over the measured iterations; below 100 another process
    # had the CPU part of the time. None: not measured (threads > 1, version 1, another runner).
    cpu_share_pct: float | None = None
    load_average: float | None = None  # 1-minute load average when the iterations ended
    sessions: int = 1  # loads of the program, each running `iters` iterations (warm-up included)
    spread_s: float = 0.0  # the sessions were spread over at least this many seconds
    # programs whose sessions took turns with this one's (`etprof run A.pte B.pte`)
    interleaved_with: tuple[str, ...] = ()
    memory: tuple[SessionMemory, ...] = ()  # one per session; empty: not measured
    untraced: tuple[UntracedTimes, ...] = ()  # one per session; empty: not measured
    # the method of each Execute run of one session, in order (version 4); (): all runs are
    # program.method
    schedule: tuple[str, ...] = ()
    # an LLM run: the phase, position and tokens of each Execute run of one session (version 4)
    phases: tuple[Step, ...] = ()

    def runs_per_session(self) -> int:
        return len(self.schedule) if self.schedule else self.iters


@dataclass(frozen=True)
class HostInfo:
    cpu: str = ""
    cores: int = 0
    platform: str = ""
    python: str = ""


@dataclass(frozen=True)
class TraceBinding:
    """The ETDump a document belongs to: its size in bytes and the sha256 of its bytes."""

    size: int
    sha256: str


@dataclass(frozen=True)
class TraceMeta:
    program: ProgramInfo = field(default_factory=ProgramInfo)
    run: RunSettings = field(default_factory=RunSettings)
    host: HostInfo = field(default_factory=HostInfo)
    versions: dict[str, str] = field(default_factory=dict)
    trace: TraceBinding | None = None  # None: a version 1-3 document, or not from `etprof run`

    def to_json(self) -> str:
        doc: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
        doc.update(asdict(self))
        memory = self.program.memory
        doc["program"]["memory"] = memory.to_dict() if memory is not None else None
        llm = self.program.llm
        doc["program"]["llm"] = llm.to_dict() if llm is not None else None
        return json.dumps(doc, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "metadata") -> TraceMeta:
        fix = f"delete it or re-create it with `etprof run` ({source})"
        try:
            doc = json.loads(text, parse_constant=_no_constant)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or "too deep"
            raise InputError(f"{source} is not valid JSON ({msg})", fix) from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise InputError(f"{source} is not an etprof trace metadata document", fix)
        version = doc.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise InputError(f"{source}: version is {version!r}, must be a whole number", fix)
        if version not in READABLE_VERSIONS:
            raise InputError(
                f"{source} has metadata version {version}, this etprof reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}",
                "upgrade etprof or re-run the model",
            )
        try:
            check(SCHEMA, doc)
        except SchemaViolation as exc:
            raise InputError(f"{source}: {exc}", fix) from None
        try:
            return _from_doc(cls, doc)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise InputError(f"{source} is missing or has a malformed field ({exc})", fix) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _from_doc(cls: type[TraceMeta], doc: dict[str, Any]) -> TraceMeta:
    """Build the dataclasses from a document SCHEMA has checked."""
    prog = dict(doc["program"])
    prog["instructions"] = _instructions(prog.get("instructions", ()))
    prog["delegates"] = tuple(prog.get("delegates", ()))
    if prog.get("memory") is not None:
        prog["memory"] = PlannedMemory.from_dict(prog["memory"])
    if prog.get("llm") is not None:
        prog["llm"] = LlmInfo.from_dict(prog["llm"])
    if prog.get("content") is not None:
        c = prog["content"]
        prog["content"] = ProgramContent(
            c["instructions_sha256"],
            tuple(BlobDigest(**known(BlobDigest, d)) for d in c.get("delegates", ())),
        )
    prog["methods"] = tuple(
        MethodInfo(
            name=m["name"],
            instructions=_instructions(m.get("instructions", ())),
            delegates=tuple(m.get("delegates", ())),
        )
        for m in prog.get("methods", ())
    )
    run = doc["run"]
    binding = doc.get("trace")
    return cls(
        program=ProgramInfo(**known(ProgramInfo, prog)),
        run=RunSettings(
            **{
                **known(RunSettings, run),
                "interleaved_with": tuple(run.get("interleaved_with", ())),
                "memory": tuple(
                    SessionMemory(**known(SessionMemory, m)) for m in run.get("memory", ())
                ),
                "untraced": tuple(
                    UntracedTimes(tuple(u["traced_ms"]), tuple(u["untraced_ms"]))
                    for u in run.get("untraced", ())
                ),
                "schedule": tuple(run.get("schedule", ())),
                "phases": tuple(Step(**known(Step, p)) for p in run.get("phases", ())),
            }
        ),
        host=HostInfo(**known(HostInfo, doc["host"])),
        versions=dict(doc.get("versions", {})),
        trace=None if binding is None else TraceBinding(**known(TraceBinding, binding)),
    )


def _instructions(rows: Any) -> tuple[Instruction, ...]:
    return tuple(
        Instruction(
            **{
                **known(Instruction, i),
                "modules": tuple(i.get("modules", ())),
                "graph": tuple(i.get("graph", ())),
                "graph_handles": tuple(i.get("graph_handles", ())),
                "graph_modules": tuple(i.get("graph_modules", ())),
            }
        )
        for i in rows
    )


def sidecar_path(trace_path: Path) -> Path:
    """Where the metadata of `trace_path` lives: `x.etdp` -> `x.etprof.json`."""
    return trace_path.with_suffix(SIDECAR_SUFFIX)


MAX_SIDECAR_BYTES = 256 * 2**20  # far above any real one (~1 MB for a 1000-operator program)


def read_sidecar(trace_path: Path) -> TraceMeta | None:
    """The sidecar of `trace_path`, checked; None when there is none (or it is not a file)."""
    path = sidecar_path(trace_path)
    if not path.is_file():
        return None
    fix = f"delete it or re-create it with `etprof run` ({path})"
    try:
        size = path.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            raise InputError(f"{path} is {size} bytes, too large to be trace metadata", fix)
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", "check its permissions") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text, so not trace metadata", fix) from None
    return TraceMeta.from_json(text, str(path))
