"""Exact attribution of run-model time to buckets, per measured iteration then averaged.

run model (Method::execute) =
    delegate compute + delegate glue    (operators inside DELEGATE_CALLs, per backend; glue is
                                         what the backend knows to be layout/precision moves)
  + delegate below resolution           (of each DELEGATE_CALL minus its operators, the part
                                         that may be operators faster than the backend's timer:
                                         at most resolution x the operators that read below it)
  + delegate opaque                     (DELEGATE_CALLs without any operator event, whole)
  + delegate overhead                   (each other DELEGATE_CALL minus its operators, above)
  + portable kernels                    (native_call_* and custom-op events)
  + dispatch overhead                   (OPERATOR_CALL minus its kernel)
  + runtime overhead                    (run model minus all DELEGATE_CALLs and OPERATOR_CALLs)

Each bucket is defined by subtraction from the one enclosing it, so they sum to the run-model
time exactly (in integer nanoseconds, per iteration) and nothing is counted twice. The three
delegate buckets exist once per backend (etprof.backends); a backend that cannot tell glue from
compute has all its operators as compute and no glue row, one whose timer resolution is
unknown has no below-resolution row, and a backend has an opaque row only when some of its calls
recorded no operator event. JSON schema version 2 (docs/json-schema.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._bucket_frames import RESOLUTION_COLUMNS, resolution_text
from etprof.analyzers._bucket_frames import (
    backend_frames as backend_frames,
)
from etprof.analyzers._bucket_frames import (
    bucket_frame as bucket_frame,
)
from etprof.analyzers._bucket_frames import (
    unresolved_by_instruction as unresolved_by_instruction,
)
from etprof.analyzers._bucket_names import BUCKETS as BUCKETS
from etprof.analyzers._bucket_names import DELEGATED as DELEGATED
from etprof.analyzers._bucket_names import PORTABLE as PORTABLE
from etprof.analyzers._bucket_names import UNRESOLVED_WARN_PCT as UNRESOLVED_WARN_PCT
from etprof.analyzers._bucket_parts import backend_notes
from etprof.analyzers._delegate_calls import delegate_backends as delegate_backends
from etprof.analyzers._delegate_calls import glue_flags as glue_flags
from etprof.analyzers._outliers import far_out, set_aside_notes
from etprof.backends import Backend
from etprof.result import records
from etprof.trace.model import Trace
from etprof.units import ms_text

LABELS = {
    "portable_kernels": "portable kernels",
    "dispatch_overhead": "operator dispatch overhead",
    "runtime_overhead": "runtime overhead",
}


def label(bucket: str, backend: Backend | None = None) -> str:
    """What users read for a bucket: "XNNPACK compute", "portable kernels"."""
    if backend is None:
        return LABELS.get(bucket, bucket)
    return {
        "delegate_compute": f"{backend.label} compute",
        "delegate_glue": f"{backend.label} layout/precision glue",
        "delegate_unresolved": f"{backend.label} operators below timer resolution",
        "delegate_opaque": backend.opaque_label,
        "delegate_overhead": f"{backend.label} delegate overhead",
    }[bucket]


@dataclass(frozen=True)
class BucketOptions:
    warmup: int | None = None
    # iterations far above their session's own distribution (preempted) count in the shares
    # too (`--keep-outliers`); by default they are set aside from them (analyzers/_outliers.py)
    keep_outliers: bool = False


@dataclass(frozen=True)
class Buckets:
    model: str
    warmup: int
    per_iteration: pd.DataFrame  # index: iteration; columns: run_model + BUCKETS (ns), the
    # delegate buckets summed over backends
    by_backend: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # backend id ->
    # per-iteration DELEGATED columns (ns) of that backend
    backends: Mapping[str, Backend] = field(default_factory=dict)
    # per iteration of per_iteration: False where it was set aside from the shares as
    # preempted; None: every iteration counts (--keep-outliers)
    kept: npt.NDArray[np.bool_] | None = None

    schema = "etprof.buckets"

    def kept_frame(self) -> pd.DataFrame:
        """`per_iteration` without the iterations set aside as preempted."""
        return self.per_iteration if self.kept is None else self.per_iteration[self.kept]

    def backend_share_ms(self, backend: str) -> pd.Series:
        """Mean ms of one backend's delegate buckets over the iterations the shares use."""
        f = self.by_backend[backend][list(DELEGATED)]
        return (f if self.kept is None else f[self.kept]).mean() / 1e6

    def share_means_ms(self) -> tuple[pd.Series, float]:
        """(each bucket's mean, run model's mean) ms over the iterations the shares use."""
        f = self.kept_frame()
        return f[list(BUCKETS)].mean() / 1e6, float(f["run_model"].mean()) / 1e6

    @property
    def set_aside(self) -> int:
        """Iterations set aside from the shares (preempted)."""
        return 0 if self.kept is None else int((~self.kept).sum())

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

    def opaque(self) -> tuple[Backend, ...]:
        """The backends some of whose calls recorded no operator event (opaque blocks)."""
        return tuple(
            b for bid, b in self.backends.items() if self.by_backend[bid]["opaque_calls"].any()
        )

    def delegate_label(self) -> str:
        """ "XNNPACK", "XNNPACK + CoreMLBackend", or "delegate" when there is none."""
        return " + ".join(b.label for b in self.backends.values()) or "delegate"

    def rows(self) -> list[tuple[str, str, str, pd.Series]]:
        """(bucket, backend id, label, per-iteration ns) of every row of the table, in order."""
        out = []
        for bid, backend in self.backends.items():
            frame = self.by_backend[bid]
            # a backend whose every call was opaque has no operators to split
            opaque_only = frame["opaque_calls"].any() and not frame["operators"].any()
            for b in DELEGATED:
                if opaque_only and b in ("delegate_compute", "delegate_glue"):
                    continue
                if b == "delegate_glue" and not backend.knows_glue:
                    continue
                if b == "delegate_unresolved" and backend.timer_resolution_ns is None:
                    continue
                if b == "delegate_opaque" and not frame["opaque_calls"].any():
                    continue
                out.append((b, bid, label(b, backend), frame[b]))
        for b in (*PORTABLE, "runtime_overhead"):
            out.append((b, "", label(b), self.per_iteration[b]))
        return out

    def table(self) -> pd.DataFrame:
        """Each bucket's mean over every measured iteration (the traced figure) and its share
        of run model over the iterations not set aside as preempted (all with
        --keep-outliers)."""
        total = self.run_model_ms
        kept = self.kept if self.kept is not None else np.ones(len(self.per_iteration), bool)
        kept_total = (
            float(self.per_iteration["run_model"].to_numpy()[kept].mean()) if kept.any() else 0.0
        )
        rows = [
            {
                "bucket": b,
                "backend": bid,
                "label": text,
                "side": "delegated"
                if b in DELEGATED
                else "portable"
                if b in PORTABLE
                else "runtime",
                "mean_ms": float(ns.mean()) / 1e6,
                "share_pct": 100.0 * float(ns.to_numpy()[kept].mean()) / kept_total
                if kept_total
                else 0.0,
            }
            for b, bid, text, ns in self.rows()
        ]
        rows.append(
            {
                "bucket": "run_model",
                "backend": "",
                "label": "run model (Method::execute)",
                "side": "total",
                "mean_ms": total,
                "share_pct": 100.0 if total else 0.0,
            }
        )
        return pd.DataFrame(
            rows, columns=["bucket", "backend", "label", "side", "mean_ms", "share_pct"]
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"buckets": self.table()}

    def notes(self) -> list[str]:
        return (
            backend_notes(self.backends, self.by_backend)
            + self.resolution_notes()
            + self.outlier_notes()
        )

    def outlier_notes(self) -> list[str]:
        """How many iterations the shares set aside, with the evidence."""
        return (
            []
            if self.kept is None
            else set_aside_notes(self.per_iteration["run_model"].to_numpy() / 1e6, ~self.kept)
        )

    def opaque_notes(self) -> list[str]:
        """One line per backend some of whose calls were opaque blocks."""
        return [n for n in backend_notes(self.backends, self.by_backend) if "opaque" in n]

    def resolution(self) -> pd.DataFrame:
        """Per backend: its timer resolution, its operators per iteration and how many read
        below the resolution, the time they may hold (the below-resolution bucket) and whether
        that time is large enough to change a conclusion (`warn`)."""
        total = self.run_model_ms
        rows = []
        top = self.table()
        top = top[top["bucket"] != "run_model"]
        for bid, backend in self.backends.items():
            f = self.by_backend[bid]
            ops = float(f["operators"].mean()) if "operators" in f and len(f) else 0.0
            below = (
                float(f["below_resolution"].mean()) if "below_resolution" in f and len(f) else 0.0
            )
            ms = self.backend_ms(bid)
            unresolved = float(ms["delegate_unresolved"])
            resolved = float(ms["delegate_compute"] + ms["delegate_glue"])
            share = 100.0 * unresolved / total if total else 0.0
            rest = top[(top["bucket"] != "delegate_unresolved") | (top["backend"] != bid)]
            ranked = sorted(rest["mean_ms"].tolist(), reverse=True)
            # the top bucket could change if the unresolved time went to another row
            flips = len(ranked) > 1 and unresolved >= ranked[0] - ranked[1]
            warn = unresolved > 0 and (
                share >= UNRESOLVED_WARN_PCT or unresolved > resolved or flips
            )
            rows.append(
                {
                    "backend": bid,
                    "label": backend.label,
                    "resolution_ns": backend.timer_resolution_ns,
                    "operators": ops,
                    "below_resolution": below,
                    "below_resolution_pct": 100.0 * below / ops if ops else 0.0,
                    "unresolved_ms": unresolved,
                    "resolved_ms": resolved,
                    "unresolved_share_pct": share,
                    "warn": bool(warn),
                }
            )
        return pd.DataFrame(rows, columns=RESOLUTION_COLUMNS)

    def resolution_notes(self) -> list[str]:
        out = []
        for r in self.resolution().to_dict("records"):
            if r["resolution_ns"] is None:
                continue
            if r["warn"]:
                out.append(
                    f"warning: {r['below_resolution_pct']:.1f}% of the {r['label']} operator "
                    f"events ({r['below_resolution']:.1f} of {r['operators']:.1f} per run) are "
                    f"shorter than its timer resolution ({resolution_text(r['resolution_ns'])}) and "
                    f"read 0; up to {ms_text(r['unresolved_ms'])} "
                    f"({r['unresolved_share_pct']:.1f}% of run model) of its delegate time may be "
                    f"those operators rather than delegate overhead (row '{r['label']} operators "
                    f"below timer resolution'), beside {ms_text(r['resolved_ms'])} of operator "
                    "time it resolved: read its compute and overhead as bounds, not figures"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "warmup": self.warmup,
            "measured": len(self.per_iteration),
            "buckets": records(self.table()),
            "resolution": records(self.resolution()),
        }


def measured_buckets(trace: Trace, warmup: int | None, keep_outliers: bool = False) -> Buckets:
    """The buckets of `trace`'s measured iterations (warm-up dropped per session); unless
    `keep_outliers`, those far above their session's run-model distribution are marked to be
    left out of the shares."""
    skip = trace.warmup if warmup is None else warmup
    trace.measured(skip)  # the usual refusals: no runs, too few iterations, several methods
    keep = ~trace.is_warmup(bucket_frame(trace).index.to_numpy(), skip)
    per_iteration = bucket_frame(trace)[keep]
    kept = None
    if not keep_outliers:
        it = per_iteration.index.to_numpy()
        kept = ~far_out(per_iteration["run_model"].to_numpy(), trace.session_of(it))
    return Buckets(
        model=trace.model,
        warmup=skip,
        per_iteration=per_iteration,
        by_backend={b: f[keep] for b, f in backend_frames(trace).items()},
        backends=delegate_backends(trace),
        kept=kept,
    )


@analyzer(
    "buckets", "run-model time split into delegated, portable and overhead buckets", BucketOptions
)
def buckets(trace: Trace, options: BucketOptions) -> Buckets:
    return measured_buckets(trace, options.warmup, options.keep_outliers)
