"""What XNNPACK's partitioner (executorch 1.5.1) does not take, why, and the fix that works.

The fallback explainer (analyzers/fallback.py) classifies each portable instruction against the
support table (etprof.backends.xnnpack_support); this module gives each cause its reason and fix
in words. Every reason was read from the installed partitioner configs
(``executorch/backends/xnnpack/partition/config/``: which target overloads exist, which
constraints they check). Which fix applies to a program's instances, and how far it is known
to work (checked: applied to a tiny model, exported with the default ``XnnpackPartitioner`` and
found delegated, docs/fallback.md lists what was seen), etprof.backends.xnnpack_advice decides. Where no change makes XNNPACK take the operator in this executorch version,
the fix says so.

Facts the notes rest on (executorch 1.5.1):

- every config checks its tensor arguments are fp32/fp16 (int8 for quantize/dequantize): an
  operator on bool or integer tensors (eq, logical_not, any, where's condition, embedding's
  token ids) is never delegated;
- ``MulConfig`` targets ``mul.Tensor`` only (``x * 2.0`` in model code exports as mul.Tensor and
  is delegated; ``mul.Scalar`` comes from decompositions, e.g. scaled_dot_product_attention's);
- there is no config for select, squeeze, expand, split, index_put, embedding, layer_norm, sum,
  where or the comparisons; ``unsqueeze_copy`` is taken on the trailing dimension only,
  ``slice_copy`` with stride 1 and static shapes, ``view_copy`` with static shapes;
- ``copy_`` of a mutable buffer is the write-back ExecuTorch adds after the method
  (``insert_write_back_for_buffers_pass``), skipped when the update is in place;
  ``ExecutorchBackendConfig(run_reinplace_pass=True)`` makes ``index_put`` in place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from etprof.backends import FallbackNote as Note

VERSION = "1.5.1"  # the executorch version these notes were checked against
NO_FIX = f"no known fix in executorch {VERSION}"  # how a Note without a fix starts

# Portable kernels that move, re-type, quantize or materialize data without computing: they
# never explain a fallback by themselves, they are there because of the op next to them.
# Shape operators a model writes itself (select, squeeze, unsqueeze, expand, slice, split) are
# not here: XNNPACK's configs judge them like any operator, so they are causes of their own.
GLUE_KERNELS = frozenset(
    {
        "view_copy",
        "_to_copy",
        "_to_dim_order_copy",
        "_clone_dim_order",
        "clone",
        "permute_copy",
        "alias_copy",
        "detach_copy",
        "_unsafe_view",
        "t_copy",
        "transpose_copy",
        "full",
        "full_like",
        "scalar_tensor",
        "zeros",
        "zeros_like",
        "ones",
        "ones_like",
        "empty",
        "fill",
        "_local_scalar_dense",
        "quantize_per_tensor",
        "dequantize_per_tensor",
        "quantize_per_channel",
        "dequantize_per_channel",
        "quantize_per_token",
        "dequantize_per_token",
        "choose_qparams",
        "choose_qparams_per_token_asymmetric",
    }
)

SDPA = "scaled_dot_product_attention"
# torch decomposes scaled_dot_product_attention into matmuls, a softmax and a check for rows
# masked entirely (its "safe softmax": eq(-inf), all() as logical_not/any/logical_not, where),
# and scales q and k by sqrt(scale) each with mul.Scalar.
_SDPA_MASK_CHECK = frozenset({"eq", "logical_not", "any", "where"})
_SDPA_FIX = (
    "write the attention out, `torch.softmax(q @ k.transpose(-2, -1) * scale + mask, "
    "dim=-1) @ v`, instead of F.scaled_dot_product_attention (nn.MultiheadAttention and "
    "nn.TransformerEncoderLayer call it): XNNPACK then takes the matmuls, the scaling, "
    "the mask and the softmax (a row masked entirely then gives NaN, not zeros)"
)
_REINPLACE_FIX = (
    "make the cache update in place: `to_executorch(ExecutorchBackendConfig("
    "run_reinplace_pass=True))` turns index_put into index_put_ on the cache buffer "
    "and removes the copy_ write-backs (the "
    "index_put_ itself stays on portable kernels, writing only the new positions)"
)


def base(name: str) -> str:
    """ "aten::mul.Scalar_out" -> "mul"."""
    return name.split("::")[-1].split(".")[0]


def overload(name: str) -> str:
    """ "aten::mul.Scalar_out" -> "Scalar"; "aten::copy_" -> ""."""
    parts = name.split("::")[-1].split(".")
    return re.sub(r"_?out$", "", parts[1]) if len(parts) > 1 else ""


def has_sdpa_pieces(program_ops: Iterable[str]) -> bool:
    """Whether the portable operators include the mask check of a decomposed SDPA."""
    return {base(o) for o in program_ops} >= _SDPA_MASK_CHECK


def decomposed_label(name: str, program_ops: Iterable[str]) -> str:
    """The decomposition `name` is a piece of, judged from the program's portable operators."""
    b = base(name)
    if has_sdpa_pieces(program_ops) and (
        b in _SDPA_MASK_CHECK or (b == "mul" and overload(name) == "Scalar")
    ):
        return SDPA
    return ""


