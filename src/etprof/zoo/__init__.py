"""Models to export and profile: ExecuTorch's example MobileNets, or the user's own.

Importing this package does not import torch; building a model does.
"""

from __future__ import annotations

from etprof.zoo.registry import ZOO, ModelSpec, load, parse, resolve

__all__ = ["ZOO", "ModelSpec", "load", "parse", "resolve"]
