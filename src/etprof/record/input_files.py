"""`etprof run --inputs FILE`: a method's inputs read from a file and checked against the method.

A `.pt` file holds a tensor or a nested tuple/list/dict of tensors (an LSTM's `(x, (h0, c0))`),
flattened as ExecuTorch flattens a method's inputs; `.npy` holds one array, `.npz` one per input
in order. A dynamic-shape input may be smaller than its upper bound (docs/inputs.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etprof.errors import InputError
from etprof.program.methods import MethodShape
from etprof.record.inputs import DTYPES, check_shape, flatten


def read_inputs_file(path: Path, method: MethodShape, torch: Any) -> list[Any]:
    values = _read(path, torch)
    check_inputs(values, method, path)
    return values


def _read(path: Path, torch: Any) -> list[Any]:
    try:
        if path.suffix in (".npy", ".npz"):
            import numpy as np

            loaded = np.load(path)
            arrays = [loaded[k] for k in loaded.files] if path.suffix == ".npz" else [loaded]
            return [torch.from_numpy(a) for a in arrays]
        obj = torch.load(path, weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(
            f"cannot read inputs from {path} ({first})",
            "pass a torch.save'd tensor or tuple of tensors (.pt), or .npy/.npz",
        ) from None
    values = flatten(obj, torch)
    if values is None:
        raise InputError(
            f"{path} holds something other than tensors",
            "save a tensor or a (nested) tuple of tensors with torch.save",
        )
    return values


def check_inputs(values: list[Any], method: MethodShape, path: Path) -> None:
    if len(values) != method.inputs:
        raise InputError(
            f"{path} has {len(values)} tensors, {method.name} takes {method.inputs} inputs",
            "save one tensor per method input (nested tuples are flattened)",
        )
    for i, (value, t) in enumerate(zip(values, method.tensor_inputs, strict=False)):
        if t is None:
            continue
        dtype = DTYPES.get(t.scalar_type, f"scalar type {t.scalar_type}")
        if str(value.dtype).removeprefix("torch.") != dtype:
            raise InputError(
                f"input {i} in {path} is {value.dtype}, {method.name} expects "
                f"{dtype} {list(t.sizes)}",
                "save inputs of the dtype shown",
            )
        check_shape(
            tuple(value.shape),
            t,
            f"input {i} in {path} is {list(value.shape)}",
            f"{method.name} input {i}",
        )
