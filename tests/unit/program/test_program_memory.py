"""Planned memory read from a `.pte` (etprof.program.memory), checked against ExecuTorch's own
program deserializer on real MobileNetV3 programs, and against the model's parameter bytes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mv3_programs import cached_program

from etprof.errors import ProgramFormatError
from etprof.program.memory import planned_memory
from etprof.program.reader import Program
from etprof.program.types import ProgramInfo
from etprof.trace.sidecar import TraceMeta

from conftest import TESTS

DATA = TESTS / "data"
VARIANTS = ("portable", "xnnpack_fp32", "xnnpack_q8")


@pytest.fixture(scope="session")
def mv3_ptes() -> dict[str, Path]:
    return {v: cached_program(v) for v in VARIANTS}


def test_small_program_planned_memory() -> None:
    p = Program.read(DATA / "small_xnnpack.pte").memory
    assert [m.name for m in p.methods] == ["forward"]
    assert p.activations_bytes("forward") == 9408
    assert [(d.backend, d.location) for d in p.delegates] == [("XnnpackBackend", "segment")] * 2
    assert p.delegate_bytes == 1200 + 720
    assert p.weights_bytes == 1040  # XNNPACK's weights, stored as named data
    assert p.file_bytes == (DATA / "small_xnnpack.pte").stat().st_size


def test_planned_memory_survives_the_metadata_document() -> None:
    p = Program.read(DATA / "small_xnnpack.pte").memory
    meta = TraceMeta(program=ProgramInfo(memory=p))
    assert TraceMeta.from_json(meta.to_json()).program.memory == p


@pytest.mark.parametrize("cut", [0, 7, 100, 2000])
def test_truncated_or_foreign_file_is_refused(cut: int) -> None:
    data = (DATA / "small_xnnpack.pte").read_bytes()[:cut]
    with pytest.raises(ProgramFormatError) as info:
        planned_memory(data, "x.pte")
    assert "x.pte" in info.value.one_line() and "\n" not in info.value.one_line()


def test_reading_does_not_import_torch() -> None:
    code = (
        "import sys; from pathlib import Path; from etprof.program.reader import Program; "
        f"Program.read(Path({str(DATA / 'small_xnnpack.pte')!r})).memory; "
        "assert 'torch' not in sys.modules and 'executorch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _deserialized(pte: Path) -> dict[str, object]:
    """The same figures, from ExecuTorch's own reader of the file."""
    from executorch.exir._serialize._program import deserialize_pte_binary
    from executorch.exir.schema import DataLocation

    pte_file = deserialize_pte_binary(pte.read_bytes())
    program = pte_file.program
    delegates = []
    for plan in program.execution_plan:
        for d in plan.delegates:  # every segment is restored inline by the deserializer
            assert d.processed.location == DataLocation.INLINE
            delegates.append(
                (plan.name, d.id, len(program.backend_delegate_data[d.processed.index].data))
            )
    named = pte_file.named_data
    return {
        "arenas": {p.name: tuple(p.non_const_buffer_sizes[1:]) for p in program.execution_plan},
        "constant": sum(len(b.storage) for b in program.constant_buffer),
        "named": sum(len(b) for b in named.buffers) if named is not None else 0,
        "delegates": delegates,
    }


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_planned_sizes_match_executorch_deserializer(
    mv3_ptes: dict[str, Path], variant: str
) -> None:
    ours = Program.read(mv3_ptes[variant]).memory
    theirs = _deserialized(mv3_ptes[variant])
    assert {m.name: m.arenas_bytes for m in ours.methods} == theirs["arenas"]
    assert ours.constant_bytes == theirs["constant"]
    assert ours.named_data_bytes == theirs["named"]
    assert [(d.method, d.backend, d.size_bytes) for d in ours.delegates] == theirs["delegates"]
    assert ours.activations_bytes() > 100_000  # MobileNetV3's activations do need an arena
    if variant == "portable":
        assert not ours.delegates and ours.named_data_bytes == 0
    else:
        assert {d.backend for d in ours.delegates} == {"XnnpackBackend"}


def _parameter_bytes(quantized: bool) -> int:
    """The model's parameters at the program's precision: 8-bit weights (convolutions and the
    classifier, the tensors of more than one dimension) when quantized, float32 otherwise."""
    from etprof import zoo

    model, _ = zoo.load("mv3")
    total = 0
    for p in model.parameters():
        total += p.numel() * (1 if quantized and p.dim() > 1 else 4)
    return total


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_weights_near_the_models_parameter_bytes(mv3_ptes: dict[str, Path], variant: str) -> None:
    weights = Program.read(mv3_ptes[variant]).memory.weights_bytes
    expected = _parameter_bytes(quantized=variant == "xnnpack_q8")
    # batch norms fold into the convolutions, quantization adds per-channel scales, and the
    # constant segment pads each tensor to its alignment: a few percent either way
    assert abs(weights / expected - 1) < 0.05, (weights, expected)
