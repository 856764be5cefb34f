"""The LLM headline, llama-bench style: `pp{P}` and `tg{G}` tokens/s with an interval over
sessions, time to first token, per-token decode latency percentiles, how decode latency grows
with position, and the exact buckets of each phase side by side (docs/llm.md).

Every figure comes from the trace's own `Method::execute` durations of the measured runs, each
run's phase, position and token count taken from the metadata (``run.phases``):

- tokens/s of a phase, per session: the tokens its measured runs consumed / the sum of their
  durations; the headline is the mean over sessions +- the 95% Student t half-width (none for
  one session);
- time to first token: the prefill runs' total duration per measured sequence (the mean over
  sessions and sequences);
- decode latency: percentiles over every measured decode run; slope: the least-squares slope of
  decode duration on position, per 100 positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._llm_layers import (
    PhasePart,
    layer_frame,
    layer_totals,
    operator_token_frame,
)
from etprof.analyzers._llm_shipped import (
    CONFIDENCE,
    ShippedPhase,
    half_width,
    num,
    shipped_dict,
    shipped_phases,
    source_notes,
)
from etprof.analyzers.buckets import BucketOptions, Buckets, buckets
from etprof.errors import InputError
from etprof.program.llm import DECODE, PHASES, PREFILL
from etprof.result import records
from etprof.trace.model import RUN_MODEL, Trace

OPERATOR_ROWS = 12  # operator types listed per token without module paths
_BUCKET_VALUES = ("mean_ms", "share_pct")


@dataclass(frozen=True)
class LlmOptions:
    phase: str | None = None  # only this phase's rows in the buckets table

    def __post_init__(self) -> None:
        if self.phase is not None and self.phase not in PHASES:
            raise InputError(f"unknown --phase '{self.phase}'", f"use one of: {', '.join(PHASES)}")


@dataclass(frozen=True)
class PhaseStats:
    phase: str
    runs: int  # measured Execute runs of the phase, all sessions
    tokens: int  # tokens one session's measured runs of the phase consumed
    tokens_per_s: tuple[float, ...]  # one per session
    duration_ms: tuple[float, ...]  # per session: the phase's measured runs' total
    latency_ms: tuple[float, ...]  # every measured run of the phase
    positions: tuple[int, ...]  # the first position of each of those runs
    buckets: Buckets
    run_sessions: tuple[int, ...] = ()  # the session of each of those runs
    part: PhasePart | None = None  # the measured runs, for the per-token tables
    # the same steps run untraced (analyzers/_llm_shipped.py); None: not measured
    shipped: ShippedPhase | None = None

    @property
    def mean_tokens_per_s(self) -> float:
        """The traced mean tokens/s (the trace's own Method::execute durations)."""
        return float(np.mean(self.tokens_per_s)) if self.tokens_per_s else math.nan

    @property
    def half_width(self) -> float:
        """The 95% t half-width of the traced mean tokens/s over sessions (NaN for one)."""
        return half_width(self.tokens_per_s)

    @property
    def headline_tokens_per_s(self) -> tuple[float, float]:
        """(mean, 95% half-width) of the headline: shipped when measured, else traced."""
        if self.shipped is None:
            return self.mean_tokens_per_s, self.half_width
        per_s = self.shipped.tokens_per_s
        return float(np.mean(per_s)), half_width(per_s)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latency_ms, q)) if self.latency_ms else math.nan

    def fit(self) -> tuple[float, float] | None:
        """The least-squares line of latency (ms) on position: (ms per position, ms at
        position 0); None under two distinct positions."""
        x = np.asarray(self.positions, dtype=np.float64)
        if x.size < 2 or float(np.ptp(x)) == 0.0:
            return None
        slope, intercept = np.polyfit(x, np.asarray(self.latency_ms), 1)
        return float(slope), float(intercept)

    def slope_per_100(self) -> float:
        """ms of latency added per 100 positions (least squares); NaN under two positions."""
        line = self.fit()
        return math.nan if line is None else 100.0 * line[0]

    def to_dict(self) -> dict[str, Any]:
        half = self.half_width
        mean = self.mean_tokens_per_s
        doc: dict[str, Any] = {
            "tokens": self.tokens,
            "runs": self.runs,
            "tokens_per_s": {
                "mean": num(mean),
                "ci_low": num(mean - half),
                "ci_high": num(mean + half),
                "half_width": num(half),
                "confidence": CONFIDENCE,
                "sessions": list(self.tokens_per_s),
            },
            "duration_ms": {
                "mean": num(float(np.mean(self.duration_ms))),
                "sessions": list(self.duration_ms),
            },
            "latency_ms": {
                "mean": num(float(np.mean(self.latency_ms))),
                "p50": num(self.percentile(50)),
                "p90": num(self.percentile(90)),
                "p99": num(self.percentile(99)),
            },
            "buckets": records(self.buckets.table()),
        }
        if self.phase == DECODE:
            doc["latency_slope_ms_per_100_positions"] = num(self.slope_per_100())
        doc["shipped"] = None if self.shipped is None else shipped_dict(self.shipped)
        return doc


