"""Which models `etprof export MODEL` knows, and how a MODEL spec is turned into a model.

A spec is a zoo name (``mv2``, ``mv3``, ``mv3-large``, ``llama``) or ``package.module:callable``
for a user's own model; the callable takes no arguments and returns ``(nn.Module,
example_inputs)``, optionally with a third item, the ``dynamic_shapes`` for torch.export (or a
`Recipe`). Parsing a spec imports nothing heavy, so the CLI can refuse a bad one before loading
torch.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from etprof.errors import InputError
from etprof.zoo.recipe import Recipe

if TYPE_CHECKING:
    import torch

_MOBILENET, _LLAMA = "etprof.zoo.mobilenet", "etprof.zoo.llama"
# name -> (module, builder, what it is)
ZOO: dict[str, tuple[str, str, str]] = {
    "mv2": (_MOBILENET, "mobilenet_v2", "MobileNetV2, 3.5M parameters"),
    "mv3": (
        _MOBILENET,
        "mobilenet_v3_small",
        "MobileNetV3-Small (ExecuTorch's examples' mv3), 2.5M parameters",
    ),
    "mv3-large": (_MOBILENET, "mobilenet_v3_large", "MobileNetV3-Large, 5.5M parameters"),
    "llama": (
        _LLAMA,
        "tiny_llama",
        "a tiny random-weight Llama (ExecuTorch's definition) with a KV cache, 0.1M parameters",
    ),
}
# zoo models lowered as ExecuTorch's LLM export does (--quantize: dynamic 8-bit linears)
LLM_MODELS = frozenset({"llama"})

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_CALLABLE_SPEC = re.compile(rf"^({_IDENT}(?:\.{_IDENT})*):({_IDENT}(?:\.{_IDENT})*)$")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed MODEL argument. `name` is what output files are named after."""

    name: str
    module: str
    attr: str
    builtin: bool
    llm: bool = False  # lowered as ExecuTorch's LLM export does (LLM_MODELS)


def parse(spec: str) -> ModelSpec:
    if spec in ZOO:
        module, builder, _ = ZOO[spec]
        return ModelSpec(
            name=spec, module=module, attr=builder, builtin=True, llm=spec in LLM_MODELS
        )
    match = _CALLABLE_SPEC.match(spec)
    if match is None:
        raise InputError(
            f"unknown model '{spec}'",
            f"use one of {', '.join(ZOO)} or package.module:callable",
        )
    module, attr = match.groups()
    return ModelSpec(name=attr.rsplit(".", 1)[-1], module=module, attr=attr, builtin=False)


def load(spec: str | ModelSpec) -> tuple[torch.nn.Module, tuple[Any, ...]]:
    """Build the model: returns (module in eval mode, example inputs as a tuple)."""
    recipe = build(spec)
    return recipe.module, recipe.inputs


def build(spec: str | ModelSpec) -> Recipe:
    """Build the model and say how to export it (module in eval mode)."""
    parsed = parse(spec) if isinstance(spec, str) else spec
    factory = resolve(parsed)
    try:
        built = factory()
    except InputError:
        raise
    except Exception as exc:  # the user's code: report it in one line, not a traceback
        raise InputError(
            f"{parsed.module}:{parsed.attr}() failed: {type(exc).__name__}: {exc}",
            "fix the model builder (run it in Python to see the traceback)",
        ) from exc
    return _checked(parsed, built)


def resolve(spec: ModelSpec) -> Any:
    """The builder a spec names (imports its module, does not call it)."""
    label = f"{spec.module}:{spec.attr}"
    try:
        module = _import_from_cwd(spec.module)
    except ImportError as exc:
        raise InputError(
            f"cannot import '{spec.module}' for model '{label}' ({exc})",
            "check the module path, run from the folder that holds the package or set PYTHONPATH",
        ) from None
    obj: Any = module
    for part in spec.attr.split("."):
        if not hasattr(obj, part):
            raise InputError(
                f"'{spec.module}' has no attribute '{spec.attr}'",
                "check the name after the colon in MODEL",
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(
            f"{label} is not callable",
            "point MODEL at a function returning (nn.Module, example_inputs)",
        )
    return obj


def _import_from_cwd(name: str) -> Any:
    """Import like `python -c` would: the current folder first, as users expect for their code."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(cwd)


def _checked(spec: ModelSpec, built: Any) -> Recipe:
    import torch

    fix = "make it return (torch.nn.Module, tuple_of_example_inputs)"
    label = f"{spec.module}:{spec.attr}()"
    if isinstance(built, Recipe):
        return replace(built, module=built.module.eval())
    if not (isinstance(built, tuple) and len(built) in (2, 3)):
        raise InputError(f"{label} returned {type(built).__name__}, not a pair", fix)
    model, inputs = built[:2]
    dynamic = built[2] if len(built) == 3 else None
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"{label} returned {type(model).__name__} as the model", fix)
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    if not isinstance(inputs, (tuple, list)):
        raise InputError(f"{label} returned {type(inputs).__name__} as the example inputs", fix)
    return Recipe(model.eval(), tuple(inputs), dynamic_shapes=dynamic)
