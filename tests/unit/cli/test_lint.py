"""The code base passes ruff with the project's settings (pyproject.toml) and `mypy --strict`, so
CI checks style and types too."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

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


FOLDERS = ["src", "analyzers", "benchmarks", "tests", "scripts"]
MAX_MODULE_LINES = 450  # docs/architecture.md: a module is read in one sitting


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=ROOT, capture_output=True, text=True, check=False, timeout=600
    )


def test_ruff_is_clean() -> None:
    proc = _run(*_tool("ruff"), "check", "--output-format", "concise", *FOLDERS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_is_clean() -> None:
    proc = _run(*_tool("ruff"), "format", "--check", *FOLDERS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean() -> None:
    """analyzers/ is the package etprof.analyzers through the symlink src/etprof/analyzers, so
    `src` checks every file once, under its real name."""
    proc = _run(*_tool("mypy"), "--strict", "src")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout


def test_stages_import_only_stages_below() -> None:
    """The layers contract in pyproject.toml ([tool.importlinter]; docs/architecture.md)."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "lint-imports is not installed (pip install -e '.[test]')"
    proc = _run(lint, "--no-cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_modules_are_small() -> None:
    sizes = {
        str(f.relative_to(ROOT)): len(f.read_text().splitlines())
        for folder in ("src/etprof", "analyzers")
        for f in (ROOT / folder).rglob("*.py")
        if "src/etprof/analyzers" not in str(f.relative_to(ROOT))
    }
    over = {f: n for f, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not over, f"modules over {MAX_MODULE_LINES} lines: {over}"
