"""Small models for export tests, reachable as MODEL specs `etprof_tiny_models:<name>`.

pytest puts tests/ on sys.path (rootdir-less "prepend" import mode), so the spec resolves in the
test process; subprocess tests pass cwd=tests/ instead.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvHardswish(nn.Module):
    """conv -> hardswish -> SE-like hardsigmoid scale -> mean -> linear: MobileNetV3 in miniature."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.squeeze = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.hardswish(self.conv(x))
        y = y * nn.functional.hardsigmoid(self.squeeze(y.mean((2, 3), keepdim=True)))
        out: torch.Tensor = self.fc(y.mean((2, 3)))
        return out


def tiny() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return ConvHardswish().eval(), (torch.randn(1, 3, 16, 16),)


class HardswishBetweenConvs(nn.Module):
    """conv -> hardswish -> conv: each hardswish's only consumer is quantized, so XNNPACK runs it
    as a quantized operator (executorch 1.5.1 names it "Invalid Unary Op"), as in MobileNetV3."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(nn.functional.hardswish(self.conv1(x)))
        out: torch.Tensor = self.fc(nn.functional.hardswish(y).mean((2, 3)))
        return out


def hardswish_q8() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return HardswishBetweenConvs().eval(), (torch.randn(1, 3, 16, 16),)


def not_a_pair() -> nn.Module:
    return ConvHardswish()


def raises() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    raise RuntimeError("weights missing")


class DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.export refuses it
            return x * 2
        return x


def unexportable() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return DataDependent(), (torch.ones(2),)


NOT_CALLABLE = 3
