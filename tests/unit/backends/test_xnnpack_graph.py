"""XNNPACK's placeholder operator names resolved from the delegate's serialized graph.

Checked on the checked-in small program (fp32: XNNPACK names every operator itself, so the
alignment can be checked against those names) and on a real quantized export, where executorch
1.5.1 reports each hardswish as "Invalid Unary Op".
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from etprof.backends.graphs import delegate_graphs, read_program
from etprof.backends.xnnpack_graph import align, nodes, resolve_names
from etprof.errors import ProgramFormatError
from etprof.program.reader import Program
from etprof.trace.loading import load_trace
from etprof.trace.model import DELEGATE_OP, Trace

from conftest import DATA, SAMPLES, run_cli
from programs import program_copy

SMALL_PTE = DATA / "small_xnnpack.pte"
SMALL_TRACE = DATA / "small_xnnpack.etdp"


def _delegate_ops(trace: Trace, instruction: int) -> list[str]:
    """The runtime's operator names of one delegate call, in execution order (first run)."""
    ev = trace.events
    ops = ev[(ev["kind"] == DELEGATE_OP) & (ev["instruction_id"] == instruction)]
    first = ops[ops["iteration"] == ops["iteration"].min()].sort_values("seq")
    return [str(n) for n in first["delegate_op"]]


def test_small_program_graphs() -> None:
    graphs = {k: g for k, (g, _) in delegate_graphs(Program.read(SMALL_PTE)).items()}
    assert graphs == {
        ("forward", 0): ("StaticTranspose", "Conv2d", "Hardswish", "StaticTranspose"),
        ("forward", 1): ("FullyConnected",),
    }


def test_alignment_agrees_with_the_names_xnnpack_gives() -> None:
    trace = load_trace(SMALL_TRACE, pte=SMALL_PTE)
    delegates = [i for i in trace.meta.program.instructions if i.kind == "delegate"]
    assert [i.graph for i in delegates] == [
        ("StaticTranspose", "Conv2d", "Hardswish", "StaticTranspose"),
        ("FullyConnected",),
    ]
    first = _delegate_ops(trace, delegates[0].id)
    assert first == [
        "Transpose (ND, X32) #1",
        "Convolution (NHWC, F32) IGEMM #1",
        "HardSwish (NC) #1",
        "Transpose (ND, X32) #2",
    ]
    assert align(first, delegates[0].graph) == [0, 1, 2, 3]
    assert resolve_names(first, delegates[0].graph) == {}  # nothing to resolve in fp32


def test_placeholders_skip_fused_nodes() -> None:
    # a clamp fused into its convolution has no operator; the placeholder is the hardswish
    graph = ("Convert", "Conv2d", "Clamp", "Hardswish", "Conv2d", "Hardswish", "Convert")
    runtime = [
        "Convert (NC) #1",
        "Convolution (NHWC, QC8) IGEMM #1",
        "Invalid Unary Op #1",
        "Fully Connected (NC, QS8, QC8W) GEMM #1",
        "Invalid Unary Op #2",
        "Convert (NC) #2",
    ]
    assert align(runtime, graph) == [0, 1, 3, 4, 5, 6]
    assert resolve_names(runtime, graph) == {
        "Invalid Unary Op #1": "Hardswish",
        "Invalid Unary Op #2": "Hardswish",
    }
    # an operator no node explains is left alone, and does not shift the others
    odd = [
        "Convert (NC) #1",
        "Mystery (NC) #1",
        "Convolution (NHWC, QC8) IGEMM #1",
        "Invalid Unary Op #1",
    ]
    assert align(odd, graph) == [0, None, 1, 3]


def test_corrupt_blob(tmp_path: Path) -> None:
    data = bytearray(SMALL_PTE.read_bytes())
    at = data.find(b"XH00")
    assert at > 0
    struct.pack_into("<I", data, at - 4 + 10, 1 << 30)  # flatbuffer offset past the end
    bad = tmp_path / "bad.pte"
    bad.write_bytes(bytes(data))
    assert delegate_graphs(Program.read(bad))[("forward", 0)] == ((), ())
    # the program is still read; that delegate's operators keep the runtime's names
    graphs = [i.graph for i in read_program(bad).instructions if i.kind == "delegate"]
    assert graphs == [(), ("FullyConnected",)]
    truncated = tmp_path / "truncated.pte"
    truncated.write_bytes(SMALL_PTE.read_bytes()[:at])  # the segments are gone
    with pytest.raises(ProgramFormatError):
        read_program(truncated)
    with pytest.raises(ValueError, match="XN01"):
        nodes(b"\0" * 64)


# --- a real quantized export (slow) ----------------------------------------------------------


@pytest.fixture(scope="module")
def q8_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("q8_hardswish")
    pte = program_copy(out, "etprof_tiny_models:hardswish_q8", "xnnpack_q8")
    ran = run_cli(
        "run",
        pte,
        "--iters",
        "12",
        "--warmup",
        "2",
        "--sessions",
        "1",
        "--spread",
        "0",
        "--out",
        out / "tiny.etdp",
    )
    assert ran.returncode == 0, ran.stderr
    return out / "tiny.etdp"


@pytest.mark.slow
def test_quantized_hardswish_is_named(q8_trace: Path) -> None:
    trace = load_trace(q8_trace)
    delegates = [i for i in trace.meta.program.instructions if i.kind == "delegate"]
    assert any("Hardswish" in i.graph for i in delegates)  # the sidecar carries the graph
    ops = trace.events.loc[trace.events["kind"] == DELEGATE_OP]
    raw = set(ops["delegate_op"].astype(str))
    placeholders = {n for n in raw if n.startswith("Invalid Unary Op")}
    assert placeholders, sorted(raw)  # executorch 1.5.1 does report the placeholder here
    shown = ops.loc[ops["delegate_op"].isin(placeholders), "op"].astype(str)
    assert set(shown) == {"Hardswish (Invalid Unary Op)"}
    assert "Invalid Unary Op" not in set(ops["op"].astype(str))
    # every operator of the call lines up with a node of the graph
    for d in delegates:
        runtime = _delegate_ops(trace, d.id)
        assert None not in align(runtime, d.graph), runtime


@pytest.mark.slow
def test_breakdown_shows_the_resolved_name(q8_trace: Path) -> None:
    result = run_cli("breakdown", q8_trace, "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert "Hardswish (Invalid Unary Op)" in result.stdout


@pytest.mark.slow
def test_mobilenet_v3_q8_sample_lines_up_with_its_graph() -> None:
    """The checked-in MV3 q8 sample (whose .pte is not checked in) against a fresh export of the
    same model and variant: same architecture, same lowering, so the same delegate graph."""
    from mv3_programs import cached_program

    pte = cached_program("xnnpack_q8")
    (graph,) = [g for g, _ in delegate_graphs(Program.read(pte)).values()]
    assert graph.count("Hardswish") == 19
    trace = load_trace(SAMPLES / "mv3_xnnpack_q8.etdp", pte=pte)
    (delegate,) = [i for i in trace.meta.program.instructions if i.kind == "delegate"]
    runtime = _delegate_ops(trace, delegate.id)
    assert len(runtime) == 166 and None not in align(runtime, graph)
    renamed = resolve_names(runtime, graph)
    assert len(renamed) == 19 and set(renamed.values()) == {"Hardswish"}
    ops = trace.events.loc[trace.events["kind"] == DELEGATE_OP, "op"].astype(str)
    per_iteration = (ops == "Hardswish (Invalid Unary Op)").sum() / trace.iterations
    assert per_iteration == 19 and "Invalid Unary Op" not in set(ops)
