"""The LLM headline as shipped: each phase's time from the untraced sequences (docs/llm.md).

`etprof run` runs every sequence twice per session, on the traced load and on a second load
without ETDump (its own KV cache), taking turns, and times each step's `run_method` call by the
wall clock on both (``run.untraced``: the measured steps in session order). A shipped step is
its untraced wall time: the program's `Method::execute` plus the call around it, as an
application calling the program sees it (llama-bench and ExecuTorch's LLM runner likewise time
their own calls; always positive). The phase's shipped duration is the steps' sum, its tokens/s
the tokens over it. The call's own cost is reported beside (`call_ms`: the median over the
phase's traced steps of wall minus the trace's own `Method::execute`), so that the shipped
execute time can be read too (a step's wall minus it).

Untraced steps far above their session's own distribution (preempted: analyzers/_outliers.py)
are set aside from tokens/s, and counted; a phase's duration counts them as the kept steps'
mean. A phase with fewer steps per session than the rule needs (a prefill of one execute per
sequence) is judged over all sessions' steps together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from etprof.analyzers._outliers import MIN_SAMPLES, far_out
from etprof.trace.model import RUN_MODEL, Trace
from etprof.trace.sidecar import UntracedTimes

CONFIDENCE = 0.95


@dataclass(frozen=True)
class ShippedPhase:
    """One phase's shipped figures, per session and per measured step."""

    tokens_per_s: tuple[float, ...]  # one per session
    duration_ms: tuple[float, ...]  # per session: the phase's measured steps' shipped total
    latency_ms: tuple[float, ...]  # every measured step, shipped estimate
    call_ms: float  # the Python call around Method::execute, mean per step (traced side)
    set_aside: int = 0  # untraced steps preempted (analyzers/_outliers.py), all sessions


def shipped_phases(trace: Trace, phases: tuple[str, ...]) -> dict[str, ShippedPhase]:
    """Each phase's shipped figures; {} when the trace has no untraced sequences (recorded with
    --no-untraced, before they existed, or by another runner)."""
    run = trace.meta.run
    untraced = run.untraced
    if not run.phases or len(untraced) != trace.sessions:
        return {}
    rm = trace.measured().of_kind(RUN_MODEL)
    rm = rm[rm["iteration"].to_numpy() >= 0]
    per_run = rm.groupby("iteration")["duration_ns"].sum()
    it = per_run.index.to_numpy(np.int64)
    ns = per_run.to_numpy(np.int64)
    session = trace.session_of(it)
    index = trace.position_in_session(it) - trace.warmup
    measured = len(run.phases) - trace.warmup
    if any(len(u.traced_ms) != measured or len(u.untraced_ms) != measured for u in untraced):
        return {}
    phase_of = np.array([s.phase for s in run.phases[trace.warmup :]], dtype=object)
    tokens_of = np.array([s.tokens for s in run.phases[trace.warmup :]], dtype=np.int64)
    out: dict[str, ShippedPhase] = {}
    for name in phases:
        mine = phase_of[index] == name
        if mine.any():
            out[name] = _phase(session[mine], index[mine], ns[mine] / 1e6, untraced, tokens_of)
    return out


def _phase(
    session: npt.NDArray[np.int64],
    index: npt.NDArray[np.int64],
    exec_ms: npt.NDArray[np.float64],
    untraced: tuple[UntracedTimes, ...],
    tokens_of: npt.NDArray[np.int64],
) -> ShippedPhase:
    """One phase: its measured steps' session, index among the session's measured steps and
    traced Method::execute ms."""
    steps = np.zeros(index.size)
    walls = np.zeros(index.size)
    calls: list[float] = []
    for k, u in enumerate(untraced):
        mine = session == k
        idx = index[mine]
        if idx.size == 0:
            continue
        traced = np.asarray(u.traced_ms)[idx]
        wall = np.asarray(u.untraced_ms)[idx]
        steps[mine] = walls[mine] = wall
        calls.append(float(np.median(traced - exec_ms[mine])))
    # a phase of few steps per session (a prefill of one execute) is judged over all sessions
    counts = np.bincount(session)
    enough = counts[counts > 0].min() >= MIN_SAMPLES
    kept = ~far_out(walls, session if enough else None)
    tokens = tokens_of[index]
    per_s: list[float] = []
    dur: list[float] = []
    for k in np.unique(session):
        mine = session == k
        total = float(steps[mine & kept].sum())
        per_s.append(int(tokens[mine & kept].sum()) / (total / 1e3) if total > 0 else math.nan)
        n_kept = int((mine & kept).sum())
        dur.append(total * int(mine.sum()) / n_kept if n_kept else math.nan)
    return ShippedPhase(
        tuple(per_s),
        tuple(dur),
        tuple(float(x) for x in steps[kept]),
        float(np.mean(calls)),
        int((~kept).sum()),
    )


def num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def half_width(values: tuple[float, ...]) -> float:
    """The 95% t half-width of the mean of `values` (NaN under two)."""
    k = len(values)
    if k < 2:
        return math.nan
    from scipy.stats import t as student

    sd = float(np.std(values, ddof=1))
    return float(student.ppf(0.5 + CONFIDENCE / 2.0, k - 1)) * sd / math.sqrt(k)


def shipped_dict(s: ShippedPhase) -> dict[str, Any]:
    mean, half = float(np.mean(s.tokens_per_s)), half_width(s.tokens_per_s)
    lat = np.asarray(s.latency_ms)
    return {
        "tokens_per_s": {
            "mean": num(mean),
            "ci_low": num(mean - half),
            "ci_high": num(mean + half),
            "half_width": num(half),
            "confidence": CONFIDENCE,
            "sessions": list(s.tokens_per_s),
        },
        "duration_ms": {
            "mean": num(float(np.mean(s.duration_ms))),
            "sessions": list(s.duration_ms),
        },
        "latency_ms": {
            "mean": num(float(lat.mean())),
            "p50": num(float(np.percentile(lat, 50))),
            "p90": num(float(np.percentile(lat, 90))),
        },
        "call_ms": s.call_ms,
        "set_aside": s.set_aside,
    }


def source_notes(shipped: bool, phases: dict[str, ShippedPhase | None]) -> list[str]:
    """Which figures the LLM headline gives (shipped or traced), and what was set aside."""
    if not shipped:
        return [
            "tokens/s and time to first token are traced figures (ETDump's own cost "
            "included): no untraced sequences in this trace (recorded with "
            "--no-untraced or by another runner)"
        ]
    out = [
        "tokens/s and time to first token are shipped figures: the same "
        "sequences run on a second load without ETDump, taking turns with the "
        "traced ones; traced figures beside them; the buckets, latencies and "
        "per-token tables are the traced runs' (docs/llm.md)"
    ]
    aside = {n: p.set_aside for n, p in phases.items() if p is not None and p.set_aside}
    if aside:
        out.append(
            "untraced steps set aside as preempted (far above their session's "
            "own distribution): " + ", ".join(f"{n} {k}" for n, k in aside.items())
        )
    return out