@dataclass(frozen=True)
class LlmResult:
    model: str
    prefill: int  # prompt tokens per sequence
    decode: int  # decode steps per sequence
    sessions: int
    phases: dict[str, PhaseStats]
    settings: dict[str, Any]
    only: str | None = None
    sequences: int = 1  # measured prefill+decode sequences per session
    # per token: (layer, part) rows when module paths are known (analyzers/_llm_layers.py)
    layers: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers_known: bool = False
    operators: pd.DataFrame = field(default_factory=pd.DataFrame)  # per operator type

    schema = "etprof.llm"

    @property
    def ttft_ms(self) -> float:
        """Time to first token, traced (the trace's own prefill durations)."""
        p = self.phases.get(PREFILL)
        return float(np.mean(p.duration_ms)) / max(1, self.sequences) if p is not None else math.nan

    @property
    def shipped(self) -> bool:
        """Whether the headline is the shipped one (untraced sequences were run)."""
        return bool(self.phases) and all(p.shipped is not None for p in self.phases.values())

    @property
    def headline_ttft_ms(self) -> float:
        """Time to first token of the headline: shipped when measured, else traced."""
        p = self.phases.get(PREFILL)
        if p is None or p.shipped is None:
            return self.ttft_ms
        return float(np.mean(p.shipped.duration_ms)) / max(1, self.sequences)

    def source(self) -> str:
        return "shipped (untraced sequences)" if self.shipped else "traced"

    def test_name(self, phase: str) -> str:
        """llama-bench's name of the phase's test: pp{P} or tg{G}."""
        return f"pp{self.prefill}" if phase == PREFILL else f"tg{self.decode}"

    def headline(self) -> str:
        """Shipped figures (the untraced sequences) with the traced ones beside them; traced
        alone, and labelled so, when no untraced sequence was run."""
        parts = []
        for name, p in self.phases.items():
            mean, half = p.headline_tokens_per_s
            pm = f" +- {half:.1f}" if math.isfinite(half) else ""
            traced = f" (traced {p.mean_tokens_per_s:.1f})" if p.shipped is not None else ""
            parts.append(f"{self.test_name(name)} {mean:.1f}{pm} tokens/s{traced}")
        d = self.phases.get(DECODE)
        tail = ""
        if PREFILL in self.phases:
            tail = f", time to first token {self.headline_ttft_ms:.2f} ms"
            tail += f" (traced {self.ttft_ms:.2f})" if self.shipped else ""
        if d is not None:
            p50 = (
                float(np.percentile(d.shipped.latency_ms, 50))
                if d.shipped is not None
                else d.percentile(50)
            )
            tail += f", decode p50 {p50:.3f} ms/token"
        label = "shipped" if self.shipped else "traced: no untraced sequences were run"
        return f"{self.model} ({label}): " + ", ".join(parts) + tail

    def bench(self) -> pd.DataFrame:
        rows = []
        for name, p in self.phases.items():
            mean, half = p.headline_tokens_per_s
            rows.append(
                {
                    "model": self.model,
                    "test": self.test_name(name),
                    "phase": name,
                    "tokens_per_s": mean,
                    "plus_minus": half if math.isfinite(half) else math.nan,
                    "ms_per_token": 1e3 / mean if mean else math.nan,
                    "traced_tokens_per_s": p.mean_tokens_per_s,
                    "source": "shipped" if p.shipped is not None else "traced",
                    "sessions": len(p.tokens_per_s),
                }
            )
        return pd.DataFrame(rows)

    def latency(self) -> pd.DataFrame:
        rows: list[dict[str, Any]] = []
        if PREFILL in self.phases:
            if self.shipped:
                rows.append(
                    {
                        "measure": "time to first token (prefill), shipped",
                        "ms": self.headline_ttft_ms,
                    }
                )
            rows.append({"measure": "time to first token (prefill), traced", "ms": self.ttft_ms})
        d = self.phases.get(DECODE)
        if d is not None:
            rows += [
                {"measure": f"decode latency p{q}", "ms": d.percentile(q)} for q in (50, 90, 99)
            ]
            rows.append(
                {"measure": "decode latency growth per 100 positions", "ms": d.slope_per_100()}
            )
        return pd.DataFrame(rows, columns=["measure", "ms"])

    def phase_buckets(self) -> pd.DataFrame:
        """The buckets of each phase side by side (mean ms per Execute run of the phase)."""
        out: pd.DataFrame | None = None
        for name, p in self.phases.items():
            if self.only is not None and name != self.only:
                continue
            t = p.buckets.table()
            if len(p.buckets.backends) <= 1:  # as breakdown's own table: backend only for several
                t = t.drop(columns=["backend"], errors="ignore")
            keys = [c for c in t.columns if c not in _BUCKET_VALUES]
            t = t.rename(columns={c: f"{name}_{c}" for c in _BUCKET_VALUES})
            out = t if out is None else out.merge(t, on=keys, how="left")
        return out if out is not None else pd.DataFrame()

    def per_token_tables(self) -> dict[str, pd.DataFrame]:
        """Where each phase's time goes per token: by layer and part (with module paths) and
        the portable kernels, else per operator type."""
        ops = self.operators
        if self.layers_known:
            portable = ops[ops["side"] == "portable"].drop(
                columns=[
                    "side",
                    "backend",
                    *(
                        c
                        for c in ops.columns
                        if c.endswith("calls_per_token") and not c.startswith(DECODE)
                    ),
                ]
            )
            return {
                "time per token by layer and part (µs)": self.layers,
                "portable kernels per token (µs)": portable.reset_index(drop=True),
            }
        calls = [c for c in ops.columns if c.endswith("calls_per_token")]
        return {
            "operators per token (µs; no module paths)": ops.head(OPERATOR_ROWS).drop(
                columns=["backend", *calls]
            )
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "llm": self.bench(),
            "latency": self.latency(),
            "buckets by phase (ms per run)": self.phase_buckets(),
            **self.per_token_tables(),
        }

    def notes(self) -> list[str]:
        out = []
        p = self.phases.get(PREFILL)
        per_sequence = p.runs // max(1, len(p.tokens_per_s) * self.sequences) if p else 0
        if per_sequence > 1:
            out.append(
                f"prefill ran one token per execute ({per_sequence} executes per "
                "sequence): the program takes no dynamic prompt length"
            )
        if self.sessions < 2:
            out.append("one session: no interval over sessions (run --sessions 3 or more)")
        return out + self.source_notes() + self.per_token_notes()

    def source_notes(self) -> list[str]:
        """Which figures the headline gives (shipped or traced), and what was set aside."""
        return source_notes(self.shipped, {n: p.shipped for n, p in self.phases.items()})

    def per_token_notes(self) -> list[str]:
        """Each layer's decode time per token, and the portable kernels typical of LLM
        exports with their cost per token."""
        out = []
        phase = DECODE if DECODE in self.phases else PREFILL
        totals = layer_totals(self.layers, phase) if self.layers_known else []
        if totals:
            out.append(
                f"{phase} time per token by layer: "
                + ", ".join(f"{layer} {us:.1f} µs" for layer, us in totals)
            )
        elif not self.layers_known:
            out.append(
                "no module paths in this trace (no ETRecord beside the .pte when it was "
                "recorded): time per token is per operator type; record with the "
                "ETRecord (`etprof export` writes it) for per-layer figures"
            )
        ops = self.operators
        if "typical" in ops.columns:
            typical = ops[ops["typical"] != ""]
            cols = [f"{p}_us_per_token" for p in self.phases]
            for _, row in typical.iterrows():
                cost = ", ".join(
                    f"{p} {float(row[c]):.1f} µs/token"
                    for p, c in zip(self.phases, cols, strict=False)
                )
                out.append(f"portable {row['op']} ({row['typical']}): {cost}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "settings": self.settings,
            "prefill": self.prefill,
            "decode": self.decode,
            "sessions": self.sessions,
            "time_to_first_token_ms": self.ttft_ms if math.isfinite(self.ttft_ms) else None,
            "headline": {
                "source": "shipped" if self.shipped else "traced",
                "time_to_first_token_ms": num(self.headline_ttft_ms),
                "tokens_per_s": {
                    n: num(p.headline_tokens_per_s[0]) for n, p in self.phases.items()
                },
            },
            "phases": {n: p.to_dict() for n, p in self.phases.items()},
            "layers": {"known": self.layers_known, "rows": records(self.layers)},
            "operators_per_token": records(self.operators),
        }


