"""Delegate backends: what etprof knows about each, behind one small interface.

Generic code (buckets, operators, blocks, diff classes, the report's colours, the fallback
explainer's gate) asks the backend of a delegate event -- the ``backend`` column of the event
table, the backend id from the program's delegate table -- and never matches a backend's
operator names itself. A backend module registers its class here keyed by backend id
(``XnnpackBackend`` first); an id nobody registered gets :class:`Backend` itself, which is
honest about what it does not know: its operators are its compute, their time outside the
delegate call its overhead, glue unknown, labelled by its own id.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from etprof.backends.support import SupportTable
    from etprof.program.facts import OpFacts

UNKNOWN_LABEL = "delegate"
NO_FIX = "no known fix"  # how a FallbackNote's fix starts when nothing gets the op delegated

# The precisions a support table names (etprof.backends.support), and how reports say them
FP32, STATIC_QUANT, DYNAMIC_QUANT = "fp32", "static_quant", "dynamic_quant"
PRECISION_LABELS = {
    FP32: "fp32",
    STATIC_QUANT: "static 8-bit quantized",
    DYNAMIC_QUANT: "dynamically quantized",
}
# The portable (quantized_decomposed) kernels a PT2E static-quantized program calls at its
# partition edges: whatever the backend, their presence makes the program static-quantized.
QUANT_KERNELS = frozenset(
    {
        "quantize_per_tensor",
        "dequantize_per_tensor",
        "quantize_per_channel",
        "dequantize_per_channel",
    }
)
# An activation lowering decomposes, of which the backend takes every piece but one:
# (its name, the element-wise operator kinds that end the delegate block before the portable
# piece, in order, the portable piece's kernel), e.g. ("hardswish", ("Add", "Clamp",
# "Multiply"), "div").
Decomposition = tuple[str, tuple[str, ...], str]


MEASURED, CHECKED, UNTESTED = "measured", "checked", "untested"
ADVICE_LABELS = {
    MEASURED: "etprof re-exported and re-ran the model with it",
    CHECKED: "the lowering was verified to take the operator, untimed",
    UNTESTED: "a hypothesis",
}


@dataclass(frozen=True)
class OpContext:
    """What the program shows about one portable operator (its `.pte`, etprof.program.facts):
    the program's float dtype, and each instance's arguments and consumers."""

    dtype: str = ""  # "float32", "bfloat16", ...; "" when the program could not be read
    instances: tuple[OpFacts, ...] = ()
    consumers: tuple[tuple[str, ...], ...] = ()  # per instance: its consumers' operator names
    program_ops: tuple[str, ...] = ()  # each instruction's operator name (or backend id), by id
    program: tuple[OpFacts, ...] = ()  # every operator and delegate instruction's facts

    @property
    def known(self) -> bool:
        return bool(self.instances)


@dataclass(frozen=True)
class FallbackNote:
    """Why a backend's partitioner left an operator on portable kernels, and what to do."""

    reason: str
    fix: str  # starts with NO_FIX when nothing makes it delegated (in this executorch version)
    label: str = ""  # the decomposition the operator is a piece of, e.g. an attention
    # how far the fix is known to work (ADVICE_LABELS): CHECKED (lowering verified to take the
    # operator, untimed) or UNTESTED (a hypothesis); MEASURED only from a comparison trace
    evidence: str = ""
    condition: str = ""  # the precondition the fix rests on, as checked against the program

    @property
    def fixable(self) -> bool:
        return not self.fix.startswith(
            NO_FIX
        )  # a delegate whose backend id the trace does not know


@dataclass(frozen=True)
class NativeLayer:
    """One layer of a backend's own profile of a delegate (see `Backend.native_profile`)."""

    name: str  # the layer's name in the backend's graph (often the edge node it came from)
    kind: str  # its operator type as the backend names it ("Convolution", "MatMul")
    real_ns: int  # wall time of one run, as the backend's profiler measured it
    cpu_ns: int
    precision: str = ""  # the kernel's data type ("bf16", "f32"), "" when unknown


@dataclass(frozen=True)
class NativeProfile:
    """A backend's per-layer profile of one delegate, from one run in the backend's runtime."""

    layers: tuple[NativeLayer, ...]
    runs: int  # how many runs the times are the mean of
    source: str  # what made it, e.g. "OpenVINO 2025.4.1 PERF_COUNT"


