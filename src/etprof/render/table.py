"""Terminal tables: plain text at a fixed width, so output is testable and cheap to produce.

Written here rather than with rich: rich measured ~0.2 s to lay out one breakdown, a fifth of
the start-up budget of a command that only reads a trace (see docs/reader.md).
"""

from __future__ import annotations

import math
import textwrap

import pandas as pd

from etprof.result import Result

_GAP = "  "
_UNITS = ("ms", "us", "ns", "pct", "x", "ratio", "p")  # a column ending in one keeps decimals


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _column_formatter(name: str, series: pd.Series) -> tuple[bool, object]:
    """(right-aligned?, value -> text) for one column, chosen from its dtype and its values."""
    if pd.api.types.is_bool_dtype(series):
        return False, lambda v: "-" if _is_missing(v) else ("yes" if v else "no")
    if not pd.api.types.is_numeric_dtype(series):
        return False, lambda v: "-" if _is_missing(v) else str(v)
    if pd.api.types.is_integer_dtype(series):
        return True, lambda v: "-" if _is_missing(v) else str(v)
    if str(name).lower().replace("_", " ") in ("p value", "p"):
        # two significant digits: 0.000 would hide how small a p-value is
        return True, lambda v: "-" if _is_missing(v) else f"{float(v):.2g}"
    values = series.dropna().to_numpy(dtype=float)
    unitless = str(name).lower().replace("_", " ").split(" ")[-1] not in _UNITS
    if unitless and len(values) and bool((values == values.round()).all()):
        # counts that an average made float (42.0 operators per iteration) read as counts
        return True, lambda v: "-" if _is_missing(v) else f"{v:,.0f}"
    if str(name).lower().replace("_", " ").split(" ")[-1] in ("ms", "us", "ns"):
        return True, lambda v: "-" if _is_missing(v) else _decimal(float(v))
    return (
        True,
        lambda v: "-" if _is_missing(v) else (f"{v:,.3f}" if abs(float(v)) < 1e6 else f"{v:,.0f}"),
    )


def _decimal(v: float) -> str:
    """A duration: three decimals, or as many as three significant digits need (0.00512, not
    0.005: a 28 µs program's buckets must not read as zeros); whole numbers from a million."""
    if abs(v) >= 1e6:
        return f"{v:,.0f}"
    if 0 < abs(v) < 0.1:
        return f"{v:,.{min(6, 2 - math.floor(math.log10(abs(v))))}f}"
    return f"{v:,.3f}"


def _fit(natural: list[int], floor: list[int], right: list[bool], width: int) -> list[int]:
    """Column widths within `width`: shrink the widest text column until the row fits."""
    widths = list(natural)
    budget = width - 1 - len(_GAP) * (len(widths) - 1)
    while sum(widths) > budget:
        shrinkable = [i for i, w in enumerate(widths) if w > floor[i] and not right[i]]
        if not shrinkable:  # only numbers left: let the line run long rather than cut a value
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def format_table(title: str, frame: pd.DataFrame, width: int = 100) -> str:
    """One titled table: header, rule, rows; numbers right-aligned, long text wrapped."""
    headers = [str(c).replace("_", " ") for c in frame.columns]
    formats = [_column_formatter(str(c), frame[c]) for c in frame.columns]
    right = [r for r, _ in formats]
    cells = [
        [fmt(v) for v in frame[c].tolist()]  # type: ignore[operator]
        for c, (_, fmt) in zip(frame.columns, formats, strict=False)
    ]
    natural = [
        max([len(h)] + [len(s) for s in col]) for h, col in zip(headers, cells, strict=False)
    ]
    # a column never shrinks below its header's longest word, its widest number, or (text) its
    # longest word up to 24 characters: module paths wrap at dots only when they must
    floor = [
        max(
            max((len(w) for w in h.split()), default=1),
            max((len(s) for s in col), default=0)
            if r
            else min(24, max((len(w) for s in col for w in s.split()), default=0)),
        )
        for h, col, r in zip(headers, cells, right, strict=False)
    ]
    widths = _fit(natural, floor, right, width)

    def lines_of(row: list[str]) -> list[str]:
        wrapped = [_wrap(s, w) for s, w in zip(row, widths, strict=False)]
        height = max(len(w) for w in wrapped)
        out = []
        for k in range(height):
            parts = []
            for col, (w, r) in enumerate(zip(widths, right, strict=False)):
                piece = wrapped[col][k] if k < len(wrapped[col]) else ""
                parts.append(piece.rjust(w) if r else piece.ljust(w))
            out.append(" " + _GAP.join(parts).rstrip())
        return out

    out = [title]
    out += lines_of(headers)
    out.append(" " + _GAP.join("─" * w for w in widths))
    for i in range(len(frame)):
        out += lines_of([col[i] for col in cells])
    if not len(frame):
        out.append(" (no rows)")
    return "\n".join(out) + "\n"


def render(result: Result, *, width: int = 100, table: str | None = None) -> str:
    parts: list[str] = []
    headline = getattr(result, "headline", None)  # optional: a one-line answer shown first
    if headline is not None:
        parts.append(_paragraph(headline(), width) + "\n")
    for name, frame in result.tables().items():
        if table is None or table == name:
            parts.append(format_table(name, frame, width) + "\n")
    parts.extend(_paragraph(note, width) for note in result.notes())
    return "".join(parts)


def _paragraph(text: str, width: int) -> str:
    """Prose wrapped at the width, its own line breaks kept."""
    return "".join(
        textwrap.fill(line, width, break_on_hyphens=False, break_long_words=False) + "\n"
        for line in text.split("\n")
    )
