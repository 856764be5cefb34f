"""The code base passes ruff with the project's settings (pyproject.toml), so CI checks style too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def test_ruff_is_clean() -> None:
    beside = Path(sys.executable).parent / "ruff"  # the test environment's own, if installed
    ruff = str(beside) if beside.is_file() else shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    folders = ["src", "analyzers", "benchmarks", "tests", "scripts"]
    proc = subprocess.run([ruff, "check", "--output-format", "concise", *folders], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
