"""Odd paths and values end in one line, not a traceback or a silent skip (issue 26, item 6):
a `.pte` path that is not UTF-8, a sidecar path that is a directory, a tag holding a line
break."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from etprof.errors import InputError

from conftest import DATA, assert_one_line_error, run_cli


def test_a_program_path_that_is_not_utf8(tmp_path: Path, small_pte: Path) -> None:
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/mod\xffel.pte"))
    shutil.copyfile(small_pte, odd)
    result = run_cli("run", odd, "--out", tmp_path / "t.etdp", timeout=120)
    assert_one_line_error(result, "is not UTF-8", "rename it")
    assert not (tmp_path / "t.etdp").exists()


def test_a_sidecar_path_that_is_a_directory(tmp_path: Path) -> None:
    trace = tmp_path / "t.etdp"
    shutil.copyfile(DATA / "small_pair_a.etdp", trace)
    (tmp_path / "t.etprof.json").mkdir()
    result = run_cli("breakdown", trace)
    assert_one_line_error(result, "t.etprof.json", "is a directory")


def test_a_tag_with_a_line_break(tmp_path: Path) -> None:
    result = run_cli(
        "store",
        DATA / "small_pair_a.etdp",
        "--db",
        tmp_path / "s.duckdb",
        "--tag",
        "commit=abc\ndef",
    )
    assert_one_line_error(result, "line break", "commit=abc\\ndef")
    assert not (tmp_path / "s.duckdb").exists()


def test_a_tag_ending_in_a_line_break_is_not_cut() -> None:
    from etprof.store.rows import parse_tags

    try:
        parse_tags(["commit=abc\n"])
    except InputError as exc:
        assert "\n" not in exc.one_line()
    else:
        raise AssertionError("a tag ending in a line break was accepted")


def test_every_error_is_one_line_whatever_it_quotes() -> None:
    exc = InputError("no such trace: a\nb.etdp", "check the path\r\n")
    assert exc.one_line() == "no such trace: a\\nb.etdp; check the path\\r\\n"
