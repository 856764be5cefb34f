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
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from etprof.errors import InputError, RuntimeUnavailableError
from etprof.program.reader import Program
from etprof.program.types import ProgramInfo
from etprof.record.host import host_info, versions
from etprof.record.input_files import read_inputs_file
from etprof.record.inputs import build as build_inputs
from etprof.record.inputs import (
    with_positions,
)
from etprof.record.llm_runner import LlmPlan, run_sequences
from etprof.record.request import Prepared, RunRequest, beside, planned, validate
from etprof.record.runtime import check_backends, first_line, import_runtime, load_custom_ops
from etprof.record.session import SessionResult, run_session
from etprof.record.session_probe import SessionProbe, session_samples
from etprof.trace.etdump.merge import merge_dumps
from etprof.trace.sidecar import RunSettings, TraceBinding, TraceMeta, sidecar_path
from etprof.util.methodology import AUTO_BUDGET_S, AUTO_SESSIONS
from etprof.util.output import atomic_path

Progress = Callable[[int, int], None]


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

    programs: dict[Path, Program] = {}

    def read(pte: Path) -> Program:  # each program is read once, when first needed
        if pte not in programs:
            programs[pte] = Program.read(pte)
        return programs[pte]

    reqs = [planned(req, read) for req in reqs]
    first = _check_together(reqs)
    prepared = [validate(req, read) for req in reqs]
    with silenced(not first.verbose):
        runtime, torch = import_runtime()
    for req, prep in zip(reqs, prepared, strict=False):
        with silenced(not first.verbose):  # loading a backend's library logs
            check_backends(runtime, prep.info, req.pte)
        with silenced(not first.verbose):
            load_custom_ops(prep.info, req.pte)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    sessions = _sessions(reqs, prepared, runtime, torch, progress)
    metas = []
    with ExitStack() as outputs:
        for req, prep, (results, dumps) in zip(reqs, prepared, sessions, strict=False):
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

    etrecord = req.etrecord or beside(req.pte)
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
    # an LLM session's sequences carry state (the KV cache): its untraced copy runs whole
    # sequences of its own (_llm_session); none beside methods taking turns (its timings are of
    # one method's runs)
    beside = req.untraced and req.llm is None and len(req.methods) == 1
    probe = SessionProbe(untraced if beside else None, req.warmup)
    try:
        runtime._unsafe_reset_threadpool(req.threads)
        probe.before_load()
        module = runtime._load_for_executorch(str(req.pte), enable_etdump=True)
        probe.loaded(module)
    except RuntimeError as exc:
        raise RuntimeUnavailableError(
            f"the runtime could not load {req.pte} ({first_line(exc)})",
            "re-export it with this executorch version, or run with --verbose for the log",
        ) from None
    clock = _Contention()
    if req.llm is not None:
        shipped = probe.load_beside(untraced) if req.untraced else None
        timings = _llm_session(req, req.llm, module, shipped, torch, tick, clock)
        cpu, wall = clock.elapsed()
        memory, _ = probe.finish()
        module.write_etdump_result_to_file(str(path))
        return SessionResult(
            cpu_s=cpu, wall_s=wall, inputs=req.llm.describe(), memory=memory, untraced=timings
        )
    for method in req.methods:
        try:
            module.method_meta(method)
        except RuntimeError as exc:
            raise RuntimeUnavailableError(
                f"the runtime could not read method {method} of {req.pte} ({first_line(exc)})",
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
    what = f"run {i + 1} of {method} failed ({first_line(exc)})"
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
    shipped: Any,
    torch: Any,
    tick: Callable[[], None],
    clock: _Contention,
) -> dict[str, list[float]] | None:
    """The session's sequences on the traced load, and on `shipped` (the untraced one) when
    given, taking turns sequence by sequence (llm_runner.run_sequences)."""
    done = 0

    def failed(exc: RuntimeError, traced: bool) -> RuntimeUnavailableError:
        step = plan.session_steps[min(done, len(plan.session_steps) - 1)]
        which = "" if traced else " (untraced copy)"
        return RuntimeUnavailableError(
            f"{step.phase} run {done + 1} of forward{which} ({step.tokens} token(s) at position "
            f"{step.position}) failed ({first_line(exc)})",
            "run with --verbose to see the runtime's log; a smaller --prefill/--decode may "
            "fit the program's cache",
        )

    def forward(inputs: tuple[Any, ...]) -> None:
        nonlocal done
        try:
            module.run_method("forward", inputs)
        except RuntimeError as exc:
            raise failed(exc, True) from None
        done += 1

    def untraced(inputs: tuple[Any, ...]) -> None:
        try:
            shipped.run_method("forward", inputs)
        except RuntimeError as exc:
            raise failed(exc, False) from None

    return run_sequences(
        plan, forward, torch, tick, clock.start, untraced if shipped is not None else None
    )


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
