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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._diff_facts import COLUMNS as FACT_COLUMNS
from etprof.analyzers._diff_facts import facts_table
from etprof.analyzers._diff_model import same_model, structure_line
from etprof.analyzers._diff_phases import PhaseDiffs
from etprof.analyzers._diff_rows import MATCHES, contributor_table, contributors, same_program
from etprof.analyzers._outliers import aside_warnings
from etprof.analyzers.buckets import BUCKETS, BucketOptions, Buckets, buckets
from etprof.analyzers.runmodel import run_model_samples
from etprof.analyzers.stats.gate import DEFAULT_MIN_SESSIONS, Gate, check_thresholds, judge
from etprof.analyzers.stats.significance import (
    IDLE_SHARE_PCT,
    NO_CHANGE,
    Comparison,
    Method,
    block_length,
    check_method,
    compare,
    contention_pct,
    rank_tests,
)
from etprof.errors import InputError, MismatchError
from etprof.program.llm import PHASES
from etprof.result import records
from etprof.trace.model import Trace

# What each breakdown bucket is called when it explains a change ({backend}: the delegate's
# label, "XNNPACK"; the glue and overhead classes name it only when the sides hold several).
CLASSES = {
    "delegate_compute": "{backend} compute",
    "delegate_glue": "partition-boundary glue",
    "delegate_unresolved": "operators below timer resolution",
    "delegate_overhead": "delegate overhead",
    "portable_kernels": "portable fallback",
    "dispatch_overhead": "dispatch overhead",
    "runtime_overhead": "runtime overhead",
}
MAIN_SHARE_PCT = 10.0  # a class named in "where it went" carries at least this share
CONTENTION_NOTE_PCT = 0.1  # any contention that widened the band is worth saying
NOISY_CV_PCT = 5.0  # run-model CV above which a side is flagged as measured on a busy machine


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
class Check:
    """One setting compared between the sides, as pyperf checks metadata."""

    setting: str
    a: str
    b: str
    status: str  # "same" | "differs" | "unknown"
    blocking: bool  # a difference refuses the diff unless forced
    basis: str = ""  # what the status was judged on ("they share 7% of their module paths")

    def sentence(self) -> str:
        why = f" ({self.basis})" if self.basis else ""
        return f"{self.setting} differs: {self.a} (A) vs {self.b} (B){why}"


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
        ci = f"{c.method.confidence:.0%} CI {_pct(c.ci_low_pct)} .. {_pct(c.ci_high_pct)}"
        head = f"{self.a.label} -> {self.b.label}: "
        stat = "" if c.method.statistic == "mean" else f" in {c.method.statistic}"
        if c.verdict == NO_CHANGE:
            word, why = c.outcome()
            return (
                f"{head}{word} ({why}){stat}: {_signed_ms(c.delta_ms)} "
                f"({_pct(c.change_pct)}, {ci}), Mann-Whitney p={c.p_value:.2g}"
            )
        return (
            f"{head}{c.verdict} by {_ms(abs(c.delta_ms))}{stat} ({_pct(c.change_pct)}, {ci}),"
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
            f"{r['class']} {_signed_ms(r['delta_ms'])} ({r['share_pct']:.0f}%)"
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
                f"split the mean delta {_signed_ms(self.mean_delta_ms)}"
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
            f"{_signed_ms(self.mean_delta_ms)} (JSON lists all {len(self.contributors)} rows)"
        )
        out.append(
            f"method: {c.n_a} vs {c.n_b} measured iterations{_sessions(c)}; two-sided "
            f"Mann-Whitney U at alpha {m.alpha:g}; {m.confidence:.0%} CI of the {m.statistic}: "
            f"{_interval(c)}; noise band +/-{m.band_pct:.3g}% (docs/diff.md)"
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
    match = _match_mode(a, b, options.match)
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
    label_a, label_b = _labels(a, b)
    warnings += _noisy((label_a, samples_a), (label_b, samples_b))
    warnings += _contended(label_a, label_b, shares, contended, method)
    warnings += _one_session(comparison)
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


def bucket_class(bucket: str, backend: str, several: bool) -> str:
    """The class a bucket row explains a change as ("XNNPACK compute", "portable fallback")."""
    name = CLASSES.get(bucket, "run model (total)")
    if bucket == "delegate_compute":
        return name.format(backend=backend)
    if several and bucket in ("delegate_glue", "delegate_unresolved", "delegate_overhead"):
        return f"{backend} {name}"
    return name


def bucket_deltas(ba: Buckets, bb: Buckets, total_ms: float) -> pd.DataFrame:
    """Both sides' buckets (one row per backend for the delegate ones), their deltas and each
    delta's share of the run-model delta."""

    def rows(b: Buckets) -> dict[tuple[str, str], tuple[str, pd.Series]]:
        return {
            (bucket, bid): (bid and b.backends[bid].label, ns) for bucket, bid, _, ns in b.rows()
        }

    ra, rb = rows(ba), rows(bb)
    keys = list(dict.fromkeys([*ra, *rb]))
    several = len({bid for _, bid in keys if bid}) > 1

    def matrix(b: Buckets, r: dict[tuple[str, str], tuple[str, pd.Series]]) -> np.ndarray:
        cols = [b.per_iteration["run_model"].to_numpy(float)]
        for k in keys:
            cols.append(r[k][1].to_numpy(float) if k in r else np.zeros(len(b.per_iteration)))
        return np.column_stack(cols)

    p = rank_tests(matrix(ba, ra), matrix(bb, rb))
    out = []
    for i, (bucket, bid) in enumerate(keys, start=1):
        av = float(ra[(bucket, bid)][1].mean()) / 1e6 if (bucket, bid) in ra else 0.0
        bv = float(rb[(bucket, bid)][1].mean()) / 1e6 if (bucket, bid) in rb else 0.0
        name = (ra.get((bucket, bid)) or rb[(bucket, bid)])[0]
        out.append(
            {
                "bucket": bucket,
                "backend": bid,
                "class": bucket_class(bucket, name, several),
                "a_ms": av,
                "b_ms": bv,
                "delta_ms": bv - av,
                "share_pct": 100.0 * (bv - av) / total_ms if total_ms else math.nan,
                "p_value": float(p[i]),
            }
        )
    av, bv = ba.run_model_ms, bb.run_model_ms
    out.append(
        {
            "bucket": "run_model",
            "backend": "",
            "class": "run model (total)",
            "a_ms": av,
            "b_ms": bv,
            "delta_ms": bv - av,
            "share_pct": 100.0 * (bv - av) / total_ms if total_ms else math.nan,
            "p_value": float(p[0]),
        }
    )
    return pd.DataFrame(out)  # the total last, as in the buckets table


def check_settings(a: Trace, b: Trace, options: DiffOptions) -> list[Check]:
    """Compare the settings that must agree (blocking) and those worth a warning."""
    checks = [_model_check(a, b, options)]
    ta = a.meta.run.threads if a.has_meta else None
    tb = b.meta.run.threads if b.has_meta else None
    checks.append(_check("threads", ta, tb, blocking=True))
    if options.warmup is None:
        wa = a.meta.run.warmup if a.has_meta else None
        wb = b.meta.run.warmup if b.has_meta else None
        checks.append(_check("warm-up", wa, wb, blocking=True))
    ha = a.meta.host.cpu if a.has_meta else None
    hb = b.meta.host.cpu if b.has_meta else None
    checks.append(_check("host CPU", ha or None, hb or None, blocking=False))
    for pkg in ("executorch",):
        va = a.meta.versions.get(pkg) if a.has_meta else None
        vb = b.meta.versions.get(pkg) if b.has_meta else None
        checks.append(_check(f"{pkg} version", va, vb, blocking=False))
    return checks


def _model_check(a: Trace, b: Trace, options: DiffOptions) -> Check:
    """Same model by what the user says or the programs share (analyzers/_diff_model.py);
    blocking only under a CI gate (--fail-if-*), which would judge unrelated programs."""
    status, basis = same_model(a, b, options.same_model)
    gate = options.fail_if_slower is not None or options.fail_if_faster is not None
    return Check("model", a.model, b.model, status, gate, basis)


def _check(setting: str, a: object, b: object, *, blocking: bool) -> Check:
    status = "unknown" if a is None or b is None else "same" if a == b else "differs"
    return Check(
        setting, "?" if a is None else str(a), "?" if b is None else str(b), status, blocking
    )


def _match_mode(a: Trace, b: Trace, wanted: str) -> str:
    same = same_program(a, b)
    if wanted == "instruction" and not same:
        raise InputError(
            "--match instruction needs two traces of the same program (same "
            "sha256 or instruction table)",
            "use --match operator or auto",
        )
    if wanted == "auto":
        return "instruction" if same else "operator"
    return wanted


def _labels(a: Trace, b: Trace) -> tuple[str, str]:
    if a.model != b.model:
        return a.model, b.model
    sa, sb = Path(a.source).name, Path(b.source).name
    if sa and sb and sa != sb:
        return sa, sb
    if a.source and Path(a.source).resolve() != Path(b.source).resolve():
        return a.source, b.source
    return f"{a.model} (A)", f"{b.model} (B)"


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


def _noisy(*sides: tuple[str, Any]) -> list[str]:
    """A busy machine shifts whole runs, which one pair of runs cannot tell from a change."""
    busy = []
    for label, samples in sides:
        mean = float(samples.mean())
        cv = 100.0 * float(samples.std(ddof=1)) / mean if len(samples) > 1 and mean else 0.0
        if cv > NOISY_CV_PCT:
            busy.append(f"{label} (CV {cv:.0f}%)")
    if not busy:
        return []
    return [
        (
            f"run-model times vary from iteration to iteration in {' and '.join(busy)}: the "
            "machine was busy, and runs on a busy machine differ from each other more than "
            "their iterations do; re-run both on a quiet machine before trusting the verdict"
        )
    ]


def _resampled(m: Method, n: int) -> str:
    return (
        f"blocks of {block_length(n)} consecutive iterations"
        if m.resampling == "blocks"
        else "single iterations"
    )


def _sessions(c: Comparison) -> str:
    return f" in {c.sessions_a} vs {c.sessions_b} sessions" if c.by_session else ""


def _interval(c: Comparison) -> str:
    m = c.method
    boot = (
        f"percentile bootstrap over {_resampled(m, c.n_a)} ({m.resamples} resamples, seed {m.seed})"
    )
    if not c.by_session:
        return boot
    return (
        f"the hull of a {boot} and a Welch t interval over the session {m.statistic}s "
        f"({_pct(c.session_ci_low_pct)} .. {_pct(c.session_ci_high_pct)})"
    )


def _one_session(c: Comparison) -> list[str]:
    """Without sessions the interval knows nothing of run-to-run variation."""
    if c.by_session or c.verdict == NO_CHANGE:
        return []
    return [
        (
            "both traces are one session each, so the interval covers iteration-to-iteration "
            "noise only; two runs of one program can differ by more than that (docs/diff.md). "
            "Record with `etprof run --sessions 5` (auto does so for fast programs) to account "
            "for it"
        )
    ]


def _contended(
    label_a: str, label_b: str, shares: list[float | None], contended: float, method: Method
) -> list[str]:
    """Another process took the runner's core for part of the measured time."""
    if contended < CONTENTION_NOTE_PCT:
        return []
    who = [
        f"{label} had its CPU {share:.0f}% of the measured time"
        for label, share in zip((label_a, label_b), shares, strict=False)
        if share is not None and share < IDLE_SHARE_PCT
    ]
    return [
        (
            f"another process shared the runner's core: {' and '.join(who)}, which can "
            f"stretch its times by {contended:.0f}%; the noise band is widened to "
            f"+/-{method.band_pct:.3g}% (re-run on a quiet machine for a tighter answer)"
        )
    ]


def _ms(value: float) -> str:
    v = abs(value)
    digits = 0 if v >= 100 else 1 if v >= 10 else 2 if v >= 1 else 3
    return f"{value:.{digits}f} ms"


def _signed_ms(value: float) -> str:
    return ("+" if value >= 0 else "-") + _ms(abs(value))


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.1f}%"


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
