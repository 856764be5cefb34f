"""Every numeric option has a range, checked before any work, and docs/guarantees.md lists it
(issue 26, item 5): `run --iters 1000000000000` ran 135 s then died by SIGSEGV, `--threads
1000000000` aborted the runtime, `--sessions 1000000000` ran until killed, `demo --iters -1`
exported for 70 s before refusing. Also `etprof --version` (item 9)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from etprof.cli import app, version_line
from etprof.errors import InputError
from etprof.util.limits import LIMITS

from conftest import assert_one_line_error, run_cli

GUARANTEES = Path(__file__).parents[3] / "docs" / "guarantees.md"
# arguments that make each command reach its checks (nothing they name exists)
POSITIONAL = {
    "breakdown": ["missing.etdp"],
    "diff": ["missing_a.etdp", "missing_b.etdp"],
    "report": ["missing.etdp"],
    "timeline": ["missing.etdp"],
    "run": ["missing.pte"],
    "store": ["missing.etdp"],
    "export": ["mv3"],
}
NUMERIC = {"int", "float"}  # the names of click's INT and FLOAT types
COUNTED = {"--sessions"}  # a count given as text ("auto" or a number)


def _numeric_options() -> list[tuple[str, str]]:
    group = typer.main.get_command(app)
    found = []
    for name, command in sorted(group.commands.items()):  # type: ignore[attr-defined]
        for param in command.params:
            flags = [o for o in param.opts if o.startswith("--")]
            if param.param_type_name != "option" or not flags:
                continue
            if param.type.name in NUMERIC or flags[0] in COUNTED:
                found.append((name, flags[0]))
    return found


OPTIONS = _numeric_options()


def test_every_numeric_option_has_a_limit_and_is_documented() -> None:
    assert len(OPTIONS) > 20
    text = GUARANTEES.read_text()
    for command, flag in OPTIONS:
        assert flag in LIMITS, (command, flag)
        limit = LIMITS[flag]
        row = re.search(rf"^\| `{re.escape(flag)}` \|(.*)$", text, re.M)
        assert row is not None, f"docs/guarantees.md has no row for {flag}"
        assert limit.range in row.group(1), row[0]
        assert command in row.group(1), (command, row[0])


@pytest.mark.parametrize(("command", "flag"), OPTIONS)
def test_out_of_range_is_refused_before_any_work(command: str, flag: str) -> None:
    limit = LIMITS[flag]
    for value in (limit.high + 1, limit.low - 1):
        shown = f"{value:g}" if isinstance(value, float) else str(int(value))
        args = [command, *POSITIONAL.get(command, []), flag, shown]
        result = CliRunner().invoke(app, args)
        assert isinstance(result.exception, InputError), (args, result.output, result.exception)
        assert result.exception.one_line().startswith(f"{flag} "), result.exception.one_line()


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--iters", "1000000000000"),
        ("run", "--threads", "1000000000"),
        ("run", "--sessions", "1000000000"),
    ],
)
def test_the_issue_cases_end_in_one_line(args: tuple[str, ...], small_pte: Path) -> None:
    result = run_cli(args[0], small_pte, *args[1:], timeout=60)
    assert_one_line_error(result, args[1], "is outside")


def test_demo_refuses_negative_iterations_before_exporting(tmp_path: Path) -> None:
    result = run_cli("demo", "--dir", tmp_path / "demo", "--iters", "-1", timeout=60)
    assert_one_line_error(result, "--iters -1 is outside")
    assert not (tmp_path / "demo").exists()


def test_version_names_etprof_executorch_and_torch_without_importing_torch() -> None:
    line = version_line()
    assert re.fullmatch(r"etprof \S+, executorch \S+, torch \S+, Python \S+", line), line
    probe = (
        "import sys; from etprof.cli import main; sys.argv = ['etprof', '--version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'executorch' not in sys.modules, 'imported'"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == line
