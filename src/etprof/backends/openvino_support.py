"""Which operators OpenVINO's ExecuTorch partitioner takes, as a support table.

The partitioner (``executorch.backends.openvino.partitioner.OpenvinoOperatorsSupport``) takes a
node when its target is in the ``OperatorSupport`` dictionary of OpenVINO's PyTorch frontend
(``openvino.frontend.pytorch.torchdynamo.op_support``), plus two dim-order ops of its own, at any
precision: a static 8-bit program (NNCF's quantizer) keeps its quantize/dequantize nodes inside
the delegate. Importing either pulls in torch and openvino, which trace-reading commands must
not do, so the table is made once by :func:`generate_table` (``scripts/gen_openvino_support.py``)
and checked in as ``etprof/backends/openvino_support.json`` (the XNNPACK table's format,
etprof.backends.xnnpack_support, under its own format name); a test regenerates it and compares.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from etprof.backends import FP32, STATIC_QUANT
from etprof.backends.support import OpSupport, SupportTable
from etprof.backends.xnnpack_support import runtime_names, table_from_dict, table_to_dict

FORMAT_NAME = "etprof-openvino-support"
DATA_FILE = "openvino_support.json"
SCRIPT = "scripts/gen_openvino_support.py"
SOURCE = "executorch.backends.openvino.partitioner.OpenvinoOperatorsSupport"
_PREFIX = "torch.ops."


def dumps(table: SupportTable) -> str:
    return json.dumps(table_to_dict(table, format_name=FORMAT_NAME, source=SOURCE), indent=1) + "\n"


@lru_cache(maxsize=1)
def load_table() -> SupportTable:
    """The checked-in table (no torch, no openvino)."""
    text = resources.files("etprof").joinpath("backends", DATA_FILE).read_text(encoding="utf-8")
    return table_from_dict(json.loads(text), DATA_FILE, format_name=FORMAT_NAME, script=SCRIPT)


def generate_table() -> SupportTable:
    """Ask the installed partitioner (imports torch, executorch and openvino; slow). The table's
    `executorch` field names both versions it was made from: "1.5.1 / openvino 2025.4.1"."""
    from importlib.metadata import version

    import executorch.kernels.quantized  # noqa: F401  # registers quantized_decomposed::*.out
    import torch
    from executorch.backends.openvino.partitioner import (
        OpenvinoOperatorsSupport,
        OpenvinoPartitioner,
    )
    from openvino.frontend.pytorch.torchdynamo.op_support import OperatorSupport

    supported = OperatorSupport([])._support_dict | OpenvinoOperatorsSupport.extended_support_dict
    kept = {
        f"{op.namespace}.{op._schema.name.split('::')[1]}.{op._overloadname}"
        for op in OpenvinoPartitioner([]).ops_to_not_decompose(None)[0]
    }
    ops = []
    for key in sorted(supported):
        if not key.startswith(_PREFIX):
            continue  # Python operators of symbolic shapes (_operator.add): no kernel
        target = key[len(_PREFIX) :]
        ns, base, overload = ([*target.split("."), "", ""])[:3]
        try:
            getattr(getattr(getattr(torch.ops, ns), base), overload)
        except (AttributeError, RuntimeError):
            continue  # an op this torch does not have
        ops.append(
            OpSupport(
                config=key,
                targets=(target,),
                runtime_names=tuple(runtime_names(target)),
                precisions=(FP32, STATIC_QUANT),
                kept_whole=target in kept,
            )
        )
    return SupportTable(
        executorch=f"{version('executorch')} / openvino {version('openvino')}", ops=tuple(ops)
    )
