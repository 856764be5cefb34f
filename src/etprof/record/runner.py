"""Run a `.pte` program with ETDump profiling on, following the seed's methodology.

A run is one or more sessions: each loads the program afresh and runs it `iters` times, the first
`warmup` of them warm-up (the seed: 60 and 10). Two runs of one program differ by more than their
iterations suggest (where the program's memory lands, what the machine does that second), and
only several sessions let `etprof diff` see how much (docs/diff.md).

Imports the ExecuTorch runtime (and so torch) lazily: only `etprof run` and `etprof bench` need it.
The trace and its metadata sidecar are written atomically: an error leaves no partial trace.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from etprof.util.version import __version__
from etprof.errors import InputError, RuntimeUnavailableError
from etprof.trace.etdump.merge import merge_dumps
from etprof.record.input_files import read_inputs_file
from etprof.record.inputs import (
    MethodInputs,
    ShapeOverride,
    input_names,
    plan,
    unknown_overrides,
    with_positions,
)
from etprof.record.inputs import build as build_inputs
from etprof.record.inputs import describe as describe_inputs
from etprof.record.llm_runner import LlmPlan, plan_llm, run_sequences
from etprof.trace.sidecar import HostInfo, RunSettings, TraceBinding, TraceMeta, sidecar_path
from etprof.program.types import ProgramInfo
from etprof.util.output import atomic_path, check_writable
from etprof.program.reader import read_program
from etprof.program.memory import read_planned_memory
from etprof.program.methods import MethodShape, constants, read_methods
from etprof.record.session import SessionResult, run_session
from etprof.record.session_probe import SessionProbe, session_samples

Progress = Callable[[int, int], None]
AUTO_SESSIONS = 5  # sessions of `--sessions auto` (docs/methodology.md)
AUTO_BUDGET_S = 20.0  # ... unless that many would take longer than this
SPREAD_S = 10.0  # sessions are spread over at least this long (docs/methodology.md)


@dataclass(frozen=True)
class RunRequest:
    pte: Path
    out: Path
    iters: int = 60
    warmup: int = 10
    threads: int = 1
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


def planned(req: RunRequest) -> RunRequest:
    """`req` with its LLM plan when the program is an LLM (docs/llm.md): then `iters` is the
    runs of one session's sequences and `warmup` those of the dropped sequence."""
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
        req.pte,
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


def validate(req: RunRequest) -> Prepared:
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
            f"use e.g. --spread {SPREAD_S:g} (0: sessions back to back)",
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
    methods = runnable_methods(req.pte, req.methods)
    info = replace(
        read_program(req.pte, req.methods[0]),
        memory=read_planned_memory(req.pte),
        source_model=req.model,
    )
    inputs = (req.pte, req.inputs, req.etrecord, _beside(req.pte))
    check_writable(req.out, inputs)
    check_writable(sidecar_path(req.out), inputs)
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
    consts = constants(read_methods(req.pte))
    etrecord = req.etrecord or _beside(req.pte)
    names = {m.name: input_names(etrecord, m.name) for m in methods}
    unknown_overrides(methods, names, req.shapes)
    plans = tuple(plan(m, consts, names[m.name], req.shapes) for m in methods)
    return Prepared(info, tuple(methods), plans, describe_inputs(plans))


def runnable_methods(pte: Path, wanted: Sequence[str]) -> list[MethodShape]:
    """The methods `wanted`, refusing any the program lacks or that only return a constant."""
    shapes = {m.name: m for m in read_methods(pte)}
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


def run_program(req: RunRequest, progress: Progress | None = None) -> TraceMeta:
    """Run `req.pte` in `req.sessions` sessions of `req.iters` iterations with ETDump on; write
    the trace (the sessions' ETDumps joined) and its metadata."""
    return run_programs([req], progress)[0]


