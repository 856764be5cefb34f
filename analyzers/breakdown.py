"""`etprof breakdown`: where run-model time goes, as one composite result.

It gathers the run-model statistics, the exact bucket attribution (analyzers/buckets.py), the
operator, delegate-block, module and iteration tables, and, when the fallback analyzer is
installed (analyzers/fallback.py), its explanation of why operators ran on portable kernels.
``by`` picks the detailed table a table/CSV rendering shows; JSON always carries everything
(schema "etprof.breakdown", documented in docs/attribution.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._backend_split import backend_parts, split_notes
from etprof.analyzers._bucket_parts import backend_notes
from etprof.analyzers._cost_rows import Costs, costs
from etprof.analyzers.blocks import BlockTable, block_tables, negative_overhead_notes, with_opaque
from etprof.analyzers.buckets import PORTABLE, Buckets, measured_buckets
from etprof.analyzers.iterations import (
    IterationTable,
    in_session_order,
    iteration_frame,
    stability,
    stability_notes,
)
from etprof.analyzers.modules import ModuleTable, module_table
from etprof.analyzers.operators import OperatorTable, operator_frame
from etprof.analyzers.runmodel import RunModelStats, run_model_samples
from etprof.analyzers.shipped import Shipped, ShippedOptions, shipped
from etprof.errors import EtprofError, InputError
from etprof.program.llm import PHASES
from etprof.result import records
from etprof.trace.model import Trace
from etprof.units import ms_text

BY = ("op", "block", "module", "iteration")
DEFAULT_TOP = 10
# The table CSV writes for each --by (the default is "op").
CSV_TABLE = {
    "op": "operators",
    "block": "block operators",
    "module": "modules",
    "iteration": "iterations",
}
_BLOCK_SUMMARY = [
    "instruction",
    "ops",
    "main_ops",
    "call_ms",
    "overhead_ms",
    "below_res_ms",
    "share_pct",
]
_BLOCK_DETAIL = [
    "instruction",
    "ops",
    "module",
    "call_ms",
    "compute_ms",
    "glue_ms",
    "overhead_ms",
    "below_res_ms",
    "share_pct",
]


@dataclass(frozen=True)
class BreakdownOptions:
    warmup: int | None = None  # None: the trace's own setting
    top: int | None = None  # operator rows: 10 in the default view, all with by="op"
    by: str | None = None  # None: the default view; else one of BY
    # another lowering of the same model: the fallback fix then quotes its measured time
    compare: Trace | None = None
    method: str | None = None  # None: each method of the trace in turn
    # an LLM trace: attribute this phase's runs only ("prefill" | "decode"); None: all runs,
    # with each phase's buckets side by side
    phase: str | None = None
    keep_outliers: bool = False  # preempted iterations count in the shares too

    def __post_init__(self) -> None:
        if self.phase is not None and self.phase not in PHASES:
            raise InputError(f"unknown --phase '{self.phase}'", f"use one of: {', '.join(PHASES)}")
        if self.by is not None and self.by not in BY:
            raise InputError(f"unknown --by '{self.by}'", f"use one of: {', '.join(BY)}")
        if self.top is not None and self.top < 1:
            raise InputError(f"--top {self.top} must be at least 1", "use e.g. --top 10")
        if self.warmup is not None and self.warmup < 0:
            raise InputError(f"--warmup {self.warmup} is negative", "use 0 or more")


@dataclass(frozen=True)
class Breakdown:
    settings: dict[str, Any]
    stats: RunModelStats
    buckets: Buckets
    operators: OperatorTable
    blocks: BlockTable
    modules: ModuleTable
    iterations: IterationTable
    fallback: Any = None  # FallbackReport when analyzers/fallback.py is installed
    fallback_error: str = ""  # why the explainer could not run on this trace
    by: str | None = None
    top: int | None = None
    llm: Any = None  # LlmResult (analyzers/llm.py) of an LLM trace: both phases side by side
    phase: str | None = None  # the one phase attributed (--phase)
    costs: Costs | None = None  # load, memory, profiler overhead
    shipped: Shipped | None = None  # ETDump's own cost taken out (analyzers/shipped.py)

    schema = "etprof.breakdown"

    def headline(self) -> str:
        """One line: the mean run model and where it went (shares: docs/attribution.md)."""
        b = self.buckets
        means, total = b.share_means_ms()

        def pct(ms: float) -> str:
            return f"{100.0 * ms / total:.1f}%" if total else "-"

        parts = backend_parts(b, pct) or ["no delegate"]
        method = f" {self.settings['method']}" if self.settings.get("methods", 1) > 1 else ""
        shipped = self.shipped.lead() if self.shipped is not None else ""
        return (
            f"{self.stats.model}{method}: {shipped}{ms_text(self.stats.mean_ms)}: "
            f"{', '.join(parts)}, portable {pct(float(means[list(PORTABLE)].sum()))}, "
            f"runtime {pct(float(means['runtime_overhead']))}"
        )

    def _iterations(self) -> str:
        sessions = int(self.settings.get("sessions") or 1)
        recorded = (
            f"{sessions} sessions x {self.stats.iterations // sessions}"
            if sessions > 1
            else str(self.stats.iterations)
        )
        each = " of each" if sessions > 1 else ""
        return (
            f"{recorded} recorded, first {self.stats.warmup}{each} dropped as warm-up "
            f"({self.settings['warmup_from']}), {self.stats.n} measured"
        )

    def header(self) -> pd.DataFrame:
        s = self.stats.summary()
        st = self.iterations.stability
        rows = [
            ("model", self.stats.model),
            *(
                [("method", str(self.settings["method"]))]
                if self.settings.get("methods", 1) > 1
                else []
            ),
            ("trace", self.settings["trace"]),
            ("program", self.settings["program"] or "(unknown: no metadata, no --pte)"),
            ("iterations", self._iterations()),
            ("threads", str(self.settings["threads"] or "unknown")),
            *([("phase", f"{self.phase} runs only (--phase)")] if self.phase else []),
            ("run model mean", ms_text(s["mean_ms"])),
            (
                "run model median",
                (
                    f"{ms_text(s['median_ms'])} (p10 {ms_text(s['p10_ms'])}, "
                    f"p90 {ms_text(s['p90_ms'])}, CV {st.cv_pct:.1f}%)"
                ),
            ),
            *(self.costs.rows() if self.costs is not None else ()),
        ]
        return pd.DataFrame(rows, columns=["field", "value"])

    def operator_rows(self, default_view: bool) -> pd.DataFrame:
        """The operators a table shows: `side` names the backend ("XNNPACK") or "portable"
        (JSON keeps side "delegated" and the backend id)."""
        limit = self.top if self.top is not None else (DEFAULT_TOP if default_view else None)
        frame = self.operators.frame
        frame = frame if limit is None else frame.head(limit).reset_index(drop=True)
        backends = self.buckets.backends
        side = [
            backends[b].label if s == "delegated" and b in backends else str(s)
            for s, b in zip(frame["side"], frame["backend"], strict=False)
        ]
        shown = frame.assign(side=side).drop(columns=["backend"])
        # the default view's operators stay narrow: below_res is in --by op, CSV and JSON
        return shown.drop(columns=["below_res"], errors="ignore") if default_view else shown

    def bucket_rows(self) -> pd.DataFrame:
        """The buckets a table shows: the backend column only when there are several."""
        table = self.buckets.table()
        return table if len(self.buckets.backends) > 1 else table.drop(columns=["backend"])

    def block_summary(self) -> pd.DataFrame:
        """The default view's blocks: the most expensive first, as many as operator rows."""
        limit = self.top if self.top is not None else DEFAULT_TOP
        frame = self.blocks.blocks.sort_values(["call_ms", "instruction"], ascending=[False, True])
        return frame[with_opaque(_BLOCK_SUMMARY, frame)].head(limit).reset_index(drop=True)

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"run": self.header()}
        if self.by is None:
            out["buckets"] = self.bucket_rows()
            out.update(self.shipped.tables(len(self.buckets.backends) > 1) if self.shipped else {})
            if self.llm is not None:
                out["llm"] = self.llm.bench()
                out["buckets by phase (ms per run)"] = self.llm.phase_buckets()
                out.update(self.llm.per_token_tables())
            out["top operators"] = self.operator_rows(default_view=True)
            out["delegate blocks"] = self.block_summary()
        elif self.by == "op":
            out["operators"] = self.operator_rows(default_view=False)
        elif self.by == "block":
            out["delegate blocks"] = self.blocks.blocks[
                with_opaque(_BLOCK_DETAIL, self.blocks.blocks)
            ]
            out["block operators"] = self.blocks.operators
        elif self.by == "module":
            out["modules"] = self.modules.frame
        else:
            out["iterations"] = self.iterations.frame
        return out

    def notes(self) -> list[str]:
        st = self.iterations.stability
        frame = self.iterations.frame
        notes = [
            n
            for n in stability_notes(st, frame, self.stats.warmup)
            if n.startswith("warning") or self.by in (None, "iteration")
        ]
        if self.by is None:
            notes += backend_notes(self.buckets.backends, self.buckets.by_backend)
            notes += self.buckets.resolution_notes() + self.buckets.outlier_notes()
            notes += self.shipped.notes() if self.shipped is not None else []
        if self.by in (None, "block"):
            notes += negative_overhead_notes(self.blocks.negative, self.stats.n)
            notes += split_notes(self.blocks.blocks, self.buckets)
        hidden = len(self.blocks.blocks) - len(self.block_summary())
        if self.by is None and hidden > 0:
            notes.append(
                f"{hidden} more delegate block(s) not shown: `--by block` lists all "
                f"{len(self.blocks.blocks)} with their operators"
            )
        if self.by == "module":
            notes += self.modules.notes()
        if self.by is None and self.costs is not None:
            notes += self.costs.notes()
        if self.by is None and self.llm is not None:
            notes += self.llm.source_notes() + self.llm.per_token_notes()
        if self.by is None:
            if self.fallback is not None:
                notes += list(self.fallback.notes())
            elif self.fallback_error:
                notes.append(f"fallback explanation unavailable: {self.fallback_error}")
        return notes

    def to_dict(self) -> dict[str, Any]:
        per_iter = self.buckets.per_iteration.reset_index()
        return {
            "model": self.stats.model,
            "method": self.settings["method"],
            "settings": self.settings,
            "run_model": self.stats.to_dict(),
            "buckets": records(self.buckets.table()),
            "buckets_per_iteration_ns": records(per_iter),
            "resolution": records(self.buckets.resolution()),
            "operators": records(self.operators.frame),
            "blocks": records(self.blocks.blocks),
            "block_operators": records(self.blocks.operators),
            "modules": {
                "known": self.modules.known,
                "rows": records(self.modules.frame),
                **self.modules.placement_dict(),
            },
            "iterations": {
                "stability": self.iterations.stability.to_dict(),
                "rows": records(self.iterations.frame),
            },
            "fallback": None if self.fallback is None else self.fallback.to_dict(),
            "phase": self.phase,
            "phases": None if self.llm is None else self.llm.to_dict()["phases"],
            **(
                {}
                if self.llm is None
                else {k: self.llm.to_dict()[k] for k in ("layers", "operators_per_token")}
            ),
            "llm_headline": None if self.llm is None else self.llm.to_dict()["headline"],
            **(self.costs.to_dict() if self.costs is not None else {}),
            "shipped": None if self.shipped is None else self.shipped.to_dict(),
            "notes": self.all_notes(),
        }

    def all_notes(self) -> list[str]:
        """The notes of every view, once each (what the JSON document carries)."""
        seen: dict[str, None] = {}
        for by in (None, "block", "module", "iteration"):
            seen.update(dict.fromkeys(replace(self, by=by).notes()))
        return list(seen)


