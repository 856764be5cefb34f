"""The delegate calls of a trace: their backends, which of their operators are glue, and which
calls recorded no operator event, each an opaque block of its backend (analyzers/buckets.py's
`delegate_opaque`). analyzers/buckets.py re-exports the first two."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.backends import Backend, resolve
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, Trace


def _strings(column: pd.Series) -> npt.NDArray[np.object_]:
    """A categorical string column as an object array, gathered from its categories (an
    `astype(str)` of every row costs more than the analysis on long traces)."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        plain: npt.NDArray[np.object_] = column.astype(str).to_numpy(dtype=object)
        return plain
    table = np.array([str(c) for c in column.cat.categories] + [""], dtype=object)
    out: npt.NDArray[np.object_] = table[column.cat.codes.to_numpy()]
    return out


def opaque_calls(calls: pd.DataFrame, ops: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Whether each delegate call recorded no operator event: no DELEGATE_OP of the same
    method, instruction and iteration (a backend whose runtime reports none -- OpenVINO -- or
    a call the runtime did not break down)."""

    def keys(ev: pd.DataFrame) -> pd.MultiIndex:
        method = _strings(ev["method"]) if "method" in ev else np.zeros(len(ev), dtype=object)
        return pd.MultiIndex.from_arrays(
            [method, ev["instruction_id"].to_numpy(np.int64), ev["iteration"].to_numpy(np.int64)]
        )

    if not len(calls):
        return np.zeros(0, dtype=bool)
    if not len(ops):
        return np.ones(len(calls), dtype=bool)
    found: npt.NDArray[np.bool_] = keys(calls).isin(keys(ops))
    return ~found


def delegate_backends(trace: Trace) -> dict[str, Backend]:
    """The backends of the trace's delegate calls, by backend id, in order of first call (a
    trace without its program table has backend "", resolved from its operator names)."""

    def find() -> dict[str, Backend]:
        calls = trace.of_kind(DELEGATE_CALL)
        ids = [str(b) for b in pd.unique(_strings(calls["backend"]))] if len(calls) else []
        ops = trace.of_kind(DELEGATE_OP)
        out = {}
        for b in ids:
            names = ops.loc[_strings(ops["backend"]) == b, "op"] if not b else []
            out[b] = resolve(b, (str(n) for n in pd.unique(pd.Series(names, dtype=object))))
        return out

    return trace.memo("delegate_backends", find)


def glue_flags(ops: pd.DataFrame, backends: Mapping[str, Backend]) -> npt.NDArray[np.bool_]:
    """Whether each delegate-operator row is glue, as its own backend judges."""
    out = np.zeros(len(ops), dtype=bool)
    if not len(ops):
        return out
    backend = _strings(ops["backend"])
    for b in pd.unique(backend):
        judge = backends.get(str(b)) or resolve(str(b))
        if judge.knows_glue:
            rows = backend == b
            out[rows] = judge.glue_mask(ops["op"][rows])
    return out