def run_programs(reqs: Sequence[RunRequest], progress: Progress | None = None) -> list[TraceMeta]:
    """Run several programs with their sessions interleaved -- A1 B1 A2 B2 ... -- so that every
    program meets the same drift of the machine, and write one trace per program.

    The requests differ only in program, output, ETRecord and method; the first one's iterations,
    warm-up, threads, sessions, spread and inputs serve all. Either every trace is written or
    none is.
    """
    from etprof.util.quiet import silenced

    reqs = [planned(req) for req in reqs]
    first = _check_together(reqs)
    prepared = [validate(req) for req in reqs]
    with silenced(not first.verbose):
        runtime, torch = _import_runtime()
    for req, prep in zip(reqs, prepared):
        _check_backends(runtime, prep.info, req.pte)
        with silenced(not first.verbose):
            _load_custom_ops(prep.info, req.pte)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    sessions = _sessions(reqs, prepared, runtime, torch, progress)
    metas = []
    with ExitStack() as outputs:
        for req, prep, (results, dumps) in zip(reqs, prepared, sessions):
            others = tuple(str(r.pte) for r in reqs if r is not req)
            meta = _meta(req, _with_modules(req, prep.info), results, started, others)
            data = dumps[0] if len(dumps) == 1 else merge_dumps(dumps)
            meta = replace(meta, trace=TraceBinding(len(data), hashlib.sha256(data).hexdigest()))
            outputs.enter_context(atomic_path(req.out)).write_bytes(data)
            outputs.enter_context(atomic_path(sidecar_path(req.out))).write_text(
                meta.to_json(), encoding="utf-8"
            )
            metas.append(meta)
    return metas


def _check_together(reqs: Sequence[RunRequest]) -> RunRequest:
    if not reqs:
        raise ValueError("no programs to run")
    first = reqs[0]
    outs = [r.out.resolve() for r in reqs]
    if len(set(outs)) < len(outs):
        raise InputError(
            "two programs would write the same trace",
            "give the programs different names or directories",
        )
    shared = (
        "iters",
        "warmup",
        "threads",
        "sessions",
        "spread_s",
        "inputs",
        "verbose",
        "untraced",
        "methods",
        "shapes",
    )
    for req in reqs[1:]:
        differs = [f for f in shared if getattr(req, f) != getattr(first, f)]
        if differs:
            raise ValueError(f"interleaved runs share their settings; {differs} differ")
    return first


def _with_modules(req: RunRequest, info: ProgramInfo) -> ProgramInfo:
    """Module paths from the ETRecord (after the sessions: loading it must not precede a fork)."""
    from etprof.util.quiet import silenced

    etrecord = req.etrecord or _beside(req.pte)
    if etrecord is None:
        return info
    from etprof.program.etrecord import attach_modules

    with silenced(not req.verbose):
        return replace(attach_modules(info, etrecord), etrecord=str(etrecord))


def _meta(
    req: RunRequest,
    info: ProgramInfo,
    results: list[SessionResult],
    started: str,
    others: tuple[str, ...],
) -> TraceMeta:
    cpu, wall = sum(r.cpu_s for r in results), sum(r.wall_s for r in results)
    share = round(min(100.0, 100.0 * cpu / wall), 2) if req.threads == 1 and wall > 0 else None
    return TraceMeta(
        program=info if req.llm is None else replace(info, llm=req.llm.info),
        run=RunSettings(
            req.iters,
            req.warmup,
            req.threads,
            results[0].inputs,
            started,
            cpu_share_pct=share,
            load_average=_load_average(),
            sessions=len(results),
            spread_s=req.spread_s,
            interleaved_with=others,
            phases=req.llm.session_steps if req.llm is not None else (),
            schedule=schedule(req, info),
            **session_samples(results),
        ),
        host=host_info(),
        versions=versions(),
    )


def schedule(req: RunRequest, info: ProgramInfo) -> tuple[str, ...]:
    """The method of each Execute run of one session (`run.schedule`); () when the program has
    one method. Written for one method of several too (an LLM's constant ones included), which
    readers would otherwise have to guess."""
    if len(req.methods) == 1 and len(info.methods) <= 1:
        return ()
    return tuple(m for _ in range(req.iters) for m in req.methods)


def _sessions(
    reqs: Sequence[RunRequest],
    prepared: Sequence[Prepared],
    runtime: Any,
    torch: Any,
    progress: Progress | None,
) -> list[tuple[list[SessionResult], list[bytes]]]:
    """Rounds of one session per program; with `sessions=None`, as many as fit the budget."""
    from etprof.util.quiet import silenced

    first = reqs[0]
    wanted = first.sessions or AUTO_SESSIONS
    total = wanted * first.iters * len(reqs)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    out: list[tuple[list[SessionResult], list[bytes]]] = [([], []) for _ in reqs]
    pause = 0.0
    k = 0
    with tempfile.TemporaryDirectory(prefix="etprof-run-") as tmp:
        while k < wanted:
            if k:
                time.sleep(pause)
            began = time.perf_counter()
            for j, req in enumerate(reqs):
                path = Path(tmp) / f"program{j}_session{k}.etdp"
                with silenced(not first.verbose):
                    result = run_session(
                        partial(_session, req, prepared[j], runtime, torch, path),
                        tick,
                        f"session {k + 1} of {req.pte}",
                    )
                out[j][0].append(result)
                out[j][1].append(_dump(path))
            if k == 0:
                took = time.perf_counter() - began
                if first.sessions is None:
                    wanted = auto_sessions(took)
                    total = wanted * first.iters * len(reqs)
                pause = session_pause(wanted, took, first.spread_s)
            k += 1
    return out


