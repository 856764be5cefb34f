"""etprof's analyzers: one module per analysis, found through one registry.

Each module registers a pure function ``(trace, options) -> result`` with :func:`analyzer`
(a comparison registers ``(trace_a, trace_b, options) -> result`` with ``inputs=2``).
Adding a file here adds an analyzer: :func:`available` imports every module of this package once,
and :func:`get` first imports only the module named like the analyzer (``breakdown`` lives in
``breakdown.py``), importing all of them only when that does not register the name, so nothing
else needs editing. Analyzers never print and never import torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from etprof.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Analyzer:
    name: str
    summary: str
    func: Callable[..., Any]
    options: type
    inputs: int = 1  # traces the function takes before its options (2 for `diff`)


_REGISTRY: dict[str, Analyzer] = {}
_loaded = False


def analyzer(name: str, summary: str, options: type, inputs: int = 1) -> Callable[[F], F]:
    """Register the decorated function as analyzer `name`, taking `options` as its options."""

    def register(func: F) -> F:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise RuntimeError(f"two analyzers are named {name!r}")
        _REGISTRY[name] = Analyzer(name, summary, func, options, inputs)
        return func

    return register


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and not info.ispkg:  # stats/: shared, not analyses
            importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True


def available() -> dict[str, Analyzer]:
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def _load_named(name: str) -> None:
    """Import the module named like analyzer `name`, if there is one (a command needs one
    analyzer; importing all of them adds about 50 ms to each start)."""
    if not name.isidentifier() or name.startswith("_"):
        return
    module = f"{__name__}.{name}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # the module exists but an import inside it failed
            raise


def get(name: str) -> Analyzer:
    if name not in _REGISTRY:
        _load_named(name)
    if name not in _REGISTRY:
        _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(
            f"no analyzer named '{name}'", f"use one of: {', '.join(sorted(_REGISTRY))}"
        ) from None


def run(name: str, trace: Any, options: Any = None) -> Any:
    """Run analyzer `name` on `trace` with `options` (its defaults when None)."""
    entry = get(name)
    if entry.inputs != 1:
        raise TypeError(f"analyzer {name!r} takes {entry.inputs} traces: call its func directly")
    return entry.func(trace, options if options is not None else entry.options())
