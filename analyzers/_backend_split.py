"""A program split between several delegate backends: how many partitions each got, the
hand-offs between them, and what the calls cost per backend (breakdown's note).

A hand-off is a delegate call followed by a call of another backend, with only portable or no
instructions between: each one moves the tensors out of one runtime and into the other. What
the hand-offs cost is measured only where a backend separates its operators from its call:
XNNPACK's delegate overhead is that cost; an opaque backend (OpenVINO) holds it inside its
blocks, so for it the mean time per call is the bound etprof can give.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pandas as pd

from etprof.analyzers.buckets import DELEGATED, Buckets
from etprof.units import ms_text


def backend_parts(b: Buckets, pct: Callable[[float], str]) -> list[str]:
    """The headline's part of each backend: "XNNPACK 62.0% (3.1% glue)", "OpenVINO 98.4%
    (opaque: no operator events)"; `pct` says a ms figure as a share of run model."""
    parts = []
    warned = set(b.resolution().query("warn")["backend"]) if b.backends else set()
    for bid, backend in b.backends.items():
        ms = b.backend_share_ms(bid)
        opaque = float(ms["delegate_opaque"])
        whole = opaque and opaque == float(ms[list(DELEGATED)].sum())
        glue = backend.knows_glue and not whole
        inner = [f"{pct(float(ms['delegate_glue']))} glue"] if glue else []
        if opaque:  # calls without operator events: one block, not overhead
            inner.append("opaque: no operator events" if whole else f"{pct(opaque)} opaque")
        if bid in warned:  # too much of it is below the timer to read as compute/overhead
            inner.append(f"{pct(float(ms['delegate_unresolved']))} below timer resolution")
        detail = f" ({', '.join(inner)})" if inner else ""
        parts.append(f"{backend.label} {pct(float(ms[list(DELEGATED)].sum()))}{detail}")
    return parts


def split_notes(blocks: pd.DataFrame, buckets: Buckets) -> list[str]:
    """One line for a program whose delegate calls go to two or more backends; [] otherwise.
    `blocks`: the blocks analyzer's table (one row per delegate instruction, in order)."""
    if blocks.empty or blocks["backend"].nunique() < 2:
        return []
    order = blocks.sort_values("instruction")["backend"].tolist()
    handoffs = sum(a != b for a, b in itertools.pairwise(order))
    labels = {bid: b.label for bid, b in buckets.backends.items()}
    parts = []
    for bid, rows in blocks.groupby("backend", sort=False):
        label = labels.get(str(bid), str(bid))
        calls = len(rows)
        ms = buckets.backend_ms(str(bid)) if str(bid) in buckets.by_backend else None
        if ms is None:
            continue
        if float(ms["delegate_opaque"]) and not float(ms["delegate_compute"] + ms["delegate_glue"]):
            parts.append(
                f"{label} {calls} partition(s), {ms_text(float(ms['delegate_opaque']))} "
                f"opaque ({ms_text(float(ms['delegate_opaque']) / calls)} per call, its "
                "own share of the hand-offs inside)"
            )
        else:
            cost = float(ms["delegate_overhead"] + ms["delegate_unresolved"])
            parts.append(
                f"{label} {calls} partition(s), {ms_text(cost)} of delegate overhead "
                f"and below-resolution time ({ms_text(cost / calls)} per call)"
            )
    return [
        (
            f"this program is split between {len(parts)} backends with {handoffs} hand-off(s) "
            f"between them: {'; '.join(parts)}; fewer, larger partitions (one backend's "
            "partitioner first, or only one) remove hand-offs"
        )
    ]
