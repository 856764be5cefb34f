"""`-o /dev/stdout` into a pipe writes through it, as docs/guarantees.md promises (issue 26,
item 4): `/dev/stdout` resolves to `pipe:[...]`, a name no open() finds, so the output is
written by the name given. `run --out` naming a device or a FIFO is refused before anything
runs, leaving nothing behind."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from conftest import DATA, assert_one_line_error, run_cli

A, B = DATA / "small_pair_a.etdp", DATA / "small_pair_b.etdp"


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        (("breakdown", A, "-f", "json"), "{"),
        (("diff", A, B, "-f", "json"), "{"),
        (("report", A), "<!DOCTYPE html>"),
        (("timeline", A), "{"),
    ],
)
def test_dev_stdout_into_a_pipe_is_written_through(args: tuple[object, ...], starts: str) -> None:
    result = run_cli(*args, "-o", "/dev/stdout")  # run_cli's stdout is a pipe
    assert result.returncode == 0, result.stderr
    assert result.stdout.lstrip().startswith(starts), result.stdout[:200]
    if starts == "{":
        json.loads(result.stdout)


def test_run_out_naming_a_device_is_refused_before_running(tmp_path: Path, small_pte: Path) -> None:
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root")
    result = run_cli("run", small_pte, "--out", null, "--iters", "3", "--warmup", "1")
    assert_one_line_error(result, "is a device or a FIFO")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]  # no stray sidecar


def test_run_out_naming_a_fifo_is_refused_without_waiting(tmp_path: Path, small_pte: Path) -> None:
    fifo = tmp_path / "t.etdp"
    os.mkfifo(fifo)  # no reader: writing to it would wait for ever
    result = run_cli("run", small_pte, "--out", fifo, "--iters", "3", "--warmup", "1", timeout=120)
    assert_one_line_error(result, "is a device or a FIFO")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.etdp"]
