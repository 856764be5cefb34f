"""Renderers turn a Result into text. One registry drives `--format` and guessing the format
from an output file's extension. Renderers only format; they never compute.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from etprof.errors import InputError
from etprof.result import Result


@dataclass(frozen=True)
class Renderer:
    name: str
    extensions: tuple[str, ...]
    module: str  # imported on first use, so `--format table` never loads the HTML code
    function: str = "render"

    def load(self) -> Callable[..., str]:
        fn: Callable[..., str] = getattr(importlib.import_module(self.module), self.function)
        return fn


RENDERERS: dict[str, Renderer] = {
    r.name: r
    for r in (
        Renderer("table", (".txt",), "etprof.render.table"),
        Renderer("json", (".json",), "etprof.render.json"),
        Renderer("csv", (".csv",), "etprof.render.csv"),
        Renderer("markdown", (".md",), "etprof.render.markdown"),
        Renderer("html", (".html", ".htm"), "etprof.render.html"),
        # only `etprof timeline` offers it; no extension, so ".json" keeps meaning etprof JSON
        Renderer("chrome", (), "etprof.render.chrome"),
    )
}


def names() -> list[str]:
    return list(RENDERERS)


def choose(fmt: str | None, output: Path | None, allowed: tuple[str, ...] | None = None) -> str:
    """The format to use: the explicit one, else the output's extension, else a table."""
    allowed = allowed or tuple(RENDERERS)
    if fmt is None and output is not None:
        fmt = next((r.name for r in RENDERERS.values() if output.suffix.lower() in r.extensions
                    and r.name in allowed), None)
    fmt = fmt or "table"
    if fmt not in allowed:
        raise InputError(f"unknown format '{fmt}'", f"use one of: {', '.join(allowed)}")
    return fmt


def render(result: Result, fmt: str, *, width: int = 100, table: str | None = None) -> str:
    if fmt not in RENDERERS:
        raise InputError(f"unknown format '{fmt}'", f"use one of: {', '.join(RENDERERS)}")
    return RENDERERS[fmt].load()(result, width=width, table=table)
