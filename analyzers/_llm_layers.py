"""Where an LLM's time goes per token: per transformer layer and part, and per operator type.

With module paths (the ETRecord beside the .pte when the trace was recorded), each Execute
run's instructions land on one module each (analyzers/modules.py: the deepest module holding
all the instruction's graph nodes); a module path maps to its transformer layer (``layers.N``,
also ``model.layers.N``) and its part: attention, feed-forward, norm, output head, embedding.
Per phase, the time of every (layer, part) in microseconds per token: the phase's measured
time there / the tokens its measured runs consumed. With the runtime-overhead row the table
sums exactly to the phase's run model per token.

Without module paths, the same per-token figures per operator type. Either way the portable
kernels typical of LLM exports are named (custom SDPA and KV-cache update ops, embedding
lookups, index_put, expand_copy, copy_): what they are is generic LLM export knowledge, not a
backend's; *why* they fell back is the fallback explainer's (analyzers/fallback.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from etprof.analyzers.modules import ROOT, RUNTIME, UNKNOWN, module_frame
from etprof.analyzers.operators import operator_frame
from etprof.trace.model import Trace

ATTENTION, FEED_FORWARD, NORM, OUTPUT, EMBEDDING = (
    "attention",
    "feed-forward",
    "norm",
    "output head",
    "embedding",
)
WHOLE_LAYER, OTHER = "(mixed)", "(other)"  # (mixed): a call spanning several parts
ACROSS = "layers"  # a call spanning several layers
PARTS = (EMBEDDING, ATTENTION, FEED_FORWARD, NORM, OUTPUT, WHOLE_LAYER, OTHER)
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|decoder_layers)\.(\d+)(?=\.|$)")
_LAYERS = re.compile(r"(?:^|\.)(?:layers|h|blocks|decoder_layers)$")
# What the portable kernels typical of LLM exports do (matched on the operator's base name,
# its namespace and overload dropped): "llama::custom_sdpa.out" -> "custom_sdpa".
TYPICAL = {
    "sdpa_with_kv_cache": "custom SDPA + KV cache",
    "custom_sdpa": "custom SDPA",
    "update_cache": "KV-cache update",
    "update_quantized_cache": "KV-cache update (quantized)",
    "index_put": "KV-cache write",
    "index_put_": "KV-cache write",
    "embedding": "embedding lookup",
    "embedding_byte": "embedding lookup (quantized)",
    "embedding_4bit": "embedding lookup (quantized)",
    "expand_copy": "KV heads broadcast (GQA)",
    "copy_": "buffer copy (state)",
}


def layer_of(module: str) -> str:
    """The transformer layer a module path belongs to: "layers.3", ACROSS (the layers'
    container: a call spanning several layers), or "" (outside every layer: embedding, final
    norm, output head, ...)."""
    m = _LAYER.search(module)
    if m is not None:
        return module[: m.end()]
    return ACROSS if _LAYERS.search(module) else ""


def part_of(module: str) -> str:
    """The part of a transformer a module path is: attention, feed-forward, norm, output head,
    embedding; WHOLE_LAYER for a layer itself (a delegate call spanning its parts); OTHER."""
    if module in (ROOT, UNKNOWN, RUNTIME):
        return module
    parts = module.split(".")
    m = _LAYER.search(module)
    inner = module[m.end() :].lstrip(".").split(".") if m is not None else parts
    inner = [p for p in inner if p]
    if m is not None and not inner:
        return WHOLE_LAYER
    last = inner[-1].lower() if inner else ""
    if last.endswith("norm") or last in ("ln_1", "ln_2", "ln_f"):
        return NORM
    low = [p.lower() for p in inner]
    if any("attn" in p or "attention" in p or p in ("sdpa", "rope", "kv_cache") for p in low):
        return ATTENTION
    if any(
        p in ("feed_forward", "mlp", "ffn") or p.startswith(("feed_forward", "mlp")) for p in low
    ):
        return FEED_FORWARD
    if m is None and any(p in ("output", "lm_head") for p in low):
        return OUTPUT
    if m is None and any("embed" in p or p == "wte" for p in low):
        return EMBEDDING
    return OTHER


def base_name(op: str) -> str:
    """An operator's base name: namespace and overload dropped ("aten::index_put.out" ->
    "index_put")."""
    return op.rsplit("::", 1)[-1].split(".", 1)[0]


def typical_role(op: str) -> str:
    """What a portable kernel typical of LLM exports does, or "" for any other operator."""
    return TYPICAL.get(base_name(op), "")


@dataclass(frozen=True)
class PhasePart:
    """One phase's measured runs, as the per-token tables need them."""

    trace: Trace  # the phase's measured runs only
    runs: int  # measured Execute runs of the phase, all sessions
    tokens: int  # tokens those runs consumed, all sessions


