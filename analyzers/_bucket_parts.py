"""Two parts of the bucket attribution (analyzers/buckets.py) that need nothing of its tables:
the below-resolution bound of each delegate call, and the notes on what a backend cannot tell."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.backends import Backend
from etprof.util.grouping import group_sum


def backend_notes(
    backends: Mapping[str, Backend], by_backend: Mapping[str, pd.DataFrame]
) -> list[str]:
    """What the buckets cannot tell for these backends, one line each."""
    notes = []
    for bid, b in backends.items():
        if b.guessed:
            notes.append(
                f"the trace does not name its delegate's backend (no program table): "
                f"its operator names are {b.label}'s, so it is attributed as "
                f"{b.label}; pass --pte to be sure"
            )
        elif not b.knows_glue:
            notes.append(
                f"etprof does not know which {b.label} operators only convert layouts "
                f"or precisions: its glue is counted in {b.label} compute"
            )
        frame = by_backend.get(bid)
        if frame is None or not len(frame):
            continue
        if frame["opaque_calls"].any() and frame["operators"].any():
            notes.append(
                f"some {b.label} calls recorded no operator events: each is one opaque "
                f"block ('{b.opaque_label}'), not delegate overhead"
            )
        if (frame["delegate_compute"] + frame["delegate_glue"]).any():
            continue
        if not frame["operators"].any():
            notes.append(
                f"{b.label} recorded no operator events: each of its calls is one "
                f"opaque block ('{b.opaque_label}'), its compute and its overhead together"
            )
        elif b.timer_resolution_ns is None:  # else the timer-resolution warning says it
            notes.append(
                f"every {b.label} operator event reads 0: its whole call time shows "
                "as delegate overhead"
            )
    return notes


def _unresolved_per_call(
    calls: pd.DataFrame, ops: pd.DataFrame, resolution_ns: int, width: int
) -> pd.Series:
    """Per (instruction, iteration) of one backend's delegate calls: the part of the call's time
    outside its reported operators that may be operators shorter than the timer resolution --
    that time clipped to [0, resolution x the operators that read below it] (ns)."""

    def keys(ev: pd.DataFrame) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        it = ev["iteration"].to_numpy(np.int64)
        keep = (it >= 0) & (it < width)
        return ev["instruction_id"].to_numpy(np.int64) * width + it, keep

    ck, ckeep = keys(calls)
    ok, okeep = keys(ops)
    o_dur = ops["duration_ns"].to_numpy(np.int64)
    call_ns = group_sum(ck[ckeep], calls["duration_ns"].to_numpy(np.int64)[ckeep])
    op_ns = group_sum(ok[okeep], o_dur[okeep]).reindex(call_ns.index, fill_value=0)
    below = group_sum(ok[okeep], (o_dur[okeep] < resolution_ns).astype(np.int64))
    bound = below.reindex(call_ns.index, fill_value=0) * resolution_ns
    out = (call_ns - op_ns).clip(lower=0).combine(bound, min).astype("int64")
    k = call_ns.index.to_numpy(np.int64)
    out.index = pd.MultiIndex.from_arrays(
        [k // width, k % width], names=["instruction", "iteration"]
    )
    return out
