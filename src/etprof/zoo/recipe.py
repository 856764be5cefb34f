"""What a model builder hands the exporter: the model, its example inputs and how to export it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """A model ready to export.

    A builder returns this or the plain pair ``(nn.Module, example_inputs)``; a user's builder may
    also return ``(nn.Module, example_inputs, dynamic_shapes)``. `dynamic_shapes` is as
    `torch.export.export` takes it; `constant_methods` become methods of the program returning
    those values (ExecuTorch's LLM metadata); `llm` lowers as ExecuTorch's LLM export does
    (8-bit dynamically quantized linears under --quantize, delegate segments outside the
    flatbuffer, graph inputs not planned); `dynamic_linears` quantizes as that export does
    without the rest of it. `methods` adds methods beside `forward`: name -> (module, inputs),
    each exported and lowered like forward into the same program (as an encoder-decoder app's
    `encode` beside `forward`).
    """

    module: Any  # torch.nn.Module (Any: building a Recipe must not need torch's types)
    inputs: tuple[Any, ...]
    dynamic_shapes: Any = None
    constant_methods: dict[str, Any] = field(default_factory=dict)
    llm: bool = False
    dynamic_linears: bool = False
    methods: dict[str, tuple[Any, tuple[Any, ...]]] = field(default_factory=dict)
