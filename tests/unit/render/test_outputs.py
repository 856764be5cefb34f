"""Output paths (issue 13, items 1, 2, 6, 7 and the small ones of 10): what etprof writes goes
where the user meant, atomically, and never over a link, a device or one of its own inputs.

Devices are made with mknod inside tmp_path (root only; skipped otherwise), never the system's
/dev/null or /dev/full: a regression here must not be able to replace them.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from etprof.errors import OutputError
from etprof.util.output import atomic_path, check_writable, write_text

from conftest import assert_one_line_error, run_cli


def _device(tmp_path: Path, name: str, minor: int) -> Path:
    """A character device like /dev/null (minor 3) or /dev/full (minor 7), in tmp_path."""
    path = tmp_path / name
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root")
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name.endswith(".part") or p.name.startswith(".etprof-probe")
    )


# -- item 1: links, devices and FIFOs ------------------------------------------------------------


def test_a_symlink_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == target.name
    assert target.read_text() == "new"
    assert _leftovers(tmp_path) == []


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to("made.json")
    write_text(link, "new")
    assert link.is_symlink() and (tmp_path / "made.json").read_text() == "new"


def test_a_character_device_is_written_through_not_replaced(tmp_path: Path) -> None:
    null = _device(tmp_path, "null", 3)
    write_text(null, "discarded")
    assert stat.S_ISCHR(null.stat().st_mode)
    assert _leftovers(tmp_path) == []


def test_a_full_device_reports_the_write_error(tmp_path: Path) -> None:
    full = _device(tmp_path, "full", 7)
    with pytest.raises(OutputError, match="No space left"):
        write_text(full, "x" * 100_000)
    assert stat.S_ISCHR(full.stat().st_mode)


def test_cli_full_device_is_one_line_not_wrote(tmp_path: Path, small_trace: Path) -> None:
    full = _device(tmp_path, "full", 7)
    result = run_cli("breakdown", small_trace, "-o", full)
    assert_one_line_error(result, "No space left")
    assert "wrote" not in result.stderr


def test_a_fifo_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    write_text(fifo, "through the pipe")
    reader.join(10)
    assert got == ["through the pipe"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_symlink_loop_is_named(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    with pytest.raises(OutputError, match="symlink loop"):
        check_writable(loop)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        check_writable(tmp_path)


# -- item 2: an output that is an input ------------------------------------------------------------


@pytest.mark.parametrize("name", ["t.etdp", "t.etprof.json", "alias.etdp"])
def test_cli_output_that_is_an_input_is_refused_before_reading(tmp_path: Path, name: str) -> None:
    trace = tmp_path / "t.etdp"
    trace.write_bytes(b"not a trace at all")  # refused before it is read: no format error
    (tmp_path / "alias.etdp").symlink_to("t.etdp")
    result = run_cli("breakdown", trace, "-o", tmp_path / name)
    assert_one_line_error(result, "also an input")
    assert trace.read_bytes() == b"not a trace at all"
    assert not (tmp_path / "t.etprof.json").exists()


def test_cli_report_over_its_trace_is_refused(tmp_path: Path, small_trace: Path) -> None:
    trace = tmp_path / "t.html"  # a trace with an .html name: the report must not replace it
    trace.write_bytes(small_trace.read_bytes())
    assert_one_line_error(run_cli("report", trace, "-o", trace), "also an input")
    assert trace.read_bytes() == small_trace.read_bytes()


# -- item 6: folders that cannot hold a temporary file ----------------------------------------------


@pytest.mark.parametrize("where", ["/proc/etprof-x.json", "/sys/etprof-x.json"])
def test_cli_proc_and_sys_are_one_line(where: str, small_trace: Path) -> None:
    if not Path(where).parent.is_dir():
        pytest.skip(f"no {Path(where).parent} here")
    assert_one_line_error(run_cli("breakdown", small_trace, "-o", where), "cannot write")


def test_cli_run_checks_its_outputs_before_profiling(small_pte: Path) -> None:
    if not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    result = run_cli(
        "run",
        small_pte,
        "--iters",
        "3",
        "--warmup",
        "1",
        "--sessions",
        "1",
        "--out",
        "/proc/etprof-x.etdp",
        timeout=120,
    )
    assert_one_line_error(result, "cannot write /proc/etprof-x.etdp")


def test_cli_run_refuses_to_write_over_its_program(tmp_path: Path, small_pte: Path) -> None:
    pte = tmp_path / "m.pte"
    pte.write_bytes(small_pte.read_bytes())
    result = run_cli("run", pte, "--out", pte, timeout=120)
    assert_one_line_error(result, "also an input")
    assert pte.read_bytes() == small_pte.read_bytes()


# -- item 7: interrupted writes leave nothing behind ---------------------------------------------


def test_an_exception_in_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("previous")
    with pytest.raises(KeyboardInterrupt), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert out.read_text() == "previous"
    assert _leftovers(tmp_path) == []


def test_an_interrupt_while_setting_the_mode_leaves_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "chmod", interrupted)
    monkeypatch.setattr(os, "fchmod", interrupted)
    out = tmp_path / "out.json"
    out.write_text("previous")
    with pytest.raises(KeyboardInterrupt):
        write_text(out, "new")
    assert out.read_text() == "previous"
    assert _leftovers(tmp_path) == []


SIGNAL_MID_WRITE = """
import os, pathlib, signal, sys, time
real = pathlib.Path.write_text
sig = getattr(signal, sys.argv[1])
# a test run started in the background inherits SIGINT ignored, and Python then installs no
# KeyboardInterrupt handler; a user's terminal gives the CLI the default one
signal.signal(signal.SIGINT, signal.default_int_handler)
def half(self, text, *args, **kwargs):
    real(self, text[:10], *args, **kwargs)
    os.kill(os.getpid(), sig)
    time.sleep(5)
