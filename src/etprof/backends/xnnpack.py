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
- The delegate's own graph (etprof.xnnpack_graph): the node types serialized in its blob, which
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

from etprof.backends import Backend, FallbackNote

if TYPE_CHECKING:
    from etprof.backends.xnnpack_support import SupportTable

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
    # a placeholder resolved from the delegate's graph (etprof.xnnpack_graph): a unary node
    r"|^\w+ \(Invalid Unary Op\)$"
)
# The element-wise ops that end the block before the portable op, and the portable op. From
# torch's reference decompositions: hardswish(x) = x * clamp(x + 3, 0, 6) / 6,
# hardsigmoid(x) = clamp(x + 3, 0, 6) / 6. Longest pattern first.
DECOMPOSED = (
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
        """"Convolution (NHWC, QC8) DWConv" -> "Convolution (NHWC) DWConv", "Convolution";
        a resolved placeholder "Hardswish (Invalid Unary Op)" -> "HardSwish", the kind XNNPACK
        names that node by when it runs it in float."""
        from etprof.xnnpack_graph import PLACEHOLDERS, runtime_kind

        parts = _PARTS.match(op)
        if parts is None:
            return ()
        args = [a.strip() for a in parts["args"].split(",")]
        if parts["args"] in PLACEHOLDERS:
            return (runtime_kind(parts["kind"]),)
        layout = [a for a in args if not _DTYPE.match(a)]
        untyped = f"{parts['kind']} ({', '.join(layout)}){parts['rest']}" if layout else \
            f"{parts['kind']}{parts['rest']}"
        return tuple(dict.fromkeys(f for f in (untyped, parts["kind"]) if f != op))

    def precision(self, op: str) -> str:
        parts = _PARTS.match(op)
        if parts is None:
            return ""
        return ", ".join(a.strip() for a in parts["args"].split(",") if _DTYPE.match(a.strip()))

    def placeholder(self, op: str) -> str:
        from etprof.xnnpack_graph import PLACEHOLDERS

        if op in PLACEHOLDERS:
            return op
        parts = _PARTS.match(op)
        return parts["args"] if parts is not None and parts["args"] in PLACEHOLDERS else ""

    def is_glue(self, op: str) -> bool:
        return bool(GLUE_OP.match(op))

    def graph(self, blob: bytes | memoryview) -> tuple[str, ...]:
        from etprof.xnnpack_graph import nodes

        return nodes(blob)

    def graph_handles(self, blob: bytes | memoryview) -> tuple[int, ...]:
        from etprof.xnnpack_graph import node_handles

        return node_handles(blob)

    def align(self, runtime: Sequence[str], graph: Sequence[str]) -> list[int | None]:
        from etprof.xnnpack_graph import align

        return align(runtime, graph)

    def name_placeholders(self, runtime: Sequence[str], graph: Sequence[str]) -> dict[str, str]:
        from etprof.xnnpack_graph import resolve_names

        return resolve_names(runtime, graph)

    def graph_mismatch(self, runtime: Sequence[str], graph: Sequence[str]) -> str | None:
        from etprof.xnnpack_graph import mismatch

        return mismatch(runtime, graph)

    def support_table(self) -> SupportTable:
        from etprof.backends.xnnpack_support import load_table

        return load_table()

    def fallback_note(self, op: str, cls: str, program_ops: Sequence[str]) -> FallbackNote:
        from etprof.backends.xnnpack_fallback import note

        return note(op, cls, program_ops)

    def glue_kernels(self) -> frozenset[str]:
        from etprof.backends.xnnpack_fallback import GLUE_KERNELS

        return GLUE_KERNELS

    @property
    def explains_fallbacks(self) -> bool:
        return True

    def recognises(self, op_names: Iterable[str]) -> bool:
        names = list(op_names)
        return all(_NAME.match(n) for n in names) and any("(" in n for n in names)


BACKEND = Xnnpack(id=BACKEND_ID, label="XNNPACK", knows_glue=True, compute_color="#1d5fa6",
                  glue_color="#6fa8dc", timer_resolution_ns=1000)