def session_pause(sessions: int, session_s: float, spread_s: float) -> float:
    """Idle seconds between sessions so that `sessions` of `session_s` span `spread_s`."""
    if sessions < 2:
        return 0.0
    return max(0.0, (spread_s - sessions * session_s) / (sessions - 1))


def auto_sessions(first_session_s: float) -> int:
    """Sessions for `--sessions auto`: AUTO_SESSIONS, fewer when they would take longer than
    AUTO_BUDGET_S together (a 3-second-per-iteration portable model gets one)."""
    if first_session_s <= 0:
        return AUTO_SESSIONS
    return max(1, min(AUTO_SESSIONS, int(AUTO_BUDGET_S // first_session_s)))


def _session(
    req: RunRequest, prep: Prepared, runtime: Any, torch: Any, path: Path, tick: Callable[[], None]
) -> SessionResult:
    """One session (in a forked child on Linux): load, run each method `req.iters` times, taking
    turns, dump to `path`."""
    untraced = partial(runtime._load_for_executorch, str(req.pte), enable_etdump=False)
    # an LLM session's sequences carry state (the KV cache): no untraced copy runs beside them;
    # nor beside methods taking turns (its timings are of one method's runs)
    beside = req.untraced and req.llm is None and len(req.methods) == 1
    probe = SessionProbe(untraced if beside else None, req.warmup)
    try:
        runtime._unsafe_reset_threadpool(req.threads)
        probe.before_load()
        module = runtime._load_for_executorch(str(req.pte), enable_etdump=True)
        probe.loaded(module)
    except RuntimeError as exc:
        raise RuntimeUnavailableError(
            f"the runtime could not load {req.pte} ({_first_line(exc)})",
            "re-export it with this executorch version, or run with --verbose for the log",
        ) from None
    clock = _Contention()
    if req.llm is not None:
        _llm_session(req, req.llm, module, torch, tick, clock)
        cpu, wall = clock.elapsed()
        memory, _ = probe.finish()
        module.write_etdump_result_to_file(str(path))
        return SessionResult(cpu_s=cpu, wall_s=wall, inputs=req.llm.describe(), memory=memory)
    for method in req.methods:
        try:
            module.method_meta(method)
        except RuntimeError as exc:
            raise RuntimeUnavailableError(
                f"the runtime could not read method {method} of {req.pte} ({_first_line(exc)})",
                "the .pte may be truncated or corrupt: copy or export it again",
            ) from None
    feed = _Feed(req, prep, torch)
    current = [req.methods[0]]

    def runs(i: int) -> Callable[[Any], object]:
        def run(m: Any) -> object:
            for method in req.methods:  # the methods take turns, as an app calls them
                current[0] = method
                m.run_method(method, feed.inputs(method, i))
            return None

        return run

    for i in range(req.iters):
        try:
            if i == req.warmup:
                probe.measuring(runs(i))
                clock.start()
            probe.run(i, runs(i))
        except RuntimeError as exc:
            raise _run_failed(req, prep, current[0], i, exc) from None
        tick()
    cpu, wall = clock.elapsed()
    memory, timings = probe.finish()
    module.write_etdump_result_to_file(str(path))
    return SessionResult(
        cpu_s=cpu, wall_s=wall, inputs=prep.inputs, memory=memory, untraced=timings
    )


class _Feed:
    """Each method's inputs for its i-th run: built once per session; positions (KV cache
    programs) advance every run."""

    def __init__(self, req: RunRequest, prep: Prepared, torch: Any) -> None:
        self.torch = torch
        self.plans = {p.method: p for p in prep.plans}
        self.values: dict[str, list[Any]] = {}
        if req.inputs is not None:
            self.values[req.methods[0]] = read_inputs_file(req.inputs, prep.methods[0], torch)
        for p in prep.plans:
            self.values[p.method] = build_inputs(p, torch)

    def inputs(self, method: str, run: int) -> tuple[Any, ...]:
        p = self.plans.get(method)
        if p is None:
            return tuple(self.values[method])
        return with_positions(p, self.values[method], run, self.torch)


def _run_failed(
    req: RunRequest, prep: Prepared, method: str, i: int, exc: RuntimeError
) -> RuntimeUnavailableError:
    """Most failures of a program that loaded come from its inputs (an index out of range ends
    in "error: 0x12", InvalidArgument): say so, and how to give real ones."""
    what = f"run {i + 1} of {method} failed ({_first_line(exc)})"
    if req.inputs is not None:
        return RuntimeUnavailableError(
            f"{what}; the inputs from {req.inputs} are the likely cause",
            "check their values (ids within the vocabulary, positions within the cache), or run "
            "with --verbose for the runtime's log",
        )
    return RuntimeUnavailableError(
        f"{what}; the generated inputs are the likely cause ({prep.inputs})",
        "pass real inputs with --inputs FILE.pt (torch.save of a tuple of tensors) or other "
        "sizes with --shape; --verbose shows the runtime's log",
    )


def _llm_session(
    req: RunRequest,
    plan: LlmPlan,
    module: Any,
    torch: Any,
    tick: Callable[[], None],
    clock: _Contention,
) -> None:
    done = 0

    def forward(inputs: tuple[Any, ...]) -> None:
        nonlocal done
        try:
            module.run_method("forward", inputs)
        except RuntimeError as exc:
            step = plan.session_steps[done]
            raise RuntimeUnavailableError(
                f"{step.phase} run {done + 1} of forward ({step.tokens} token(s) at position "
                f"{step.position}) failed ({_first_line(exc)})",
                "run with --verbose to see the runtime's log; a smaller --prefill/--decode may "
                "fit the program's cache",
            ) from None
        done += 1

    run_sequences(plan, forward, torch, tick, clock.start)


def _dump(path: Path) -> bytes:
    data = path.read_bytes() if path.exists() else b""
    if not data:
        raise RuntimeUnavailableError(
            "the runtime wrote no ETDump data",
            "use an executorch build with ETDump support (the PyPI wheel has it)",
        )
    return data


class _Contention:
    """How much of the measured iterations' wall time this thread spent on a CPU.

    With one thread the runtime computes on the calling thread, so on an idle core the share is
    ~100%; less means another process took the core for that fraction of the time, and every
    iteration timed then is inflated by it. (With more threads the workers' time is not this
    thread's, so the share is not recorded.)
    """

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()

    def elapsed(self) -> tuple[float, float]:
        """(CPU seconds, wall seconds) since `start`; (0, 0) if it was never started."""
        if not self.wall:
            return 0.0, 0.0
        return time.thread_time() - self.cpu, time.perf_counter() - self.wall


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def _import_runtime() -> tuple[Any, Any]:
    try:
        import torch
        from executorch.extension.pybindings import portable_lib
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"the ExecuTorch runtime is not installed ({exc})",
            "pip install executorch==1.5.1 torch==2.13.0",
        ) from None
    return portable_lib, torch


def _check_backends(runtime: Any, info: ProgramInfo, pte: Path) -> None:
    registered = set(runtime._get_registered_backend_names())
    missing = sorted({d for d in info.delegates if d not in registered})
    if missing:
        raise RuntimeUnavailableError(
            f"{pte} needs backend {', '.join(missing)}, which this runtime does not have "
            f"(it has {', '.join(sorted(registered)) or 'none'})",
            "re-export with a backend this runtime has (e.g. `etprof export MODEL` for "
            "XNNPACK) or profile on a runtime built with it",
        )


# Operator namespaces whose kernels live in a library outside the runtime, and the module whose
# import registers them: ExecuTorch's LLM custom ops (export_llama --use_sdpa_with_kv_cache:
# llama::custom_sdpa, llama::update_cache, ...).
CUSTOM_OPS = {"llama::": "executorch.extension.llm.custom_ops.custom_ops"}


def _load_custom_ops(info: ProgramInfo, pte: Path) -> None:
    """Register the kernels of the custom operators `pte` calls (before it is loaded)."""
    import importlib

    names = {i.name for m in (info.methods or ()) for i in m.instructions} | {
        i.name for i in info.instructions
    }
    for prefix, module in CUSTOM_OPS.items():
        used = sorted(n for n in names if n.startswith(prefix))
        if not used:
            continue
        try:
            importlib.import_module(module)
        except (ImportError, OSError, RuntimeError) as exc:
            raise RuntimeUnavailableError(
                f"{pte} calls {', '.join(used)}, whose kernels {module} registers, and it did "
                f"not load ({_first_line(exc)})",
                "install the executorch wheel with its LLM custom ops "
                "(pip install executorch==1.5.1), or export without them",
            ) from None


def _beside(pte: Path) -> Path | None:
    candidate = pte.with_suffix(".etrecord")
    return candidate if candidate.is_file() else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def host_info() -> HostInfo:
    return HostInfo(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        platform=platform.platform(),
        python=platform.python_version(),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"etprof": __version__}
    for pkg in ("executorch", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out
