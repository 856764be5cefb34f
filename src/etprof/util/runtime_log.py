"""The runtime's log on a terminal that shows a progress display: whole lines above it, or none.

ExecuTorch's pybindings write their C-level log (`[cpuinfo_utils.cpp:71] Reading file ...`) to
Python's `sys.stderr` a token at a time, flushing after each. A rich live display that
redirects `sys.stderr` prints every flush as a line of its own, so the log came out one token
per line through the progress bar -- also in the forked session children, which inherit the
redirection. So the displays etprof shows while the runtime works never redirect (the log then
reaches file descriptor 2, which `etprof.util.quiet.silenced` points at a temporary file), and with
`--verbose` :func:`log_above` collects the log from the descriptors, of this process and of its
children, and prints it above the display one whole line at a time.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner


@contextlib.contextmanager
def log_above(console: Console, enabled: bool = True) -> Iterator[None]:
    """While the block runs, print what is written to file descriptors 1 and 2 on `console`,
    a line at a time (`console` must write to a descriptor of its own: `util.quiet.terminal()`)."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, console), daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)  # the last write ends close: the pump reads to the end and stops
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        pump.join(timeout=10)
        with contextlib.suppress(OSError):
            os.close(read_fd)


def status(console: Console, text: str) -> Live:
    """`console.status(text)` without the redirection of sys.stdout and sys.stderr that would
    print the runtime's log a token per line (see the module's docstring)."""
    return Live(
        Spinner("dots", text),
        console=console,
        transient=True,
        refresh_per_second=12.5,
        redirect_stdout=False,
        redirect_stderr=False,
    )


def _pump(fd: int, console: Console) -> None:
    pending = b""
    while chunk := _read(fd):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            _show(console, line)
    if pending:
        _show(console, pending)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def _show(console: Console, line: bytes) -> None:
    text = line.decode("utf-8", "replace").rstrip("\r")
    console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
