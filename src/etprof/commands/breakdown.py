"""`etprof breakdown TRACE`: where run-model time goes (buckets, operators, blocks, modules,
iterations). Reads traces only: never imports torch or executorch (unless --engine inspector)."""

from __future__ import annotations

from pathlib import Path

import typer

from etprof.commands._common import (
    KeepOutliersOption,
    OutputOption,
    check_output,
    emit,
    format_option,
    trace_inputs,
)
from etprof.commands._options import TraceArgs, etrecord_option, method_option, pte_option

SCHEMA = "etprof.breakdown"


def breakdown(
    trace: Path = typer.Argument(..., help="the ETDump trace (.etdp) to analyse"),
    top: int | None = typer.Option(
        None, "--top", help="operator types to list (default: 10 in the summary, all with --by op)"
    ),
    by: str | None = typer.Option(
        None, "--by", help="detailed table: op, block, module or iteration (CSV default: op)"
    ),
    fmt: str | None = format_option(SCHEMA),
    output: Path | None = OutputOption,
    pte: Path | None = pte_option(),
    etrecord: Path | None = etrecord_option(),
    warmup: int | None = typer.Option(
        None, "--warmup", help="iterations to drop (default: the trace's own setting, else 10)"
    ),
    engine: str = typer.Option(
        "fast",
        "--engine",
        help="fast (etprof's reader) or inspector (ExecuTorch's, slow, imports torch)",
    ),
    phase: str | None = typer.Option(
        None,
        "--phase",
        help="an LLM trace: attribute only its "
        "prefill or decode runs (default: all, with both phases' "
        "buckets side by side)",
    ),
    compare: Path | None = typer.Option(
        None,
        "--compare",
        help="a trace of another lowering "
        "of the same model (e.g. the mixed partitioner's): the "
        "fallback fix quotes its measured run-model time",
    ),
    method: str | None = method_option(),
    keep_outliers: bool = KeepOutliersOption,
) -> None:
    """Attribute run-model time to XNNPACK, portable kernels and overheads; list operators,
    delegate blocks, modules and iterations."""
    from etprof.util.limits import check_limits

    check_limits(warmup=warmup, top=top)  # before any work
    from etprof import analyzers
    from etprof.analyzers.breakdown import BreakdownOptions
    from etprof.trace.loading import load_trace

    options = BreakdownOptions(warmup=warmup, top=top, by=by, phase=phase)  # refused up front
    inputs = [*trace_inputs(trace, compare), pte, etrecord]
    chosen = check_output(fmt, output, SCHEMA, inputs)
    TraceArgs(trace, pte, etrecord).check()
    shown_by, table = view(chosen, by)
    loaded = load_trace(trace, pte=pte, etrecord=etrecord, engine=engine, method=method)
    other = load_trace(compare, engine=engine) if compare is not None else None
    options = BreakdownOptions(
        warmup=warmup,
        top=top,
        by=shown_by,
        compare=other,
        method=method,
        phase=phase,
        keep_outliers=keep_outliers,
    )
    result = analyzers.run("breakdown", loaded, options)
    emit(result, chosen, output, table=table, inputs=inputs)


def view(fmt: str, by: str | None) -> tuple[str | None, str | None]:
    """The view to analyse and the one table to render: CSV holds one table, --by's (op by
    default); the other formats render every table of the view."""
    from etprof.analyzers.breakdown import CSV_TABLE

    if fmt != "csv":
        return by, None
    by = by or "op"
    return by, CSV_TABLE[by]


def register(app: typer.Typer) -> None:
    app.command("breakdown")(breakdown)
