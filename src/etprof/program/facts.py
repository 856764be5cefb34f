"""What each operator instruction of a `.pte` computes on: its arguments (tensors' dtypes and
sizes, ints, int lists, bools) and which instructions consume its result, read from the method's
value table (schema `program.fbs`: ExecutionPlan.values, KernelCall.args) without the runtime.

The fallback explainer checks a fix's precondition against these facts (a mean over dims (2, 3)
of a 4-D tensor with keepdim=False; an expand whose result feeds a matmul; a program computing
in bfloat16) instead of assuming it (etprof.backends.xnnpack_advice).

An out-variant kernel's arguments are its inputs, then its out tensor(s); the last argument is
the result. ``IntList`` items are indices of ``Int`` values (so a size may be symbolic).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from etprof.program import schema as S
from etprof.util.flatbuf import Buffer, CorruptBuffer

# ExecuTorch ScalarType codes (schema/scalar_type.fbs) and the names users know them by
DTYPES = {
    0: "uint8",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "int64",
    5: "float16",
    6: "float32",
    7: "float64",
    11: "bool",
    15: "bfloat16",
}
FLOATS = ("float32", "float16", "bfloat16", "float64")
_KERNEL_ARGS = 1  # KernelCall.args (DelegateCall.args is field 1 too)
_EVALUE_NULL = 1


@dataclass(frozen=True)
class Value:
    """One argument of an instruction."""

    kind: str  # "tensor" | "int" | "bool" | "double" | "ints" | "none" | "other"
    dtype: str = ""  # a tensor's, e.g. "float32", "bfloat16", "bool"
    sizes: tuple[int, ...] = ()  # a tensor's (its upper bound when dynamic)
    ints: tuple[int, ...] = ()  # an int (one), a bool (0/1) or an int list

    def describe(self) -> str:
        if self.kind == "tensor":
            return f"{self.dtype}[{', '.join(map(str, self.sizes))}]"
        if self.kind in ("int", "bool"):
            return str(bool(self.ints[0]) if self.kind == "bool" else self.ints[0])
        return f"({', '.join(map(str, self.ints))})" if self.kind == "ints" else self.kind


@dataclass(frozen=True)
class OpFacts:
    """One instruction: its arguments and the instructions that read its result."""

    id: int
    args: tuple[Value, ...]
    consumers: tuple[int, ...]  # instruction ids, in program order

    @property
    def result(self) -> Value | None:
        return self.args[-1] if self.args else None

    def tensors(self) -> tuple[Value, ...]:
        return tuple(v for v in self.args if v.kind == "tensor")


@dataclass(frozen=True)
class MethodFacts:
    """Every operator and delegate instruction of one method (chain 0), by instruction id."""

    method: str
    ops: dict[int, OpFacts]

    def float_dtype(self) -> str:
        """The precision the method computes in: bfloat16 or float16 when any of its tensors
        has it (a bf16 model's decompositions cast pieces to float32 and back: its SDPA holds
        30 float32 tensors beside 5 bfloat16 ones), else float32 or float64; "" without
        float tensors."""
        seen = {v.dtype for f in self.ops.values() for v in f.tensors()}
        return next((d for d in ("bfloat16", "float16", "float32", "float64") if d in seen), "")


def method_facts(data: bytes, method: str) -> MethodFacts | None:
    """The facts of `method` of the program in `data`; None when it has no such method or its
    value table cannot be read."""
    try:
        buf = Buffer.of(data)
        for plan in buf.table_vector(buf.deref(0), S.PROGRAM_PLANS):
            if (buf.string_field(plan, S.PLAN_NAME) or "") == method:
                return _facts(buf, plan, method)
    except (CorruptBuffer, IndexError, ValueError, struct.error):
        return None
    return None


def _facts(buf: Buffer, plan: int, method: str) -> MethodFacts:
    values = buf.table_vector(plan, S.PLAN_VALUES)
    chains = buf.table_vector(plan, S.PLAN_CHAINS)
    args: dict[int, list[int]] = {}
    if chains:
        for idx, instr in enumerate(buf.table_vector(chains[0], S.CHAIN_INSTRUCTIONS)):
            kind = S.UNION_KINDS.get(buf.u8_field(instr, S.INSTR_TYPE))
            table = buf.table_field(instr, S.INSTR_VALUE)
            if kind in ("operator", "delegate") and table is not None:
                args[idx] = _ints32(buf, table, _KERNEL_ARGS)
    readers: dict[int, list[int]] = {}
    for idx, a in args.items():
        for v in set(a[:-1]) if a else ():
            readers.setdefault(v, []).append(idx)
    ops = {}
    for idx, a in args.items():
        result = a[-1] if a else -1
        consumers = tuple(sorted(i for i in readers.get(result, ()) if i > idx))
        ops[idx] = OpFacts(idx, tuple(_value(buf, values, v) for v in a), consumers)
    return MethodFacts(method, ops)


def _ints32(buf: Buffer, table: int, field: int) -> list[int]:
    first, count = buf.vector_field(table, field)
    buf.check(first, 4 * count)
    return [buf.i32_at(first + 4 * i) for i in range(count)]


def _value(buf: Buffer, values: list[int], index: int) -> Value:
    if not 0 <= index < len(values):
        return Value("other")
    evalue = values[index]
    kind = buf.u8_field(evalue, 0)
    table = buf.table_field(evalue, 1)
    if kind == _EVALUE_NULL or table is None:
        return Value("none")
    if kind == S.EVALUE_TENSOR:
        sizes = tuple(_ints32(buf, table, S.TENSOR_SIZES))
        dtype = buf.u8_field(table, S.TENSOR_SCALAR_TYPE)
        return Value("tensor", DTYPES.get(dtype, f"dtype {dtype}"), sizes)
    pos = buf.field_pos(table, 0)
    if kind == S.EVALUE_INT:
        return Value("int", ints=(_i64(buf, pos),))
    if kind == S.EVALUE_BOOL:
        return Value("bool", ints=(buf.u8_at(pos) if pos else 0,))
    if kind == S.EVALUE_DOUBLE:
        return Value("double")
    if kind == S.EVALUE_INT_LIST:
        first, length = buf.vector_field(table, 0)
        buf.check(first, 8 * length)
        items = struct.unpack_from(f"<{length}q", buf.data, first)
        return Value("ints", ints=tuple(_int_at(buf, values, int(i)) for i in items))
    return Value("other")


def _int_at(buf: Buffer, values: list[int], index: int) -> int:
    """The Int value an IntList item points at (-1 when it is not one: a symbolic size)."""
    if not 0 <= index < len(values):
        return -1
    evalue = values[index]
    table = buf.table_field(evalue, 1)
    if buf.u8_field(evalue, 0) != S.EVALUE_INT or table is None:
        return -1
    return _i64(buf, buf.field_pos(table, 0))


def _i64(buf: Buffer, pos: int) -> int:
    if not pos:
        return 0
    buf.check(pos, 8)
    value: int = struct.unpack_from("<q", buf.data, pos)[0]
    return value
