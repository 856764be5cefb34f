"""`etprof history [--db etprof.duckdb | --parquet DIR] [--model M] [--tag k=v]`: the runs of
each series over time, significant changes against the previous runs and what moved."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from etprof.commands._common import OutputOption, format_option

SCHEMA = "etprof.history"


def history(
    db: Path | None = typer.Option(None, "--db", help="the DuckDB store (default: etprof.duckdb)"),
    parquet: Path | None = typer.Option(
        None,
        "--parquet",
        metavar="DIR",
        help="read the Parquet tables under DIR instead of a database",
    ),
    model: str | None = typer.Option(None, "--model", help="only this model's series"),
    tag: list[str] = typer.Option(
        [], "--tag", metavar="K=V", help="only runs with this tag (repeatable: all must match)"
    ),
    window: int = typer.Option(
        1, "--window", help="previous runs of a series pooled as the baseline of each run"
    ),
    noise: float = typer.Option(1.0, "--noise", help="noise band in percent, as in diff"),
    statistic: str = typer.Option("mean", "--statistic", help="mean or median"),
    fail_if_slower: float | None = typer.Option(
        None,
        "--fail-if-slower",
        metavar="PCT",
        help="CI gate on each series' latest run: "
        "exit 4 when significantly slower by more than PCT%, 5 when it cannot tell",
    ),
    fail_if_faster: float | None = typer.Option(
        None, "--fail-if-faster", metavar="PCT", help="CI gate: the same for faster"
    ),
    min_sessions: int = typer.Option(
        2, "--min-sessions", help="gate: fewer sessions on a side make a pass inconclusive"
    ),
    wait: float = typer.Option(
        60.0,
        "--wait",
        metavar="SECONDS",
        help="how long to wait for a process storing into the --db",
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        metavar="ADDRESS|local:N",
        help="judge the series on a Dask cluster's workers (etprof[cluster])",
    ),
    fmt: str | None = format_option(SCHEMA),
    output: Path | None = OutputOption,
) -> None:
    """List stored runs per series (model + variant + device) over time, marking each
    significant change against the run(s) before it, with the buckets and operators that moved."""
    from etprof.util.limits import check_limits

    check_limits(
        window=window,
        noise=noise,
        fail_if_slower=fail_if_slower,
        fail_if_faster=fail_if_faster,
        min_sessions=min_sessions,
        wait=wait,
    )  # before any work
    from etprof.analyzers.history import HistoryOptions, StoredRuns, history
    from etprof.commands._common import check_output, emit
    from etprof.errors import InputError
    from etprof.store.db import read_tables
    from etprof.store.duck import save_verdicts
    from etprof.store.rows import parse_tags
    from etprof.store.schema import TABLES

    options = HistoryOptions(
        model=model,
        tags=tuple(parse_tags(tag).items()),
        window=window,
        noise_pct=noise,
        statistic=statistic,
        fail_if_slower=fail_if_slower,
        fail_if_faster=fail_if_faster,
        min_sessions=min_sessions,
    )
    options.check()
    if db is not None and parquet is not None:
        raise InputError("both --db and --parquet given", "read one store at a time")
    chosen = check_output(fmt, output, SCHEMA, [db, parquet])
    path = None if parquet is not None else db or Path("etprof.duckdb")
    # with a database, the verdicts kept by earlier calls: runs judged before are not again
    wanted = (*TABLES, "verdicts") if path is not None else tuple(TABLES)
    tables = read_tables(db=path, parquet=parquet, wait=wait, tables=wanted)
    if cluster is None:
        result = history(StoredRuns(tables), options)
    else:
        from etprof.jobs import cluster as dask_cluster

        with dask_cluster.connect(cluster) as client:
            result = history(StoredRuns(tables), options, judge=dask_cluster.judge_on(client))
    if path is not None and not result.judged.empty and os.access(path, os.W_OK):
        save_verdicts(path, result.judged, wait)
    emit(result, chosen, output, inputs=[db, parquet])
    if result.gate is not None and result.gate.exit_code:
        raise typer.Exit(result.gate.exit_code)


def register(app: typer.Typer) -> None:
    app.command("history")(history)
