"""`etprof timeline TRACE -o trace.json`: a Chrome-trace/Perfetto view of one iteration or all."""

from __future__ import annotations

from pathlib import Path

import typer

from etprof.commands._common import OutputOption, check_output, emit, format_option, trace_inputs
from etprof.commands._options import TraceArgs, etrecord_option, method_option, pte_option

# The slice table is data for tools (json, csv); people read the timeline in a trace viewer.
SCHEMA = "etprof.timeline"


def timeline(
    trace: Path = typer.Argument(..., help="the ETDump trace (.etdp)"),
    output: Path | None = OutputOption,
    iteration: int | None = typer.Option(
        None,
        "--iteration",
        "-i",
        help="iteration to export, 0-based (default: the first measured one)",
    ),
    all_iterations: bool = typer.Option(False, "--all", help="export every iteration, and loading"),
    fmt: str | None = format_option(SCHEMA),
    pte: Path | None = pte_option(),
    etrecord: Path | None = etrecord_option(),
    method: str | None = method_option(),
) -> None:
    """Export a trace as Chrome trace JSON (open in ui.perfetto.dev or chrome://tracing).

    Method::execute, each instruction, and the XNNPACK operators nested in their DELEGATE_CALL;
    --format csv or json give the same slices as a table (times in ns) instead.
    """
    from etprof.util.limits import check_limits

    check_limits(iteration=iteration)  # before any work
    from etprof import analyzers
    from etprof.analyzers.timeline import TimelineOptions
    from etprof.trace.loading import load_trace

    inputs = [*trace_inputs(trace), pte, etrecord]
    chosen = check_output(fmt, output, SCHEMA, inputs)  # `.json` here means a Chrome trace
    TraceArgs(trace, pte, etrecord).check()
    options = TimelineOptions(iteration, all_iterations, method)
    loaded = load_trace(trace, pte=pte, etrecord=etrecord, method=method)
    result = analyzers.run("timeline", loaded, options)
    emit(result, chosen, output, inputs=inputs)


def register(app: typer.Typer) -> None:
    app.command("timeline")(timeline)
