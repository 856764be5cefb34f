"""Why operators of a delegated program ran on portable kernels, and what that cost.

The explainer's target is the backend the program delegates to (target_backend; a program
with no delegate is explained against etprof.backends.default_target()). Each portable operator
instruction is classified against that backend's support table (`Backend.support_table()`):
layout/constant glue, not supported by the backend, supported only at another precision, or
supported but not taken. A run of portable instructions between two delegate calls is a graph
break; its cost is

    the portable instructions' own time (OPERATOR_CALL, dispatch included)
  + the glue operators (layout/precision changes) at the edges of the two delegate blocks
  + the overhead of the delegate call that follows it (DELEGATE_CALL minus its operators),

attributed to the instructions that caused it (glue goes to the cause it serves, by nn.Module
when the trace knows modules). Times are per measured iteration. With a comparison trace (the
same model lowered another way) the fix comes with its measured effect. See docs/fallback.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._fallback_cost import (
    INSTR_COLUMNS,
    SUPPORT_FROM,
    attribute,
    cause_frame,
    per_instruction_ns,
)
from etprof.analyzers._fallback_program import (
    CLASS_LABELS,
    CONSTRAINT,
    GLUE,
    PRECISION,
    UNSUPPORTED,
    block_edges,
    edge_glue_ns,
    program_precisions,
    program_steps,
)
from etprof.backends import PRECISION_LABELS, Backend, default_target, explainers
from etprof.errors import InputError
from etprof.result import records
from etprof.trace.model import RUN_MODEL, Trace

from ._fallback_calls import NONE as NO_CALLS
from ._fallback_calls import CallCost, call_cost
from ._fallback_context import MethodFacts, program_facts
from ._fallback_notes import explain  # relative: see _fallback_notes

# A cause row: `class` is a key of CLASS_LABELS, `why` its label; SUPPORT the precisions the
# target backend's support table takes (named after the first backend etprof explained: the
# JSON schema keeps the name, docs/fallback.md); `count` cause instructions, `glue` glue
# instructions serving them, `breaks` graph breaks they made; `boundary_ms` the glue at the
# edges of the blocks around those breaks, `calls_ms` the fixed cost of the extra delegate calls.
# JSON schema names from when the explainer knew one backend; they hold the target backend's
_SHOWN = [
    "cause",
    "class",
    "count",
    "glue",
    "breaks",
    "portable_ms",
    "boundary_ms",
    "calls_ms",
    "total_ms",
    "share_pct",
]
BREAK_COLUMNS = (
    "break",
    "after",
    "before",
    "ops",
    "causes",
    "portable_ms",
    "boundary_ms",
    "calls_ms",
    "total_ms",
)


@dataclass(frozen=True)
class FallbackOptions:
    warmup: int | None = None  # None: the trace's own setting
    # The same model lowered another way (e.g. with the default mixed partitioner): its measured
    # run model is quoted next to the fix.
    compare: Trace | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Comparison:
    source: str
    model: str
    run_model_ms: float
    partitions: int
    breaks: int
    fallback_ms: float
    # the compared program's own causes (operators on portable kernels that are not glue):
    # the fix is only called measured when the causes of this program are gone from it
    causes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FallbackReport:
    model: str
    measured: int
    run_model_ms: float
    precisions: tuple[str, ...]
    partitions: int  # delegate call instructions
    breaks: int  # runs of portable instructions between two delegate calls
    portable_instructions: int
    causes: pd.DataFrame  # CAUSE_COLUMNS, most expensive first
    break_table: pd.DataFrame  # BREAK_COLUMNS, in program order
    instructions: pd.DataFrame  # one row per portable instruction
    executorch: str  # version the target backend's support table comes from
    backend: Backend  # the target: the backend the program delegates to (or could)
    comparison: Comparison | None = None
    calls: CallCost = NO_CALLS  # one delegate call's fixed cost, what a merge removes
    facts: MethodFacts | None = field(default=None, compare=False, repr=False)  # its .pte's

    schema = "etprof.fallback"

    @property
    def fallback_ms(self) -> float:
        return float(self.causes["total_ms"].sum()) if len(self.causes) else 0.0

    @property
    def fallback_pct(self) -> float:
        return 100.0 * self.fallback_ms / self.run_model_ms if self.run_model_ms else 0.0

    def fallen_back_ops(self) -> list[str]:
        """Operators that caused a fallback (glue excluded)."""
        c = self.causes
        return sorted({str(op) for op in c.loc[c["class"] != GLUE, "op"]})

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"fallback causes": self.causes[_SHOWN], "graph breaks": self.break_table}
        if self.comparison is not None:
            out["comparison"] = self._comparison_frame()
        return out

    def notes(self) -> list[str]:
        return explain(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "measured": self.measured,
            "run_model_ms": self.run_model_ms,
            "precisions": list(self.precisions),
            "partitions": self.partitions,
            "breaks": self.breaks,
            "portable_instructions": self.portable_instructions,
            "fallback_ms": self.fallback_ms,
            "fallback_pct": self.fallback_pct,
            "call_cost": self.calls.to_dict(),
            SUPPORT_FROM: f"executorch {self.executorch}",
            "causes": records(self.causes),
            "graph_breaks": records(self.break_table),
            "instructions": records(self.instructions),
            "comparison": None
            if self.comparison is None
            else {**vars(self.comparison), "causes": list(self.comparison.causes)},
            "explanation": self.notes(),
        }

    def _comparison_frame(self) -> pd.DataFrame:
        c = self.comparison
        assert c is not None
        rows = [
            (self.model, self.run_model_ms, self.partitions, self.breaks, self.fallback_ms),
            (c.model, c.run_model_ms, c.partitions, c.breaks, c.fallback_ms),
        ]
        return pd.DataFrame(
            rows, columns=["model", "run_model_ms", "partitions", "breaks", "fallback_ms"]
        )


@analyzer(
    "fallback",
    "why operators ran on portable kernels, the graph breaks they made and their cost",
    FallbackOptions,
)
def explain_fallbacks(trace: Trace, options: FallbackOptions) -> FallbackReport:
    report = _analyse(trace, options.warmup)
    if options.compare is not None:
        other = _analyse(options.compare, None)
        comparison = Comparison(
            source=options.compare.source,
            model=other.model,
            run_model_ms=other.run_model_ms,
            partitions=other.partitions,
            breaks=other.breaks,
            fallback_ms=other.fallback_ms,
            causes=tuple(other.fallen_back_ops()),
        )
        report = FallbackReport(**{**vars(report), "comparison": comparison})
    return report


def target_backend(trace: Trace) -> Backend:
    """The backend the explainer reasons with: the one the trace's program delegates to, or,
    for a program with no delegate, etprof.backends.default_target(). A delegate whose backend
    etprof has no fallback knowledge of, or two backends with knowledge, are refused (a
    portable operator beside two backends cannot be judged against one support table)."""
    from etprof.analyzers.buckets import delegate_backends

    source = trace.source or "the trace"
    found = list({b.id: b for b in delegate_backends(trace).values()}.values())
    if not found:
        default = default_target()
        if default is None:
            raise InputError(
                f"{source} has no delegate call and no registered backend explains fallbacks",
                "read the buckets and operators",
            )
        return default
    known = ", ".join(b.label for b in explainers()) or "none"
    silent = [
        b.label if b.id else "a delegate of unknown backend (no program table)"
        for b in found
        if not b.explains_fallbacks
    ]
    if silent:
        raise InputError(
            f"{source} delegates to {' and '.join(silent)}: etprof has no fallback "
            f"knowledge of {'it' if len(silent) == 1 else 'them'}",
            "read the buckets and operators; the explanation needs a program "
            f"lowered to a backend etprof explains ({known})",
        )
    if len(found) > 1:
        raise InputError(
            f"{source} delegates to {' and '.join(b.label for b in found)}: etprof "
            "explains the fallbacks of one backend at a time",
            "read the buckets and operators per backend; for the explanation, "
            "profile the model lowered to one of them",
        )
    return found[0]


def _analyse(trace: Trace, warmup: int | None) -> FallbackReport:
    backend = target_backend(trace)
    measured = trace.measured(warmup)
    n = int(measured.of_kind(RUN_MODEL)["iteration"].nunique())
    if n == 0:
        raise InputError(
            f"{trace.source or 'the trace'} has no Method::execute event in its "
            "measured iterations",
            "record it with `etprof run`",
        )
    steps = program_steps(measured)
    if not steps:
        raise InputError(
            f"{trace.source or 'the trace'} has no operator or delegate call events",
            "record the trace with ETDump profiling on (`etprof run`)",
        )
    run_model_ms = measured.run_model_ns() / n / 1e6
    table = backend.support_table()
    assert table is not None  # explains_fallbacks: the backend has one
    precisions = program_precisions(measured, steps, backend)
    per_iter = per_instruction_ns(measured, n)
    edges = block_edges(measured, backend)
    edge_ns = edge_glue_ns(measured, edges, backend) / n
    calls = call_cost(measured, n)
    rows, breaks = attribute(steps, table, precisions, per_iter, edges, edge_ns, backend, calls)
    instructions = pd.DataFrame(rows, columns=INSTR_COLUMNS)
    return FallbackReport(
        model=trace.model,
        measured=n,
        run_model_ms=run_model_ms,
        precisions=precisions,
        partitions=sum(s.kind == "delegate" for s in steps),
        breaks=len(breaks),
        portable_instructions=sum(s.kind == "operator" for s in steps),
        causes=cause_frame(instructions, run_model_ms, backend),
        break_table=pd.DataFrame(breaks, columns=list(BREAK_COLUMNS)),
        instructions=instructions,
        executorch=table.executorch,
        backend=backend,
        calls=calls,
        facts=program_facts(trace),
    )


__all__ = [
    "CLASS_LABELS",
    "CONSTRAINT",
    "GLUE",
    "PRECISION",
    "PRECISION_LABELS",
    "UNSUPPORTED",
    "Comparison",
    "FallbackOptions",
    "FallbackReport",
    "explain_fallbacks",
    "target_backend",
]
