"""`etprof run MODEL.pte`: run with ETDump profiling on and print the run-model summary."""

from __future__ import annotations

from pathlib import Path

import typer

from etprof.commands._common import emit


def run(
    pte: Path = typer.Argument(..., help="the .pte program to profile"),
    iters: int = typer.Option(60, "--iters", help="iterations to run (the seed: 60)"),
    warmup: int = typer.Option(10, "--warmup", help="first iterations to drop (the seed: 10)"),
    threads: int = typer.Option(1, "--threads", help="runtime threads (the seed: 1)"),
    out: Path | None = typer.Option(None, "--out", help="trace path (default: beside the .pte, "
                                    ".etdp)"),
    method: str = typer.Option("forward", "--method", help="method to run"),
    inputs: Path | None = typer.Option(None, "--inputs", help="inputs (.pt tensor/tuple, .npy, "
                                       ".npz); default: random from the method's metadata"),
    etrecord: Path | None = typer.Option(None, "--etrecord", help="ETRecord for module paths "
                                         "(default: <pte stem>.etrecord beside the .pte)"),
    top: int = typer.Option(10, "--top", help="operators to list"),
    json_out: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    fmt: str | None = typer.Option(None, "--format", "-f", help="table, json, csv or markdown"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show the runtime's log"),
) -> None:
    """Run a program with ETDump profiling (seed methodology) and summarise the measured runs."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from etprof import analyzers
    from etprof.analyzers.summary import SummaryOptions
    from etprof.load import load_trace
    from etprof.quiet import terminal
    from etprof.runner import RunRequest, default_trace_path, run_program

    req = RunRequest(pte=pte, out=out or default_trace_path(pte), iters=iters, warmup=warmup,
                     threads=threads, method=method, inputs=inputs, etrecord=etrecord,
                     verbose=verbose)
    console = Console(file=terminal(), stderr=True)
    with Progress(TextColumn(f"running {pte.name}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("run", total=iters)
        run_program(req, lambda done, total: bar.update(task, completed=done))
    trace = load_trace(req.out)
    summary = analyzers.run("summary", trace, SummaryOptions(top=top))
    typer.echo(f"trace: {req.out} ({iters} iterations, first {warmup} dropped, "
               f"{threads} thread{'s' if threads != 1 else ''})", err=True)
    emit(summary, "json" if json_out else fmt, None)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
