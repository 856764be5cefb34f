"""`diff`: how B's run-model time differs from A's, whether that is significant, and where it went.

Three answers, each exact or honest about its uncertainty:

1. Run model: mean and median of both sides, the change, its bootstrap interval and a verdict
   (faster / slower / no change / inconclusive and why, the CI gate's words), all from :mod:`etprof.analyzers.stats.significance`.
2. The breakdown buckets of both sides (:func:`etprof.analyzers.buckets.buckets`) and their deltas.
3. Contributors: run-model time of each side split into rows (one per operator, or per operator
   type, plus the delegate, dispatch and runtime overhead rows); rows are matched across the
   sides and their deltas sum to the run-model mean delta (see ``_contributors``).

Settings that make a comparison meaningless (different models, thread counts or warm-up) are
refused unless ``force``; then they become warnings in ``notes()`` (docs/diff.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._diff_buckets import bucket_deltas
from etprof.analyzers._diff_checks import Check, check_settings, labels, match_mode
from etprof.analyzers._diff_facts import COLUMNS as FACT_COLUMNS
from etprof.analyzers._diff_facts import facts_table
from etprof.analyzers._diff_model import structure_line
from etprof.analyzers._diff_phases import PhaseDiffs
from etprof.analyzers._diff_rows import MATCHES, contributor_table, contributors
from etprof.analyzers._diff_words import (
    contention_notes,
    interval,
    ms,
    noisy,
    one_session,
    pct,
    sessions,
    signed_ms,
)
from etprof.analyzers._outliers import aside_warnings
from etprof.analyzers.buckets import BUCKETS, BucketOptions, buckets
from etprof.analyzers.runmodel import run_model_samples
from etprof.analyzers.stats.gate import DEFAULT_MIN_SESSIONS, Gate, check_thresholds, judge
from etprof.analyzers.stats.significance import (
    NO_CHANGE,
    Comparison,
    Method,
    check_method,
    compare,
    contention_pct,
)
from etprof.errors import InputError, MismatchError
from etprof.program.llm import PHASES
from etprof.result import records
from etprof.trace.model import Trace

# What each breakdown bucket is called when it explains a change ({backend}: the delegate's
# label, "XNNPACK"; the glue and overhead classes name it only when the sides hold several).
MAIN_SHARE_PCT = 10.0  # a class named in "where it went" carries at least this share


@dataclass(frozen=True)
class DiffOptions:
    warmup: int | None = None  # None: each trace's own setting
    noise_pct: float = 1.0  # changes inside +/- this band are never called significant
    alpha: float = 0.05
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    statistic: str = "mean"
    resampling: str = "blocks"  # bootstrap over blocks of consecutive iterations (docs/diff.md)
    match: str = "auto"  # "auto" | "instruction" | "operator"
    top: int = 10  # operator contributors listed by name in the table (JSON has all)
    force: bool = False  # compare traces whose settings differ (with a warning)
    method_name: str | None = None  # the method to compare (None: the traces' only one)
    # the CI gate (etprof.analyzers.stats.gate): thresholds in percent, None for no gate
    fail_if_slower: float | None = None
    fail_if_faster: float | None = None
    min_sessions: int = DEFAULT_MIN_SESSIONS  # fewer on a side: a pass becomes inconclusive
    same_model: bool = False  # the user says both are the same model (docs/diff.md)
    phase: str | None = None  # LLM traces: compare this phase's runs ("prefill" | "decode")
    keep_outliers: bool = False  # preempted iterations count among the contributors too

    def method(self) -> Method:
        return Method(
            noise_pct=self.noise_pct,
            alpha=self.alpha,
            confidence=self.confidence,
            resamples=self.resamples,
            seed=self.seed,
            statistic=self.statistic,
            resampling=self.resampling,
        )

    def check(self) -> None:
        """Refuse unusable options before any trace is read."""
        check_method(self.method())
        if self.match not in MATCHES:
            raise InputError(f"unknown match '{self.match}'", f"use one of: {', '.join(MATCHES)}")
        if self.top < 0:
            raise InputError(f"--top {self.top} is negative", "use 0 or more")
        if not 0 <= self.seed < 2**63:
            raise InputError(
                f"--seed {self.seed} is not a seed numpy takes",
                "use a whole number from 0 (the default) up",
            )
        if self.warmup is not None and self.warmup < 0:
            raise InputError(f"--warmup {self.warmup} is negative", "use 0 or more")
        check_thresholds(self.fail_if_slower, self.fail_if_faster, self.min_sessions)
        if self.phase is not None and self.phase not in PHASES:
            raise InputError(f"unknown --phase '{self.phase}'", f"use one of: {', '.join(PHASES)}")


@dataclass(frozen=True)
class Side:
    label: str
    model: str
    trace: str
    program_sha256: str
    iterations: int
    warmup: int
    measured: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DiffResult:
    a: Side
    b: Side
    comparison: Comparison
    buckets: pd.DataFrame  # per bucket: A, B, delta, share of the delta, rank-test p
    contributors: pd.DataFrame  # every matched row; delta_ms sums to the mean delta
    match: str  # "instruction" | "operator"
    checks: tuple[Check, ...]
    forced: tuple[str, ...] = ()  # the blocking differences `force` let through
    top: int = 10
    alpha: float = 0.05
    warnings: tuple[str, ...] = field(default=())
    gate: Gate | None = None  # the CI gate's outcome, when a threshold was given
    # load time, planned and resident memory, profiler overhead, A beside B (_diff_facts)
    facts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FACT_COLUMNS))

    schema = "etprof.diff"

    @property
    def mean_delta_ms(self) -> float:
        return self.comparison.mean_delta_ms

    def headline(self) -> str:
        c = self.comparison
        ci = f"{c.method.confidence:.0%} CI {pct(c.ci_low_pct)} .. {pct(c.ci_high_pct)}"
        head = f"{self.a.label} -> {self.b.label}: "
        stat = "" if c.method.statistic == "mean" else f" in {c.method.statistic}"
        if c.verdict == NO_CHANGE:
            word, why = c.outcome()
            return (
                f"{head}{word} ({why}){stat}: {signed_ms(c.delta_ms)} "
                f"({pct(c.change_pct)}, {ci}), Mann-Whitney p={c.p_value:.2g}"
            )
        return (
            f"{head}{c.verdict} by {ms(abs(c.delta_ms))}{stat} ({pct(c.change_pct)}, {ci}),"
            f" significant (Mann-Whitney p={c.p_value:.2g})"
        )

    def run_model_table(self) -> pd.DataFrame:
        c = self.comparison
        rows = []
        for stat, a, b in (
            ("mean", c.mean_a_ms, c.mean_b_ms),
            ("median", c.median_a_ms, c.median_b_ms),
        ):
            rows.append(
                {
                    "statistic": stat,
                    "a_ms": a,
                    "b_ms": b,
                    "delta_ms": b - a,
                    "change_pct": 100.0 * (b / a - 1.0) if a else math.nan,
                }
            )
        return pd.DataFrame(rows)

    def top_contributors(self) -> pd.DataFrame:
        return contributor_table(self.contributors, self.top, calls=self.match == "operator")

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "run model": self.run_model_table(),
            "buckets": self.buckets,
            "top contributors": self.top_contributors(),
            "load and memory": self.facts,
        }

    def where_it_went(self) -> str:
        """The classes that carry the change (same direction, significant, >= 10% share)."""
        total = self.mean_delta_ms
        if total == 0:
            return ""
        rows = self.buckets[self.buckets["bucket"].isin(BUCKETS)]
        main = rows[(rows["share_pct"] >= MAIN_SHARE_PCT) & (rows["p_value"] < self.alpha)]
        main = main.sort_values("share_pct", ascending=False)
        if main.empty:
            return "no single part of the run carries a significant share of the change"
        parts = [
            f"{r['class']} {signed_ms(r['delta_ms'])} ({r['share_pct']:.0f}%)"
            for _, r in main.iterrows()
        ]
        return "where it went: " + ", ".join(parts)

    def notes(self) -> list[str]:
        c = self.comparison
        m = c.method
        out = []
        if c.verdict == NO_CHANGE and c.reason:
            out.append(f"not significant: {c.reason}")
        where = self.where_it_went()
        if where:
            out.append(where)
        if m.statistic != "mean":
            out.append(
                f"the headline compares {m.statistic}s; the buckets and contributors "
                f"split the mean delta {signed_ms(self.mean_delta_ms)}"
            )
        out.extend(f"warning: {w}" for w in self.warnings)
        if self.gate is not None:
            out.extend(f"gate: {g.sentence()}" for g in self.gate.checks)
            out.append(f"gate: {self.gate.outcome} (exit code {self.gate.exit_code})")
        known = set(self.facts["fact"]) if len(self.facts) else set()
        if "planned weights" not in known:
            out.append(
                "planned memory not compared: it needs each trace's program (metadata "
                "version 4 from `etprof run`, or the .pte)"
            )
        if "resident peak, measured iterations" not in known:
            out.append(
                "resident memory not compared: recorded by `etprof run` (metadata version 4) only"
            )
        out.append(
            f"contributors matched by {self.match}; their deltas sum to the run-model mean delta "
            f"{signed_ms(self.mean_delta_ms)} (JSON lists all {len(self.contributors)} rows)"
        )
        out.append(
            f"method: {c.n_a} vs {c.n_b} measured iterations{sessions(c)}; two-sided "
            f"Mann-Whitney U at alpha {m.alpha:g}; {m.confidence:.0%} CI of the {m.statistic}: "
            f"{interval(c)}; noise band +/-{m.band_pct:.3g}% (docs/diff.md)"
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "headline": self.headline(),
            "comparison": self.comparison.to_dict(),
            "run_model": records(self.run_model_table()),
            "buckets": records(self.buckets),
            "match": self.match,
            "contributors": records(self.contributors),
            "contributors_sum_ms": math.fsum(self.contributors["delta_ms"]),
            "checks": [dict(c.__dict__) for c in self.checks],
            "forced": list(self.forced),
            "warnings": list(self.warnings),
            "gate": None if self.gate is None else self.gate.to_dict(),
            "facts": records(self.facts),
        }


def _phase_of(trace: Trace, phase: str | None) -> Trace:
    """One LLM phase of `trace`; an LLM trace's phases are never blended into one mean."""
    if phase is not None:
        return trace.for_phase(phase)
    if len(trace.phases) > 1:
        raise InputError(
            f"{trace.source or 'a trace'} is an LLM run with {' and '.join(trace.phases)} runs, "
            "whose times differ by the prompt length, so one mean of both means nothing",
            "compare one phase: pass --phase prefill or --phase decode",
        )
    return trace