def explain_fallbacks_of(trace: Trace, warmup: int, compare: Trace | None) -> tuple[Any, str]:
    """The fallback analyzer's report, or (None, why it declined this trace: e.g. a delegate
    whose backend etprof has no fallback knowledge of, analyzers.fallback.target_backend)."""
    from etprof.analyzers.fallback import FallbackOptions, explain_fallbacks

    try:
        return explain_fallbacks(trace, FallbackOptions(warmup=warmup, compare=compare)), ""
    except EtprofError as exc:
        return None, exc.one_line()


@dataclass(frozen=True)
class MethodBreakdowns:
    """The breakdown of each method of a trace with several, one section per method."""

    sections: tuple[Breakdown, ...]

    schema = "etprof.breakdown"

    def headline(self) -> str:
        return "\n".join(b.headline() for b in self.sections)

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {}
        for b in self.sections:
            out.update({f"{b.settings['method']}: {name}": t for name, t in b.tables().items()})
        return out

    def notes(self) -> list[str]:
        return [f"{b.settings['method']}: {n}" for b in self.sections for n in b.notes()]

    def to_dict(self) -> dict[str, Any]:
        return {"methods": [b.to_dict() for b in self.sections]}


@analyzer(
    "breakdown",
    "run-model time attributed to buckets, operators, delegate blocks, modules and iterations",
    BreakdownOptions,
)
def breakdown(trace: Trace, options: BreakdownOptions) -> Breakdown | MethodBreakdowns:
    """One method's breakdown (`options.method`, or the trace's only method), else one section
    per method."""
    if options.method is not None:
        return _breakdown(trace.for_method(options.method), options, len(trace.methods))
    if len(trace.methods) > 1:
        return MethodBreakdowns(
            tuple(
                _breakdown(trace.for_method(m), options, len(trace.methods)) for m in trace.methods
            )
        )
    return _breakdown(trace, options, 1)