def phase_stats(trace: Trace, phase: str) -> PhaseStats:
    """One phase's figures from the measured Execute runs of `trace` (an LLM trace)."""
    part = trace.for_phase(phase)
    measured = part.measured()
    rm = measured.of_kind(RUN_MODEL)
    rm = rm[rm["iteration"].to_numpy() >= 0]
    it = rm["iteration"].to_numpy()
    steps = part.meta.run.phases
    where = part.position_in_session(it)
    tokens = np.array([steps[i].tokens for i in where], dtype=np.int64)
    positions = tuple(int(steps[i].position) for i in where)
    ns = rm["duration_ns"].to_numpy(np.int64)
    session = part.session_of(it)
    per_s, dur = [], []
    for k in range(part.sessions):
        mine = session == k
        total = int(ns[mine].sum())
        dur.append(total / 1e6)
        per_s.append(int(tokens[mine].sum()) / (total / 1e9) if total else math.nan)
    return PhaseStats(
        phase=phase,
        runs=int(ns.size),
        tokens=int(tokens.sum()) // max(1, part.sessions),
        tokens_per_s=tuple(per_s),
        duration_ms=tuple(dur),
        latency_ms=tuple(float(x) / 1e6 for x in ns),
        positions=positions,
        buckets=buckets(part, BucketOptions()),
        run_sessions=tuple(int(k) for k in session),
        part=PhasePart(measured, int(ns.size), int(tokens.sum())),
    )


