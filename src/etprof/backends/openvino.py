"""OpenVINO: everything etprof knows about the OpenvinoBackend delegate.

- Its runtime records no operator events in the ETDump: each call is one opaque block of the
  backend ("OpenVINO (no operator events)", analyzers/buckets.py), never delegate overhead.
- The blob in the `.pte` is an OpenVINO compiled model (``CompiledModel.export_model()``):
  imported with ``PERF_COUNT`` and run, OpenVINO's own profiler times each layer
  (etprof.backends.openvino_profile), named after the edge nodes it came from
  ("aten_convolution_default/aten.convolution.default/Convolution"). On a CPU with bf16 support
  OpenVINO runs an fp32 program's layers in bf16 (its default inference precision hint).
- Glue, among those layers: the Reorder/Convert layers OpenVINO inserts between layouts and
  precisions (f32 -> bf16 at the inputs), and the shape-only ones (Reshape, Transpose, ...).
- The support table (etprof.backends.openvino_support): what its partitioner takes -- every
  target OpenVINO's PyTorch frontend converts, at any precision.
- Why an operator stayed on portable kernels: the frontend has no conversion for it.
- The runtime library: the ExecuTorch runtime loads ``libopenvino_c`` from the ``openvino``
  package at run time; without it the program cannot run (`etprof run` says so up front).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etprof.backends import NO_FIX, Backend, FallbackNote, NativeProfile, OpContext

if TYPE_CHECKING:
    from etprof.backends.support import SupportTable

BACKEND_ID = "OpenvinoBackend"
INSTALL = "pip install 'etprof[openvino]'"
# OpenVINO CPU plugin layer types that only move, re-type or re-shape data
GLUE_OP = re.compile(
    r"^(?:Reorder|Convert|Transpose|Reshape|Squeeze|Unsqueeze|Broadcast|"
    r"StridedSlice|Gather|Concatenation|Split)$"
)
ELEMENTWISE = re.compile(
    r"^(?:Eltwise|Subgraph|Multiply|Add|Subtract|Divide|HSwish|HSigmoid|"
    r"Swish|Gelu|Relu|Clamp|Sigmoid|Tanh|PowerStatic|Power|Exp|Erf)$"
)


@dataclass(frozen=True)
class Openvino(Backend):
    def is_glue(self, op: str) -> bool:
        return bool(GLUE_OP.match(op))

    def is_elementwise(self, op: str) -> bool:
        return bool(ELEMENTWISE.match(op))

    def support_table(self) -> SupportTable:
        from etprof.backends.openvino_support import load_table

        return load_table()

    def fallback_note(
        self, op: str, cls: str, program_ops: Sequence[str], context: OpContext | None = None
    ) -> FallbackNote:
        from etprof.backends.openvino_support import SOURCE

        base = op.split("::")[-1].split(".")[0]
        if cls == "unsupported":
            return FallbackNote(
                reason=f"OpenVINO's PyTorch frontend has no conversion for {base}, so its "
                f"partitioner ({SOURCE}) does not take it",
                fix=f"{NO_FIX} in OpenVINO; a second partitioner after OpenvinoPartitioner "
                "(e.g. XnnpackPartitioner) may take it",
            )
        return FallbackNote(
            reason=f"OpenVINO's partitioner takes {base}, but this node was left out (its "
            "inputs or the edge program's form kept it outside the partition)",
            fix="check the edge program around it (etprof report --etrecord shows its module)",
        )

    def glue_kernels(self) -> frozenset[str]:
        from etprof.backends.xnnpack_fallback import GLUE_KERNELS

        return GLUE_KERNELS  # the same portable copies and views surround any delegate

    def partitioner(self, mixed: bool) -> str:
        return "OpenvinoPartitioner"

    def export_command(self, model: str, quantize: bool) -> str:
        return f"`etprof export {model} --backend openvino{' --quantize' if quantize else ''}`"

    @property
    def explains_fallbacks(self) -> bool:
        return True

    def native_profile(self, blob: bytes, inputs: Sequence[Any]) -> NativeProfile | None:
        from etprof.backends.openvino_profile import profile

        return profile(blob, inputs)

    def recognises(self, op_names: Iterable[str]) -> bool:
        return False  # it records no operator events to recognise


BACKEND = Openvino(
    id=BACKEND_ID,
    label="OpenVINO",
    knows_glue=True,
    compute_color="#0b7a75",
    glue_color="#7cc7c2",
    boundary_glue="Reorder/Convert",
    install_hint=INSTALL,
)
