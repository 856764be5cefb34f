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


# --- real-world shapes of programs (tests/integration/test_real_programs.py) --------------------------------


def _recipe(**kw: object) -> object:
    from etprof.zoo import Recipe

    return Recipe(**kw)  # type: ignore[arg-type]


class Encoder(nn.Module):
    """A two-layer transformer encoder over 8 tokens of width 32 (self-attention + MLP)."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.encoder(x))
        return out


def encoder() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return Encoder().eval(), (torch.randn(1, 8, 32),)


def encoder_dq() -> object:
    """The encoder with 8-bit dynamically quantized linears (under --quantize)."""
    model, inputs = encoder()
    return _recipe(module=model, inputs=inputs, dynamic_linears=True)


class MaskedTokens(nn.Module):
    """int64 token ids plus a float mask: embedding, masked mean, classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.fc = nn.Linear(16, 4)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids) * mask.unsqueeze(-1)
        out: torch.Tensor = self.fc(h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0))
        return out


def masked_tokens() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return MaskedTokens().eval(), (torch.randint(0, 50, (1, 8)), torch.ones(1, 8))


class KVDecoderStep(nn.Module):
    """One decoder step writing its key/value into a cache held in buffers, at `input_pos`, as
    users write it (parameters requiring grad, an in-place buffer update)."""

    def __init__(self, dim: int = 16, cache: int = 32) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.register_buffer("k_cache", torch.zeros(1, cache, dim))
        self.register_buffer("v_cache", torch.zeros(1, cache, dim))

    def forward(self, x: torch.Tensor, input_pos: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        self.k_cache.index_copy_(1, input_pos, k)
        self.v_cache.index_copy_(1, input_pos, v)
        att = torch.softmax(q @ self.k_cache.transpose(1, 2) / 4.0, dim=-1)
        out: torch.Tensor = self.out(att @ self.v_cache)
        return out


def kv_decoder_step() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    model = KVDecoderStep()  # deliberately not .eval() or requires_grad_(False): as users write
    return model, (torch.randn(1, 1, 16), torch.tensor([0]))


class Encode(nn.Module):
    def __init__(self, fc: nn.Linear) -> None:
        super().__init__()
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.relu(self.fc(x))
        return out


class Decode(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 8)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(torch.relu(self.fc1(h)))
        return out


def two_methods() -> object:
    """`forward` (decode) and `encode` in one program, as an encoder-decoder app calls them."""
    torch.manual_seed(0)
    encode = Encode(nn.Linear(16, 32))
    return _recipe(
        module=Decode(),
        inputs=(torch.randn(4, 32),),
        methods={"encode": (encode, (torch.randn(4, 16),))},
    )


class TinyLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        y, _ = self.lstm(x, state)
        out: torch.Tensor = self.fc(y[:, -1])
        return out


def lstm() -> tuple[nn.Module, tuple[object, ...]]:
    torch.manual_seed(0)
    return TinyLSTM().eval(), (torch.randn(1, 5, 8), (torch.zeros(1, 1, 16), torch.zeros(1, 1, 16)))


class ConvNormGelu(nn.Module):
    """conv -> LayerNorm over channels -> GELU -> conv -> mean -> linear, as ConvNeXt-like blocks
    write it: XNNPACK takes the whole network as one delegate, covering several modules."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.LayerNorm(8)
        self.act = nn.GELU()
        self.proj = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x).permute(0, 2, 3, 1)
        y = self.act(self.norm(y)).permute(0, 3, 1, 2)
        out: torch.Tensor = self.head(self.proj(y).mean((2, 3)))
        return out


def conv_norm_gelu() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return ConvNormGelu().eval(), (torch.randn(1, 3, 16, 16),)


# --- XNNPACK fallbacks and their fixes (tests/integration/test_real_programs.py, issue 12 item 4) ----------


class Fallbacks(nn.Module):
    """Operators XNNPACK (executorch 1.5.1) leaves on portable kernels, as models write them:
    F.scaled_dot_product_attention (decomposed into mul.Scalar, eq, logical_not, any, where),
    chunk (split_with_sizes_copy), an explicit expand, select (`y[:, -1]`) and squeeze."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(16, 48)
        self.out = nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        att = self.out(nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask))
        gate = torch.sigmoid(att[..., :1]).expand(1, 8, 16) * att
        out: torch.Tensor = self.head(gate[:, -1].unsqueeze(1).squeeze(1))
        return out