pathlib.Path.write_text = half
sys.argv = ["etprof", *sys.argv[2:]]
from etprof.cli import main
main()
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("command", ["breakdown", "timeline", "report"])
def test_a_signal_mid_write_keeps_the_old_file(
    tmp_path: Path, small_trace: Path, sig: str, command: str
) -> None:
    out = tmp_path / ("out.html" if command == "report" else "out.json")
    out.write_text("previous")
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_MID_WRITE, sig, command, str(small_trace), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert out.read_text() == "previous"
    assert _leftovers(tmp_path) == []


# -- item 10: the small ones about outputs ---------------------------------------------------------


def test_replacing_a_file_keeps_its_mode(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")
    out.chmod(0o640)
    write_text(out, "new")
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and out.read_text() == "new"


def test_a_new_file_gets_the_mode_open_would_give(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "new.json", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644


def test_cli_breakdown_html_extension_writes_html(tmp_path: Path, small_trace: Path) -> None:
    out = tmp_path / "x.html"
    result = run_cli("breakdown", small_trace, "-o", out)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "etprof.breakdown" in text


def test_cli_timeline_txt_is_a_clear_refusal(tmp_path: Path, small_trace: Path) -> None:
    result = run_cli("timeline", small_trace, "-o", tmp_path / "out.txt")
    assert_one_line_error(result, "out.txt", ".txt means a text table", ".json")
    assert "unknown format 'table'" not in result.stderr
    assert not (tmp_path / "out.txt").exists()


def test_cli_format_contradicting_the_extension_is_refused(
    tmp_path: Path, small_trace: Path
) -> None:
    result = run_cli("breakdown", small_trace, "-f", "json", "-o", tmp_path / "x.csv")
    assert_one_line_error(result, "--format json", "x.csv")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["breakdown"], "Missing argument"),
        (["breakdown", "x.etdp", "--bogus"], "No such option: --bogus"),
        (["breakdown", "x.etdp", "--top", "many"], "--top"),
        (["nosuch"], "No such command"),
    ],
)
def test_cli_usage_errors_are_one_line(args: list[str], needle: str) -> None:
    result = run_cli(*args)
    assert_one_line_error(result, needle, "--help")
    assert result.returncode == 2


# -- the renderer registry decides what each command can write ---------------------------------


def test_formats_come_from_what_each_renderer_accepts() -> None:
    from etprof import render

    assert render.formats("etprof.breakdown") == ("table", "json", "csv", "markdown", "html")
    assert render.formats("etprof.timeline") == ("chrome", "json", "csv")
    assert render.formats("etprof.report") == ("html",)
    assert render.choose(None, Path("t.json"), "etprof.timeline") == "chrome"
    assert render.choose(None, Path("t.json"), "etprof.breakdown") == "json"
    assert render.choose(None, Path("x.HTML"), "etprof.diff") == "html"
    assert render.choose(None, Path("x.log"), "etprof.diff") == "table"  # unknown: the default
    assert render.choose(None, None, "etprof.timeline") == "chrome"


def test_format_help_lists_the_registry_formats() -> None:
    result = run_cli("breakdown", "--help")
    assert "table, json, csv, markdown or html" in " ".join(result.stdout.split())
