"""Helpers shared by subcommands: emitting a rendered result to stdout or a file."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from etprof import render
from etprof.output import check_writable, write_text
from etprof.result import Result

FormatOption = typer.Option(None, "--format", "-f", help="table, json, csv or markdown "
                            "(default: from the output's extension, else table)")
OutputOption = typer.Option(None, "--output", "-o", help="write to this file instead of stdout")


def terminal_width() -> int:
    return max(80, min(160, shutil.get_terminal_size((100, 24)).columns))


def emit(result: Result, fmt: str | None, output: Path | None, *, table: str | None = None,
         allowed: tuple[str, ...] = ("table", "json", "csv", "markdown")) -> None:
    chosen = render.choose(fmt, output, allowed)
    if output is not None:
        check_writable(output)
    text = render.render(result, chosen, width=terminal_width(), table=table)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_text(output, text)
        typer.echo(f"wrote {output}", err=True)