def _per_token(p: PhasePart) -> float:
    """Microseconds per token of one ms per run."""
    return 1e3 * p.runs / p.tokens if p.tokens else float("nan")


def layer_frame(phases: Mapping[str, PhasePart]) -> tuple[pd.DataFrame, bool]:
    """(layer, part) rows with each phase's µs per token and share of its run model, and
    whether module paths were known (False: the frame is empty)."""
    per_phase: dict[str, pd.Series] = {}
    known = False
    order: dict[tuple[str, str], None] = {}
    for name, p in phases.items():
        frame, k = module_frame(p.trace)
        known = known or k
        keys = [
            (layer_of(m) if m not in (ROOT, UNKNOWN, RUNTIME) else "", part_of(m))
            for m in frame["module"]
        ]
        order.update(dict.fromkeys(keys))
        index = pd.MultiIndex.from_tuples(keys, names=["layer", "part"])
        per_phase[name] = pd.Series(frame["total_ms"].to_numpy(), index=index).groupby(
            level=[0, 1], sort=False
        ).sum() * _per_token(p)
    if not known:
        return pd.DataFrame(columns=["layer", "part"]), False
    rows = sorted(order, key=_row_order)
    out = pd.DataFrame({"layer": [r[0] for r in rows], "part": [r[1] for r in rows]})
    for name, s in per_phase.items():
        us = np.array([float(s.get(r, 0.0)) for r in rows])
        total = float(us.sum())
        out[f"{name}_us_per_token"] = us
        out[f"{name}_share_pct"] = 100.0 * us / total if total else 0.0
    return out, True


def _row_order(row: tuple[str, str]) -> tuple[int, int, str, int, str]:
    layer, part = row
    m = re.search(r"(\d+)$", layer)
    group = (
        0
        if part == EMBEDDING and not layer
        else 1
        if layer and m
        else 2
        if layer
        else 3
        if part in (NORM, OUTPUT)
        else 4
    )
    tail = (ROOT, UNKNOWN, RUNTIME)
    return (
        group,
        int(m.group(1)) if m else 0,
        layer,
        PARTS.index(part)
        if part in PARTS
        else len(PARTS) + tail.index(part)
        if part in tail
        else len(PARTS) + 3,
        part,
    )


def layer_totals(frame: pd.DataFrame, phase: str) -> list[tuple[str, float]]:
    """Each numbered layer's µs per token in `phase`, in layer order."""
    col = f"{phase}_us_per_token"
    if col not in frame.columns:
        return []
    layered = frame[frame["layer"].str.contains(r"\d$", regex=True)]
    sums = layered.groupby("layer", sort=False)[col].sum()
    return [(str(k), float(v)) for k, v in sums.items()]


def operator_token_frame(
    phases: Mapping[str, PhasePart], portable_only: bool = False
) -> pd.DataFrame:
    """Per operator type (and where it ran): each phase's µs per token and its count per token;
    `typical` names what a portable kernel typical of LLM exports does."""
    merged: pd.DataFrame | None = None
    for name, p in phases.items():
        f = operator_frame(p.trace)
        if portable_only:
            f = f[f["side"] == "portable"]
        t = pd.DataFrame(
            {
                "op": f["op"].astype(str),
                "side": f["side"].astype(str),
                "backend": f["backend"].astype(str),
                f"{name}_us_per_token": f["per_iter_ms"].astype(float).to_numpy() * _per_token(p),
                f"{name}_calls_per_token": f["count"].astype(float).to_numpy()
                * (p.runs / p.tokens if p.tokens else float("nan")),
            }
        )
        merged = t if merged is None else merged.merge(t, on=["op", "side", "backend"], how="outer")
    if merged is None:
        return pd.DataFrame(columns=["op", "side", "backend", "typical"])
    merged = merged.fillna({c: 0.0 for c in merged.columns if c.endswith("_per_token")})
    merged["typical"] = [
        typical_role(op) if side == "portable" else ""
        for op, side in zip(merged["op"], merged["side"], strict=False)
    ]
    last = list(phases)[-1]
    cols = ["op", "typical", "side", "backend"]
    merged = merged[cols + [c for c in merged.columns if c not in cols]]
    return merged.sort_values([f"{last}_us_per_token", "op"], ascending=[False, True]).reset_index(
        drop=True
    )