def is_llm(trace: Trace) -> bool:
    return bool(trace.phases)


@analyzer(
    "llm",
    "LLM prefill/decode tokens/s (llama-bench style), time to first token, decode "
    "latency and each phase's buckets",
    LlmOptions,
)
def llm(trace: Trace, options: LlmOptions) -> LlmResult:
    if not trace.phases:
        raise InputError(
            f"{trace.source or 'the trace'} is not an LLM run (its metadata has no run.phases)",
            "record an LLM program with `etprof run LLM.pte --prefill P --decode G`",
        )
    names = tuple(p for p in PHASES if p in trace.phases)
    shipped = shipped_phases(trace, names)
    phases = {p: replace(phase_stats(trace, p), shipped=shipped.get(p)) for p in names}
    pre, dec = phases.get(PREFILL), phases.get(DECODE)
    settings = {
        "trace": trace.source,
        "program": trace.meta.program.path or None,
        "inputs": trace.meta.run.inputs,
        "threads": trace.meta.run.threads,
        "warmup_runs": trace.warmup,
    }
    parts = {n: p.part for n, p in phases.items() if p.part is not None}
    layers, known = layer_frame(parts)
    steps = trace.meta.run.phases  # one session's runs: every sequence starts at position 0
    sequences = max(1, sum(1 for s in steps[trace.warmup :] if s.position == 0))
    settings["sequences_per_session"] = sequences
    return LlmResult(
        model=trace.model,
        prefill=pre.tokens // sequences if pre else 0,
        decode=dec.tokens // sequences if dec else 0,
        sessions=trace.sessions,
        sequences=sequences,
        phases=phases,
        settings=settings,
        only=options.phase,
        layers=layers,
        layers_known=known,
        operators=operator_token_frame(parts),
    )
