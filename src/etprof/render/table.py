"""Terminal tables (rich), rendered to a string at a fixed width so output is testable."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console
from rich.table import Table

from etprof.result import Result


def _fmt(value: object) -> str:
    if value is None or value is pd.NA:  # missing in a nullable column (e.g. Int64)
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.3f}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def frame_table(title: str, frame: pd.DataFrame) -> Table:
    t = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for col in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        # spaced headers may wrap; underscores would be cut with an ellipsis at narrow widths
        t.add_column(str(col).replace("_", " "), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        t.add_row(*(_fmt(v) for v in row))
    return t


def render(result: Result, *, width: int = 100, table: str | None = None) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=False, color_system=None,
                      highlight=False, soft_wrap=False)
    headline = getattr(result, "headline", None)  # optional: a one-line answer shown first
    if headline is not None:
        console.print(headline(), markup=False)
        console.print()
    for name, frame in result.tables().items():
        if table is None or table == name:
            console.print(frame_table(name, frame))
            console.print()
    for note in result.notes():
        console.print(note, markup=False)
    return buf.getvalue()