def method_breakdown(trace: Trace, options: BreakdownOptions) -> Breakdown:
    """The breakdown of a trace of one method (refused for several: never a blend)."""
    return _breakdown(trace.one_method(), options, 1)


def _breakdown(trace: Trace, options: BreakdownOptions, methods: int) -> Breakdown:
    llm = None
    if options.phase is not None:
        trace = trace.for_phase(options.phase)
    elif trace.phases:
        from etprof.analyzers.llm import LlmOptions
        from etprof.analyzers.llm import llm as llm_analysis

        llm = llm_analysis(trace, LlmOptions())
    warmup = trace.warmup if options.warmup is None else options.warmup
    measured = trace.measured(warmup)
    samples = run_model_samples(measured)
    n = len(samples)
    stats = RunModelStats(
        model=trace.model,
        iterations=trace.iterations,
        warmup=warmup,
        samples_ms=tuple(float(x) / 1e6 for x in samples.to_numpy()),
    )
    rm_ms = float(samples.mean()) / 1e6 if n else math.nan
    frame, ops, negative = block_tables(measured)
    module_rows, known, placement = module_table(measured)
    it_frame = iteration_frame(trace, warmup)
    run_model = it_frame.loc[~it_frame["dropped"], "run_model_ms"].to_numpy()
    if run_model.size == 0:
        raise InputError(
            f"{trace.source or 'the trace'} has no Method::execute event in its measured "
            "iterations",
            "record the trace with ETDump profiling on (`etprof run`)",
        )
    compare = options.compare
    if compare is not None and len(compare.methods) > 1:
        compare = (
            compare.for_method(trace.methods[0]) if trace.methods[0] in compare.methods else None
        )
    fallback, why = explain_fallbacks_of(trace, warmup, compare)
    settings = {
        "trace": trace.source,
        "program": trace.meta.program.path or None,
        "method": trace.methods[0] if trace.methods else trace.meta.program.method,
        "methods": methods,
        "iterations": trace.iterations,
        "warmup": warmup,
        "warmup_from": "--warmup"
        if options.warmup is not None
        else "trace metadata"
        if trace.has_meta
        else "default",
        "measured": n,
        "sessions": trace.sessions,
        "threads": trace.meta.run.threads if trace.has_meta else None,
    }
    return Breakdown(
        settings=settings,
        stats=stats,
        buckets=measured_buckets(trace, warmup, options.keep_outliers),
        operators=OperatorTable(
            model=trace.model, measured=n, run_model_ms=rm_ms, frame=operator_frame(measured)
        ),
        blocks=BlockTable(
            model=trace.model,
            measured=n,
            run_model_ms=rm_ms,
            blocks=frame,
            operators=ops,
            negative=negative,
        ),
        modules=ModuleTable(
            model=trace.model, measured=n, known=known, frame=module_rows, placement=placement
        ),
        iterations=IterationTable(
            model=trace.model,
            warmup=warmup,
            frame=it_frame,
            stability=stability(in_session_order(trace, it_frame)),
        ),
        fallback=fallback,
        fallback_error=why,
        by=options.by,
        top=options.top,
        llm=llm,
        phase=options.phase,
        costs=costs(trace, warmup),
        shipped=shipped(trace, ShippedOptions(warmup, options.keep_outliers)),
    )
