"""The process's resident memory, sampled by a session (in its own forked child).

Linux gives the current resident set (``VmRSS``) and its high-water mark (``VmHWM``) in
``/proc/self/status``; writing "5" to ``/proc/self/clear_refs`` resets the mark to the current
resident set, so a peak can be taken over one phase (the measured iterations) rather than the
process's life. Where the reset is refused, the peak is the process's since it started (the
child's: ``getrusage`` after the fork), and ``peak_reset`` says so. Elsewhere only
``ru_maxrss`` is known.

What this cannot see: memory allocated and freed between two samples is in the peak only
because the kernel tracks the high-water mark itself; memory that was never touched (reserved,
mmapped but unread) is not resident and not counted; a delegate's threads share the process's
figures, so runtime and delegate memory are not told apart here -- only the planned sizes from
the `.pte` (etprof.program.memory) split them.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_bytes() -> int | None:
    """The resident set now, in bytes (None where it cannot be read)."""
    kb = _status_kb("VmRSS")
    return kb * 1024 if kb is not None else None


def peak_bytes() -> int | None:
    """The resident set's high-water mark, in bytes, since the last reset (or the start)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024  # bytes on macOS


def reset_peak() -> bool:
    """Reset the high-water mark to the current resident set; False where that is refused."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass
class MemorySampler:
    """The samples of one session, filled in phase by phase (see docs/memory.md)."""

    before_load: int | None = None
    after_load: int | None = None
    untraced_copy: int | None = None  # added by the untraced copy's load and warm-up
    warmup_peak: int | None = None  # high-water mark over the traced warm-up (first runs)
    measured_start: int | None = None
    measured_peak: int | None = None
    peak_reset: bool = False  # both peaks are over their phase only (False: since start)

    def start_phase(self) -> None:
        self.peak_reset = reset_peak()

    def to_dict(self) -> dict[str, int | bool | None]:
        return {
            "before_load_bytes": self.before_load,
            "after_load_bytes": self.after_load,
            "untraced_copy_bytes": self.untraced_copy,
            "warmup_peak_bytes": self.warmup_peak,
            "measured_start_bytes": self.measured_start,
            "measured_peak_bytes": self.measured_peak,
            "peak_reset": self.peak_reset,
        }
