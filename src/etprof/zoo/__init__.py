"""Models to export and profile: ExecuTorch's example MobileNets, a tiny Llama, or the user's own.

Importing this package does not import torch; building a model does.
"""

from __future__ import annotations

from etprof.zoo.recipe import Recipe
from etprof.zoo.registry import LLM_MODELS, ZOO, ModelSpec, build, load, parse, resolve

__all__ = ["LLM_MODELS", "ZOO", "ModelSpec", "Recipe", "build", "load", "parse", "resolve"]
