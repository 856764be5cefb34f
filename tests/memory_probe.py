"""What one call costs: its wall time and how far it raised the process's peak resident memory
above where it started (Linux resets the peak through /proc/self/clear_refs, so the figure is
the call's own, not the largest of everything the test process did before)."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cost(call: Callable[[], object]) -> tuple[float, float, BaseException | None]:
    """(seconds, MB the peak rose above the resident memory before the call, what it raised)."""
    resident = _status_kib("VmRSS")
    own_peak = resident is not None and _reset_peak()
    before = resident if own_peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    raised: BaseException | None = None
    began = time.perf_counter()
    try:
        call()
    except Exception as exc:  # returned for the test to judge
        raised = exc
    took = time.perf_counter() - began
    peak = _status_kib("VmHWM") if own_peak else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return took, max(0, peak - (before or 0)) / 1024, raised
