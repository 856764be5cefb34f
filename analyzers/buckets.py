"""Exact attribution of run-model time to buckets, per measured iteration then averaged.

run model (Method::execute) =
    delegate compute + delegate glue    (operators inside DELEGATE_CALLs, per backend; glue is
                                         what the backend knows to be layout/precision moves)
  + delegate overhead                   (each DELEGATE_CALL minus the operators inside it)
  + portable kernels                    (native_call_* events)
  + dispatch overhead                   (OPERATOR_CALL minus its kernel)
  + runtime overhead                    (run model minus all DELEGATE_CALLs and OPERATOR_CALLs)

Each bucket is defined by subtraction from the one enclosing it, so they sum to the run-model
time exactly (in integer nanoseconds, per iteration) and nothing is counted twice. The three
delegate buckets exist once per backend (etprof.backends); a backend that cannot tell glue from
compute has all its operators as compute and no glue row. JSON schema version 2
(docs/json-schema.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.analyzers import analyzer
from etprof.backends import Backend, resolve
from etprof.result import records
from etprof.trace import DELEGATE_CALL, DELEGATE_OP, KERNEL, OPERATOR_CALL, RUN_MODEL, Trace

BUCKETS = (
    "delegate_compute",
    "delegate_glue",
    "delegate_overhead",
    "portable_kernels",
    "dispatch_overhead",
    "runtime_overhead",
)
DELEGATED = ("delegate_compute", "delegate_glue", "delegate_overhead")
PORTABLE = ("portable_kernels", "dispatch_overhead")
LABELS = {
    "portable_kernels": "portable kernels",
    "dispatch_overhead": "operator dispatch overhead",
    "runtime_overhead": "runtime overhead",
}


def label(bucket: str, backend: Backend | None = None) -> str:
    """What users read for a bucket: "XNNPACK compute", "portable kernels"."""
    if backend is None:
        return LABELS.get(bucket, bucket)
    return {"delegate_compute": f"{backend.label} compute",
            "delegate_glue": f"{backend.label} layout/precision glue",
            "delegate_overhead": f"{backend.label} delegate overhead"}[bucket]


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


def _strings(column: pd.Series) -> npt.NDArray[np.object_]:
    """A categorical string column as an object array, gathered from its categories (an
    `astype(str)` of every row costs more than the analysis on long traces)."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        plain: npt.NDArray[np.object_] = column.astype(str).to_numpy(dtype=object)
        return plain
    table = np.array([str(c) for c in column.cat.categories] + [""], dtype=object)
    out: npt.NDArray[np.object_] = table[column.cat.codes.to_numpy()]
    return out


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


@dataclass(frozen=True)
class BucketOptions:
    warmup: int | None = None


@dataclass(frozen=True)
class Buckets:
    model: str
    warmup: int
    per_iteration: pd.DataFrame  # index: iteration; columns: run_model + BUCKETS (ns), the
    # delegate buckets summed over backends
    by_backend: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # backend id ->
    # per-iteration DELEGATED columns (ns) of that backend
    backends: Mapping[str, Backend] = field(default_factory=dict)

    schema = "etprof.buckets"

    @property
    def run_model_ms(self) -> float:
        return float(self.per_iteration["run_model"].mean()) / 1e6

    def mean_ms(self) -> pd.Series:
        return self.per_iteration[list(BUCKETS)].mean() / 1e6

    def delegated_ms(self) -> float:
        return float(self.mean_ms()[list(DELEGATED)].sum())

    def portable_ms(self) -> float:
        return float(self.mean_ms()[list(PORTABLE)].sum())

    def backend_ms(self, backend: str) -> pd.Series:
        """Mean ms of one backend's delegate buckets."""
        return self.by_backend[backend][list(DELEGATED)].mean() / 1e6

    def delegate_label(self) -> str:
        """"XNNPACK", "XNNPACK + CoreMLBackend", or "delegate" when there is none."""
        return " + ".join(b.label for b in self.backends.values()) or "delegate"

    def rows(self) -> list[tuple[str, str, str, pd.Series]]:
        """(bucket, backend id, label, per-iteration ns) of every row of the table, in order."""
        out = []
        for bid, backend in self.backends.items():
            frame = self.by_backend[bid]
            for b in DELEGATED:
                if b == "delegate_glue" and not backend.knows_glue:
                    continue
                out.append((b, bid, label(b, backend), frame[b]))
        for b in (*PORTABLE, "runtime_overhead"):
            out.append((b, "", label(b), self.per_iteration[b]))
        return out

    def table(self) -> pd.DataFrame:
        total = self.run_model_ms
        rows = [
            {
                "bucket": b,
                "backend": bid,
                "label": text,
                "side": "delegated" if b in DELEGATED else "portable" if b in PORTABLE else "runtime",
                "mean_ms": float(ns.mean()) / 1e6,
                "share_pct": 100.0 * float(ns.mean()) / 1e6 / total if total else 0.0,
            }
            for b, bid, text, ns in self.rows()
        ]
        rows.append({"bucket": "run_model", "backend": "", "label": "run model (Method::execute)",
                     "side": "total", "mean_ms": total, "share_pct": 100.0 if total else 0.0})
        return pd.DataFrame(rows, columns=["bucket", "backend", "label", "side", "mean_ms",
                                           "share_pct"])

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"buckets": self.table()}

    def notes(self) -> list[str]:
        return backend_notes(self.backends, self.by_backend)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "warmup": self.warmup,
                "measured": len(self.per_iteration), "buckets": records(self.table())}


