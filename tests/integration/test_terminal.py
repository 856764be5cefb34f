"""`etprof run` on a real terminal (issue 26, item 8): the progress bar and the result, not
ExecuTorch's C-level log broken one token per line through the bar; `--verbose` shows that log
intact, a whole line at a time. Driven in a pseudo-terminal, as a user's shell runs it."""

from __future__ import annotations

import os
import pty
import re
import select
import sys
from pathlib import Path

import pytest

from conftest import DATA

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RUNTIME_LOG = re.compile(r"cpuinfo_utils\.cpp|threadpool\.cpp")


def _in_a_terminal(*args: str | Path, timeout: float = 300) -> list[str]:
    """What `etprof ARGS` shows on a 140-column terminal, as lines (escapes removed; a line
    redrawn with a carriage return counts once per drawing)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout and stderr
        os.environ.update(COLUMNS="140", LINES="40", TERM="xterm-256color")
        os.execv(sys.executable, [sys.executable, "-m", "etprof.cli", *map(str, args)])
    shown = b""
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            os.kill(pid, 9)
            raise AssertionError("etprof run did not finish")
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, shown.decode(errors="replace")[-2000:]
    text = ANSI.sub("", shown.decode("utf-8", errors="replace"))
    return [line for line in re.split(r"[\r\n]", text) if line.strip()]


def _run(tmp_path: Path, *more: str) -> list[str]:
    return _in_a_terminal(
        "run",
        DATA / "small_xnnpack.pte",
        "--out",
        tmp_path / "t.etdp",
        "--iters",
        "12",
        "--warmup",
        "2",
        "--sessions",
        "2",
        "--spread",
        "0",
        "--no-untraced",
        *more,
    )


def test_a_terminal_shows_the_progress_and_the_result_only(tmp_path: Path) -> None:
    lines = _run(tmp_path)
    assert any(line.startswith("running small_xnnpack.pte") for line in lines)
    assert any("run model" in line for line in lines)
    assert not [line for line in lines if RUNTIME_LOG.search(line)], lines[:20]
    assert "[" not in [line.strip() for line in lines]  # no token on a line of its own


def test_verbose_shows_the_runtime_log_line_by_line(tmp_path: Path) -> None:
    lines = _run(tmp_path, "--verbose")
    logged = [line for line in lines if RUNTIME_LOG.search(line)]
    whole = re.compile(r"^\[threadpool\.cpp:\d+\] Resetting threadpool to 1 threads\.$")
    assert sum(bool(whole.match(line)) for line in logged) == 2, logged  # one per session
    assert all(re.match(r"^\[\w+\.cpp:\d+\] \S", line) for line in logged), logged
    assert any("run model" in line for line in lines)
