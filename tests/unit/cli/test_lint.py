"""The code base passes ruff with the project's settings (pyproject.toml) and `mypy --strict`, so
CI checks style and types too."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT


def _tool(name: str) -> list[str]:
    """The command running `name` from the test environment (its module, else its executable)."""
    if importlib.util.find_spec(name) is not None:
        return [sys.executable, "-m", name]
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return [found]


def test_ruff_is_clean() -> None:
    folders = ["src", "analyzers", "benchmarks", "tests", "scripts"]
    proc = subprocess.run(
        [*_tool("ruff"), "check", "--output-format", "concise", *folders],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean() -> None:
    """analyzers/ is the package etprof.analyzers through the symlink src/etprof/analyzers, so
    `src` covers it under its real name; naming the folder too checks it as it stands alone."""
    proc = subprocess.run(
        [*_tool("mypy"), "--strict", "src", "analyzers"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout
