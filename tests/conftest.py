"""Shared fixtures: paths to real traces and programs, and a CLI runner in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
DATA = TESTS / "data"
SAMPLES = ROOT / "sample_traces"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files with the most slow tests first, each file's tests in their order: the suite
    runs on two pytest-xdist workers a file at a time (pyproject.toml, `--dist loadfile`, so a
    file's session fixtures run once), and a long file started last would run alone at the end."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: files stay whole and in order


def sample_traces() -> list[Path]:
    return sorted(SAMPLES.glob("*.etdp"))


def inspector_means(path: Path, warmup: int) -> Any:
    """ExecuTorch's Inspector's per-event means of a trace (inspector_engine.inspector_event_means,
    seconds per sample trace), computed once per test session for each trace and warm-up: the
    engine test and the attribution test check different layers against the same figures."""
    return _inspector_means(Path(path).resolve(), warmup).copy()


@cache
def _inspector_means(path: Path, warmup: int) -> Any:
    from etprof.trace.etdump.inspector_engine import inspector_event_means

    return inspector_event_means(path, warmup)


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> CliResult:
    """Run `etprof ARGS` in a fresh interpreter, as a user would."""
    env = dict(os.environ, COLUMNS="100")
    proc = subprocess.run(
        [sys.executable, "-m", "etprof.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(result: CliResult, *needles: str) -> None:
    """A user mistake: non-zero exit, one `etprof: error:` line, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("etprof: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def small_pte() -> Path:
    return DATA / "small_xnnpack.pte"


@pytest.fixture
def small_trace() -> Path:
    return DATA / "small_xnnpack.etdp"
