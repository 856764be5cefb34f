"""OpenVINO's own per-layer profile of one delegate (`Backend.native_profile` for OpenVINO).

The delegate's blob is an exported OpenVINO compiled model: ``Core.import_model`` with
``PERF_COUNT`` gives it back with OpenVINO's profiler on, and after each inference
``InferRequest.get_profiling_info()`` lists every layer with its real and CPU time (whole
microseconds), its type ("Convolution", "Reorder") and the kernel it ran ("brgconv_avx512_bf16").
Layers OpenVINO fused or skipped report status NOT_RUN / OPTIMIZED_OUT and are left out.

This runs the delegate in a separate, plain OpenVINO process-local runtime -- not inside the
ExecuTorch run that made the trace -- so its figures are a second measurement: callers scale
them to the block's traced time and say where they come from. Imports openvino.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

from etprof.backends import NativeLayer, NativeProfile

RUNS = 20  # inferences timed (after one warm-up); the layers' times are their mean
_PRECISION = re.compile(r"_(bf16|f16|f32|i8|u8|I8|U8|fp16|fp32)$")


def profile(blob: bytes, inputs: Sequence[Any], runs: int = RUNS) -> NativeProfile:
    """Mean per-layer times of `runs` inferences of the compiled model in `blob` on `inputs`
    (numpy arrays, in the delegate's input order)."""
    import numpy as np
    import openvino as ov

    core = ov.Core()
    compiled = core.import_model(io.BytesIO(bytes(blob)), "CPU", {"PERF_COUNT": "YES"})
    request = compiled.create_infer_request()
    feed = [np.ascontiguousarray(x) for x in inputs]
    request.infer(feed)  # warm-up: first-inference allocations are not the layers' time
    real: dict[str, float] = {}
    cpu: dict[str, float] = {}
    first: dict[str, Any] = {}
    for _ in range(runs):
        request.infer(feed)
        for info in request.get_profiling_info():
            if str(info.status).rsplit(".", 1)[-1] != "EXECUTED":
                continue
            real[info.node_name] = real.get(info.node_name, 0.0) + info.real_time.total_seconds()
            cpu[info.node_name] = cpu.get(info.node_name, 0.0) + info.cpu_time.total_seconds()
            first.setdefault(info.node_name, info)
    layers = tuple(
        NativeLayer(
            name=name,
            kind=str(info.node_type),
            real_ns=round(real[name] / runs * 1e9),
            cpu_ns=round(cpu[name] / runs * 1e9),
            precision=_precision(str(info.exec_type)),
        )
        for name, info in first.items()
    )
    return NativeProfile(
        layers=layers, runs=runs, source=f"OpenVINO {ov.get_version().split('-')[0]} PERF_COUNT"
    )


def _precision(exec_type: str) -> str:
    found = _PRECISION.search(exec_type)
    return found.group(1).lower() if found else ""


def input_shapes(blob: bytes) -> list[tuple[tuple[int, ...], str]]:
    """The compiled model's inputs: (static shape, element type name) each, in order."""
    import openvino as ov

    compiled = ov.Core().import_model(io.BytesIO(bytes(blob)), "CPU")
    return [
        (tuple(d.get_length() for d in i.get_partial_shape()), i.get_element_type().get_type_name())
        for i in compiled.inputs
    ]
