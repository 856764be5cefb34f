"""The run as shipped: ETDump's own cost estimated and taken out of every bucket.

`etprof run` times every measured iteration on the traced load and on a second load without
ETDump, taking turns (``run.untraced``). A wall time is `Method::execute` plus the Python call around it, which ETDump does
not touch; the traced side measures that call exactly (wall minus the trace's own execute). So
per iteration i

    shipped_i = execute_i - (traced wall_i - untraced wall_i)

and the shipped run model U is their mean, with a Student t interval over the iterations; the
profiler's cost is C = traced run model - U (docs/attribution.md, "The profiler's own cost").
Iterations set aside as preempted (analyzers/_outliers.py: the run model, or either wall, far
above the session's own distribution) are left out unless `keep_outliers`.

Where C lands is modelled per recorded event: a portable kernel's event is written inside its
OPERATOR_CALL (operator dispatch overhead), an OPERATOR_CALL's or DELEGATE_CALL's inside
`Method::execute` (runtime overhead), a delegate operator's inside its DELEGATE_CALL after the
operators ran (the call's time outside its operators: delegate overhead, then the
below-resolution bound). C is split over those rows in proportion to their events, a delegate
operator event weighing `DELEGATE_EVENT_WEIGHT` portable ones (measured, docs/attribution.md),
never taking more than a row holds (the rest goes to the other rows in proportion to what they
hold). The bounds are the extremes over C's interval and delegate weights in `WEIGHTS`, capped
at the shipped run model: no row can hold more than the whole run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._outliers import far_out
from etprof.analyzers.buckets import Buckets, measured_buckets
from etprof.result import records
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, KERNEL, OPERATOR_CALL, Trace
from etprof.units import ms_text

CONFIDENCE = 0.95
DELEGATE_EVENT_WEIGHT = 1.5  # cost of a delegate operator event / a portable event (measured)
WEIGHTS = (0.5, DELEGATE_EVENT_WEIGHT, 3.0)  # the model's range, for the bounds
PROFILER = "profiler (ETDump)"
COLUMNS = [
    "bucket",
    "backend",
    "label",
    "traced_ms",
    "etdump_ms",
    "shipped_ms",
    "shipped_low_ms",
    "shipped_high_ms",
    "shipped_share_pct",
]


@dataclass(frozen=True)
class ShippedOptions:
    warmup: int | None = None
    keep_outliers: bool = False


@dataclass(frozen=True)
class Shipped:
    model: str
    status: str  # "shipped", "no measurable cost", "unresolved", "not measured"
    traced_ms: float  # run model mean over the iterations used
    shipped_ms: float | None  # U
    low_ms: float | None
    high_ms: float | None
    iterations: int  # used
    set_aside: int  # preempted, left out
    frame: pd.DataFrame  # COLUMNS; the last row is the profiler's

    schema = "etprof.shipped"

    @property
    def profiler_ms(self) -> float | None:
        return None if self.shipped_ms is None else self.traced_ms - self.shipped_ms

    def line(self) -> str:
        """ "shipped 5.44 ms (95% CI 5.40 .. 5.48 ms); profiler (ETDump) 0.44 ms"."""
        if self.status == "not measured":
            return "shipped figure not measured (no untraced iterations in this trace)"
        if self.shipped_ms is None:
            return (
                f"shipped figure not resolved: ETDump's cost cannot be told from the "
                f"timing noise (the shipped run model is below {ms_text(self.traced_ms)})"
            )
        ci = f"{round(100 * CONFIDENCE)}% CI {ms_text(self.low_ms)} .. {ms_text(self.high_ms)}"
        cost = (
            "no measurable cost"
            if self.status == "no measurable cost"
            else ms_text(self.profiler_ms)
        )
        aside = f", {self.set_aside} preempted set aside" if self.set_aside else ""
        return (
            f"shipped {ms_text(self.shipped_ms)} ({ci}); {PROFILER} {cost} of "
            f"{ms_text(self.traced_ms)} traced{aside}"
        )

    def lead(self) -> str:
        """What a headline puts before the traced figure: this line, or nothing."""
        return "" if self.status == "not measured" else f"{self.line()}; traced "

    def tables(self, several: bool = True) -> dict[str, pd.DataFrame]:
        """The rows ({} when not measured); the backend column only for `several` backends."""
        if self.status == "not measured":
            return {}
        frame = self.frame if several else self.frame.drop(columns=["backend"])
        return {"shipped (ETDump's own cost taken out)": frame}

    def notes(self) -> list[str]:
        out = []
        if self.set_aside:
            out.append(
                f"shipped figures: {self.set_aside} preempted iteration(s) set aside "
                "(--keep-outliers to include them)"
            )
        if self.status == "unresolved":
            out.append(
                "the shipped figure is not given: its interval reaches 0 -- per call, the "
                "program is too short (or the machine too busy) for the wall clock around each "
                "call to tell ETDump's cost from the call's own jitter; more iterations "
                "(--iters) or a quieter machine narrow it"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "status": self.status,
            "traced_ms": self.traced_ms,
            "shipped_ms": self.shipped_ms,
            "ci_low_ms": self.low_ms,
            "ci_high_ms": self.high_ms,
            "profiler_ms": self.profiler_ms,
            "confidence": CONFIDENCE,
            "iterations": self.iterations,
            "set_aside": self.set_aside,
            "buckets": records(self.frame),
        }


def _pairs(
    trace: Trace, b: Buckets
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]] | None:
    """Per measured iteration of `b`: (traced wall, untraced wall per call) ms, or None."""
    untraced = trace.meta.run.untraced if trace.has_meta else ()
    if not untraced or len(untraced) != trace.sessions:
        return None
    it = b.per_iteration.index.to_numpy(np.int64)
    session, index = trace.session_of(it), trace.position_in_session(it) - b.warmup
    t, u = np.full(it.size, np.nan), np.full(it.size, np.nan)
    for k, times in enumerate(untraced):
        mine = (session == k) & (index >= 0) & (index < len(times.untraced_ms))
        t[mine] = np.asarray(times.traced_ms)[index[mine]]
        u[mine] = np.asarray(times.untraced_ms)[index[mine]]
    if np.isnan(t).any():
        return None
    return t, u, session


@analyzer(
    "shipped",
    "the run as shipped: ETDump's own cost estimated and taken out of every bucket",
    ShippedOptions,
)
def shipped(trace: Trace, options: ShippedOptions) -> Shipped:
    b = measured_buckets(trace, options.warmup, options.keep_outliers)
    rows = [(key, bid, text, ns.to_numpy(np.float64)) for key, bid, text, ns in b.rows()]
    e = b.per_iteration["run_model"].to_numpy(np.float64)
    pairs = _pairs(trace, b)
    kept = np.ones(e.size, bool) if b.kept is None else b.kept.copy()
    if pairs is not None and not options.keep_outliers:
        t, u, session = pairs
        kept &= ~far_out(t, session) & ~far_out(u, session)
    traced = {(k, bid): float(ns[kept].mean()) / 1e6 for k, bid, _, ns in rows}
    total = float(e[kept].mean()) / 1e6
    base: dict[str, Any] = {
        "model": trace.model,
        "traced_ms": total,
        "iterations": int(kept.sum()),
        "set_aside": int((~kept).sum()),
    }
    if pairs is None:
        return Shipped(
            status="not measured",
            shipped_ms=None,
            low_ms=None,
            high_ms=None,
            frame=_frame(rows, traced, None, None, total),
            **base,
        )
    t, u, _ = pairs
    x = e[kept] / 1e6 - (t[kept] - u[kept])  # shipped run model per iteration, ms
    mean, half = float(x.mean()), _half_width(x)
    if mean >= total:  # untraced no faster: nothing measurable to take out
        status, est, low, high = "no measurable cost", total, max(mean - half, 0.0), total
    elif mean - half <= 0:
        return Shipped(
            status="unresolved",
            shipped_ms=None,
            low_ms=None,
            high_ms=None,
            frame=_frame(rows, traced, None, None, total),
            **base,
        )
    else:
        status, est, low, high = "shipped", mean, mean - half, min(mean + half, total)
    weights = _landing(trace, rows)
    split = {
        w: {c: _split(rows, traced, weights, w, total - c) for c in (low, est, high)}
        for w in WEIGHTS
    }
    return Shipped(
        status=status,
        shipped_ms=est,
        low_ms=low,
        high_ms=high,
        frame=_frame(rows, traced, split, est, total),
        **base,
    )


def _half_width(x: npt.NDArray[np.float64]) -> float:
    if x.size < 2:
        return math.inf
    from scipy.stats import t as student

    sd = float(np.std(x, ddof=1))
    return float(student.ppf(0.5 + CONFIDENCE / 2.0, x.size - 1)) * sd / math.sqrt(x.size)


Key = tuple[str, str]


def _landing(trace: Trace, rows: list[tuple[str, str, str, Any]]) -> dict[Key, tuple[float, float]]:
    """Per landing row: (portable events, delegate operator events) recorded per iteration."""
    m = trace.measured()
    n = max(1, int(m.of_kind("run_model")["iteration"].nunique()))
    ops = m.of_kind(DELEGATE_OP)
    out: dict[Key, tuple[float, float]] = {
        ("dispatch_overhead", ""): (len(m.of_kind(KERNEL)) / n, 0.0),
        ("runtime_overhead", ""): (
            (len(m.of_kind(OPERATOR_CALL)) + len(m.of_kind(DELEGATE_CALL))) / n,
            0.0,
        ),
    }
    backend = ops["backend"].astype(str).to_numpy() if len(ops) else np.array([], dtype=object)
    for key, bid, _, _ in rows:
        if key == "delegate_overhead":
            out[("delegate_gap", bid)] = (0.0, float((backend == bid).sum()) / n)
    return out


def _split(
    rows: list[tuple[str, str, str, Any]],
    traced: dict[Key, float],
    landing: dict[Key, tuple[float, float]],
    weight: float,
    cost: float,
) -> dict[Key, float]:
    """Each row's shipped ms when `cost` ms is taken out, `weight` per delegate event."""
    room = dict(traced)
    for key, bid, _, _ in rows:  # a backend's gap: its overhead and below-resolution rows
        if key == "delegate_overhead":
            room[("delegate_gap", bid)] = max(0.0, traced[(key, bid)]) + traced.get(
                ("delegate_unresolved", bid), 0.0
            )
    w = {k: p + weight * d for k, (p, d) in landing.items() if k in room}
    taken = _fill(cost, {k: max(0.0, room[k]) for k in w}, w)
    rest = cost - sum(taken.values())
    shipped = dict(traced)
    for (key, bid), ms in taken.items():
        if key != "delegate_gap":
            shipped[(key, bid)] -= ms
            continue
        gap = room[(key, bid)] - ms
        unresolved = min(traced.get(("delegate_unresolved", bid), 0.0), gap)
        if ("delegate_unresolved", bid) in shipped:
            shipped[("delegate_unresolved", bid)] = unresolved
        shipped[("delegate_overhead", bid)] = gap - unresolved
    if rest > 1e-12:  # more than the landing rows hold: the rest in proportion to every row
        left = {k: max(0.0, v) for k, v in shipped.items()}
        more = _fill(rest, left, left)
        shipped = {k: v - more.get(k, 0.0) for k, v in shipped.items()}
    return shipped