def backend_notes(backends: Mapping[str, Backend],
                  by_backend: Mapping[str, pd.DataFrame]) -> list[str]:
    """What the buckets cannot tell for these backends, one line each."""
    notes = []
    for bid, b in backends.items():
        if b.guessed:
            notes.append(f"the trace does not name its delegate's backend (no program table): "
                         f"its operator names are {b.label}'s, so it is attributed as "
                         f"{b.label}; pass --pte to be sure")
        elif not b.knows_glue:
            notes.append(f"etprof does not know which {b.label} operators only convert layouts "
                         f"or precisions: its glue is counted in {b.label} compute")
        frame = by_backend.get(bid)
        if frame is not None and len(frame) and not (frame["delegate_compute"]
                                                     + frame["delegate_glue"]).any():
            notes.append(f"{b.label} recorded no operator events: its whole call time shows "
                         "as delegate overhead")
    return notes


def bucket_frame(trace: Trace) -> pd.DataFrame:
    """Per-iteration bucket times in ns for every iteration present in `trace` (memoised)."""
    return trace.memo("bucket_frame", lambda: _bucket_frames(trace)[0])


def backend_frames(trace: Trace) -> dict[str, pd.DataFrame]:
    """Per backend id, its per-iteration delegate buckets in ns (memoised)."""
    return trace.memo("backend_frames", lambda: _bucket_frames(trace)[1])


def _bucket_frames(trace: Trace) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    key = "_bucket_frames"

    def compute() -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
        return _compute_frames(trace)

    return trace.memo(key, compute)


def _compute_frames(trace: Trace) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    rm = trace.of_kind(RUN_MODEL)
    rm_it = rm["iteration"].to_numpy(np.int64)
    width = int(rm_it.max()) + 1 if rm_it.size else 0

    def total(ev: pd.DataFrame, mask: npt.NDArray[np.bool_] | None = None) -> pd.Series:
        """Sum of durations per iteration (bincount: exact, every sum being whole ns far
        below 2**53)."""
        it = ev["iteration"].to_numpy(np.int64)
        dur = ev["duration_ns"].to_numpy(np.int64)
        keep = (it >= 0) & (it < width) if mask is None else mask & (it >= 0) & (it < width)
        sums = np.bincount(it[keep], weights=dur[keep], minlength=width)
        return pd.Series(np.rint(sums).astype(np.int64))

    run_model = total(rm)
    idx = pd.Index(np.unique(rm_it[rm_it >= 0]))

    def frame(parts: dict[str, pd.Series]) -> pd.DataFrame:
        f = pd.DataFrame({k: v.reindex(idx, fill_value=0) for k, v in parts.items()}, index=idx)
        return f.fillna(0).astype("int64")

    backends = delegate_backends(trace)
    ops = trace.of_kind(DELEGATE_OP)
    calls = trace.of_kind(DELEGATE_CALL)
    glue = glue_flags(ops, backends)
    op_backend = _strings(ops["backend"])
    call_backend = _strings(calls["backend"])
    per_backend = {}
    for bid in backends:
        mine = op_backend == bid
        f = frame({"delegate_call": total(calls, call_backend == bid),
                   "delegate_compute": total(ops, mine & ~glue),
                   "delegate_glue": total(ops, mine & glue)})
        f["delegate_overhead"] = f["delegate_call"] - f["delegate_compute"] - f["delegate_glue"]
        f.index.name = "iteration"
        per_backend[bid] = f[list(DELEGATED)]
    f = frame({
        "run_model": run_model,
        "delegate_call": total(calls),
        "delegate_compute": total(ops, ~glue),
        "delegate_glue": total(ops, glue),
        "operator_call": total(trace.of_kind(OPERATOR_CALL)),
        "portable_kernels": total(trace.of_kind(KERNEL)),
    })
    f["delegate_overhead"] = f["delegate_call"] - f["delegate_compute"] - f["delegate_glue"]
    f["dispatch_overhead"] = f["operator_call"] - f["portable_kernels"]
    f["runtime_overhead"] = f["run_model"] - f["delegate_call"] - f["operator_call"]
    f.index.name = "iteration"
    return f[["run_model", *BUCKETS]], per_backend


def measured_buckets(trace: Trace, warmup: int | None) -> Buckets:
    """The buckets of `trace`'s measured iterations (warm-up dropped per session)."""
    skip = trace.warmup if warmup is None else warmup
    trace.measured(skip)  # the usual refusals: no runs, too few iterations, several methods
    keep = ~trace.is_warmup(bucket_frame(trace).index.to_numpy(), skip)
    return Buckets(
        model=trace.model, warmup=skip, per_iteration=bucket_frame(trace)[keep],
        by_backend={b: f[keep] for b, f in backend_frames(trace).items()},
        backends=delegate_backends(trace),
    )


@analyzer("buckets", "run-model time split into delegated, portable and overhead buckets",
          BucketOptions)
def buckets(trace: Trace, options: BucketOptions) -> Buckets:
    return measured_buckets(trace, options.warmup)
