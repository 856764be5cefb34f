"""Which operators XNNPACK's partitioner configs take, and at which precisions.

The table's types (OpSupport, SupportTable) are every backend's (etprof.backends.support);
this module makes and reads XNNPACK's.

The answer comes from the partitioner configs that executorch ships
(``executorch.backends.xnnpack.partition.config.ALL_PARTITIONER_CONFIGS``), but importing them
pulls in torch and executorch, which trace-reading commands must not do. So the table is made
once, at build time, by :func:`generate_table` (run ``scripts/gen_xnnpack_support.py``) and
checked in as ``etprof/backends/xnnpack_support.json``; analyzers read it with :func:`load_table`.
A test regenerates it and compares, so it cannot drift from the installed executorch.

Format history (bump FORMAT_VERSION and document in docs/fallback.md):

- 1: first version.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from etprof.backends import DYNAMIC_QUANT, FP32, PRECISION_LABELS, STATIC_QUANT
from etprof.backends.support import OpSupport, SupportTable
from etprof.errors import InputError

FORMAT_NAME = "etprof-xnnpack-support"
FORMAT_VERSION = 1
DATA_FILE = "xnnpack_support.json"

# ConfigPrecisionType member -> the name used in the table and in reports
PRECISIONS = {"FP32": FP32, "STATIC_QUANT": STATIC_QUANT, "DYNAMIC_QUANT": DYNAMIC_QUANT}

# Edge dialect namespaces a config's un-namespaced target name can refer to (format_target_name
# drops the namespace, so a config matches the name in any of them).
_NAMESPACES = ("aten", "quantized_decomposed", "dim_order_ops", "torchao")

# Ops with no out variant of their own: when XNNPACK does not take them, edge lowering
# decomposes them, and the program calls the kernel below instead.
_DECOMPOSED_RUNTIME_NAMES = {
    "aten.max_pool2d.default": ("aten::max_pool2d_with_indices.out",),
}


def table_from_dict(
    doc: dict[str, Any],
    source: str = DATA_FILE,
    *,
    format_name: str = FORMAT_NAME,
    script: str = "scripts/gen_xnnpack_support.py",
) -> SupportTable:
    """A support table document read back (any backend's: `format_name` names its format)."""
    fix = f"regenerate it with {script}"
    if doc.get("format") != format_name or doc.get("version") != FORMAT_VERSION:
        raise InputError(f"{source} is not an {format_name} v{FORMAT_VERSION} document", fix)
    try:
        ops = tuple(
            OpSupport(
                config=str(o["config"]),
                targets=tuple(o["targets"]),
                runtime_names=tuple(o["runtime_names"]),
                precisions=tuple(o["precisions"]),
                kept_whole=bool(o["kept_whole"]),
            )
            for o in doc["ops"]
        )
    except (KeyError, TypeError) as exc:
        raise InputError(f"{source} has a missing or malformed field ({exc})", fix) from None
    return SupportTable(executorch=str(doc.get("executorch", "")), ops=ops)


def table_to_dict(
    table: SupportTable,
    *,
    format_name: str = FORMAT_NAME,
    source: str = "executorch.backends.xnnpack.partition.config.ALL_PARTITIONER_CONFIGS",
) -> dict[str, Any]:
    return {
        "format": format_name,
        "version": FORMAT_VERSION,
        "executorch": table.executorch,
        "source": source,
        "ops": [
            {
                "config": o.config,
                "targets": list(o.targets),
                "runtime_names": list(o.runtime_names),
                "precisions": list(o.precisions),
                "kept_whole": o.kept_whole,
            }
            for o in table.ops
        ],
    }


def dumps(table: SupportTable) -> str:
    return json.dumps(table_to_dict(table), indent=1) + "\n"


@lru_cache(maxsize=1)
def load_table() -> SupportTable:
    """The checked-in table (no torch, no executorch)."""
    text = resources.files("etprof").joinpath("backends", DATA_FILE).read_text(encoding="utf-8")
    return table_from_dict(json.loads(text))


def generate_table() -> SupportTable:
    """Ask the installed executorch's XNNPACK partitioner configs (imports torch; slow)."""
    from importlib.metadata import version

    import executorch.kernels.quantized  # noqa: F401  # registers quantized_decomposed::*.out
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS

    ops = []
    for cls in ALL_PARTITIONER_CONFIGS:
        config = cls()
        targets = _resolve_targets(str(cls.target_name))
        names: list[str] = []
        for target in targets:
            for name in runtime_names(target):
                if name not in names:
                    names.append(name)
        ops.append(
            OpSupport(
                config=cls.__name__,
                targets=tuple(targets),
                runtime_names=tuple(names),
                precisions=tuple(PRECISIONS[p.name] for p in config.supported_precision_types()),
                kept_whole=config.get_original_aten() is not None,
            )
        )
    return SupportTable(executorch=version("executorch"), ops=tuple(ops))


def _resolve_targets(target_name: str) -> list[str]:
    import torch

    base, _, overload = target_name.partition(".")
    found = []
    for ns in _NAMESPACES:
        try:
            getattr(getattr(getattr(torch.ops, ns), base), overload)
        except (AttributeError, RuntimeError):
            continue
        found.append(f"{ns}.{target_name}")
    return found


def runtime_names(target: str) -> list[str]:
    """Kernel names a program calls for `target` when it is not delegated ("ns::op.overload")."""
    import torch
    from executorch.exir.operator.convert import to_out_variant

    if target in _DECOMPOSED_RUNTIME_NAMES:
        return list(_DECOMPOSED_RUNTIME_NAMES[target])
    ns, base, overload = target.split(".")
    packet = getattr(getattr(torch.ops, ns), base)
    functional = getattr(packet, overload)
    try:
        out = to_out_variant(functional)[0]
        return [f"{out._schema.name}.{out._overloadname}"]
    except (RuntimeError, AssertionError):
        pass
    # to_out_variant trips on some packets (e.g. aten::pow's scalar overloads): look for the
    # out overload with the functional's arguments ourselves.
    args = [(a.name, str(a.type)) for a in functional._schema.arguments]
    for name in packet.overloads():
        schema = getattr(packet, name)._schema
        inputs = [(a.name, str(a.type)) for a in schema.arguments if not a.is_out]
        if any(a.is_out for a in schema.arguments) and inputs == args:
            return [f"{schema.name}.{name}"]
    return []


# the table's types and precision words live in etprof.backends (every backend's); re-exported
__all__ = [
    "PRECISIONS",
    "PRECISION_LABELS",
    "OpSupport",
    "SupportTable",
    "dumps",
    "generate_table",
    "load_table",
    "runtime_names",
    "table_from_dict",
    "table_to_dict",
]
