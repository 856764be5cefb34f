"""HTML: one self-contained page (inline CSS and SVG; no script, no font, nothing fetched).

An :class:`etprof.analyzers._report.Report` becomes the full report with charts (see
:mod:`etprof.render._html_report`); any other result becomes a plain page of its headline,
tables and notes, so every result can be written as HTML. All text is escaped.
"""

from __future__ import annotations

import math
import re
from html import escape
from importlib import resources

import pandas as pd

from etprof.result import Result

_BACKTICKS = re.compile(r"`([^`<>]+)`")


def render(result: Result, *, width: int = 100, table: str | None = None) -> str:
    from etprof.analyzers._report import Report

    if isinstance(result, Report):
        from etprof.render._html_report import report_body

        return page(result.title, report_body(result))
    if result.schema == "etprof.history":  # stored runs over time: a chart per series
        from etprof.render._html_history import history_body

        return page("etprof history", history_body(result))
    return page(f"etprof: {result.schema}", generic_body(result, table))


def page(title: str, body: str) -> str:
    css = resources.files("etprof").joinpath("data/report.css").read_text(encoding="utf-8")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # nothing on the page may reach the network, even by accident
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>{escape(title)}</title>\n<style>\n{css}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def generic_body(result: Result, only: str | None = None) -> str:
    parts = [f'<header class="page"><h1>{escape(result.schema)}</h1></header>']
    headline = getattr(result, "headline", None)
    if headline is not None:
        parts.append(f'<p class="verdict">{escape(headline())}</p>')
    for name, frame in result.tables().items():
        if only is None or only == name:
            parts.append(
                f'<section class="card"><h2>{escape(name)}</h2>{frame_table(frame)}</section>'
            )
    parts.append(notes_list(result.notes()))
    return "\n".join(parts)


def fmt(value: object) -> str:
    """A cell as text: the terminal table's conventions ('-' for missing, 3 decimals)."""
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.3f}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def fmt_p(value: object) -> str:
    """A p-value: two significant digits (0.000 would hide how small it is)."""
    if isinstance(value, float) and not math.isnan(value):
        return f"{value:.2g}"
    return fmt(value)


def frame_table(
    frame: pd.DataFrame, *, total_last: bool = False, rename: dict[str, str] | None = None
) -> str:
    """A DataFrame as an HTML table: numbers right-aligned, every cell escaped."""
    rename = rename or {}
    numeric = [
        pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        for c in frame.columns
    ]
    formats = [fmt_p if str(c) == "p_value" else fmt for c in frame.columns]
    head = "".join(
        f"<th{' class=num' if n else ''}>"
        f"{escape(rename.get(str(c), str(c).replace('_', ' ')))}</th>"
        for c, n in zip(frame.columns, numeric, strict=False)
    )
    rows = []
    last = len(frame) - 1
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = "".join(
            f"<td{' class=num' if n else ''}>{escape(formats[j](v))}</td>"
            for j, (v, n) in enumerate(zip(row, numeric, strict=False))
        )
        cls = ' class="total"' if total_last and i == last else ""
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def prose(text: str) -> str:
    """Escaped text, with `commands` in backticks shown as code."""
    return _BACKTICKS.sub(r"<code>\1</code>", escape(text))


def notes_list(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(
        f"<li{' class=warning' if n.startswith('warning') else ''}>{prose(n)}</li>" for n in notes
    )
    return f'<ul class="notes">{items}</ul>'
