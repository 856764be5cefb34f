"""The HTML report's content: one or two traces analysed, and their diff, as one composite result.

`build_report` only gathers what the analyzers compute (breakdown, fallback explanation,
iterations, diff); :mod:`etprof.render.html` turns it into a page. With two traces, A's fallback
explanation is given B as its comparison, so its fix line carries B's measured run model (B is
the trace a user typically made by applying the fix). B's own explanation gets no comparison: A
is usually the worse lowering, and "measured: 21 ms -> 29 ms" would read as a fix that hurts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from etprof.errors import EtprofError, InputError

if TYPE_CHECKING:  # pandas and the analyzers load only when a report is built
    import pandas as pd

    from etprof.analyzers.breakdown import Breakdown
    from etprof.analyzers.diff import DiffResult, PhaseDiffs
    from etprof.analyzers.iterations import IterationTable
    from etprof.trace.model import Trace

DEFAULT_TOP = 10


@dataclass(frozen=True)
class ReportOptions:
    warmup: int | None = None  # None: each trace's own setting
    top: int = DEFAULT_TOP  # operator types charted per trace
    force: bool = False  # diff traces whose settings differ (with a warning)
    method: str | None = None  # the method to report (None: the first of the trace's methods)
    phase: str | None = None  # two LLM traces: the phase the comparison compares

    def check(self) -> None:
        """Refuse unusable options before any trace is read."""
        if self.top < 1:
            raise InputError(f"--top {self.top} must be at least 1", "use e.g. --top 10")
        if self.warmup is not None and self.warmup < 0:
            raise InputError(f"--warmup {self.warmup} is negative", "use 0 or more")
        from etprof.program.llm import PHASES

        if self.phase is not None and self.phase not in PHASES:
            raise InputError(f"unknown --phase '{self.phase}'", f"use one of: {', '.join(PHASES)}")


@dataclass(frozen=True)
class SideReport:
    """Everything the report shows about one trace."""

    label: str  # "A" / "B", or "" for a single trace
    breakdown: Breakdown
    fallback: Any = None  # FallbackReport, or None when it could not run (see fallback_error)
    fallback_error: str = ""

    @property
    def model(self) -> str:
        return str(self.breakdown.stats.model)

    @property
    def iterations(self) -> IterationTable:
        return self.breakdown.iterations

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "breakdown": self.breakdown.to_dict(),
            "fallback": None if self.fallback is None else self.fallback.to_dict(),
            "fallback_error": self.fallback_error or None,
        }


@dataclass(frozen=True)
class Report:
    sides: tuple[SideReport, ...]  # one, or two (A then B)
    diff: DiffResult | None = None
    top: int = DEFAULT_TOP
    version: str = field(default="")  # etprof's version, shown in the page footer
    phase: str | None = None  # the LLM phase the comparison compares (--phase)
    # two LLM traces without --phase: one comparison per phase, prefill then decode (`diff`
    # is then None)
    phase_diffs: PhaseDiffs | None = None

    schema = "etprof.report"

    @property
    def comparisons(self) -> tuple[tuple[str | None, DiffResult], ...]:
        """The diffs the page shows, each with its LLM phase (None: not one phase's)."""
        if self.phase_diffs is not None:  # its sections are analyzers.diff's DiffResults
            return tuple((p, cast("DiffResult", d)) for p, d in self.phase_diffs.sections)
        return () if self.diff is None else ((self.phase, self.diff),)

    @property
    def title(self) -> str:
        if len(self.sides) == 1:
            return f"etprof report: {self.sides[0].model}"
        return f"etprof report: {self.sides[0].model} vs {self.sides[1].model}"

    def headline(self) -> str:
        if self.phase_diffs is not None:
            return self.phase_diffs.headline()
        if self.diff is not None:
            return str(self.diff.headline())
        b = self.sides[0].breakdown
        if b.llm is not None:  # an LLM run: its tokens/s, not a mean over prefill and decode
            return str(b.llm.headline())
        own = getattr(b, "headline", None)  # the breakdown's own one-line answer, where it has one
        if own is not None:
            return str(own())
        total = b.buckets.run_model_ms
        parts = [
            (f"in {b.buckets.delegate_label()}", b.buckets.delegated_ms()),
            ("in portable kernels and their dispatch", b.buckets.portable_ms()),
        ]
        shares = (
            ", ".join(f"{100 * ms / total:.1f}% {where}" for where, ms in parts)
            if total
            else "no time recorded"
        )
        return (
            f"{b.stats.model}: run model {b.stats.mean_ms:.3f} ms (mean of {b.stats.n} "
            f"measured iterations); {shares}"
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for side in self.sides:
            prefix = f"{side.label}: " if side.label else ""
            out[f"{prefix}run"] = side.breakdown.header()
            if side.breakdown.llm is not None:
                out.update({f"{prefix}{k}": v for k, v in side.breakdown.llm.tables().items()})
            out[f"{prefix}buckets"] = side.breakdown.buckets.table()
            out[f"{prefix}top operators"] = side.breakdown.operators.frame.head(self.top)
        compared = self.phase_diffs if self.phase_diffs is not None else self.diff
        if compared is not None:
            out.update({f"diff: {k}": v for k, v in compared.tables().items()})
        return out

    def notes(self) -> list[str]:
        out: list[str] = []
        for side in self.sides:
            out += side.breakdown.notes()
        compared = self.phase_diffs if self.phase_diffs is not None else self.diff
        if compared is not None:
            out += compared.notes()
        return list(dict.fromkeys(out))

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "sides": [s.to_dict() for s in self.sides],
            "diff": {"phases": {p: d.to_dict() for p, d in self.phase_diffs.sections}}
            if self.phase_diffs is not None
            else None
            if self.diff is None
            else self.diff.to_dict(),
        }


def build_report(
    a: Trace, b: Trace | None = None, options: ReportOptions | None = None, *, version: str = ""
) -> Report:
    """Analyse `a` (and `b`, compared against `a`) for the HTML report."""
    from etprof.analyzers.breakdown import BreakdownOptions, method_breakdown

    options = options or ReportOptions()
    options.check()
    a = _one_method(a, options.method)
    b = None if b is None else _one_method(b, options.method or a.methods[0] if a.methods else None)
    diff = None
    phase_diffs = None
    if b is not None:
        from etprof.analyzers.diff import DiffOptions, PhaseDiffs
        from etprof.analyzers.diff import diff as diff_of

        # first: it refuses mismatched traces before the slower per-trace analyses run; two
        # LLM traces without a phase give one diff per phase
        compared = diff_of(
            a,
            b,
            DiffOptions(
                warmup=options.warmup, top=options.top, force=options.force, phase=options.phase
            ),
        )
        if isinstance(compared, PhaseDiffs):
            phase_diffs = compared
        else:
            diff = compared
    sides = []
    for label, trace, other in (("A", a, b), ("B", b, None)):
        if trace is None:
            break
        result = method_breakdown(trace, BreakdownOptions(warmup=options.warmup, top=options.top))
        fallback, why = result.fallback, result.fallback_error
        if other is not None and fallback is not None:  # again, quoting B's measured figures
            fallback, why = _fallback(trace, other, options.warmup, fallback)
        sides.append(
            SideReport(
                label=label if b is not None else "",
                breakdown=result,
                fallback=fallback,
                fallback_error=why,
            )
        )
    return Report(
        sides=tuple(sides),
        diff=diff,
        top=options.top,
        version=version,
        phase=options.phase if diff is not None else None,
        phase_diffs=phase_diffs,
    )


def _one_method(trace: Trace, method: str | None) -> Trace:
    """The trace of `method`, or of the trace's first method when it holds several."""
    if method is not None:
        return trace.for_method(method)
    return trace.for_method(trace.methods[0]) if len(trace.methods) > 1 else trace


def _fallback(trace: Trace, compare: Trace, warmup: int | None, alone: Any) -> tuple[Any, str]:
    """`trace`'s fallback explanation with `compare`'s measured figures; `alone` (the one
    without them) when the comparison trace cannot be explained (e.g. it has no operators)."""
    from etprof.analyzers.fallback import FallbackOptions, explain_fallbacks

    if warmup is not None:
        compare = compare.with_warmup(warmup)
    try:
        return explain_fallbacks(trace, FallbackOptions(warmup=warmup, compare=compare)), ""
    except EtprofError:
        return alone, ""
