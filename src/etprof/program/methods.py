"""What each method of a `.pte` program takes, and the values its constant methods return, read
without the runtime (so `etprof run` plans and checks its inputs before loading it).

A method's inputs are tensors with a dtype and sizes; a tensor of dynamic shape records its upper
bound, and any smaller size of the same rank may be passed (the runtime resizes it). ExecuTorch's LLM exports carry their metadata as methods that take no input, run no instruction
and return a constant (`get_vocab_size` -> 32000, `use_kv_cache` -> True), written with
`to_edge_transform_and_lower(..., constant_methods={...})`. The value sits in the method's value
table (schema `program.fbs`: ExecutionPlan.values, EValue union), so reading it needs no torch.
Such methods cannot be profiled: they execute nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from etprof.errors import ProgramFormatError
from etprof.program import schema as S
from etprof.util.flatbuf import Buffer, CorruptBuffer

Constant = int | bool | float | tuple[int, ...]


@dataclass(frozen=True)
class TensorInput:
    """One tensor input of a method."""

    index: int
    scalar_type: int  # ExecuTorch ScalarType code (schema/scalar_type.fbs): 6 float32, 4 int64
    sizes: tuple[int, ...]  # the shape; with `dynamic`, its upper bound
    dynamic: bool = False  # TensorShapeDynamism DYNAMIC_BOUND or DYNAMIC_UNBOUND


@dataclass(frozen=True)
class MethodShape:
    """What a method takes and whether it computes anything."""

    name: str
    # one per input; None for an input that is not a tensor (an int, a list, ...)
    tensor_inputs: tuple[TensorInput | None, ...]
    instructions: int
    # the value of each output when the method is constant; None: an output that is not a
    # scalar or int list (a tensor), or a method that computes
    value: Constant | None = None

    @property
    def inputs(self) -> int:
        return len(self.tensor_inputs)

    @property
    def constant(self) -> bool:
        """Takes nothing and runs nothing: returns the same value every time."""
        return self.inputs == 0 and self.instructions == 0


def parse_methods(data: bytes, source: str) -> tuple[MethodShape, ...]:
    """Every method of the program with its input and instruction counts and, for constant
    methods, the value returned (a single output's value; a list for several outputs)."""
    try:
        return tuple(_methods(Buffer.of(data)))
    except (CorruptBuffer, IndexError, ValueError, struct.error) as exc:
        raise ProgramFormatError(f"{source} is a corrupt .pte ({exc})", "export it again") from None


def constants(methods: tuple[MethodShape, ...]) -> dict[str, Constant]:
    """name -> value of every constant method whose value could be read."""
    return {m.name: m.value for m in methods if m.constant and m.value is not None}


def _methods(buf: Buffer) -> list[MethodShape]:
    root = buf.deref(0)
    out = []
    for plan in buf.table_vector(root, S.PROGRAM_PLANS):
        name = buf.string_field(plan, S.PLAN_NAME) or ""
        values = buf.table_vector(plan, S.PLAN_VALUES)
        inputs = tuple(
            _tensor(buf, i, values[v]) for i, v in enumerate(_ints(buf, plan, S.PLAN_INPUTS))
        )
        chains = buf.table_vector(plan, S.PLAN_CHAINS)
        n_instr = sum(buf.vector_field(c, S.CHAIN_INSTRUCTIONS)[1] for c in chains)
        value = _value(buf, values, plan) if not inputs and n_instr == 0 else None
        out.append(MethodShape(name, inputs, n_instr, value))
    return out


def _ints(buf: Buffer, table: int, field: int) -> list[int]:
    first, count = buf.vector_field(table, field)
    buf.check(first, 4 * count)
    return [buf.i32_at(first + 4 * i) for i in range(count)]


def _tensor(buf: Buffer, index: int, evalue: int) -> TensorInput | None:
    table = buf.table_field(evalue, 1)
    if buf.u8_field(evalue, 0) != S.EVALUE_TENSOR or table is None:
        return None
    sizes = tuple(_ints(buf, table, S.TENSOR_SIZES))
    return TensorInput(
        index,
        buf.u8_field(table, S.TENSOR_SCALAR_TYPE),
        sizes,
        dynamic=buf.u8_field(table, S.TENSOR_DYNAMISM) != 0,
    )


def _value(buf: Buffer, values: list[int], plan: int) -> Constant | None:
    read = [_evalue(buf, values[i]) for i in _ints(buf, plan, S.PLAN_OUTPUTS)]
    if len(read) == 1:
        return read[0]
    if read and all(isinstance(v, int) and not isinstance(v, bool) for v in read):
        return tuple(int(v) for v in read if isinstance(v, int))  # get_eos_ids: [2, 3]
    return None


def _evalue(buf: Buffer, evalue: int) -> Constant | None:
    kind = buf.u8_field(evalue, 0)
    table = buf.table_field(evalue, 1)
    if table is None:
        return None
    pos = buf.field_pos(table, 0)
    if kind == S.EVALUE_INT:
        return _unpack(buf, "<q", pos, 0)
    if kind == S.EVALUE_BOOL:
        return bool(buf.u8_at(pos)) if pos else False
    if kind == S.EVALUE_DOUBLE:
        return float(_unpack(buf, "<d", pos, 0.0))
    if kind == S.EVALUE_INT_LIST:
        first, length = buf.vector_field(table, 0)
        buf.check(first, 8 * length)
        return tuple(int(v) for v in struct.unpack_from(f"<{length}q", buf.data, first))
    return None


def _unpack(buf: Buffer, fmt: str, pos: int, default: float) -> int | float:
    if not pos:
        return default
    buf.check(pos, struct.calcsize(fmt))
    value: int | float = struct.unpack_from(fmt, buf.data, pos)[0]
    return value