_CONSTRAINTS: dict[str, Note] = {
    "unsqueeze_copy": Note(
        "XNNPACK's UnsqueezeCopyConfig takes unsqueeze on the trailing dimension "
        "only (and, like every config, float tensors)",
        "reshape instead (`x.reshape(...)` is view_copy, which XNNPACK takes)",
    ),
    "mean": Note(
        "XNNPACK's MeanDimConfig takes the mean of a 4-D tensor over dims (2, 3) with "
        "keepdim=True only",
        f"{NO_FIX} for other reductions",
    ),
    "slice_copy": Note(
        "XNNPACK's SliceCopyConfig takes stride 1 and static, non-zero shapes only",
        f"{NO_FIX} for strided or dynamic slices",
    ),
    "view_copy": Note(
        "XNNPACK's ViewCopyConfig takes static shapes with at most one -1 only",
        f"{NO_FIX} for symbolic shapes",
    ),
    "_softmax": Note(
        "XNNPACK's SoftmaxConfig takes a softmax over the last dimension only",
        "move the dimension last (permute, softmax over -1, permute back)",
    ),
    "cat": Note("XNNPACK's CatConfig takes 2 or more tensors only", NO_FIX),
    "pow": Note(
        "XNNPACK's PowConfig takes an integer power of 2 only", f"{NO_FIX} for other powers"
    ),
    "_to_dim_order_copy": Note(
        "XNNPACK takes dim-order conversions, not dtype conversions",
        f"{NO_FIX} for a dtype conversion",
    ),
    "clone": Note("XNNPACK's CloneConfig takes dim-order preserving clones only", NO_FIX),
}

