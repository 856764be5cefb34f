"""etprof: profile ExecuTorch programs and attribute run-model time to XNNPACK and portable kernels.

The notebook API lives in :mod:`etprof.api`; its functions are also reachable here
(``etprof.load``, ``etprof.operators`` ...), imported on first use so that ``import etprof``
stays cheap (no pandas, no torch). Type checkers see them through the ``TYPE_CHECKING`` import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etprof.util.version import __version__ as __version__

if TYPE_CHECKING:
    from etprof.api import (
        analyze,
        breakdown,
        buckets,
        chrome_trace,
        diff,
        events,
        load,
        operators,
        runmodel,
        summary,
        timeline,
    )

__all__ = [
    "analyze",
    "breakdown",
    "buckets",
    "chrome_trace",
    "diff",
    "events",
    "load",
    "operators",
    "runmodel",
    "summary",
    "timeline",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from etprof import api

        value = getattr(api, name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'etprof' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
