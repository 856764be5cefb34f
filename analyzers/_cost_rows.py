"""The rows `etprof run` and `etprof breakdown` show beside the latency: load and first run,
planned and measured memory, the profiler's own cost (each says what it needs when unknown)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from etprof.analyzers.loading import LoadingOptions, LoadingStats, loading
from etprof.analyzers.memory import MemoryOptions, MemoryReport, memory
from etprof.analyzers.overhead import Overhead, OverheadOptions, overhead
from etprof.trace.model import Trace
from etprof.units import bytes_text, ms_text


@dataclass(frozen=True)
class Costs:
    loading: LoadingStats
    memory: MemoryReport
    overhead: Overhead

    def rows(self) -> list[tuple[str, str]]:
        f = self.loading.figures()
        if self.loading.recorded:
            load = f"{ms_text(f['load_ms'])} (Method::init {ms_text(f['init_ms'])})"
        else:
            load = "unknown (no loading events in the trace)"
        first = (
            f"{ms_text(f['first_ms'])} ({_signed(f['first_excess_ms'])} over the median); "
            f"warm-up excess {_signed(f['warmup_excess_ms'])}"
        )
        m = self.memory
        planned = m.line().split("; ")[0] if m.planned is not None else "needs the .pte (--pte)"
        return [
            ("load", load),
            ("first inference", first),
            ("planned memory", planned),
            ("resident memory", self._resident()),
            ("profiler overhead", self.overhead.line()),
        ]

    def _resident(self) -> str:
        if not self.memory.measured:
            return "not measured (recorded by `etprof run`)"
        f = self.memory.figures()
        first = self.memory.measured[0]
        text = (
            f"{bytes_text(first.before_load_bytes)} before load, "
            f"+{bytes_text(f['footprint_bytes'])} by the first runs"
        )
        if f["beyond_plan_bytes"] is not None:
            text += f" ({bytes_text(f['beyond_plan_bytes'])} beyond the plan)"
        return text + f", peak {bytes_text(f['measured_peak_bytes'])} in the measured iterations"

    def to_dict(self) -> dict[str, Any]:
        return {
            "loading": self.loading.to_dict(),
            "memory": self.memory.to_dict(),
            "overhead": self.overhead.to_dict(),
        }

    def notes(self) -> list[str]:
        out: list[str] = self.loading.notes() + self.overhead.notes()
        return out + [n for n in self.memory.notes() if n.startswith(("planned", "measured"))]


def costs(trace: Trace, warmup: int | None) -> Costs:
    return Costs(
        loading=loading(trace, LoadingOptions(warmup)),
        memory=memory(trace, MemoryOptions()),
        overhead=overhead(trace, OverheadOptions(warmup)),
    )


def _signed(ms: float | None) -> str:
    text = ms_text(ms)
    return text if text == "-" or text.startswith("-") else f"+{text}"
