"""Traces written by a C++ runner linked against the executorch wheel's own libraries.

tests/cpp/etdump_runner.cpp (built once per session by tests/cpp_runner.py) loads a `.pte`, runs
its methods taking turns and writes an ETDump, as an app on a phone does; etprof reads the trace
with `--pte`. Its figures must equal ExecuTorch's Inspector's on the same runs.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from etprof import analyzers
from etprof.analyzers.runmodel import RunModelOptions
from etprof.trace.etdump.inspector_engine import etprof_event_means, inspector_event_means
from etprof.trace.loading import load_trace
from etprof.trace.model import EXECUTE_RUN

from conftest import DATA, run_cli
from cpp_runner import CannotBuild, build

SMALL_PTE = DATA / "small_xnnpack.pte"
WARMUP = 3


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build(tmp_path_factory.mktemp("cpp_runner"))
    except CannotBuild as why:
        pytest.skip(f"cannot build the C++ runner: {why}")


def run(runner: Path, pte: Path, out: Path, *args: str) -> Path:
    proc = subprocess.run(
        [str(runner), str(pte), str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and "wrote" in proc.stdout
    return out


def inspector_means_of(path: Path, runs: slice, tmp: Path) -> pd.DataFrame:
    """The Inspector's event means over the Execute runs `runs` of a trace (one method's)."""
    from executorch.devtools.etdump.serialize import serialize_to_etdump_flatcc

    from etprof.trace.etdump.inspector_engine import _deserialize

    dump = _deserialize(path.read_bytes(), str(path))
    executes = [r for r in dump.run_data if r.name == EXECUTE_RUN]
    part = tmp / f"{path.stem}_{runs.start}_{runs.step}.etdp"
    part.write_bytes(serialize_to_etdump_flatcc(dataclasses.replace(dump, run_data=executes[runs])))
    return inspector_event_means(part, WARMUP)


def test_breakdown_of_a_cpp_trace_equals_the_inspector(runner: Path, tmp_path: Path) -> None:
    trace = run(runner, SMALL_PTE, tmp_path / "small.etdp", "--iters", "8")
    result = run_cli(
        "breakdown", trace, "--pte", SMALL_PTE, "--warmup", str(WARMUP), "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["run_model"]["iterations"] == 8 and doc["run_model"]["measured"] == 8 - WARMUP
    theirs = inspector_event_means(trace, WARMUP).set_index("name")
    assert doc["run_model"]["mean_ms"] == pytest.approx(
        theirs.loc["Method::execute", "mean_ns"] / 1e6, rel=1e-12
    )
    # every event's mean, not just the total
    t = load_trace(trace, pte=SMALL_PTE)
    ours = etprof_event_means(t.events[t.events["iteration"] >= WARMUP])
    pd.testing.assert_frame_equal(ours, inspector_event_means(trace, WARMUP), check_exact=True)
    # the program's names reach the table: the delegate's backend, the portable kernel
    assert {"XnnpackBackend", "aten::mean.out"} <= set(t.events["op"].astype(str))


def test_intermediate_output_events_are_read(runner: Path, tmp_path: Path) -> None:
    trace = run(runner, SMALL_PTE, tmp_path / "debug.etdp", "--iters", "6", "--debug")
    t = load_trace(trace, pte=SMALL_PTE)
    assert t.debug_event_count > 0
    ours = etprof_event_means(t.events[t.events["iteration"] >= WARMUP])
    pd.testing.assert_frame_equal(ours, inspector_event_means(trace, WARMUP), check_exact=True)
    result = run_cli("breakdown", trace, "--pte", SMALL_PTE, "--warmup", str(WARMUP))
    assert result.returncode == 0, result.stderr


# --- a two-method program, its methods taking turns (slow: one export) --------------------


@pytest.fixture(scope="module")
def two_methods(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """forward: conv -> hardswish on XNNPACK, then a portable mean; encode: a portable cumsum,
    then a linear on XNNPACK. Their instruction tables differ, so `--pte` tells them apart."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from torch import nn

    class Forward(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.hardswish(self.conv(x)).mean((2, 3))

    class Encode(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.fc(torch.cumsum(x, dim=-1)))

    torch.manual_seed(0)
    programs = {
        "forward": torch.export.export(Forward().eval(), (torch.randn(1, 3, 16, 16),)),
        "encode": torch.export.export(Encode().eval(), (torch.randn(4, 16),)),
    }
    lowered = to_edge_transform_and_lower(programs, partitioner=[XnnpackPartitioner()])
    pte = tmp_path_factory.mktemp("two_methods") / "two_methods.pte"
    pte.write_bytes(lowered.to_executorch().buffer)
    return pte


@pytest.mark.slow
def test_alternating_methods_give_the_inspectors_per_method_means(
    runner: Path, two_methods: Path, tmp_path: Path
) -> None:
    trace = run(
        runner,
        two_methods,
        tmp_path / "two.etdp",
        "--iters",
        "8",
        "--method",
        "forward",
        "--method",
        "encode",
        "--debug",
    )
    t = load_trace(trace, pte=two_methods)
    assert set(t.methods) == {"forward", "encode"} and t.debug_event_count > 0
    for k, method in enumerate(("forward", "encode")):  # the runner's turns: even runs, odd runs
        mine = t.for_method(method)
        assert mine.iterations == 8
        theirs = inspector_means_of(trace, slice(k, None, 2), tmp_path)
        stats = analyzers.run("runmodel", mine, RunModelOptions(warmup=WARMUP))
        assert stats.mean_ms == pytest.approx(
            theirs.set_index("name").loc["Method::execute", "mean_ns"] / 1e6, rel=1e-12
        )
        ours = etprof_event_means(mine.events[mine.events["iteration"] >= WARMUP])
        pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    # through the CLI: `breakdown --pte --method` gives the same per-method means, and without
    # --method one section per method, never one blended mean
    for k, method in enumerate(("forward", "encode")):
        result = run_cli(
            "breakdown",
            trace,
            "--pte",
            two_methods,
            "--warmup",
            str(WARMUP),
            "--method",
            method,
            "--format",
            "json",
        )
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        theirs = inspector_means_of(trace, slice(k, None, 2), tmp_path).set_index("name")
        assert doc["method"] == method
        assert doc["run_model"]["mean_ms"] == pytest.approx(
            theirs.loc["Method::execute", "mean_ns"] / 1e6, rel=1e-12
        )
    both = run_cli(
        "breakdown", trace, "--pte", two_methods, "--warmup", str(WARMUP), "--format", "json"
    )
    assert both.returncode == 0, both.stderr
    sections = json.loads(both.stdout)["methods"]
    assert sorted(x["method"] for x in sections) == ["encode", "forward"]


@pytest.mark.slow
def test_the_right_program_is_accepted_from_the_cpp_runner(runner: Path, tmp_path: Path) -> None:
    """A ResNet-style network's ReLU after each Add runs as a Clamp of its own, with no node in
    the serialized graph, and the Llama's x * x as Square (issue 22): the C++ runner's traces
    are read with their own `--pte`, and another model's is refused."""
    from etprof.errors import MismatchError

    from programs import program

    resnet = program("etprof_tiny_models:resnet8")
    llama = program("llama", "xnnpack_fp32")
    traces = {}
    for name, pte in (("resnet", resnet), ("llama", llama)):
        traces[name] = run(
            runner, pte, tmp_path / f"{name}.etdp", "--iters", "2", "--method", "forward"
        )
        trace = load_trace(traces[name], pte=pte)
        assert trace.iterations == 2
    with pytest.raises(MismatchError, match="does not match"):
        load_trace(traces["resnet"], pte=llama)
