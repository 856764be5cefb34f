"""nn.Module paths per instruction, from an ETRecord: a fresh export, the checked-in one, bad files."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import pytest

from etprof.backends.graphs import read_program
from etprof.errors import InputError, MismatchError
from etprof.program.etrecord import attach_modules
from etprof.program.types import ProgramInfo

from conftest import DATA


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny model with nested named submodules, lowered to XNNPACK with an ETRecord."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    class Block(torch.nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(cin, cout, 3)
            self.act = torch.nn.Hardswish()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.conv(x))

    class Pool(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean((2, 3))  # not delegated: a portable kernel of its own

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.Sequential(Block(3, 4), Block(4, 8))
            self.pool = Pool()
            self.head = torch.nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.pool(self.features(x)))

    torch.manual_seed(0)
    program = torch.export.export(Net().eval(), (torch.randn(1, 3, 12, 12),))
    edge = to_edge_transform_and_lower(
        program, partitioner=[XnnpackPartitioner()], generate_etrecord=True
    )
    et = edge.to_executorch()
    out = tmp_path_factory.mktemp("modules")
    pte, etrecord = out / "net.pte", out / "net_etrecord.bin"
    pte.write_bytes(et.buffer)
    et.get_etrecord().save(str(etrecord))
    return pte, etrecord


def modules_by_instruction(info: ProgramInfo) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(i.kind, i.name, i.modules) for i in info.instructions]


@pytest.mark.slow
def test_fresh_export(exported: tuple[Path, Path]) -> None:
    pte, etrecord = exported
    info = attach_modules(read_program(pte), etrecord)
    block = ("features.0.conv", "features.0.act", "features.1.conv", "features.1.act")
    assert modules_by_instruction(info) == [
        ("delegate", "XnnpackBackend", block),
        ("operator", "aten::mean.out", ("pool",)),
        ("delegate", "XnnpackBackend", ("head",)),
    ]
    assert info.etrecord == str(etrecord)


def test_checked_in_etrecord_and_root_module() -> None:
    info = read_program(DATA / "small_xnnpack.pte")
    out = attach_modules(info, DATA / "small_xnnpack_etrecord.bin")
    # hardswish and mean are called in M.forward itself: the root module, ""
    assert [i.modules for i in out.instructions] == [("c", ""), ("",), ("l",)]
    assert all(i.modules == () for i in info.instructions)  # the input is not mutated
    # every method's table gets its modules too (here the one method: the same instructions)
    assert [m.instructions for m in out.methods] == [out.instructions]
    assert (
        dataclasses.replace(out, instructions=info.instructions, etrecord="", methods=info.methods)
        == info
    )


def test_etrecord_of_another_program() -> None:
    info = read_program(DATA / "small_xnnpack.pte")
    swapped = (dataclasses.replace(info.instructions[0], kind="operator"), *info.instructions[1:])
    with pytest.raises(MismatchError, match="instruction 0"):
        attach_modules(
            dataclasses.replace(info, instructions=swapped), DATA / "small_xnnpack_etrecord.bin"
        )


def test_etrecord_without_the_method() -> None:
    info = dataclasses.replace(read_program(DATA / "small_xnnpack.pte"), method="encode")
    with pytest.raises(InputError, match="method 'encode'"):
        attach_modules(info, DATA / "small_xnnpack_etrecord.bin")


def not_an_etrecord_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "not an etrecord")


@pytest.mark.parametrize("kind", ["missing", "directory", "pte", "empty", "zip"])
def test_bad_etrecords(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "etrecord.bin"
    if kind == "directory":
        path.mkdir()
    elif kind == "pte":
        path.write_bytes((DATA / "small_xnnpack.pte").read_bytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "zip":
        not_an_etrecord_zip(path)
    with pytest.raises(InputError) as info:
        attach_modules(read_program(DATA / "small_xnnpack.pte"), path)
    assert "\n" not in info.value.one_line() and str(path) in info.value.problem
