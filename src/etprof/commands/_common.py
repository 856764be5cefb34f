"""Helpers shared by subcommands: `--format`/`-o` options drawn from the renderer registry,
checking an output before any work, and emitting a rendered result to stdout or a file."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer

from etprof import render
from etprof.result import Result
from etprof.trace.sidecar import SIDECAR_SUFFIX
from etprof.util.output import check_writable, write_text

OutputOption = typer.Option(
    None, "--output", "-o", help="write to this file instead of stdout (replaced atomically)"
)
KeepOutliersOption = typer.Option(
    False,
    "--keep-outliers",
    help="count iterations the machine preempted (far above their session's own "
    "distribution) in bucket shares and diff contributors too; by default they are set aside "
    "and counted (docs/attribution.md)",
)


def format_option(schema: str) -> Any:
    """`--format` for a command whose result has `schema`: its help lists the registry's
    formats for that schema."""
    return typer.Option(None, "--format", "-f", help=render.help_text(schema))


def terminal_width() -> int:
    return max(80, min(160, shutil.get_terminal_size((100, 24)).columns))


def trace_inputs(*traces: Path | None) -> list[Path]:
    """Traces with their sidecars: the files an output must not overwrite."""
    out = []
    for trace in traces:
        if trace is not None:
            out += [trace, trace.with_suffix(SIDECAR_SUFFIX)]
    return out


def check_output(
    fmt: str | None, output: Path | None, schema: str, inputs: Iterable[Path | None] = ()
) -> str:
    """Before anything is read: the format to write, and the output checked writable and not
    one of `inputs`."""
    chosen = render.choose(fmt, output, schema)
    if output is not None:
        check_writable(output, inputs)
    return chosen


def emit(
    result: Result,
    fmt: str,
    output: Path | None,
    *,
    table: str | None = None,
    inputs: Iterable[Path | None] = (),
) -> None:
    """Render `result` in `fmt` (from check_output) to stdout or `output`."""
    text = render.render(result, fmt, width=terminal_width(), table=table)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_text(output, text, inputs)
        typer.echo(f"wrote {output}", err=True)
