"""OpenVINO as a real second backend, end to end: programs lowered with ExecuTorch's own
OpenvinoPartitioner (tests/programs.py's cache: a conv net, a transformer encoder, the encoder
split XNNPACK-first with OpenVINO taking the rest, and the conv net quantized with NNCF), run,
broken down, diffed against XNNPACK, reported and laid on a timeline.

OpenVINO's runtime records no operator events in the ETDump: each of its calls must be one opaque
block of the backend, never delegate overhead, and the buckets must still sum exactly to run
model, per iteration and per backend. The independent read is the trace's own DELEGATE_CALL
events summed per iteration, and the program's instruction table for the partitions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from etprof.analyzers.buckets import BUCKETS, DELEGATED, backend_frames, bucket_frame
from etprof.backends.graphs import read_program
from etprof.trace.loading import load_trace
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, RUN_MODEL

from conftest import CliResult, assert_one_line_error, run_cli
from programs import program_copy

pytestmark = pytest.mark.slow
QUICK = ("--iters", "8", "--warmup", "2", "--sessions", "1", "--spread", "0")
OV = "OpenvinoBackend"
# name -> (model of tests/etprof_tiny_models.py, --backend, --quantize)
PROGRAMS = {
    "conv": ("tiny", "openvino", False),
    "encoder": ("encoder", "openvino", False),
    "mixed": ("encoder", "xnnpack+openvino", False),
    "conv_q8": ("tiny", "openvino", True),
}


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`traced(name)`: the trace of one `etprof run` of PROGRAMS[name] (run once per module);
    "encoder" and "xnnpack" (the same encoder lowered to XNNPACK) are run together, taking
    turns, as `etprof diff` wants."""
    folder = tmp_path_factory.mktemp("openvino")
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            if name in ("encoder", "xnnpack"):
                ov = program_copy(
                    folder / "encoder", "etprof_tiny_models:encoder", backend="openvino"
                )
                xnn = program_copy(folder / "xnnpack", "etprof_tiny_models:encoder")
                result = run_cli("run", ov, xnn, *QUICK, "--model", "encoder")
                assert result.returncode == 0, result.stderr
                done["encoder"], done["xnnpack"] = ov.with_suffix(".etdp"), xnn.with_suffix(".etdp")
            else:
                model, backend, quantize = PROGRAMS[name]
                pte = program_copy(
                    folder / name, f"etprof_tiny_models:{model}", backend=backend, quantize=quantize
                )
                result = run_cli("run", pte, *QUICK)
                assert result.returncode == 0, result.stderr
                assert "Traceback" not in result.stderr
                done[name] = pte.with_suffix(".etdp")
        return done[name]

    return get


@pytest.mark.parametrize("name", ["conv", "encoder", "mixed", "conv_q8"])
def test_buckets_sum_exactly_and_no_openvino_time_is_overhead(
    traced: Callable[[str], Path], name: str
) -> None:
    trace = load_trace(traced(name))
    b = bucket_frame(trace)
    assert (b[list(BUCKETS)].sum(axis=1) == b["run_model"]).all()
    per = backend_frames(trace)
    assert OV in per
    for bucket in DELEGATED:  # the per-backend rows split the totals exactly
        assert (sum(f[bucket] for f in per.values()) == b[bucket]).all()
    ov = per[OV]
    # independent read: OpenVINO's DELEGATE_CALL events summed per iteration, and no operator
    # event of its own in the whole trace
    calls = trace.of_kind(DELEGATE_CALL)
    calls = calls[calls["backend"].astype(str) == OV]
    ns = calls.groupby("iteration")["duration_ns"].sum().reindex(ov.index, fill_value=0)
    ops = trace.of_kind(DELEGATE_OP)
    assert not (ops["backend"].astype(str) == OV).any()
    assert (ov["delegate_opaque"] == ns).all() and (ns > 0).all()
    assert (ov["delegate_overhead"] == 0).all()
    assert (ov["delegate_compute"] == 0).all() and (ov["delegate_glue"] == 0).all()