@analyzer(
    "diff",
    "compare two traces: significance of the change and where it went",
    DiffOptions,
    inputs=2,
)
def diff(a: Trace, b: Trace, options: DiffOptions) -> DiffResult | PhaseDiffs:
    """Compare trace `b` against baseline `a`: one diff (:func:`diff_traces`), or for two LLM
    traces without `options.phase`, one diff per phase (:class:`PhaseDiffs`)."""
    options.check()
    if options.phase is not None:
        return diff_traces(a, b, options)
    if options.method_name is not None:
        a, b = a.for_method(options.method_name), b.for_method(options.method_name)
    if not a.phases and not b.phases:
        return diff_traces(a, b, options)
    phases = common_phases(a, b)
    return PhaseDiffs(tuple((p, diff_traces(a, b, replace(options, phase=p))) for p in phases))


def common_phases(a: Trace, b: Trace) -> tuple[str, ...]:
    """The phases both LLM traces have (prefill before decode); refused when they differ."""
    if a.phases and b.phases and set(a.phases) == set(b.phases):
        return tuple(p for p in PHASES if p in a.phases)

    def said(t: Trace, side: str) -> str:
        what = f"an LLM run with {' and '.join(t.phases)} runs" if t.phases else "not an LLM run"
        return f"{side} ({t.source or 'a trace'}) is {what}"

    common = [p for p in PHASES if p in a.phases and p in b.phases]
    raise InputError(
        f"{said(a, 'A')}, {said(b, 'B')}: no phase-by-phase comparison",
        f"compare one phase: pass --phase {common[0]}"
        if common
        else "compare two LLM runs (`etprof run LLM.pte`), or two of other programs",
    )