_UNSUPPORTED: dict[str, Note] = {
    "select_copy": Note(
        "XNNPACK has no select config (indexing one position, `y[:, -1]`, drops a "
        "dimension; nn.LSTM's decomposition selects each time step)",
        "index with a slice and reshape, `y[:, -1:].reshape(...)` (slice_copy with "
        "stride 1 and view_copy are XNNPACK's); for the "
        f"selects inside nn.LSTM's decomposition, {NO_FIX}",
    ),
    "squeeze_copy": Note(
        "XNNPACK has no squeeze config",
        "reshape instead (`x.reshape(...)` is view_copy, which XNNPACK takes); for the "
        "squeezes inside nn.LSTM's "
        f"decomposition, {NO_FIX}",
    ),
    "split_with_sizes_copy": Note(
        "XNNPACK has no split config (`chunk`/`split` make it)",
        "slice instead, `y[..., :n]`, `y[..., n:2 * n]`, ... (slice_copy "
        "with stride 1); for nn.LSTM's gates, "
        f"{NO_FIX}",
    ),
    "expand_copy": Note(
        "XNNPACK has no expand config (its element-wise operators broadcast, but an "
        "explicit expand is a copy it does not take)",
        "drop an explicit expand before an element-wise operator and let it "
        "broadcast, `a * b` rather than `a.expand(...) * b`; for an expand feeding "
        "a matmul (grouped-query attention's "
        f"repeat_kv), {NO_FIX}",
    ),
    "index_put": Note(
        "XNNPACK has no index_put (scatter) config; torch.export writes a KV-cache "
        "update (`index_copy_`, `cache[:, pos] = k`) as index_put into a copy of the "
        "cache",
        _REINPLACE_FIX,
    ),
    "index_put_": Note(
        "XNNPACK has no index_put (scatter) config; this update is already in place "
        "(it writes only the new positions, with no copy_ write-back)",
        f"{NO_FIX}; it is the cheap form of the update",
    ),
    "copy_": Note(
        "it is the write-back of a mutated buffer (e.g. a KV cache): ExecuTorch copies the "
        "updated value into the buffer after the method runs, not an operator a backend "
        "takes",
        _REINPLACE_FIX,
    ),
    "embedding": Note(
        "XNNPACK has no embedding (gather) config, and its configs take float "
        "tensors only, not the integer token ids",
        f"{NO_FIX} (a table lookup)",
    ),
    "embedding_byte": Note(
        "it is a quantized embedding lookup (ExecuTorch's quantized kernels); "
        "XNNPACK has no embedding config",
        f"{NO_FIX} (a table lookup)",
    ),
    "embedding_4bit": Note(
        "it is a quantized embedding lookup (ExecuTorch's quantized kernels); "
        "XNNPACK has no embedding config",
        f"{NO_FIX} (a table lookup)",
    ),
    "update_quantized_cache": Note(
        "it is ExecuTorch's own in-place quantized KV-cache update "
        "kernel (the custom ops library an LLM export links), chosen "
        "instead of XNNPACK on purpose",
        "none needed: it is the intended kernel",
    ),
    "native_layer_norm": Note("XNNPACK has no layer_norm config", NO_FIX),
    "sum": Note(
        "XNNPACK has no sum config (its only reduction is mean.dim of a 4-D tensor over "
        "dims (2, 3))",
        NO_FIX,
    ),
    "where": Note(
        "XNNPACK has no where config (its condition is a bool tensor, and XNNPACK's "
        "configs take float tensors only)",
        NO_FIX,
    ),
    "custom_sdpa": Note(
        "it is ExecuTorch's own optimized attention kernel (the custom ops library "
        "an LLM export links), chosen instead of XNNPACK on purpose",
        "none needed: it is the intended kernel",
    ),
    "update_cache": Note(
        "it is ExecuTorch's own in-place KV-cache update kernel (the custom ops "
        "library an LLM export links), chosen instead of XNNPACK on purpose",
        "none needed: it is the intended kernel",
    ),
    "sdpa_with_kv_cache": Note(
        "it is ExecuTorch's own attention-with-KV-cache kernel (the custom ops "
        "library an LLM export links), chosen instead of XNNPACK on purpose",
        "none needed: it is the intended kernel",
    ),
}
_BOOL_OPS = frozenset(
    {
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "logical_not",
        "logical_and",
        "logical_or",
        "any",
        "all",
        "bitwise_not",
    }
)


def note(name: str, cls: str, program_ops: Iterable[str]) -> Note:
    """Reason and fix for the portable operator `name` (as the program calls it) of class `cls`
    ("unsupported" or "constraint"), with the program's other portable operators as context."""
    ops = list(program_ops)
    b, label = base(name), decomposed_label(name, ops)
    if label == SDPA:  # one reason for all the pieces: the explanation gives them one line
        reason = (
            "the check for rows masked entirely (eq, logical_not, any, where) computes on "
            "bool tensors, which XNNPACK's configs never take, and the scaling (mul.Scalar) "
            "is an overload XNNPACK has no config for (it takes mul.Tensor)"
        )
        return Note(reason, _SDPA_FIX, SDPA)
    if b == "mul" and overload(name) == "Scalar":
        return Note(
            "XNNPACK's MulConfig takes mul.Tensor only; mul.Scalar (a tensor times a "
            "Python number, as decompositions write it) has no config",
            "multiply in model code, `x * 2.0`: torch.export makes it mul.Tensor, which "
            "XNNPACK takes",
        )
    if cls == "constraint":
        # the trace cannot say which check failed: name the config's own, and the common ones
        common = (
            "the checks every config makes (float tensors of one dtype, no empty or "
            "unbacked-size tensors)"
        )
        verbose = "XnnpackPartitioner(verbose=True) logs which check failed"
        own = _CONSTRAINTS.get(b)
        if own is None:
            return Note(
                f"{common} or its own rejected these instances",
                "lower with XnnpackPartitioner(verbose=True): it logs which check failed",
            )
        return Note(
            f"{own.reason}; that or {common} rejected these instances", f"{own.fix} ({verbose})"
        )
    if b in _UNSUPPORTED:
        return _UNSUPPORTED[b]
    if b in _BOOL_OPS:
        return Note(
            f"XNNPACK has no {b} config: it computes on bool tensors, and XNNPACK's "
            "configs take float tensors only",
            NO_FIX,
        )
    return Note(
        f"XNNPACK has no partitioner config for {b}",
        f"{NO_FIX} other than computing it with operators XNNPACK takes",
    )
