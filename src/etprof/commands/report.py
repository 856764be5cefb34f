"""`etprof report TRACE [B] -o report.html`: one self-contained HTML page with charts; given
two traces, the diff of B against A too. Reads traces only: never imports torch or executorch."""

from __future__ import annotations

from pathlib import Path

import typer

SCHEMA = "etprof.report"


def report(
    a: Path = typer.Argument(..., metavar="TRACE", help="the ETDump trace (.etdp) to report on "
                             "(the baseline when B is given)"),
    b: Path | None = typer.Argument(None, metavar="B", help="a second trace: compared against "
                                    "TRACE (diff view, both sides' charts)"),
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="the HTML file to "
                                "write (replaced atomically)"),
    top: int = typer.Option(10, "--top", help="operator types to chart per trace"),
    warmup: int | None = typer.Option(None, "--warmup", help="iterations to drop (default: each "
                                      "trace's own setting, else 10)"),
    pte: Path | None = typer.Option(None, "--pte", "--pte-a", help="TRACE's .pte, for a trace "
                                    "made by another runner"),
    pte_b: Path | None = typer.Option(None, "--pte-b", help="B's .pte"),
    etrecord: Path | None = typer.Option(None, "--etrecord", "--etrecord-a", help="TRACE's "
                                         "ETRecord, for module paths (needs --pte)"),
    etrecord_b: Path | None = typer.Option(None, "--etrecord-b", help="B's ETRecord (needs "
                                           "--pte-b)"),
    force: bool = typer.Option(False, "--force", help="compare traces of different models, "
                               "thread counts or warm-up (with a warning)"),
) -> None:
    """Write an HTML report: run model, buckets, top operators, iterations, fallback (and the
    diff view when given two traces). Works offline: no script, nothing fetched."""
    from etprof import __version__
    from etprof.commands._common import check_output, trace_inputs
    from etprof.errors import InputError
    from etprof.loading import load_trace
    from etprof.output import write_text
    from etprof.render import render
    from etprof.report import ReportOptions, build_report

    options = ReportOptions(warmup=warmup, top=top, force=force)
    options.check()  # bad values are refused before any trace is read
    inputs = [*trace_inputs(a, b), pte, pte_b, etrecord, etrecord_b]
    chosen = check_output(None, output, SCHEMA, inputs)  # an HTML page: refuses `-o r.json`
    if b is None and (pte_b is not None or etrecord_b is not None):
        raise InputError("--pte-b/--etrecord-b given without a trace B", "pass B, or drop them")
    for side, path, p, e in (("", a, pte, etrecord), ("-b", b, pte_b, etrecord_b)):
        if path is not None and path.is_dir():
            raise InputError(f"{path} is a directory, not a trace", "pass an .etdp file")
        if e is not None and p is None:
            raise InputError(f"--etrecord{side} needs --pte{side} too",
                             "pass the .pte the trace was made from")
    trace_a = load_trace(a, pte=pte, etrecord=etrecord)
    trace_b = None if b is None else load_trace(b, pte=pte_b, etrecord=etrecord_b)
    result = build_report(trace_a, trace_b, options, version=__version__)
    text = render(result, chosen)
    write_text(output, text, inputs)
    typer.echo(f"wrote {output} ({len(text.encode()) // 1024 + 1} KB)", err=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
