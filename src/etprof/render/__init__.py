"""Renderers turn a Result into text. One registry drives every command's `--format` choices and
the guess of the format from an output file's extension. Renderers only format; they never
compute.

Each renderer declares the results it accepts, by their schema name ("etprof.breakdown"): either
exactly a set of them (`only`), or every result but some (`never`). A command names the schema of
the result it will produce; its formats are the renderers accepting that schema, in registry
order, the first being its default. So a new renderer appears in every command that can use it,
and `-o x.html` writes HTML or is refused, never plain text in an .html file. (What a command
offers is what the registry says; the Python API may still render any result with any general
renderer, e.g. a report as JSON.)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from etprof.errors import InputError
from etprof.result import Result

# schemas of results that only some renderers fit
TIMELINE = "etprof.timeline"  # thousands of slices: for trace viewers and tools, not reading
REPORT = "etprof.report"  # the charts page: `etprof report` writes HTML only
HISTORY = "etprof.history"  # stored runs: the only result ExecuTorch's rows describe


@dataclass(frozen=True)
class Renderer:
    name: str
    extensions: tuple[str, ...]
    module: str  # imported on first use, so `--format table` never loads the HTML code
    describes: str  # what the format is, for messages: "a text table"
    only: frozenset[str] = frozenset()  # if given, the only schemas it renders
    never: frozenset[str] = frozenset()  # schemas it does not render
    function: str = "render"

    def accepts(self, schema: str) -> bool:
        return schema in self.only if self.only else schema not in self.never

    def load(self) -> Callable[..., str]:
        fn: Callable[..., str] = getattr(importlib.import_module(self.module), self.function)
        return fn


RENDERERS: dict[str, Renderer] = {
    r.name: r
    for r in (
        # a timeline's own format comes first: its default, and what `.json` means for it
        Renderer(
            "chrome",
            (".json",),
            "etprof.render.chrome",
            "a Chrome trace",
            only=frozenset({TIMELINE}),
        ),
        Renderer(
            "table",
            (".txt",),
            "etprof.render.table",
            "a text table",
            never=frozenset({TIMELINE, REPORT}),
        ),
        Renderer(
            "json", (".json",), "etprof.render.json", "etprof JSON", never=frozenset({REPORT})
        ),
        Renderer("csv", (".csv",), "etprof.render.csv", "CSV", never=frozenset({REPORT})),
        Renderer(
            "markdown",
            (".md",),
            "etprof.render.markdown",
            "Markdown",
            never=frozenset({TIMELINE, REPORT}),
        ),
        Renderer(
            "html",
            (".html", ".htm"),
            "etprof.render.html",
            "an HTML page",
            never=frozenset({TIMELINE}),
        ),
        # ExecuTorch's benchmark database rows (v3 JSON, docs/store.md); no extension, so
        # ".json" keeps meaning etprof JSON
        Renderer(
            "executorch-v3",
            (),
            "etprof.render.executorch_v3",
            "ExecuTorch benchmark rows",
            only=frozenset({HISTORY}),
        ),
    )
}


def names() -> list[str]:
    return list(RENDERERS)


def formats(schema: str) -> tuple[str, ...]:
    """The formats a result of `schema` can be written in; the first is the default."""
    found = tuple(r.name for r in RENDERERS.values() if r.accepts(schema))
    if not found:
        raise ValueError(f"no renderer accepts {schema}")
    return found


def help_text(schema: str) -> str:
    """`--format`'s help for a command producing `schema`."""
    choices = formats(schema)
    listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
    return f"{listed} (default: from the output's extension, else {choices[0]})"


def choose(fmt: str | None, output: Path | None, schema: str) -> str:
    """The format to write a result of `schema` in: the explicit one, else the one the output's
    extension names, else the schema's default. Refuses a format that cannot show the result,
    an extension that names one, and an explicit format that contradicts a known extension."""
    allowed = formats(schema)
    what = schema.removeprefix("etprof.")
    if fmt is not None:
        fmt = fmt.strip().lower()
        if fmt not in allowed:
            raise InputError(
                f"unknown format '{fmt}' for a {what}", f"use one of: {', '.join(allowed)}"
            )
    suffix = output.suffix.lower() if output is not None else ""
    by_suffix = [r for r in RENDERERS.values() if suffix and suffix in r.extensions]
    if by_suffix and fmt is not None and fmt not in [r.name for r in by_suffix]:
        raise InputError(
            f"--format {fmt} does not match {output}, whose extension means "
            f"{by_suffix[0].describes}",
            f"drop --format, or name the file with {RENDERERS[fmt].extensions[0]}"
            if RENDERERS[fmt].extensions
            else "drop --format",
        )
    if fmt is not None:
        return fmt
    fitting = [r.name for r in by_suffix if r.name in allowed]
    if fitting:
        return fitting[0]
    if by_suffix:
        ext = ", ".join(dict.fromkeys(e for n in allowed for e in RENDERERS[n].extensions))
        meanings = " or ".join(dict.fromkeys(r.describes for r in by_suffix))
        raise InputError(
            f"{output} does not end in {ext or 'a known extension'} (a {what} is "
            f"written as {', '.join(allowed)}); {suffix} means {meanings}",
            f"name the file with {ext.split(', ')[0]}" if ext else "drop -o",
        )
    return allowed[0]


def render(result: Result, fmt: str, *, width: int = 100, table: str | None = None) -> str:
    renderer = RENDERERS.get(fmt)
    if renderer is None or (renderer.only and not renderer.accepts(result.schema)):
        allowed = formats(result.schema)
        raise InputError(
            f"unknown format '{fmt}' for a {result.schema.removeprefix('etprof.')}",
            f"use one of: {', '.join(allowed)}",
        )
    return renderer.load()(result, width=width, table=table)
