"""`etprof diff A B`: is B faster or slower than A, significantly, and where did the time go."""

from __future__ import annotations

from pathlib import Path

import typer

from etprof.commands._common import KeepOutliersOption, OutputOption, format_option
from etprof.commands._options import TraceArgs, etrecord_option, method_option, pte_option

SCHEMA = "etprof.diff"
TABLES = ("run model", "buckets", "top contributors")


def diff(
    a: Path = typer.Argument(..., metavar="A", help="baseline trace (.etdp)"),
    b: Path = typer.Argument(..., metavar="B", help="trace to compare against it (.etdp)"),
    pte_a: Path | None = pte_option("--pte-a", whose="A's"),
    pte_b: Path | None = pte_option("--pte-b", whose="B's"),
    etrecord_a: Path | None = etrecord_option("--etrecord-a", whose="A's", needs="--pte-a"),
    etrecord_b: Path | None = etrecord_option("--etrecord-b", whose="B's", needs="--pte-b"),
    warmup: int | None = typer.Option(
        None,
        "--warmup",
        help="iterations to drop from both (default: each trace's own, 10 when unknown)",
    ),
    noise: float = typer.Option(
        1.0, "--noise", help="noise band in percent: smaller changes are never called significant"
    ),
    statistic: str = typer.Option(
        "mean",
        "--statistic",
        help="mean or median: what the headline change and its interval are about",
    ),
    match: str = typer.Option(
        "auto", "--match", help="auto, instruction (same program) or operator (different lowerings)"
    ),
    top: int = typer.Option(10, "--top", help="operator contributors to list by name"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed (output is reproducible)"),
    force: bool = typer.Option(
        False,
        "--force",
        help="compare traces of different models, thread counts or warm-up (with a warning)",
    ),
    same_model: bool = typer.Option(
        False,
        "--same-model",
        help="both traces are of one "
        "model (e.g. its fp32 and q8 programs), whatever their "
        "programs share (docs/diff.md)",
    ),
    table: str | None = typer.Option(
        None, "--table", help="for CSV: run model, buckets or top contributors (the default)"
    ),
    fail_if_slower: float | None = typer.Option(
        None,
        "--fail-if-slower",
        metavar="PCT",
        help="CI gate: exit 4 when B is significantly "
        "slower by more than PCT%, 5 when the comparison cannot tell (docs/diff.md)",
    ),
    fail_if_faster: float | None = typer.Option(
        None,
        "--fail-if-faster",
        metavar="PCT",
        help="CI gate: exit 4 when B is significantly "
        "faster by more than PCT%, 5 when the comparison cannot tell",
    ),
    min_sessions: int = typer.Option(
        2, "--min-sessions", help="gate: fewer sessions on a side make a pass inconclusive"
    ),
    phase: str | None = typer.Option(
        None,
        "--phase",
        help="LLM traces: compare their prefill or decode runs only (default: each phase)",
    ),
    fmt: str | None = format_option(SCHEMA),
    output: Path | None = OutputOption,
    method: str | None = method_option(),
    keep_outliers: bool = KeepOutliersOption,
) -> None:
    """Compare two traces: run-model change with a verdict, buckets, and contributors."""
    from etprof.util.limits import check_limits

    check_limits(
        warmup=warmup,
        noise=noise,
        top=top,
        seed=seed,
        fail_if_slower=fail_if_slower,
        fail_if_faster=fail_if_faster,
        min_sessions=min_sessions,
    )  # before any work
    from dataclasses import replace

    from etprof.analyzers.diff import DiffOptions, PhaseDiffs
    from etprof.analyzers.diff import diff as diff_of
    from etprof.commands._common import check_output, emit, trace_inputs
    from etprof.errors import InputError
    from etprof.trace.loading import load_trace

    options = DiffOptions(
        warmup=warmup,
        noise_pct=noise,
        statistic=statistic,
        match=match,
        top=top,
        seed=seed,
        force=force,
        same_model=same_model,
        fail_if_slower=fail_if_slower,
        fail_if_faster=fail_if_faster,
        min_sessions=min_sessions,
        method_name=method,
        phase=phase,
        keep_outliers=keep_outliers,
    )
    # refuse bad options before reading anything
    options.check()
    inputs = [*trace_inputs(a, b), pte_a, pte_b, etrecord_a, etrecord_b]
    chosen = check_output(fmt, output, SCHEMA, inputs)
    if table is not None and table not in TABLES:
        raise InputError(f"no table '{table}' in a diff", f"use one of: {', '.join(TABLES)}")
    TraceArgs(a, pte_a, etrecord_a, "-a").check()
    TraceArgs(b, pte_b, etrecord_b, "-b").check()
    trace_a = load_trace(a, pte=pte_a, etrecord=etrecord_a, method=method)
    trace_b = load_trace(b, pte=pte_b, etrecord=etrecord_b, method=method)
    result = diff_of(trace_a, trace_b, options)
    csv_table = (table or "top contributors") if chosen == "csv" else None
    if csv_table is not None and isinstance(result, PhaseDiffs):
        result = replace(result, stacked=True)  # each phase's rows, with a `phase` column
    emit(result, chosen, output, table=csv_table, inputs=inputs)
    if result.gate is not None and result.gate.exit_code:
        raise typer.Exit(result.gate.exit_code)


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
