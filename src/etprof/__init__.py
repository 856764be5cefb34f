"""etprof: profile ExecuTorch programs and attribute run-model time to XNNPACK and portable kernels.

The notebook API lives in :mod:`etprof.api`; its functions are also reachable here
(``etprof.load``, ``etprof.operators`` ...), imported on first use so that ``import etprof``
stays cheap (no pandas, no torch).
"""

from __future__ import annotations

import sys
import types
from typing import Any

__version__ = "0.1.0"

_API = frozenset({
    "analyze", "breakdown", "buckets", "chrome_trace", "diff", "events", "load", "operators",
    "runmodel", "summary", "timeline",
})


class _Package(types.ModuleType):
    """The etprof package, with the API's functions resolved lazily."""

    def __getattr__(self, name: str) -> Any:
        if name in _API:
            from etprof import api

            value = getattr(api, name)
            types.ModuleType.__setattr__(self, name, value)
            return value
        raise AttributeError(f"module 'etprof' has no attribute '{name}'")

    def __setattr__(self, name: str, value: Any) -> None:
        # Importing the submodule etprof.load binds it as `etprof.load`; the API's load() wins
        # (use `from etprof.load import load_trace` for the module's contents).
        if name in _API and isinstance(value, types.ModuleType):
            return
        types.ModuleType.__setattr__(self, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | _API)


sys.modules[__name__].__class__ = _Package