class FallbacksFixed(Fallbacks):
    """The same computation with each fix etprof's explanation suggests applied: attention
    written out, slices instead of chunk, broadcasting instead of expand, slice and reshape
    instead of select and squeeze. XNNPACK takes all of it."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.qkv(x)
        q, k, v = y[..., :16], y[..., 16:32], y[..., 32:]
        att = self.out(torch.softmax(q @ k.transpose(-2, -1) * 0.25 + mask, dim=-1) @ v)
        gate = torch.sigmoid(att[..., :1]) * att
        out: torch.Tensor = self.head(gate[:, -1:].reshape(1, 16))
        return out


def _fallback_inputs() -> tuple[torch.Tensor, ...]:
    return torch.randn(1, 8, 16), torch.zeros(8, 8)


def fallbacks() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return Fallbacks().eval(), _fallback_inputs()


def fallbacks_fixed() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return FallbacksFixed().eval(), _fallback_inputs()


# --- program identity across XNNPACK's runtime rewrites (tests/test_program_identity.py) -------


class _ConvBnRelu(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )


class _Residual(nn.Module):
    """conv-bn-relu, conv-bn, + shortcut (a strided 1x1 conv when the shape changes), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.a = _ConvBnRelu(cin, cout, 3, stride)
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = (
            nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.relu(self.b(self.a(x)) + self.short(x))
        return out


class ResNet8(nn.Module):
    """MLPerf Tiny's ResNet8 (image classification) at a small width: a stem, three residual
    stacks (the ReLU after each Add is what XNNPACK runs as its own Clamp), pooling, a linear."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.stem = _ConvBnRelu(3, width, 3)
        self.stacks = nn.Sequential(
            _Residual(width, width, 1),
            _Residual(width, 2 * width, 2),
            _Residual(2 * width, 4 * width, 2),
        )
        self.fc = nn.Linear(4 * width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stacks(self.stem(x))
        out: torch.Tensor = self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))
        return out


def resnet8() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return ResNet8().eval(), (torch.randn(1, 3, 16, 16),)


def resnet8_wide() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The same network at twice the width: another program of the same structure."""
    torch.manual_seed(0)
    return ResNet8(16).eval(), (torch.randn(1, 3, 16, 16),)


class DSCNN(nn.Module):
    """MLPerf Tiny's DS-CNN (keyword spotting) in miniature: a strided conv, depthwise-separable
    blocks, average pooling, a linear."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = [_ConvBnRelu(1, width, 3, 2)]
        for _ in range(2):
            layers += [_ConvBnRelu(width, width, 3, groups=width), _ConvBnRelu(width, width, 1)]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(width, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.adaptive_avg_pool2d(self.body(x), 1)
        out: torch.Tensor = self.fc(torch.flatten(y, 1))
        return out


def ds_cnn() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return DSCNN().eval(), (torch.randn(1, 1, 20, 10),)


class _NoNorm(nn.Module):
    """MobileBERT's NoNorm: an element-wise scale and shift in place of LayerNorm."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim) * 1.1)
        self.bias = nn.Parameter(torch.zeros(dim) + 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias


class MobileBertLayer(nn.Module):
    """One MobileBERT layer at a small width: bottleneck linears in and out of a narrower
    attention, stacked ReLU feed-forwards, NoNorm, residual adds."""

    def __init__(self, dim: int = 32, inner: int = 16, heads: int = 4, ffns: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.down = nn.Linear(dim, inner)
        self.qkv = nn.Linear(inner, 3 * inner)
        self.att_out = nn.Linear(inner, inner)
        self.norm = _NoNorm(inner)
        self.ffn = nn.ModuleList(
            nn.Sequential(nn.Linear(inner, 2 * inner), nn.ReLU(), nn.Linear(2 * inner, inner))
            for _ in range(ffns)
        )
        self.ffn_norm = nn.ModuleList(_NoNorm(inner) for _ in range(ffns))
        self.up = nn.Linear(inner, dim)
        self.out_norm = _NoNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(x)
        b, t, d = h.shape
        q, k, v = (
            p.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
            for p in self.qkv(h).chunk(3, dim=-1)
        )
        att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1) @ v
        h = self.norm(h + self.att_out(att.transpose(1, 2).reshape(b, t, d)))
        for ffn, norm in zip(self.ffn, self.ffn_norm, strict=True):
            h = norm(h + ffn(h))
        return self.out_norm(x + self.up(h))


class MobileBert(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(MobileBertLayer(), MobileBertLayer())
        self.head = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.layers(x)[:, 0])
        return out


def mobilebert() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return MobileBert().eval(), (torch.randn(1, 8, 32),)


# --- advice whose precondition is checked against the program (tests/integration/test_advice.py)


class Attention(nn.Module):
    """F.scaled_dot_product_attention on (batch, heads, tokens, dim) inputs, as the wheel's
    SdpaModule toy model writes it (examples/models/toy_model)."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return nn.functional.scaled_dot_product_attention(q, k, v)


class AttentionWritten(nn.Module):
    """The same attention written out: the fix etprof suggests for SDPA's decomposition."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.softmax(q @ k.transpose(-2, -1) * 0.25, dim=-1) @ v


def _qkv(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    return tuple(torch.randn(1, 2, 8, 16, dtype=dtype) for _ in range(3))


def sdpa_bf16() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return Attention().eval(), _qkv(torch.bfloat16)


def attention_written_bf16() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return AttentionWritten().eval(), _qkv(torch.bfloat16)


def attention_written() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return AttentionWritten().eval(), _qkv(torch.float32)


class PooledKeepdim(ConvHardswish):
    """ConvHardswish with its final mean written as the fix says: keepdim=True, then flatten."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.hardswish(self.conv(x))
        y = y * nn.functional.hardsigmoid(self.squeeze(y.mean((2, 3), keepdim=True)))
        out: torch.Tensor = self.fc(y.mean((2, 3), keepdim=True).flatten(1))
        return out


def pooled_keepdim() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return PooledKeepdim().eval(), (torch.randn(1, 3, 16, 16),)


class Compare(nn.Module):
    """A clamp written with comparisons, as masks are: le.Tensor and ge.Scalar compare float
    tensors and output bool ones."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        y = torch.where(y <= limit, y, limit)
        return self.fc(y * (y >= 0.5))


def compare() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return Compare().eval(), (torch.randn(1, 16), torch.ones(1, 16))
