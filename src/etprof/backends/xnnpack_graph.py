"""The operators of each XNNPACK delegate, read from the graph serialized inside a `.pte`.

XNNPACK's profiler names some operators by a placeholder: in executorch 1.5.1 a quantized
hardswish (run through a lookup table) is reported as ``Invalid Unary Op``. The delegate's own
graph says what each node is, so :func:`resolve_names` lines the runtime's operators up with it.

Layout of a delegate blob (ExecuTorch's backends/xnnpack/serialization: ``XNNHeader`` and
``schema.fbs``, read here without their code): bytes 4-8 "XH00", u16 header length at 8, u32
flatbuffer offset at 10 and size at 14; the flatbuffer (identifier "XN01") has the root
``XNNGraph`` whose field 1 is the vector of ``XNode`` tables, each a union ``xnode_union`` (type
tag in field 0, value in 1) and a ``debug_handle`` (field 2). Older blobs are the bare flatbuffer.

How the runtime's operators map to the nodes: XNNPACK creates its operators from the nodes in
order, dropping nodes it fuses into their producer (a clamp after a convolution) and rewriting some
(a 1x1 convolution runs as "Fully Connected"); a concatenation runs as several copies. So the
runtime list is the node list with nodes dropped and a few operators added, and a longest common
subsequence over "could this operator be that node" pairs recovers the correspondence.

What XNNPACK's runtime (executorch 1.5.1) splits and renames, seen on real programs
(tests/test_program_identity.py): a binary node with a fused activation (a ReLU after an Add,
serialized as the Add's ``output_min_max``) runs as the binary operator and then a Clamp operator
of its own (`SPLITS`); a Multiply of a value by itself (``x * x``, RMSNorm's square) runs as
Square (`RENAMED`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from etprof.util.flatbuf import Buffer

BACKEND_ID = "XnnpackBackend"
PLACEHOLDERS = frozenset({"Invalid Unary Op"})  # names XNNPACK gives without saying what ran

# XNodeUnion members in schema order (tag = position + 1), named as users know them; from the
# executorch 1.5.1 wheel's backends/xnnpack/serialization/schema.fbs.
NODE_NAMES = (
    "Add",
    "FullyConnected",
    "Softmax",
    "Sigmoid",
    "StaticTranspose",
    "Clamp",
    "Conv2d",
    "Div",
    "StaticResizeBilinear2D",
    "StaticConstantPad",
    "AvgPooling2d",
    "Minimum",
    "DepthwiseConv2d",
    "MaxPooling2d",
    "Multiply",
    "Subtract",
    "Floor",
    "Convert",
    "GlobalAvgPooling2d",
    "StaticReshape",
    "ArgMaxPooling2d",
    "SquareRoot",
    "Ceiling",
    "Hardswish",
    "LeakyReLU",
    "Maximum",
    "Negate",
    "Square",
    "ELU",
    "Abs",
    "PReLU",
    "Concatenate2",
    "Concatenate3",
    "Concatenate4",
    "StaticSlice",
    "ScaledDotProductAttention",
    "BatchMatrixMultiply",
    "Concatenate5",
    "ConvTranspose2d",
    "ReciprocalSquareRoot",
    "Log",
    "Gelu",
    "Tanh",
    "Exp",
    "Sin",
    "Copy",
    "Cos",
)
_CONCAT = ("Concatenate2", "Concatenate3", "Concatenate4", "Concatenate5")
# Which nodes a runtime operator name (its words before the first " (") can come from.
_RUNTIME_FAMILIES: dict[str, tuple[str, ...]] = {
    "Convolution": ("Conv2d", "DepthwiseConv2d"),
    "Deconvolution": ("ConvTranspose2d",),
    "Fully Connected": ("FullyConnected", "Conv2d"),  # 1x1 convolutions run as GEMMs
    "Batch Matrix Multiply": ("BatchMatrixMultiply",),
    "Transpose": ("StaticTranspose",),
    "Convert": ("Convert",),
    "Mean": ("GlobalAvgPooling2d",),
    "Global Average Pooling": ("GlobalAvgPooling2d",),
    "Average Pooling": ("AvgPooling2d",),
    "Max Pooling": ("MaxPooling2d",),
    "Argmax Pooling": ("ArgMaxPooling2d",),
    "Add": ("Add",),
    "Subtract": ("Subtract",),
    "Multiply": ("Multiply",),
    "Divide": ("Div",),
    "Minimum": ("Minimum",),
    "Maximum": ("Maximum",),
    "Clamp": ("Clamp",),
    "Static Reshape": ("StaticReshape",),
    "Copy": ("Copy", "StaticReshape", *_CONCAT),
    "Constant Pad": ("StaticConstantPad",),
    "Resize Bilinear": ("StaticResizeBilinear2D",),
    "Slice": ("StaticSlice",),
    "Softmax": ("Softmax",),
    "Sigmoid": ("Sigmoid",),
    "HardSwish": ("Hardswish",),
    "Leaky ReLU": ("LeakyReLU",),
    "PReLU": ("PReLU",),
    "ELU": ("ELU",),
    "Square Root": ("SquareRoot",),
    "Reciprocal Square Root": ("ReciprocalSquareRoot",),
    "Square": ("Square", "Multiply"),  # x * x: XNNPACK's subgraph rewrites it to Square
    "Negate": ("Negate",),
    "Abs": ("Abs",),
    "Floor": ("Floor",),
    "Ceiling": ("Ceiling",),
    "Log": ("Log",),
    "GELU": ("Gelu",),
    "Tanh": ("Tanh",),
    "Exp": ("Exp",),
    "Sine": ("Sin",),
    "Cosine": ("Cos",),
    "Scaled Dot Product Attention": ("ScaledDotProductAttention",),
}
# looked up without case: XNNPACK spells a few names its own way ("TanH (NC)")
_FAMILIES = {words.lower(): frozenset(nodes) for words, nodes in _RUNTIME_FAMILIES.items()}
# A placeholder stands for a one-input elementwise node. Clamp and Convert are left out: XNNPACK
# names them, and a clamp fused into its producer has no operator a placeholder could be.
_UNARY = frozenset(
    {
        "Softmax",
        "Sigmoid",
        "Floor",
        "SquareRoot",
        "Ceiling",
        "Hardswish",
        "LeakyReLU",
        "Negate",
        "Square",
        "ELU",
        "Abs",
        "ReciprocalSquareRoot",
        "Log",
        "Gelu",
        "Tanh",
        "Exp",
        "Sin",
        "Cos",
    }
)
_COUNTER = re.compile(r" #\d+$")
# Binary nodes whose fused activation (output_min_max) XNNPACK runs as a Clamp operator after
# them: each may be followed by one Clamp with no node of its own.
SPLITS = frozenset({"Add", "Subtract", "Multiply", "Div"})
_SPLIT_OFF = "Clamp"
_DYNAMIC = re.compile(r"\b(QD8|QDU8|QP8)\b")  # dynamic quantization's data-type tags

# XNNPACK blob
_XNN_HEADER_MAGIC, _XNN_IDENTIFIER = b"XH00", b"XN01"
_GRAPH_NODES, _NODE_TYPE, _NODE_VALUE, _NODE_DEBUG_HANDLE = 1, 0, 1, 2


def nodes(blob: bytes | memoryview) -> tuple[str, ...]:
    """The operator name of each node of one XNNPACK delegate blob, in order."""
    buf, root = _graph(blob)
    out = []
    for node in buf.table_vector(root, _GRAPH_NODES):
        tag = buf.u8_field(node, _NODE_TYPE)
        out.append(NODE_NAMES[tag - 1] if 1 <= tag <= len(NODE_NAMES) else f"node type {tag}")
    return tuple(out)


def node_handles(blob: bytes | memoryview) -> tuple[int, ...]:
    """The debug handle of each node of one XNNPACK delegate blob, in order: the handle of the
    edge-program node it was serialized from (the ETRecord's nodes carry the same handles)."""
    buf, root = _graph(blob)
    return tuple(
        buf.int_field(node, _NODE_DEBUG_HANDLE, 0, signed=False)
        for node in buf.table_vector(root, _GRAPH_NODES)
    )


def _graph(blob: bytes | memoryview) -> tuple[Buffer, int]:
    data = memoryview(blob)
    if len(data) >= 30 and bytes(data[4:8]) == _XNN_HEADER_MAGIC:
        head = Buffer.of(data)
        start, size = head.u32_at(10), head.u32_at(14)
        head.check(start, size)
        data = data[start : start + size]
    if len(data) < 8 or bytes(data[4:8]) != _XNN_IDENTIFIER:
        raise ValueError("an XNNPACK delegate blob without the XN01 identifier")
    buf = Buffer.of(data)
    return buf, buf.deref(0)


def runtime_kind(node: str) -> str:
    """The operator kind XNNPACK's runtime names a graph node by ("Hardswish" -> "HardSwish",
    "Gelu" -> "GELU"): the family it is the only node of, else its first; the node's own
    name when no family has it."""
    families = [(len(nodes), words) for words, nodes in _RUNTIME_FAMILIES.items() if node in nodes]
    return min(families)[1] if families else node


def resolve_names(runtime: Sequence[str], graph: Sequence[str]) -> dict[str, str]:
    """Map each placeholder name of one delegate's operator list (as the runtime reported it,
    "Invalid Unary Op #3", in execution order) to the node it ran, when the alignment says."""
    return {
        name: graph[j]
        for name, j in zip(runtime, align(runtime, graph), strict=True)
        if j is not None and _COUNTER.sub("", name) in PLACEHOLDERS
    }


# Nodes that always run as an operator of their own (never fused into a neighbour or elided):
# the compute-heavy ones. Other nodes (a clamp fused into its producer, a convert between two
# quantized operators, a reshape) may run none.
ALWAYS_RUN = frozenset(
    {"Conv2d", "DepthwiseConv2d", "FullyConnected", "ConvTranspose2d", "BatchMatrixMultiply"}
)


def mismatch(runtime: Sequence[str], graph: Sequence[str]) -> str | None:
    """Why the operators of one delegate call (as reported, in order) cannot have come from
    `graph`, or None when they can: an operator with no node it could have run, a node that
    always runs (a convolution, a GEMM) yet ran no operator, or a quantized graph (it has Convert nodes) whose
    call ran no Convert at all (a float program's trace read with its quantized variant)."""
    pairs = align(runtime, graph)
    # an operator whose name etprof has no family for cannot be judged (not a mismatch)
    lost = [
        runtime[i]
        for i, j in enumerate(pairs)
        if j is None and _candidates(_COUNTER.sub("", runtime[i]))
    ]
    if lost:
        return (
            f"{len(lost)} of its {len(runtime)} operators (first: {_COUNTER.sub('', lost[0])})"
            f" match no node of the program's {len(graph)}-node XNNPACK graph"
        )
    used = {j for j in pairs if j is not None}
    unrun = [graph[j] for j in range(len(graph)) if j not in used and graph[j] in ALWAYS_RUN]
    if unrun:
        return (
            f"{len(unrun)} nodes of the program's XNNPACK graph (first: {unrun[0]}) ran no "
            f"operator in the trace's {len(runtime)}"
        )
    # a dynamically quantized GEMM ("QDU8") converts its input itself: its Convert node runs no
    # operator of its own (the dq8 Llama's linears)
    inline = any(_DYNAMIC.search(n) for n in runtime)
    if (
        "Convert" in graph
        and not inline
        and not any(_COUNTER.sub("", n).startswith("Convert (") for n in runtime)
    ):
        return (
            "the program's XNNPACK graph converts between precisions (it is quantized) but "
            "the trace's call ran no Convert operator"
        )
    return None


def align(runtime: Sequence[str], graph: Sequence[str]) -> list[int | None]:
    """For each runtime operator, the index of the graph node it ran (None: no node found); a
    Clamp split off a binary node (SPLITS) gets that node's index."""
    family = [_candidates(_COUNTER.sub("", name)) for name in runtime]
    # the nodes as runtime slots: each node, and after a binary node the Clamp it may run
    slots: list[tuple[int, str]] = []
    for j, node in enumerate(graph):
        slots.append((j, node))
        if node in SPLITS:
            slots.append((j, _SPLIT_OFF))
    n, m = len(runtime), len(slots)
    # lcs[i][k]: most operators of runtime[i:] matched to slots[k:], in order
    lcs = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = lcs[i], lcs[i + 1]
        for k in range(m - 1, -1, -1):
            best = max(below[k], row[k + 1])
            if slots[k][1] in family[i]:
                best = max(best, 1 + below[k + 1])
            row[k] = best
    out: list[int | None] = [None] * n
    i = k = 0
    while i < n and k < m:
        if slots[k][1] in family[i] and lcs[i][k] == 1 + lcs[i + 1][k + 1]:
            out[i] = slots[k][0]
            i, k = i + 1, k + 1
        elif lcs[i][k] == lcs[i + 1][k]:
            i += 1  # an operator the graph has no node for (matches as early as they can)
        else:
            k += 1  # a node with no operator of its own (fused into its producer)
    return out


def _candidates(name: str) -> frozenset[str]:
    if name in PLACEHOLDERS:
        return _UNARY
    words = name.split(" (")[0]
    return _FAMILIES.get(words.lower(), frozenset())
