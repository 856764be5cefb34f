"""`etprof report TRACE [B] -o report.html`: one self-contained HTML page with charts; given
two traces, the diff of B against A too; given `--db STORE`, the store's history as a chart. Reads traces only: never imports torch or executorch."""

from __future__ import annotations

from pathlib import Path

import typer

from etprof.commands._options import TraceArgs, etrecord_option, method_option, pte_option

SCHEMA = "etprof.report"


def report(
    a: Path | None = typer.Argument(
        None,
        metavar="TRACE",
        help="the ETDump trace (.etdp) to report on (the baseline when B is given)",
    ),
    b: Path | None = typer.Argument(
        None,
        metavar="B",
        help="a second trace: compared against TRACE (diff view, both sides' charts)",
    ),
    output: Path = typer.Option(
        Path("report.html"), "--output", "-o", help="the HTML file to write (replaced atomically)"
    ),
    top: int = typer.Option(10, "--top", help="operator types to chart per trace"),
    warmup: int | None = typer.Option(
        None, "--warmup", help="iterations to drop (default: each trace's own setting, else 10)"
    ),
    pte: Path | None = pte_option("--pte", "--pte-a", whose="TRACE's"),
    pte_b: Path | None = pte_option("--pte-b", whose="B's"),
    etrecord: Path | None = etrecord_option("--etrecord", "--etrecord-a", whose="TRACE's"),
    etrecord_b: Path | None = etrecord_option("--etrecord-b", whose="B's", needs="--pte-b"),
    force: bool = typer.Option(
        False,
        "--force",
        help="compare traces of different models, thread counts or warm-up (with a warning)",
    ),
    db: Path | None = typer.Option(
        None,
        "--db",
        help="instead of a trace: chart the history of this results store (docs/store.md)",
    ),
    parquet: Path | None = typer.Option(
        None,
        "--parquet",
        metavar="DIR",
        help="instead of a trace: chart the history of these Parquet tables",
    ),
    model: str | None = typer.Option(None, "--model", help="history: only this model"),
    tag: list[str] = typer.Option(
        [], "--tag", metavar="K=V", help="history: only runs with this tag"
    ),
    method: str | None = method_option(),
    phase: str | None = typer.Option(
        None,
        "--phase",
        help="two LLM traces: compare their prefill or decode runs only (default: each phase)",
    ),
) -> None:
    """Write an HTML report: run model, buckets, top operators, iterations, fallback (and the
    diff view when given two traces). Works offline: no script, nothing fetched."""
    from etprof.util.limits import check_limits

    check_limits(top=top, warmup=warmup)  # before any work
    from etprof.analyzers._report import ReportOptions, build_report
    from etprof.commands._common import check_output, trace_inputs
    from etprof.errors import InputError
    from etprof.render import render
    from etprof.trace.loading import load_trace
    from etprof.util.output import write_text
    from etprof.util.version import __version__

    if db is not None or parquet is not None:
        if a is not None:
            raise InputError(
                "a trace and a store (--db/--parquet) given",
                "report on one: a trace, or a store's history",
            )
        _history_report(db, parquet, model, tag, output)
        return
    if a is None:
        raise InputError("no trace given", "pass a trace (.etdp), or --db STORE for a history")
    options = ReportOptions(warmup=warmup, top=top, force=force, method=method, phase=phase)
    options.check()  # bad values are refused before any trace is read
    inputs = [*trace_inputs(a, b), pte, pte_b, etrecord, etrecord_b]
    chosen = check_output(None, output, SCHEMA, inputs)  # an HTML page: refuses `-o r.json`
    if b is None and (pte_b is not None or etrecord_b is not None):
        raise InputError("--pte-b/--etrecord-b given without a trace B", "pass B, or drop them")
    TraceArgs(a, pte, etrecord).check()
    if b is not None:
        TraceArgs(b, pte_b, etrecord_b, "-b").check()
    trace_a = load_trace(a, pte=pte, etrecord=etrecord, method=method)
    trace_b = None if b is None else load_trace(b, pte=pte_b, etrecord=etrecord_b, method=method)
    result = build_report(trace_a, trace_b, options, version=__version__)
    text = render(result, chosen)
    write_text(output, text, inputs)
    typer.echo(f"wrote {output} ({len(text.encode()) // 1024 + 1} KB)", err=True)


def _history_report(
    db: Path | None, parquet: Path | None, model: str | None, tag: list[str], output: Path
) -> None:
    from etprof.analyzers.history import HistoryOptions, StoredRuns, history
    from etprof.commands._common import check_output
    from etprof.errors import InputError
    from etprof.render import render
    from etprof.store.db import read_tables
    from etprof.store.rows import parse_tags
    from etprof.util.output import write_text

    if db is not None and parquet is not None:
        raise InputError("both --db and --parquet given", "read one store at a time")
    options = HistoryOptions(model=model, tags=tuple(parse_tags(tag).items()))
    if output.suffix.lower() not in (".html", ".htm"):
        raise InputError(
            f"a history report is HTML, but {output} does not end in .html",
            "name it e.g. history.html (for JSON use `etprof history -f json`)",
        )
    chosen = check_output("html", output, "etprof.history", [db, parquet])
    result = history(StoredRuns(read_tables(db=db, parquet=parquet)), options)
    text = render(result, chosen)
    write_text(output, text, [db, parquet])
    typer.echo(f"wrote {output} ({len(text.encode()) // 1024 + 1} KB)", err=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
