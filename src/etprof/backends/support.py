"""A backend's support table: which operators its partitioner takes, at which precisions.

The fallback explainer (analyzers/fallback.py) classifies each portable operator instruction
against the table of its target backend (`Backend.support_table()`); each backend builds its
own (XNNPACK's is generated from executorch's partitioner configs: etprof.backends.xnnpack_support).
Precisions are named as the table names them: ``fp32``, ``static_quant``, ``dynamic_quant``
(``PRECISION_LABELS`` in etprof.backends says them in words).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class OpSupport:
    """One partitioner config: what it matches and the precisions it can take."""

    config: str  # e.g. "HardswishConfig"
    targets: tuple[str, ...]  # edge targets, e.g. ("aten.hardswish.default",)
    runtime_names: tuple[str, ...]  # the kernels a program calls, e.g. ("aten::hardswish.out",)
    precisions: tuple[str, ...]  # "fp32" / "static_quant" / "dynamic_quant", in config order
    kept_whole: bool  # the config stops the op's decomposition (get_original_aten)

    def supports(self, precision: str) -> bool:
        return precision in self.precisions


@dataclass(frozen=True)
class SupportTable:
    executorch: str  # the executorch version the table was made from (or checked against)
    ops: tuple[OpSupport, ...]

    def by_runtime_name(self) -> dict[str, OpSupport]:
        return {name: op for op in self.ops for name in op.runtime_names}

    def lookup(self, runtime_name: str) -> OpSupport | None:
        """The config matching a program's operator name ("aten::hardswish.out"), if any."""
        return _index(self).get(runtime_name)


@lru_cache(maxsize=8)
def _index(table: SupportTable) -> dict[str, OpSupport]:
    return table.by_runtime_name()
