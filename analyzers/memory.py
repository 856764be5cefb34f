"""Memory: what the program plans (from the `.pte`) beside what the process held (per session).

Planned figures come from the trace's metadata (``program.memory``, written by `etprof run`) or
from the program given with ``--pte``. Measured figures come from ``run.memory`` (`etprof run`
samples the session process's resident memory). The difference between the first runs'
footprint and the plan is memory the runtime and its delegates allocate beyond it (XNNPACK's
packed weights and workspace). `AllocationEvent`s, when a trace has them, are summed per
allocator. Every figure that is missing says what it needs (docs/memory.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from etprof import backends
from etprof.analyzers import analyzer
from etprof.program.memory import PlannedMemory
from etprof.result import records
from etprof.trace.model import Trace
from etprof.trace.sidecar import SessionMemory
from etprof.units import bytes_text

NEEDS_PTE = (
    "planned memory (weights, activations, delegate blobs) needs the program: pass "
    "--pte with the .pte this trace was recorded from"
)
NOT_MEASURED = (
    "measured memory (resident memory at load, peaks) is recorded by `etprof run` "
    "(metadata version 4); this trace has none"
)
_MB = 1e6


@dataclass(frozen=True)
class MemoryOptions:
    pass


@dataclass(frozen=True)
class MemoryReport:
    model: str
    method: str
    planned: PlannedMemory | None
    measured: tuple[SessionMemory, ...]
    allocations: pd.DataFrame = field(repr=False)  # rows per allocator (see to_dict)

    schema = "etprof.memory"

    def planned_total(self) -> int | None:
        p = self.planned
        if p is None:
            return None
        return p.weights_bytes + p.activations_bytes(self.method) + p.delegate_bytes

    def sessions(self) -> pd.DataFrame:
        """One row per session, in MB (NaN where not measurable)."""
        plan = self.planned_total()
        rows = []
        for k, m in enumerate(self.measured):
            footprint = _minus(m.warmup_peak_bytes, m.before_load_bytes)
            rows.append(
                {
                    "session": k + 1,
                    "before_load_mb": _mb(m.before_load_bytes),
                    "after_load_mb": _mb(m.after_load_bytes),
                    "first_runs_peak_mb": _mb(m.warmup_peak_bytes),
                    "footprint_mb": _mb(footprint),
                    "beyond_plan_mb": _mb(_minus(footprint, plan)),
                    "measured_peak_mb": _mb(m.measured_peak_bytes),
                    "growth_measured_mb": _mb(
                        _minus(m.measured_peak_bytes, m.measured_start_bytes)
                    ),
                    "untraced_copy_mb": _mb(m.untraced_copy_bytes),
                }
            )
        return pd.DataFrame(rows)

    def figures(self) -> dict[str, float | None]:
        """Bytes: the plan, and the means over sessions of the measured figures."""
        p = self.planned
        rows = self.sessions()

        def mean(column: str) -> float | None:
            if column not in rows:
                return None
            values = rows[column].dropna()
            return float(values.mean()) * _MB if len(values) else None

        return {
            "weights_bytes": None if p is None else float(p.weights_bytes),
            "activations_bytes": None if p is None else float(p.activations_bytes(self.method)),
            "delegate_blobs_bytes": None if p is None else float(p.delegate_bytes),
            "planned_total_bytes": _float(self.planned_total()),
            "footprint_bytes": mean("footprint_mb"),
            "beyond_plan_bytes": mean("beyond_plan_mb"),
            "measured_peak_bytes": mean("measured_peak_mb"),
        }

    def planned_table(self) -> pd.DataFrame:
        p = self.planned
        if p is None:
            return pd.DataFrame(columns=["part", "size", "bytes"])
        rows = [
            ("weights", p.weights_bytes),
            (f"activations ({self.method})", p.activations_bytes(self.method)),
        ]
        for backend, size in p.delegate_bytes_by_backend().items():
            n = sum(d.backend == backend for d in p.delegates)
            rows.append((f"{backends.get(backend).label} blobs (x{n})", size))
        rows.append((".pte file", p.file_bytes))
        return pd.DataFrame(
            [{"part": part, "size": bytes_text(b), "bytes": int(b)} for part, b in rows]
        )

    def line(self) -> str:
        """One line: "weights 2.64 MB, activations 606 kB, XNNPACK blobs 61.0 kB; ..."."""
        parts = []
        p = self.planned
        if p is not None:
            parts.append(
                f"weights {bytes_text(p.weights_bytes)}, activations "
                f"{bytes_text(p.activations_bytes(self.method))}"
                + "".join(
                    f", {backends.get(b).label} blobs {bytes_text(s)}"
                    for b, s in p.delegate_bytes_by_backend().items()
                )
            )
        f = self.figures()
        if f["footprint_bytes"] is not None:
            beyond = f["beyond_plan_bytes"]
            parts.append(
                f"resident +{bytes_text(f['footprint_bytes'])} by the first runs"
                + (f" ({bytes_text(beyond)} beyond the plan)" if beyond is not None else "")
            )
        return "; ".join(parts) if parts else "unknown"

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"planned memory": self.planned_table()}
        if self.measured:
            out["measured memory (MB)"] = self.sessions()
        if len(self.allocations):
            out["allocations"] = self.allocations
        return out

    def notes(self) -> list[str]:
        notes = []
        if self.planned is None:
            notes.append(NEEDS_PTE)
        if not self.measured:
            notes.append(NOT_MEASURED)
        else:
            if not all(m.peak_reset for m in self.measured):
                notes.append(
                    "the kernel refused to reset the resident peak "
                    "(/proc/self/clear_refs): peaks are the process's since it started"
                )
            copies = [m.untraced_copy_bytes for m in self.measured if m.untraced_copy_bytes]
            if copies:
                notes.append(
                    f"the measured-iterations peak includes the untraced copy of the program "
                    f"(+{bytes_text(float(np.mean(copies)))} resident); the first runs' peak is "
                    "the traced program alone (`--no-untraced` for a run without the copy)"
                )
            notes.append(
                "resident memory counts pages touched, not allocations: memory a "
                "delegate allocates and frees between samples shows only if it raised "
                "the kernel's high-water mark, and runtime and delegate memory are not "
                "told apart (the plan splits them)"
            )
        return notes

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "method": self.method,
            "planned": None if self.planned is None else self.planned.to_dict(),
            **self.figures(),
            "sessions": records(self.sessions()),
            "allocations": records(self.allocations),
            "notes": self.notes(),
        }


def allocation_summary(trace: Trace) -> pd.DataFrame:
    """AllocationEvents summed per allocator: count and bytes, over the whole trace."""
    alloc = trace.allocations
    if alloc is None or not len(alloc):
        return pd.DataFrame(columns=["allocator", "allocations", "total_bytes", "max_bytes"])
    key = "allocator" if "allocator" in alloc else "allocator_id"
    grouped = alloc.groupby(key, sort=True)["size"]
    return pd.DataFrame(
        {
            "allocator": grouped.size().index.astype(str),
            "allocations": grouped.size().to_numpy(),
            "total_bytes": grouped.sum().to_numpy(),
            "max_bytes": grouped.max().to_numpy(),
        }
    )


@analyzer(
    "memory",
    "planned memory (from the .pte) and measured resident memory per session",
    MemoryOptions,
)
def memory(trace: Trace, options: MemoryOptions) -> MemoryReport:
    meta = trace.meta
    method = trace.methods[0] if len(trace.methods) == 1 else meta.program.method
    return MemoryReport(
        model=trace.model,
        method=method,
        planned=meta.program.memory,
        measured=meta.run.memory,
        allocations=allocation_summary(trace),
    )


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _mb(n: float | None) -> float:
    return float("nan") if n is None else n / _MB


def _float(n: int | None) -> float | None:
    return None if n is None else float(n)
