"""`etprof store TRACE... [--db etprof.duckdb] [--parquet DIR] [--tag k=v ...]`: append what the
traces hold to the results store (docs/store.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from etprof.store.db import StoreOutcome

DEFAULT_DB = Path("etprof.duckdb")


def store(
    traces: list[Path] = typer.Argument(..., metavar="TRACE...", help="traces (.etdp) to store"),
    db: Path | None = typer.Option(
        None,
        "--db",
        help="DuckDB database to append to (default: "
        "etprof.duckdb, unless only --parquet is given)",
    ),
    parquet: Path | None = typer.Option(
        None,
        "--parquet",
        metavar="DIR",
        help="also (or, without --db, only) write the tables as Parquet files under DIR/<table>/",
    ),
    tag: list[str] = typer.Option(
        [],
        "--tag",
        metavar="K=V",
        help="label the runs: commit=..., device=..., model=..., variant=... (repeatable)",
    ),
    pte: Path | None = typer.Option(
        None, "--pte", help="the .pte of traces made elsewhere (instruction table)"
    ),
    wait: float = typer.Option(
        60.0,
        "--wait",
        metavar="SECONDS",
        help="how long to wait for another process storing into the same --db",
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        metavar="ADDRESS|local:N",
        help="load and reduce the traces on a Dask cluster's workers (etprof[cluster]), "
        "each task publishing its own batch to --parquet",
    ),
) -> None:
    """Store traces in a DuckDB results store (one row per run, session, bucket, operator and
    delegate block); a trace already stored is skipped."""
    from etprof.util.limits import check_limits

    check_limits(wait=wait)  # before any work
    from etprof.store import db as stored
    from etprof.store.rows import content_id, parse_tags, trace_rows
    from etprof.trace.loading import load_trace

    tags = parse_tags(tag)
    target = db if db is not None or parquet is not None else DEFAULT_DB
    if target is not None:
        stored.check_database_file(target, must_exist=False)
    if cluster is not None:
        outcomes = _on_cluster(cluster, traces, tags, pte, target, parquet, wait)
    else:
        rows, seen = [], set()
        for path in traces:
            trace = load_trace(path, pte=pte)
            run_id = content_id(path)
            if run_id in seen:
                typer.echo(f"{path}: the same trace as an earlier argument, stored once", err=True)
                continue
            seen.add(run_id)
            rows.append(trace_rows(trace, path, tags, run_id=run_id))
        outcomes = []
        if target is not None:
            outcomes = stored.store(target, rows, wait)
        if parquet is not None:
            parquet_outcomes = stored.write_parquet(parquet, rows)
            outcomes = outcomes or parquet_outcomes
    for o in outcomes:
        state = "stored" if o.stored else "already stored"
        typer.echo(f"{o.source}: {state} as run {o.run_id[:12]}")
    where = [str(p) for p in (target, parquet) if p is not None]
    typer.echo(
        f"store: {sum(o.stored for o in outcomes)} new run(s) in {' and '.join(where)}", err=True
    )


def _on_cluster(
    address: str,
    traces: list[Path],
    tags: dict[str, str],
    pte: Path | None,
    target: Path | None,
    parquet: Path | None,
    wait: float,
) -> list[StoreOutcome]:
    """Ingest on the cluster's workers: each task publishes its traces to the lake; with a
    --db, their rows come back and are stored here in one transaction."""
    from etprof.jobs import cluster
    from etprof.store import db as stored

    paths = list(dict.fromkeys(p.resolve() for p in traces))  # a path given twice: once
    with cluster.connect(address) as client:
        done, rows = cluster.ingest(client, paths, tags, pte, parquet, target is not None)
    if target is not None:
        return stored.store(target, rows, wait)
    return [stored.StoreOutcome(run_id, source, new) for run_id, source, new in done]


def register(app: typer.Typer) -> None:
    app.command("store")(store)
