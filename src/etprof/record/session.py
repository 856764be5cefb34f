"""Run one profiling session in a child process of its own.

A session loads the program, runs it and writes its ETDump. `etprof run` makes several, each in
a child forked from the runner after the runtime is imported (the import is the slow part,
seconds; a fork is milliseconds), so that

- each session starts from a fresh heap: the program's buffers land where a new process would
  put them, and layout-dependent speed shows up as session-to-session variation, not as a
  difference between two runs;
- a crash in the runtime (a segfault in a kernel) ends one child, and the runner reports it in
  one line instead of dying.

The parent must not have started the runtime's thread pool before forking (a child cannot use
the threads of its parent); sessions set the pool up themselves. Where fork is not available or
not safe (anything but Linux), sessions run in this process one after the other.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from etprof.errors import EtprofError, InputError, RuntimeUnavailableError

Tick = Callable[[], None]


@dataclass(frozen=True)
class SessionResult:
    """What a session reports besides its ETDump file."""

    cpu_s: float  # the runner thread's CPU time over the measured iterations
    wall_s: float  # their wall time
    inputs: str  # how the inputs were made ("random:seed=0", "file:x.pt")
    memory: dict[str, Any] | None = None  # etprof.record.rss.MemorySampler.to_dict()
    untraced: dict[str, Any] | None = None  # {"traced_ms": [...], "untraced_ms": [...]}


Body = Callable[[Tick], SessionResult]


def forking() -> bool:
    """Whether sessions run in forked children here."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def run_session(body: Body, tick: Tick, label: str) -> SessionResult:
    """Run `body` in a forked child (in this process where forking is off); `tick` is called in
    this process once per iteration the child reports."""
    if not forking():
        return body(tick)
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _die_with(parent)
        _child(body, write_fd)
    os.close(write_fd)
    try:
        reply = _follow(read_fd, tick)
    except BaseException:
        # Ctrl-C, SIGTERM (etprof.cli raises it as Terminated), an error: the child must not
        # outlive the run (an orphan would go on computing and writing)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    return _result(reply, status, label)


def _die_with(parent: int) -> None:
    """In the child: Ctrl-C and SIGTERM end it at once, even inside the runtime's C code (the
    parent's Python handlers would wait for the runtime to return), and on Linux it gets SIGKILL
    if the parent dies without cleaning up (killed by SIGKILL itself)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _child(body: Body, fd: int) -> None:
    code = 0
    try:
        result = body(lambda: _write(fd, b"."))
        reply: dict[str, object] = {"ok": asdict(result)}
    except EtprofError as exc:
        code = 1
        reply = {
            "error": exc.problem,
            "fix": exc.fix,
            "runtime": isinstance(exc, RuntimeUnavailableError),
        }
    except BaseException as exc:
        code = 1
        reply = {
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0],
            "fix": "",
            "runtime": True,
        }
    try:
        _write(fd, b"\n" + json.dumps(reply).encode())
    finally:
        os._exit(code)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _follow(fd: int, tick: Tick) -> bytes:
    """Call `tick` for every iteration mark until the child's reply line; return the reply."""
    reply = bytearray()
    replying = False
    while chunk := os.read(fd, 65536):
        if replying:
            reply += chunk
            continue
        head, newline, rest = chunk.partition(b"\n")
        for _ in range(head.count(b".")):
            tick()
        if newline:
            replying = True
            reply += rest
    return bytes(reply)


def _result(reply: bytes, status: int, label: str) -> SessionResult:
    try:
        doc = json.loads(reply) if reply else None
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "ok" in doc:
        return SessionResult(**doc["ok"])
    if isinstance(doc, dict) and "error" in doc:
        cls = RuntimeUnavailableError if doc.get("runtime") else InputError
        raise cls(str(doc["error"]), str(doc.get("fix", "")))
    raise RuntimeUnavailableError(
        f"{label} ended without a result ({_how(status)})",
        "run with --verbose to see the runtime's log",
    )


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    return f"exit status {os.WEXITSTATUS(status)}"