def _fill(amount: float, room: dict[Key, float], weight: dict[Key, float]) -> dict[Key, float]:
    """`amount` shared in proportion to `weight`, none beyond its `room`, the excess passed
    to the others (water filling)."""
    taken = dict.fromkeys(room, 0.0)
    active = {k for k in room if weight.get(k, 0.0) > 0 and room[k] > 0}
    while amount > 1e-15 and active:
        total = sum(weight[k] for k in active)
        full = set()
        given = 0.0
        for k in active:
            give = min(amount * weight[k] / total, room[k] - taken[k])
            taken[k] += give
            given += give
            if room[k] - taken[k] <= 1e-15:
                full.add(k)
        amount -= given
        if not full:
            break
        active -= full
    return taken


def _frame(
    rows: list[tuple[str, str, str, Any]],
    traced: dict[Key, float],
    split: dict[float, dict[float, dict[Key, float]]] | None,
    est: float | None,
    total: float,
) -> pd.DataFrame:
    out = []
    for key, bid, text, _ in rows:
        k = (key, bid)
        row: dict[str, Any] = {"bucket": key, "backend": bid, "label": text, "traced_ms": traced[k]}
        if split is None or est is None:
            row.update(
                etdump_ms=math.nan,
                shipped_ms=math.nan,
                shipped_low_ms=math.nan,
                shipped_high_ms=math.nan,
                shipped_share_pct=math.nan,
            )
        else:
            point = split[DELEGATE_EVENT_WEIGHT][est][k]
            every = [s[k] for by_cost in split.values() for s in by_cost.values()]
            row.update(
                etdump_ms=traced[k] - point,
                shipped_ms=point,
                shipped_low_ms=max(0.0, min(every)),
                shipped_high_ms=min(max(every), est),
                shipped_share_pct=100.0 * point / est if est else 0.0,
            )
        out.append(row)
    cost = math.nan if est is None else total - est
    out.append(
        {
            "bucket": "profiler",
            "backend": "",
            "label": PROFILER,
            "traced_ms": math.nan,
            "etdump_ms": cost,
            "shipped_ms": math.nan,
            "shipped_low_ms": math.nan,
            "shipped_high_ms": math.nan,
            "shipped_share_pct": math.nan,
        }
    )
    return pd.DataFrame(out, columns=COLUMNS)
