"""A program of a few microseconds, for timing that must hold at that scale (kept apart from
tests/etprof_tiny_models.py, whose source keys the export cache of every model in it)."""

from __future__ import annotations

import torch
from torch import nn


class AddMul(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y + x


def add_mul() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return AddMul().eval(), (torch.randn(4, 4), torch.randn(4, 4))