def test_run_summary_names_the_opaque_backend(traced: Callable[[str], Path]) -> None:
    result = run_cli("breakdown", traced("conv"), "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    rows = {(r["bucket"], r["backend"]): r for r in doc["buckets"]}
    opaque = rows[("delegate_opaque", OV)]
    assert opaque["label"] == "OpenVINO (no operator events)"
    assert rows[("delegate_overhead", OV)]["mean_ms"] == 0
    assert ("delegate_compute", OV) not in rows  # nothing to split: no operators
    total = rows[("run_model", "")]["mean_ms"]
    assert opaque["mean_ms"] / total > 0.5
    table = run_cli("breakdown", traced("conv"))
    assert table.returncode == 0, table.stderr
    headline = " ".join(table.stdout.split("\n\n")[0].split())  # its first paragraph
    assert "OpenVINO" in headline and "opaque: no operator events" in headline
    assert "OpenvinoBackend delegate overhead" not in table.stdout


def test_split_program_says_partitions_per_backend(traced: Callable[[str], Path]) -> None:
    trace = traced("mixed")
    program = read_program(trace.with_suffix(".pte"))
    kinds = [i.name for i in program.instructions if i.kind == "delegate"]
    counts = {b: kinds.count(b) for b in set(kinds)}
    assert set(counts) == {"XnnpackBackend", OV}
    handoffs = sum(a != b for a, b in pairwise(kinds))
    result = run_cli("breakdown", trace)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert f"split between 2 backends with {handoffs} hand-off(s)" in text
    assert f"XNNPACK {counts['XnnpackBackend']} partition(s)" in text
    assert f"OpenVINO {counts[OV]} partition(s)" in text


def test_diff_xnnpack_against_openvino_by_operator_kind(traced: Callable[[str], Path]) -> None:
    xnn, ov = traced("xnnpack"), traced("encoder")
    result = run_cli("diff", xnn, ov, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    rows = doc["contributors"]
    opaque = [r for r in rows if r["contributor"] == "OpenVINO (no operator events)"]
    assert len(opaque) == 1 and opaque[0]["a_ms"] == 0 and opaque[0]["b_ms"] > 0
    assert any(r["class"] == "XNNPACK compute" and r["a_ms"] > 0 and r["b_ms"] == 0 for r in rows)
    assert not any(r["class"] == "OpenVINO delegate overhead" and r["b_ms"] for r in rows)
    buckets = {(r["bucket"], r["backend"]): r for r in doc["buckets"]}
    # each side's contributors add up to its mean run model over every measured run, read
    # independently from the trace's Method::execute events
    for side, path in (("a_ms", xnn), ("b_ms", ov)):
        measured = load_trace(path).measured(None)
        mean_ms = measured.of_kind(RUN_MODEL)["duration_ns"].mean() / 1e6
        assert sum(r[side] for r in rows) == pytest.approx(mean_ms, rel=1e-9)
    assert buckets[("delegate_opaque", OV)]["class"] == "OpenVINO (no operator events)"


def test_report_and_timeline_show_opaque_blocks(
    traced: Callable[[str], Path], tmp_path: Path
) -> None:
    trace = traced("mixed")
    html = tmp_path / "mixed.html"
    result = run_cli("report", trace, "-o", html)
    assert result.returncode == 0, result.stderr
    assert "OpenVINO (no operator events)" in html.read_text()
    timeline = tmp_path / "mixed.json"
    result = run_cli("timeline", trace, "-o", timeline)
    assert result.returncode == 0, result.stderr
    slices = [e for e in json.loads(timeline.read_text())["traceEvents"] if e.get("ph") == "X"]
    opaque = {e["name"] for e in slices if e["cat"] == "opaque"}
    assert opaque == {"DELEGATE_CALL OpenvinoBackend (no operator events)"}
    assert any(
        e["cat"] == "delegated" and e["name"] == "DELEGATE_CALL XnnpackBackend" for e in slices
    )


def test_quantized_export_is_one_openvino_partition(traced: Callable[[str], Path]) -> None:
    program = read_program(traced("conv_q8").with_suffix(".pte"))
    assert [i.name for i in program.instructions] == [OV]


def test_missing_openvino_runtime_is_a_one_line_backend_error(tmp_path: Path) -> None:
    """The runtime finds libopenvino_c through the `openvino` package: hidden, OpenVINO does not
    load, and `etprof run` says so before running, not that the inputs are wrong."""
    pte = program_copy(tmp_path, "etprof_tiny_models:tiny", backend="openvino")
    code = (
        "import sys\nsys.modules['openvino'] = None\nfrom etprof import cli\n"
        f"sys.argv = ['etprof', 'run', {str(pte)!r}, *{list(QUICK)!r}]\ncli.main()\n"
    )
    # a minimal environment: nothing a test run exported before (library paths, a worker's
    # settings) may let the runtime find OpenVINO's library by another way
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    assert_one_line_error(result, "OpenVINO", "does not load", "pip install 'etprof[openvino]'")
    assert "inputs" not in proc.stderr
    assert proc.returncode == 3
    assert not pte.with_suffix(".etdp").exists()


def test_support_table_is_what_the_partitioner_takes_today() -> None:
    """The checked-in table is what scripts/gen_openvino_support.py would write today."""
    from etprof.backends.openvino_support import DATA_FILE, dumps, generate_table

    checked_in = Path(__file__).parents[2] / "src" / "etprof" / "backends" / DATA_FILE
    assert dumps(generate_table()) == checked_in.read_text(encoding="utf-8"), (
        "OpenVINO's partitioner changed: run scripts/gen_openvino_support.py"
    )


def test_native_profile_times_every_executed_layer(traced: Callable[[str], Path]) -> None:
    """OpenVINO's own profiler on the conv net's blob, fed the program's input shape: its
    layers are the edge nodes' (named after them) and take time."""
    from etprof import backends
    from etprof.program.reader import delegate_blobs

    pte = traced("conv").with_suffix(".pte")
    [(_, backend, blob)] = delegate_blobs(pte.read_bytes())
    assert backend == OV
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    profile = backends.get(OV).native_profile(bytes(blob), [x])
    assert profile is not None and profile.runs > 0
    kinds = {layer.kind for layer in profile.layers}
    assert "Convolution" in kinds
    assert any("aten.convolution.default" in layer.name for layer in profile.layers)
    assert sum(layer.real_ns for layer in profile.layers) > 0