@dataclass(frozen=True)
class Backend:
    """A delegate backend etprof has no special knowledge of (the base of every backend)."""

    id: str
    label: str
    knows_glue: bool = False  # whether is_glue can tell layout/precision conversions apart
    compute_color: str = "#5b5ea6"  # report colours of its compute and glue buckets
    glue_color: str = "#9fa1d6"
    guessed: bool = False  # chosen from operator names: the trace's program table was unknown
    # the granularity of the operator durations it reports (ns); None: unknown, so etprof
    # cannot tell an operator faster than its clock from delegate overhead
    timer_resolution_ns: int | None = None
    boundary_glue: str = "glue"  # how the fallback explainer names the glue at a block's edges
    # how a user installs its runtime when the ExecuTorch runtime cannot load it ("": unknown)
    install_hint: str = ""

    @property
    def opaque_label(self) -> str:
        """What a delegate call of this backend that recorded no operator events is called:
        one opaque block of the backend, not delegate overhead (analyzers/buckets.py)."""
        return f"{self.label} (no operator events)"

    def native_profile(self, blob: bytes, inputs: Sequence[Any]) -> NativeProfile | None:
        """The backend's own profile of one delegate: its processed blob (from the `.pte`) run
        on `inputs` (the delegate's input tensors, as numpy arrays) by the backend's own
        runtime with its profiler on; None when etprof has no such profiler for the backend.
        Imports the backend's runtime: only commands that run programs call it."""
        return None

    def op_name(self, raw: str) -> str:
        """The operator type of a delegate event name (e.g. without a per-delegate counter)."""
        return raw

    def op_forms(self, op: str) -> tuple[str, ...]:
        """Coarser names of an operator (as `op_name` made it) that its lowerings at other
        precisions share, finest first: e.g. without its data types, then its kind alone.
        A diff across lowerings pairs operators by the finest form both sides have."""
        return ()

    def precision(self, op: str) -> str:
        """The data types an operator's name carries ("F32", "QS8, QC8W"); "" when none."""
        return ""

    def placeholder(self, op: str) -> str:
        """The placeholder name the runtime reported an operator by ("Invalid Unary Op"), for
        a resolved name or the bare placeholder itself; "" for any other operator."""
        return ""

    def is_glue(self, op: str) -> bool:
        """Whether an operator (as `op_name` made it) only moves or re-types data."""
        return False

    def glue_mask(self, op: pd.Series) -> npt.NDArray[np.bool_]:
        """`is_glue` of every entry of an operator-name column (matched once per name)."""
        if not self.knows_glue:
            return np.zeros(len(op), dtype=bool)
        if isinstance(op.dtype, pd.CategoricalDtype):
            flags = np.array(
                [self.is_glue(str(c)) for c in op.cat.categories] + [False], dtype=bool
            )
            out: npt.NDArray[np.bool_] = flags[op.cat.codes.to_numpy()]  # code -1: the False
            return out
        names = op.astype(str)
        table = {name: self.is_glue(name) for name in names.unique()}
        mapped: npt.NDArray[np.bool_] = names.map(table).astype(bool).to_numpy()
        return mapped

    def graph(self, blob: bytes | memoryview) -> tuple[str, ...]:
        """The operators of a delegate's serialized graph (its processed blob in the `.pte`),
        in execution order; () when etprof cannot read this backend's blobs."""
        return ()

    def graph_handles(self, blob: bytes | memoryview) -> tuple[int, ...]:
        """The debug handle of each node of `graph(blob)` (the edge-program node it came from,
        as the ETRecord numbers them); () when unknown."""
        return ()

    def align(self, runtime: Sequence[str], graph: Sequence[str]) -> list[int | None]:
        """For the operators of one delegate call (as reported, in execution order), the index
        of the `graph` node each ran; None where unknown (every one, for a generic backend)."""
        return [None] * len(runtime)

    def name_placeholders(self, runtime: Sequence[str], graph: Sequence[str]) -> dict[str, str]:
        """For the operators of one delegate call the runtime names by a placeholder (as
        reported, in execution order), the node of `graph` each ran; {} when none or unknown."""
        return {}

    def graph_mismatch(self, runtime: Sequence[str], graph: Sequence[str]) -> str | None:
        """Why the operators one delegate call ran (as reported, in order) cannot come from
        `graph` (its serialized graph); None when they can, or when the backend cannot tell."""
        return None

    def support_table(self) -> SupportTable | None:
        """The operators its partitioner takes (for the fallback explainer); None: unknown."""
        return None

    def fallback_note(
        self, op: str, cls: str, program_ops: Sequence[str], context: OpContext | None = None
    ) -> FallbackNote | None:
        """Why the partitioner left the portable operator `op` (as the program calls it, of the
        explainer's class `cls`) out, and the fix; `program_ops`: every portable operator of
        the program, for context; `context`: what the `.pte` shows of it (a fix's
        precondition is checked against it). None: the backend does not know."""
        return None

    def glue_kernels(self) -> frozenset[str]:
        """Portable kernel names (no namespace/overload) that only move, re-type or make data
        next to a fallen-back operator: never a cause by themselves."""
        return frozenset()

    def is_elementwise(self, op: str) -> bool:
        """Whether a delegate operator (as `op_name` made it) is element-wise: with the glue,
        what may sit at a block's edges next to a partition boundary."""
        return False

    def program_precisions(
        self, delegate_ops: Iterable[str], portable_kernels: Iterable[str]
    ) -> tuple[str, ...]:
        """The precisions (FP32, STATIC_QUANT, DYNAMIC_QUANT) a program uses, from its delegate
        operators' names and its portable kernels (names without namespace or overload); the
        generic backend reads the portable quantize/dequantize kernels only."""
        return (STATIC_QUANT,) if QUANT_KERNELS & set(portable_kernels) else (FP32,)

    def decompositions(self) -> tuple[Decomposition, ...]:
        """The decomposed activations whose pieces the explainer names (see Decomposition)."""
        return ()

    def decomposed_label(
        self, op: str, block_tail: Sequence[str], program_ops: Sequence[str]
    ) -> str:
        """The decomposition (e.g. "hardswish") the portable operator `op` (as the program
        calls it) is a piece of, judged by `block_tail` -- the operators at the end of the
        delegate block before it, in order; () when none -- or by the program's portable
        operators `program_ops`; "" when none or unknown."""
        return ""

    def partitioner(self, mixed: bool) -> str:
        """How a fix names the backend's partitioner that also takes fp32 operators beside
        quantized ones (`mixed`), or the one that takes quantized partitions only; "": unknown."""
        return ""

    def export_command(self, model: str, quantize: bool) -> str:
        """The command that lowers the zoo model `model` to this backend (quantized first with
        `quantize`), as a fix quotes it; "" when etprof has none."""
        return ""

    @property
    def explains_fallbacks(self) -> bool:
        """Whether etprof can say why operators were not delegated to this backend."""
        return False

    def recognises(self, op_names: Iterable[str]) -> bool:
        """Whether delegate operator names look like this backend's (for a trace without its
        program table); the generic backend recognises nothing."""
        return False


