"""What reading a trace imports: never torch or executorch (their import alone takes seconds),
and `etprof --help` not even numpy or pandas. Checked in fresh interpreters through `sys.modules`.
Timing goals live in benchmarks/reader_speed.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, sample_traces

HEAVY = {"torch", "executorch", "torchvision", "torchao"}
TRACES = [DATA / "small_xnnpack.etdp", *sample_traces()[:1]]

# Runs the real entry point, then records every module imported, even when the CLI exits.
RUNNER = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "etprof"
from etprof.cli import main
main()
"""


def modules_after(
    args: list[str], tmp_path: Path
) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(out), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    top = {m.split(".")[0] for m in json.loads(out.read_text())}
    return top, proc


def test_help_imports_no_data_libraries(tmp_path: Path) -> None:
    top, proc = modules_after(["--help"], tmp_path)
    assert proc.returncode == 0 and "breakdown" in proc.stdout
    assert not top & (HEAVY | {"numpy", "pandas", "scipy"}), sorted(top & (HEAVY | {"numpy"}))


@pytest.mark.parametrize("trace", TRACES, ids=lambda p: p.name)
def test_breakdown_with_the_fast_engine_imports_no_torch(trace: Path, tmp_path: Path) -> None:
    top, proc = modules_after(["breakdown", str(trace), "--format", "json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)  # it really analysed the trace
    assert "pandas" in top  # the check sees what was imported
    assert not top & HEAVY, sorted(top & HEAVY)


def test_reading_a_trace_imports_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from etprof.trace.loading import load_trace; "
        f"t = load_trace({str(TRACES[0])!r}); assert len(t.events); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & %r))" % (HEAVY,)
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_inspector_engine_does_import_executorch(tmp_path: Path) -> None:
    """The check is not vacuous: the reference engine is the one that pays for executorch."""
    top, proc = modules_after(["breakdown", str(TRACES[0]), "--engine", "inspector"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "executorch" in top
