"""XNNPACK: everything etprof knows about the XnnpackBackend delegate.

- Operator names are XNNPACK's ``xnn_operator_type_to_string`` (+ microkernel) and a counter
  numbering the operators of each delegate afresh ("Convolution (NHWC, QC8) IGEMM #3"): the
  operator type is the name without its ``#N``.
- Glue: the operators that only move or re-type data between layouts and precisions -- the
  NCHW<->NHWC transposes and the F32<->QS8/QD8 converts that lowering inserts, copies and the
  shape-only ops ("Transpose (ND, X8)", "Convert (NC, F32, QD8)", "Copy (NC, X32)",
  "Static Reshape (NC)", "Fuse Dims (NC)"). The "(" after the name keeps arithmetic that merely
  starts alike ("Copy Sign (ND)") out.
- Timer resolution: XNNPACK reports each operator's time in whole microseconds (1000 ns): an
  operator faster than that reads 0 (docs/attribution.md, "below timer resolution").
- Datatype tags in names: static 8-bit ("QS8", "QC8W") or dynamic quantization ("QD8").
- Element-wise operators (what decomposed activations become inside a block) and the
  decompositions that split a familiar activation across a partition boundary.
- The delegate's own graph (etprof.backends.xnnpack_graph): the node types serialized in its blob, which
  name the operators XNNPACK reports by a placeholder ("Invalid Unary Op" -> "Hardswish").
- Why its partitioner left an operator out and the fix (etprof.backends.xnnpack_fallback).
- The support table (etprof.backends.xnnpack_support): which operators its partitioner configs take, at
  which precisions -- what the fallback explainer (analyzers/fallback.py) reasons with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from etprof.backends import (
    DYNAMIC_QUANT,
    FP32,
    QUANT_KERNELS,
    STATIC_QUANT,
    Backend,
    Decomposition,
    FallbackNote,
    OpContext,
)

if TYPE_CHECKING:
    from etprof.backends.support import SupportTable

BACKEND_ID = "XnnpackBackend"
COUNTER = re.compile(r"\s*#\d+$")
GLUE_OP = re.compile(
    r"^(?:Transpose|Convert|Copy|Static Reshape|Reshape|Static Expand Dims|Expand Dims|Fuse Dims"
    r"|Split Dims|Squeeze|Unsqueeze)\s*\("
)
STATIC_TAG = re.compile(r"\b(QS8|QU8|QC8W?|QC4W)\b")
DYNAMIC_TAG = re.compile(r"\b(QD8|QP8|QDU8)\b")
POINTWISE = re.compile(
    r"^(Add|Subtract|Multiply|Divide|Maximum|Minimum|Squared Difference|Clamp|HardSwish|Sigmoid|"
    r"Tanh|ELU|Leaky ReLU|Negate|Abs|Square|Square Root|Reciprocal Square Root|Exp|Log|Ceiling|"
    r"Floor|Bankers Rounding|GELU|Copy|Invalid Unary Op)\b"
    # a placeholder resolved from the delegate's graph (etprof.backends.xnnpack_graph): a unary node
    r"|^\w+ \(Invalid Unary Op\)$"
)
# The element-wise ops that end the block before the portable op, and the portable op. From
# torch's reference decompositions: hardswish(x) = x * clamp(x + 3, 0, 6) / 6,
# hardsigmoid(x) = clamp(x + 3, 0, 6) / 6. Longest pattern first.
DECOMPOSED: tuple[Decomposition, ...] = (
    ("hardswish", ("Add", "Clamp", "Multiply"), "div"),
    ("hardsigmoid", ("Add", "Clamp"), "div"),
)
# "Name (layout, types...) microkernel": the data types are the tags of the parenthesis
_PARTS = re.compile(r"^(?P<kind>[^(]+?) \((?P<args>[^)]*)\)(?P<rest>.*)$")
_DTYPE = re.compile(r"^(?:F|BF|X|S|U|QS|QU|QC|QD|QP|QB|QDU)\d+W?$")
# what every XNNPACK operator name looks like: "Name (layout[, types])[ microkernel][ #N]"
_NAME = re.compile(r"^[A-Z][A-Za-z0-9 ]*(?: \([A-Z0-9, ]+\))?[A-Za-z0-9 ]*(?:\s*#\d+)?$")


@dataclass(frozen=True)
class Xnnpack(Backend):
    def op_name(self, raw: str) -> str:
        return COUNTER.sub("", raw)

    def op_forms(self, op: str) -> tuple[str, ...]:
        """ "Convolution (NHWC, QC8) DWConv" -> "Convolution (NHWC) DWConv", "Convolution";
        a resolved placeholder "Hardswish (Invalid Unary Op)" -> "HardSwish", the kind XNNPACK
        names that node by when it runs it in float."""
        from etprof.backends.xnnpack_graph import PLACEHOLDERS, runtime_kind

        parts = _PARTS.match(op)
        if parts is None:
            return ()
        args = [a.strip() for a in parts["args"].split(",")]
        if parts["args"] in PLACEHOLDERS:
            return (runtime_kind(parts["kind"]),)
        layout = [a for a in args if not _DTYPE.match(a)]
        untyped = (
            f"{parts['kind']} ({', '.join(layout)}){parts['rest']}"
            if layout
            else f"{parts['kind']}{parts['rest']}"
        )
        return tuple(dict.fromkeys(f for f in (untyped, parts["kind"]) if f != op))

    def precision(self, op: str) -> str:
        parts = _PARTS.match(op)
        if parts is None:
            return ""
        return ", ".join(a.strip() for a in parts["args"].split(",") if _DTYPE.match(a.strip()))

    def placeholder(self, op: str) -> str:
        from etprof.backends.xnnpack_graph import PLACEHOLDERS

        if op in PLACEHOLDERS:
            return op
        parts = _PARTS.match(op)
        return parts["args"] if parts is not None and parts["args"] in PLACEHOLDERS else ""

    def is_glue(self, op: str) -> bool:
        return bool(GLUE_OP.match(op))

    def graph(self, blob: bytes | memoryview) -> tuple[str, ...]:
        from etprof.backends.xnnpack_graph import nodes

        return nodes(blob)

    def graph_handles(self, blob: bytes | memoryview) -> tuple[int, ...]:
        from etprof.backends.xnnpack_graph import node_handles

        return node_handles(blob)

    def align(self, runtime: Sequence[str], graph: Sequence[str]) -> list[int | None]:
        from etprof.backends.xnnpack_graph import align

        return align(runtime, graph)

    def name_placeholders(self, runtime: Sequence[str], graph: Sequence[str]) -> dict[str, str]:
        from etprof.backends.xnnpack_graph import resolve_names

        return resolve_names(runtime, graph)

    def graph_mismatch(self, runtime: Sequence[str], graph: Sequence[str]) -> str | None:
        from etprof.backends.xnnpack_graph import mismatch

        return mismatch(runtime, graph)

    def support_table(self) -> SupportTable:
        from etprof.backends.xnnpack_support import load_table

        return load_table()

    def fallback_note(
        self, op: str, cls: str, program_ops: Sequence[str], context: OpContext | None = None
    ) -> FallbackNote:
        from etprof.backends.xnnpack_advice import advise

        return advise(op, cls, program_ops, context or OpContext())

    def glue_kernels(self) -> frozenset[str]:
        from etprof.backends.xnnpack_fallback import GLUE_KERNELS

        return GLUE_KERNELS

    def is_elementwise(self, op: str) -> bool:
        return bool(POINTWISE.match(op))

    def program_precisions(
        self, delegate_ops: Iterable[str], portable_kernels: Iterable[str]
    ) -> tuple[str, ...]:
        """Static 8-bit when an operator name carries a QS8/QU8/QC8(W)/QC4W tag or a portable
        quantize/dequantize kernel runs; dynamically quantized with QD8/QP8/QDU8; else fp32."""
        ops = list(delegate_ops)
        found = []
        if any(STATIC_TAG.search(o) for o in ops) or QUANT_KERNELS & set(portable_kernels):
            found.append(STATIC_QUANT)
        if any(DYNAMIC_TAG.search(o) for o in ops):
            found.append(DYNAMIC_QUANT)
        return tuple(found) or (FP32,)

    def decompositions(self) -> tuple[Decomposition, ...]:
        return DECOMPOSED

    def decomposed_label(
        self, op: str, block_tail: Sequence[str], program_ops: Sequence[str]
    ) -> str:
        """A piece of scaled_dot_product_attention (judged by the program's other portable
        operators), else the portable piece of a decomposed activation whose element-wise
        pieces end the block before it (DECOMPOSED, longest first)."""
        from etprof.backends.xnnpack_fallback import base
        from etprof.backends.xnnpack_fallback import decomposed_label as pattern_label

        found = pattern_label(op, program_ops)
        if found:
            return found
        tail = self._tail_pointwise(block_tail)
        for label, pointwise, portable in DECOMPOSED:
            if base(op) == portable and tail[-len(pointwise) :] == pointwise:
                return label
        return ""

    def _tail_pointwise(self, block_tail: Sequence[str]) -> tuple[str, ...]:
        """The element-wise operators that end a block, first word only ("Add", "Clamp"),
        glue between them skipped."""
        out = []
        for name in reversed(block_tail):
            if self.is_glue(name):
                continue
            if not POINTWISE.match(name):
                break
            out.append(name.split(" (")[0])
        return tuple(reversed(out))

    def partitioner(self, mixed: bool) -> str:
        if mixed:
            return "the default XnnpackPartitioner"
        return "the quant-only partitioner, XnnpackPartitioner(config_precisions=STATIC_QUANT)"

    def export_command(self, model: str, quantize: bool) -> str:
        """`etprof export` lowers to XNNPACK (etprof.zoo.export)."""
        return f"`etprof export {model}{' --quantize' if quantize else ''}`"

    @property
    def explains_fallbacks(self) -> bool:
        return True

    def recognises(self, op_names: Iterable[str]) -> bool:
        names = list(op_names)
        return all(_NAME.match(n) for n in names) and any("(" in n for n in names)


BACKEND = Xnnpack(
    id=BACKEND_ID,
    label="XNNPACK",
    knows_glue=True,
    compute_color="#1d5fa6",
    glue_color="#6fa8dc",
    timer_resolution_ns=1000,
    boundary_glue="Convert/Transpose",
)
