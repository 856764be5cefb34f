"""A `.pte` is checked before it is read whole (issue 26, item 1): its type, its size against
what its extended header declares, its identifier. `/dev/zero`, a FIFO and a padded program end
in one line within a second and 200 MB, through the reader and through the commands that take
a program (`breakdown --pte`, `timeline --pte`, `run`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from etprof.errors import ProgramFormatError
from etprof.program.reader import Program

from conftest import DATA, assert_one_line_error, run_cli
from memory_probe import cost

PTE = DATA / "small_xnnpack.pte"  # has an extended header and segments


def _padded(tmp_path: Path, size: int) -> Path:
    padded = tmp_path / "padded.pte"
    padded.write_bytes(PTE.read_bytes())
    with open(padded, "ab") as f:
        f.truncate(size)  # sparse zeros: no disk used
    return padded


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "fifo.pte"
    os.mkfifo(path)  # no writer: opening it to read would wait for ever
    yield path


def _refused_quickly(path: Path, needle: str) -> None:
    took, grew_mb, raised = cost(lambda: Program.read(path))
    assert isinstance(raised, ProgramFormatError), raised
    assert needle in raised.one_line() and "\n" not in raised.one_line()
    assert took < 1.0 and grew_mb < 200, (took, grew_mb)


def test_dev_zero_is_refused_at_once() -> None:
    _refused_quickly(Path("/dev/zero"), "not a regular file")


def test_a_fifo_is_refused_without_waiting(fifo: Path) -> None:
    _refused_quickly(fifo, "not a regular file")


def test_a_program_padded_to_2_gib_is_refused_unread(tmp_path: Path) -> None:
    _refused_quickly(_padded(tmp_path, 2**31), "bytes after the end of the program")


def test_a_truncated_program_is_refused_from_its_header(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pte"
    cut.write_bytes(PTE.read_bytes()[:-100])
    _refused_quickly(cut, "is truncated: its header declares")


def test_a_huge_file_without_a_header_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.pte"
    with open(big, "wb") as f:
        f.write(b"\0\0\0\0ET12")  # an identifier and nothing else: no extended header
        f.truncate(2**31 + 8)
    _refused_quickly(big, "at most 2147483648 bytes")


def test_a_trace_passed_as_program_is_named() -> None:
    _refused_quickly(DATA / "small_xnnpack.etdp", "it is an ETDump trace")


def test_every_program_the_tests_ship_still_reads() -> None:
    for pte in sorted(DATA.glob("*.pte")):
        assert Program.read(pte).methods, pte


@pytest.mark.parametrize("command", ["breakdown", "timeline"])
def test_cli_pte_dev_zero_and_fifo(command: str, fifo: Path, small_trace: Path) -> None:
    for pte in (Path("/dev/zero"), fifo):
        result = run_cli(command, small_trace, "--pte", pte, timeout=60)
        assert_one_line_error(result, "not a regular file")


def test_cli_run_dev_zero_and_fifo(fifo: Path, tmp_path: Path) -> None:
    for pte in (Path("/dev/zero"), fifo):
        result = run_cli("run", pte, "--out", tmp_path / "t.etdp", timeout=60)
        assert_one_line_error(result, "not a regular file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.pte"]
