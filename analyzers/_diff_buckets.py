"""A diff's buckets: each bucket's change between the two sides and the class it belongs to
(compute, glue, fallback, overhead, ...), as "where it went" names them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from etprof.analyzers.buckets import Buckets
from etprof.analyzers.stats.significance import (
    rank_tests,
)

# What each breakdown bucket is called when it explains a change ({backend}: the delegate's
# label, "XNNPACK"; the glue and overhead classes name it only when the sides hold several).
CLASSES = {
    "delegate_compute": "{backend} compute",
    "delegate_glue": "partition-boundary glue",
    "delegate_unresolved": "operators below timer resolution",
    "delegate_opaque": "{backend} (no operator events)",
    "delegate_overhead": "delegate overhead",
    "portable_kernels": "portable fallback",
    "dispatch_overhead": "dispatch overhead",
    "runtime_overhead": "runtime overhead",
}


def bucket_class(bucket: str, backend: str, several: bool) -> str:
    """The class a bucket row explains a change as ("XNNPACK compute", "portable fallback")."""
    name = CLASSES.get(bucket, "run model (total)")
    if bucket in ("delegate_compute", "delegate_opaque"):
        return name.format(backend=backend)
    if several and bucket in ("delegate_glue", "delegate_unresolved", "delegate_overhead"):
        return f"{backend} {name}"
    return name


def bucket_deltas(ba: Buckets, bb: Buckets, total_ms: float) -> pd.DataFrame:
    """Both sides' buckets (one row per backend for the delegate ones), their deltas and each
    delta's share of the run-model delta."""

    def rows(b: Buckets) -> dict[tuple[str, str], tuple[str, pd.Series]]:
        return {
            (bucket, bid): (bid and b.backends[bid].label, ns) for bucket, bid, _, ns in b.rows()
        }

    ra, rb = rows(ba), rows(bb)
    keys = list(dict.fromkeys([*ra, *rb]))
    several = len({bid for _, bid in keys if bid}) > 1

    def matrix(b: Buckets, r: dict[tuple[str, str], tuple[str, pd.Series]]) -> np.ndarray:
        cols = [b.per_iteration["run_model"].to_numpy(float)]
        for k in keys:
            cols.append(r[k][1].to_numpy(float) if k in r else np.zeros(len(b.per_iteration)))
        return np.column_stack(cols)

    p = rank_tests(matrix(ba, ra), matrix(bb, rb))
    out = []
    for i, (bucket, bid) in enumerate(keys, start=1):
        av = float(ra[(bucket, bid)][1].mean()) / 1e6 if (bucket, bid) in ra else 0.0
        bv = float(rb[(bucket, bid)][1].mean()) / 1e6 if (bucket, bid) in rb else 0.0
        name = (ra.get((bucket, bid)) or rb[(bucket, bid)])[0]
        out.append(
            {
                "bucket": bucket,
                "backend": bid,
                "class": bucket_class(bucket, name, several),
                "a_ms": av,
                "b_ms": bv,
                "delta_ms": bv - av,
                "share_pct": 100.0 * (bv - av) / total_ms if total_ms else math.nan,
                "p_value": float(p[i]),
            }
        )
    av, bv = ba.run_model_ms, bb.run_model_ms
    out.append(
        {
            "bucket": "run_model",
            "backend": "",
            "class": "run model (total)",
            "a_ms": av,
            "b_ms": bv,
            "delta_ms": bv - av,
            "share_pct": 100.0 * (bv - av) / total_ms if total_ms else math.nan,
            "p_value": float(p[0]),
        }
    )
    return pd.DataFrame(out)  # the total last, as in the buckets table
