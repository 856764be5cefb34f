"""MobileNetV2 and MobileNetV3 (Small, Large), layer for layer as torchvision builds them.

torchvision cannot be imported here, so the architectures are written out from the papers
(Sandler et al. 2018; Howard et al. 2019) following torchvision's module layout, which fixes the
parameter counts: 3,504,872 (V2), 2,542,856 (V3-Small), 5,483,032 (V3-Large). Weights are random
but seeded, so two builds are identical; profiling cares about shapes and operators, not accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

SEED = 0
INPUT_SHAPE = (1, 3, 224, 224)
NUM_CLASSES = 1000

Activation = Callable[..., nn.Module]
Norm = Callable[[int], nn.Module]
# MobileNetV3 trains its BatchNorms with these (torchvision and the paper's TF code)
V3_NORM: Norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of `divisor`, never dropping more than 10% (the papers' rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d + optional activation, 'same' padding."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: Activation | None = nn.ReLU6,
        norm: Norm = nn.BatchNorm2d,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            norm(out_ch),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class InvertedResidualV2(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(in_ch * expand_ratio)
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_ch, hidden, kernel=1))
        layers += [
            ConvBNAct(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    # (expansion t, channels c, repeats n, first stride s), Table 2 of the paper
    # fmt: off
    SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1))
    # fmt: on

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.2) -> None:
        super().__init__()
        in_ch, last_ch = make_divisible(32), make_divisible(1280)
        features: list[nn.Module] = [ConvBNAct(3, in_ch, stride=2)]
        for t, c, n, s in self.SETTING:
            out_ch = make_divisible(c)
            for i in range(n):
                features.append(InvertedResidualV2(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        features.append(ConvBNAct(in_ch, last_ch, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last_ch, num_classes))
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        logits: torch.Tensor = self.classifier(torch.flatten(x, 1))
        return logits


class SqueezeExcitation(nn.Module):
    """SE block of MobileNetV3: the scale goes through hardsigmoid, not sigmoid."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale: torch.Tensor = self.scale_activation(
            self.fc2(self.activation(self.fc1(self.avgpool(x))))
        )
        return scale * x


@dataclass(frozen=True)
class Bneck:
    """One row of the MobileNetV3 tables: in, kernel, expanded, out, SE, hardswish, stride."""

    in_ch: int
    kernel: int
    expanded: int
    out_ch: int
    use_se: bool
    use_hs: bool
    stride: int


class InvertedResidualV3(nn.Module):
    def __init__(self, cfg: Bneck) -> None:
        super().__init__()
        self.use_residual = cfg.stride == 1 and cfg.in_ch == cfg.out_ch
        act: Activation = nn.Hardswish if cfg.use_hs else nn.ReLU
        layers: list[nn.Module] = []
        if cfg.expanded != cfg.in_ch:
            layers.append(ConvBNAct(cfg.in_ch, cfg.expanded, 1, activation=act, norm=V3_NORM))
        layers.append(
            ConvBNAct(
                cfg.expanded,
                cfg.expanded,
                cfg.kernel,
                cfg.stride,
                groups=cfg.expanded,
                activation=act,
                norm=V3_NORM,
            )
        )
        if cfg.use_se:
            layers.append(SqueezeExcitation(cfg.expanded, make_divisible(cfg.expanded // 4)))
        layers.append(ConvBNAct(cfg.expanded, cfg.out_ch, 1, activation=None, norm=V3_NORM))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.block(x)
        return out + x if self.use_residual else out


def _bnecks(rows: list[tuple[int, int, int, int, bool, str, int]]) -> tuple[Bneck, ...]:
    return tuple(
        Bneck(make_divisible(i), k, make_divisible(e), make_divisible(o), se, act == "HS", s)
        for i, k, e, o, se, act, s in rows
    )


# Tables 1 and 2 of the MobileNetV3 paper (in, kernel, expanded, out, SE, activation, stride)
# fmt: off
V3_LARGE = _bnecks([
    (16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
])
V3_SMALL = _bnecks([
    (16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2),
    (24, 3, 88, 24, False, "RE", 1), (24, 5, 96, 40, True, "HS", 2),
    (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1),
    (48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1),
    (96, 5, 576, 96, True, "HS", 1),
])
# fmt: on


class MobileNetV3(nn.Module):
    def __init__(
        self,
        setting: tuple[Bneck, ...],
        last_channel: int,
        num_classes: int = NUM_CLASSES,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        first, last_in = setting[0].in_ch, setting[-1].out_ch
        layers: list[nn.Module] = [
            ConvBNAct(3, first, stride=2, activation=nn.Hardswish, norm=V3_NORM)
        ]
        layers += [InvertedResidualV3(cfg) for cfg in setting]
        layers.append(ConvBNAct(last_in, 6 * last_in, 1, activation=nn.Hardswish, norm=V3_NORM))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(6 * last_in, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        logits: torch.Tensor = self.classifier(torch.flatten(x, 1))
        return logits


def _init_weights(model: nn.Module) -> None:
    """torchvision's initialisation, so activations have realistic ranges for quantization."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def _calibrate_batchnorm(model: nn.Module, batch: int = 4) -> None:
    """Set BatchNorm running statistics from one batch of noise.

    With fresh running stats (mean 0, var 1) an untrained network's activations shrink layer
    after layer (the output is ~1e-10), below the quantizer's smallest scale, so a quantized
    model would compute zeros. Measured statistics make every layer roughly unit-variance, as
    in a trained network. Only buffers change, never the architecture or the parameters.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch sets the statistics outright
    model.train()
    model(torch.randn(batch, *INPUT_SHAPE[1:]))
    for m, momentum in zip(norms, momenta, strict=False):
        m.momentum = momentum


def _seeded(factory: Callable[[], nn.Module]) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """Build under a fixed seed (without disturbing the caller's RNG) and return eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = factory()
        _calibrate_batchnorm(model)
        model.eval()
        example = torch.randn(INPUT_SHAPE)
    return model, (example,)


def mobilenet_v2() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return _seeded(MobileNetV2)


def mobilenet_v3_small() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return _seeded(lambda: MobileNetV3(V3_SMALL, make_divisible(1024)))


def mobilenet_v3_large() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return _seeded(lambda: MobileNetV3(V3_LARGE, make_divisible(1280)))