def diff_traces(a: Trace, b: Trace, options: DiffOptions) -> DiffResult:
    """Compare trace `b` against baseline `a` (pure: neither trace is changed); an LLM trace
    only with `options.phase` (see :func:`diff` for both phases)."""
    options.check()
    if options.method_name is not None:
        a, b = a.for_method(options.method_name), b.for_method(options.method_name)
    a, b = _phase_of(a, options.phase), _phase_of(b, options.phase)
    a.one_method(), b.one_method()  # never a blend of methods
    checks = check_settings(a, b, options)
    blocking = [c for c in checks if c.blocking and c.status == "differs"]
    if blocking and not options.force:
        raise MismatchError(
            f"{'; '.join(c.sentence() for c in blocking)}",
            "compare like with like, or pass --force to compare anyway (with a warning)"
            + (
                "; --same-model says both are lowerings of one model"
                if any(c.setting == "model" for c in blocking)
                else ""
            )
            + (
                "; --warmup N drops the same iterations from both"
                if any(c.setting == "warm-up" for c in blocking)
                else ""
            ),
        )
    ma, mb = a.measured(options.warmup), b.measured(options.warmup)
    rm_a, rm_b = run_model_samples(ma), run_model_samples(mb)
    samples_a, samples_b = rm_a.to_numpy() / 1e6, rm_b.to_numpy() / 1e6
    shares = [t.meta.run.cpu_share_pct if t.has_meta else None for t in (a, b)]
    contended = contention_pct(*shares)
    method = replace(options.method(), contention_pct=round(contended, 2))
    comparison = compare(
        samples_a,
        samples_b,
        method,
        sessions_a=a.session_of(rm_a.index.to_numpy()),
        sessions_b=b.session_of(rm_b.index.to_numpy()),
    )
    match = match_mode(a, b, options.match)
    ba = buckets(a, BucketOptions(options.warmup, options.keep_outliers))
    bb = buckets(b, BucketOptions(options.warmup, options.keep_outliers))
    rows = contributors(ma, mb, match, ba.kept_frame(), bb.kept_frame())
    warnings = [f"{c.sentence()}; compared anyway because of --force" for c in blocking]
    warnings += [
        structure_line(c.basis, a, b) if c.setting == "model" else c.sentence()
        for c in checks
        if not c.blocking and c.status == "differs"
    ]
    warnings += [
        f"{c.setting} not checked: not recorded for "
        f"{' and '.join(s for s, v in (('A', c.a), ('B', c.b)) if v == '?')}"
        for c in checks
        if c.status == "unknown" and c.blocking
    ]
    label_a, label_b = labels(a, b)
    warnings += noisy((label_a, samples_a), (label_b, samples_b))
    warnings += contention_notes(label_a, label_b, shares, contended, method)
    warnings += one_session(comparison)
    warnings += aside_warnings(ba.set_aside, bb.set_aside)
    return DiffResult(
        a=_side(a, label_a, options, len(samples_a)),
        b=_side(b, label_b, options, len(samples_b)),
        comparison=comparison,
        buckets=bucket_deltas(ba, bb, comparison.mean_delta_ms),
        contributors=rows,
        match=match,
        checks=tuple(checks),
        forced=tuple(c.setting for c in blocking),
        top=options.top,
        alpha=options.alpha,
        warnings=tuple(warnings),
        gate=judge(
            comparison,
            slower=options.fail_if_slower,
            faster=options.fail_if_faster,
            min_sessions=options.min_sessions,
        ),
        facts=facts_table(a, b, options.warmup),
    )


def _side(t: Trace, label: str, options: DiffOptions, measured: int) -> Side:
    return Side(
        label=label,
        model=t.model,
        trace=t.source,
        program_sha256=t.meta.program.sha256,
        iterations=t.iterations,
        warmup=t.warmup if options.warmup is None else options.warmup,
        measured=measured,
    )


__all__ = [
    "Check",
    "DiffOptions",
    "DiffResult",
    "PhaseDiffs",
    "Side",
    "check_settings",
    "common_phases",
    "diff",
    "diff_traces",
]
