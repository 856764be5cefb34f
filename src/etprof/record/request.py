"""What `etprof run` is asked to do (:class:`RunRequest`), planned (an LLM's prefill/decode
sequences) and checked against the program before the runtime is loaded (:func:`validate`).
The methodology's defaults are etprof.util.methodology's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from etprof.backends.graphs import program_info
from etprof.errors import InputError
from etprof.program.methods import MethodShape, constants
from etprof.program.reader import Program
from etprof.program.types import ProgramInfo
from etprof.record.inputs import (
    MethodInputs,
    ShapeOverride,
    input_names,
    plan,
    unknown_overrides,
)
from etprof.record.inputs import describe as describe_inputs
from etprof.record.llm_runner import LlmPlan, plan_llm
from etprof.trace.sidecar import sidecar_path
from etprof.util import methodology
from etprof.util.output import check_writable

ProgramReader = Callable[[Path], Program]


@dataclass(frozen=True)
class RunRequest:
    pte: Path
    out: Path
    iters: int = methodology.ITERS
    warmup: int = methodology.WARMUP
    threads: int = methodology.THREADS
    # methods to run; several take turns within each session (forward, encode, forward, ...),
    # each `iters` times
    methods: tuple[str, ...] = ("forward",)
    inputs: Path | None = None
    shapes: tuple[ShapeOverride, ...] = ()  # `--shape`: sizes for dynamic-shape inputs
    etrecord: Path | None = None  # default: <pte stem>.etrecord beside the .pte, if present
    verbose: bool = False
    # loads of the program, each running `iters` iterations; None: AUTO_SESSIONS, fewer for a
    # slow program (auto_sessions)
    sessions: int | None = 1
    # idle pauses make the sessions span at least this many seconds, so that the machine's slow
    # drift shows as session-to-session variation; 0: back to back
    spread_s: float = 0.0
    # an LLM program (etprof.program.llm): prompt tokens and decode steps per sequence; None: the
    # defaults when the program is recognised as an LLM, else run it as any program
    prefill: int | None = None
    decode: int | None = None
    llm: LlmPlan | None = None  # set by `planned` (then iters/warmup count its runs)
    # an LLM program: --iters/--warmup as the user gave them (None: not given), counting whole
    # prefill+decode sequences per session (docs/llm.md)
    sequences: int | None = None
    warmup_sequences: int | None = None
    # also time the program loaded a second time without ETDump, interleaved with the traced
    # iterations (the profiler's own cost, docs/memory.md)
    untraced: bool = True
    model: str = ""  # the model the program was exported from (`--model`), recorded as is


def planned(req: RunRequest, read: ProgramReader = Program.read) -> RunRequest:
    """`req` with its LLM plan when the program is an LLM (docs/llm.md): then `iters` is the
    runs of one session's sequences and `warmup` those of the dropped sequence. `read` gives the
    program (run_programs reads each once)."""
    if req.llm is not None or not req.pte.is_file():
        return req  # validate() refuses a missing program
    if req.shapes and req.prefill is None and req.decode is None:
        return req  # --shape: the user's own shapes, run as any program (docs/inputs.md)
    if req.shapes:
        raise InputError(
            "--prefill/--decode choose an LLM's shapes, and --shape was given",
            "drop --shape, or drop --prefill/--decode to run the shapes given",
        )
    method = req.methods[0] if len(req.methods) == 1 else "+".join(req.methods)
    plan = plan_llm(
        lambda: read(req.pte),
        req.prefill,
        req.decode,
        method=method,
        inputs=req.inputs,
        sequences=req.sequences,
        warmup_sequences=req.warmup_sequences,
    )
    if plan is None:
        return req
    return replace(req, llm=plan, iters=len(plan.session_steps), warmup=plan.warmup_runs)


@dataclass(frozen=True)
class Prepared:
    """A request checked against its program: the program's table and each method's inputs."""

    info: ProgramInfo
    methods: tuple[MethodShape, ...]  # the request's methods, as the program declares them
    plans: tuple[MethodInputs, ...]  # one per method of the request; () with --inputs
    inputs: str  # how the inputs are made, as recorded in `run.inputs`


def default_trace_path(pte: Path, methods: Sequence[str] = ("forward",)) -> Path:
    """`model.etdp` for forward; `model.encode.etdp` for another method, `model.forward+encode.etdp`
    for several (one trace holds them all)."""
    if tuple(methods) in ((), ("forward",)):
        return pte.with_suffix(".etdp")
    return pte.with_suffix(f".{'+'.join(methods)}.etdp")


def _utf8(path: Path) -> bool:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # a name of bytes that are not UTF-8, held as surrogates
        return False
    return True


def validate(req: RunRequest, read: ProgramReader = Program.read) -> Prepared:
    """Check everything that can be checked before loading the runtime."""
    if req.iters <= req.warmup:
        raise InputError(
            f"--iters {req.iters} is not greater than --warmup {req.warmup}: nothing would be "
            "measured",
            f"use e.g. --iters {req.warmup + 50} (the seed runs 60 and drops 10)",
        )
    if req.warmup < 0:
        raise InputError(f"--warmup {req.warmup} is negative", "use 0 or more")
    if req.threads < 1:
        raise InputError(f"--threads {req.threads} must be at least 1", "use --threads 1")
    if not (req.spread_s >= 0 and req.spread_s < 3600):
        raise InputError(
            f"--spread {req.spread_s} is not a number of seconds from 0 to 3600",
            f"use e.g. --spread {methodology.SPREAD_S:g} (0: sessions back to back)",
        )
    if req.sessions is not None and req.sessions < 1:
        raise InputError(
            f"--sessions {req.sessions} must be at least 1",
            "use --sessions auto (the default) or a count like 5",
        )
    if not req.pte.exists():
        raise InputError(
            f"no such program: {req.pte}",
            "check the path or make one with `etprof export mv3 --quantize`",
        )
    if len(set(req.methods)) < len(req.methods) or not req.methods:
        raise InputError(
            f"--method lists {', '.join(req.methods) or 'nothing'}", "name each method once"
        )
    for path, what in ((req.pte, "program"), (req.out, "--out")):
        if not _utf8(path):
            raise InputError(
                f"the {what} path {str(path)!r} is not UTF-8, and the runtime only opens UTF-8 "
                "paths",
                "rename it or link it under a UTF-8 name",
            )
    inputs = (req.pte, req.inputs, req.etrecord, beside(req.pte))
    if check_writable(req.out, inputs).through:
        raise InputError(
            f"--out {req.out} is a device or a FIFO, and a trace is a file that etprof reads "
            "back, with its .etprof.json beside it",
            "give --out a file name (e.g. model.etdp)",
        )
    check_writable(sidecar_path(req.out), inputs)
    program = read(req.pte)
    methods = runnable_methods(program, req.methods)
    info = replace(
        program_info(program, req.methods[0]), memory=program.memory, source_model=req.model
    )
    if req.inputs is not None:
        if not req.inputs.is_file():
            raise InputError(f"no such inputs file: {req.inputs}", "pass a .pt, .npy or .npz file")
        if len(req.methods) > 1:
            raise InputError(
                "--inputs holds one method's inputs, and several methods are run",
                "run one --method at a time with --inputs, or drop --inputs",
            )
        if req.shapes:
            raise InputError(
                "--shape sets the shapes of generated inputs, and --inputs was given",
                "drop --shape: the file's tensors have their own shapes",
            )
        return Prepared(info, tuple(methods), (), f"file:{req.inputs.name}")
    consts = constants(program.shapes)
    etrecord = req.etrecord or beside(req.pte)
    names = {m.name: input_names(etrecord, m.name) for m in methods}
    unknown_overrides(methods, names, req.shapes)
    plans = tuple(plan(m, consts, names[m.name], req.shapes) for m in methods)
    return Prepared(info, tuple(methods), plans, describe_inputs(plans))


def runnable_methods(program: Program, wanted: Sequence[str]) -> list[MethodShape]:
    """The methods `wanted`, refusing any the program lacks or that only return a constant."""
    pte = program.path
    shapes = {m.name: m for m in program.shapes}
    runnable = [n for n, m in shapes.items() if not m.constant]
    listed = f"runnable methods: {', '.join(runnable) or 'none'}"
    out = []
    for name in wanted:
        m = shapes.get(name)
        if m is None:
            raise InputError(
                f"{pte} has no method '{name}' ({listed})", "pass --method with one of those"
            )
        if m.constant:
            value = "" if m.value is None else f" {m.value!r}"
            raise InputError(
                f"method '{name}' of {pte} only returns a constant{value} and "
                f"runs nothing, so there is nothing to profile ({listed})",
                "pass --method with a runnable method",
            )
        out.append(m)
    return out


def beside(pte: Path) -> Path | None:
    candidate = pte.with_suffix(".etrecord")
    return candidate if candidate.is_file() else None
