"""`etprof bench [MODELS...]`: the seed's benchmark table, re-measured here, beside its figures."""

from __future__ import annotations

from pathlib import Path

import typer

from etprof.commands._common import check_output, emit, format_option
from etprof.util import methodology

SCHEMA = "etprof.bench"


def bench(
    models: list[str] | None = typer.Argument(
        None, help="zoo names (mv2, mv3, mv3-large) or package.module:callable; default: mv2 mv3"
    ),
    variants: str = typer.Option(
        "portable,xnnpack_fp32,xnnpack_q8,xnnpack_q8_quantonly",
        "--variants",
        help="comma-separated export variants",
    ),
    iters: int = typer.Option(
        methodology.ITERS, "--iters", help="iterations per run (the seed: 60)"
    ),
    warmup: int = typer.Option(10, "--warmup", help="first iterations dropped (the seed: 10)"),
    threads: int = typer.Option(1, "--threads", help="runtime threads (the seed: 1)"),
    cache: Path | None = typer.Option(
        None,
        "--cache",
        help="where exported programs and traces are kept (default: ~/.cache/etprof/bench)",
    ),
    fmt: str | None = format_option(SCHEMA),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="write the result to this file instead of stdout"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show export/runtime logs"),
) -> None:
    """Export each model in each variant (cached), run it the seed's way, compare with the seed."""
    from etprof.util.limits import check_iters, check_limits

    check_iters(iters, warmup)
    check_limits(threads=threads)  # before any work
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    from etprof.jobs.bench import (
        DEFAULT_MODELS,
        BenchEvent,
        BenchSettings,
        default_cache_dir,
        parse_variants,
    )
    from etprof.jobs.bench import bench as run_bench
    from etprof.util.quiet import terminal

    chosen = check_output(fmt, output, SCHEMA)  # refuse a bad format before minutes of work
    settings = BenchSettings(
        iters=iters,
        warmup=warmup,
        threads=threads,
        cache=cache or default_cache_dir(),
        verbose=verbose,
    )
    names = parse_variants(variants)
    console = Console(file=terminal(), stderr=True, highlight=False)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        redirect_stdout=False,  # the runtime's log: see util/runtime_log.py
        redirect_stderr=False,
    ) as bar:
        task = bar.add_task("", total=iters)

        def show(e: BenchEvent) -> None:
            label = f"{e.model} {e.variant}"
            if e.stage == "export":
                bar.update(
                    task, description=f"{label}: exporting (or reusing the cache)", completed=0
                )
            elif e.stage == "exported":
                console.print(f"{label}: exported in {e.seconds:.1f} s")
            elif e.stage == "cached":
                console.print(f"{label}: program reused from the cache")
            elif e.stage == "run":
                bar.update(task, description=f"{label}: running", completed=e.done)
            elif e.stage == "done":
                console.print(f"{label}: mean run model {e.seconds * 1e3:.3f} ms")

        result = run_bench(models or list(DEFAULT_MODELS), names, settings, show)
    for row in result.rows:
        typer.echo(f"trace: {row.trace}", err=True)
    emit(result, chosen, output)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
