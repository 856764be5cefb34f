"""Lowering to OpenVINO, as ExecuTorch's OpenVINO example does
(examples/openvino/aot_optimize_and_infer.py): torch.export, optional 8-bit quantization with
NNCF (``executorch.backends.openvino.quantizer.quantize_model``, symmetric int8, calibrated on
the example input), then ``to_edge_transform_and_lower`` with ``OpenvinoPartitioner`` for the
CPU. Needs the optional extra: ``pip install 'etprof[openvino]'`` (openvino and nncf, pinned to
the versions the executorch 1.5.1 runtime runs).
"""

from __future__ import annotations

from typing import Any

from etprof.errors import InputError

INSTALL = "pip install 'etprof[openvino]'"


def check_available() -> None:
    """Refuse, before any slow work, when openvino or nncf is missing."""
    from importlib.util import find_spec

    missing = [m for m in ("openvino", "nncf") if find_spec(m) is None]
    if missing:
        raise InputError(
            f"--backend openvino needs {' and '.join(missing)}, which is not installed", INSTALL
        )


def partitioners() -> list[Any]:
    from executorch.backends.openvino.partitioner import OpenvinoPartitioner
    from executorch.exir.backend.backend_details import CompileSpec

    return [OpenvinoPartitioner([CompileSpec("device", b"CPU")])]


def quantize(graph: Any, inputs: tuple[Any, ...]) -> Any:
    """NNCF post-training 8-bit symmetric quantization (INT8_SYM, the example's default),
    calibrated on the example input."""
    from executorch.backends.openvino.quantizer import QuantizationMode, quantize_model

    return quantize_model(
        graph, [inputs], mode=QuantizationMode.INT8_SYM, subset_size=1, transform_fn=lambda x: x
    )
