"""How `etprof run` plans a method's inputs from the program alone (no runtime, no torch)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from etprof.errors import InputError
from etprof.program.methods import MethodShape, TensorInput
from etprof.program.reader import Program
from etprof.record.inputs import check_shape, parse_shape, plan, position_start, unknown_overrides

from conftest import DATA

LLM_FORWARD = MethodShape(
    "forward", (TensorInput(0, 4, (1, 63), dynamic=True), TensorInput(1, 4, (1,))), instructions=100
)
LLM_CONSTANTS = {"get_vocab_size": 256, "get_max_context_len": 64, "use_kv_cache": True}


def test_llm_inputs_are_tokens_and_a_position() -> None:
    p = plan(LLM_FORWARD, LLM_CONSTANTS)
    tokens, pos = p.inputs
    assert (tokens.fill, tokens.high, tokens.shape) == ("tokens", 256, (1, 63))
    assert (pos.fill, pos.high) == ("position", 64)
    assert p.step == 63
    assert p.describe() == (
        "forward: input 0 int64 [1, 63] (the upper bound): token ids in [0, 256) "
        "(get_vocab_size); input 1 int64 [1]: position advancing 63 per run, wrapping within 64 "
        "(get_max_context_len)"
    )


def test_names_decide_the_position_input() -> None:
    p = plan(LLM_FORWARD, {"get_max_seq_len": 32}, names=("tokens", "input_pos"))
    assert [i.fill for i in p.inputs] == ["zeros", "position"]
    assert p.inputs[1].source == "get_max_seq_len"
    assert "zeros (the program states no vocabulary size" in p.describe()


def test_without_metadata_integers_are_zeros_and_said_so() -> None:
    m = MethodShape(
        "forward",
        (TensorInput(0, 4, (1, 8)), TensorInput(1, 6, (1, 8)), TensorInput(2, 11, (1, 8))),
        instructions=3,
    )
    p = plan(m, {})
    assert [i.fill for i in p.inputs] == ["zeros", "normal", "coin"]
    assert "pass --inputs for real values" in p.describe()


def test_positions_advance_and_stay_within_the_cache() -> None:
    starts = [position_start(run, 3, 8) for run in range(6)]
    assert starts == [0, 3, 0, 3, 0, 3]  # 6 would overflow an 8-slot cache with 3 tokens
    assert all(s + 3 <= 8 for s in starts)
    assert [position_start(run, 1, 4) for run in range(6)] == [0, 1, 2, 3, 0, 1]


def test_shape_override_within_the_bound() -> None:
    p = plan(
        LLM_FORWARD,
        LLM_CONSTANTS,
        names=("tokens", "input_pos"),
        shapes=(parse_shape("tokens=1x1"),),
    )
    assert p.inputs[0].shape == (1, 1) and p.inputs[0].overridden
    assert p.step == 1
    assert "[1, 1] (--shape; bound [1, 63])" in p.describe()
    by_index = plan(LLM_FORWARD, LLM_CONSTANTS, shapes=(parse_shape("forward:0=1x16"),))
    assert by_index.inputs[0].shape == (1, 16)
    other = plan(LLM_FORWARD, LLM_CONSTANTS, shapes=(parse_shape("encode:0=1x16"),))
    assert other.inputs[0].shape == (1, 63)


@pytest.mark.parametrize(
    ("dims", "message"),
    [
        ((1, 64), "takes shapes up to [1, 63] (rank 2)"),
        ((1, 0), "takes shapes up to"),
        ((1, 2, 3), "takes shapes up to"),
    ],
)
def test_shapes_beyond_the_bound_are_refused(dims: tuple[int, ...], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        check_shape(dims, LLM_FORWARD.tensor_inputs[0], "--shape x", "forward input 0")  # type: ignore[arg-type]


def test_static_inputs_keep_their_shape() -> None:
    with pytest.raises(InputError, match="static shape"):
        check_shape((2,), TensorInput(1, 4, (1,)), "--shape 1=2", "forward input 1")


@pytest.mark.parametrize("text", ["0x2", "=1x2", "0=", "0=1xa"])
def test_malformed_shape_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="is not NAME_OR_INDEX=AxBxC"):
        parse_shape(text)


def test_shape_naming_no_input_is_refused() -> None:
    with pytest.raises(InputError, match=r"names no input.*forward takes 0 'tokens', 1"):
        unknown_overrides([LLM_FORWARD], {"forward": ("tokens", "")}, [parse_shape("foo=1")])


def test_program_methods_of_a_checked_in_program() -> None:
    (forward,) = Program.read(DATA / "small_xnnpack.pte").shapes
    assert forward.name == "forward" and not forward.constant
    assert forward.tensor_inputs == (TensorInput(0, 6, (1, 3, 16, 16), dynamic=False),)


def test_not_a_program(tmp_path: Path) -> None:
    bad = tmp_path / "x.pte"
    bad.write_bytes(b"nope")
    with pytest.raises(InputError, match="not an ExecuTorch program"):
        Program.read(bad)