_MODULES = {
    "XnnpackBackend": "etprof.backends.xnnpack",
    "OpenvinoBackend": "etprof.backends.openvino",
}
# What users call the backends etprof has no module for, by ExecuTorch backend id
LABELS = {
    "CoreMLBackend": "Core ML",
    "QnnBackend": "QNN",
    "VulkanBackend": "Vulkan",
    "MPSBackend": "MPS",
    "VgfBackend": "Arm VGF",
    "EthosUBackend": "Arm Ethos-U",
    "NeuropilotBackend": "MediaTek NeuroPilot",
    "EnnBackend": "Samsung Exynos",
    "CadenceBackend": "Cadence",
    "CudaBackend": "CUDA",
    "MetalBackend": "Metal",
}


@lru_cache(maxsize=64)
def get(backend_id: str) -> Backend:
    """The backend registered for `backend_id`; a generic one labelled by the id otherwise
    ("" -- the trace does not say -- is labelled "delegate")."""
    module = _MODULES.get(backend_id)
    if module is not None:
        found: Backend = importlib.import_module(module).BACKEND
        return found
    return Backend(id=backend_id, label=LABELS.get(backend_id, backend_id or UNKNOWN_LABEL))


def resolve(backend_id: str, op_names: Iterable[str] = ()) -> Backend:
    """`get(backend_id)`, except that a delegate of unknown backend ("": the trace has no
    program table) whose operator names are all a registered backend's is taken as that
    backend, marked ``guessed``."""
    if backend_id:
        return get(backend_id)
    names = [n for n in op_names if n]
    for candidate in _MODULES:
        backend = get(candidate)
        if names and backend.recognises(names):
            return _guessed(candidate)
    return get("")


@lru_cache(maxsize=16)
def _guessed(backend_id: str) -> Backend:
    from dataclasses import replace

    return replace(get(backend_id), guessed=True)


def registered() -> tuple[str, ...]:
    return tuple(_MODULES)


def default_target() -> Backend | None:
    """The backend the fallback explainer explains a program with no delegate against (what
    it could have been lowered to): the first registered backend that explains fallbacks;
    None when none does."""
    found = explainers()
    return found[0] if found else None


def explainers() -> tuple[Backend, ...]:
    """The registered backends whose fallbacks etprof can explain, in registration order."""
    return tuple(b for b in (get(i) for i in _MODULES) if b.explains_fallbacks)
