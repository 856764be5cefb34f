"""Markdown: every table as a GitHub-flavoured table, for pasting into reviews."""

from __future__ import annotations

import pandas as pd

from etprof.result import Result


def _cell(value: object) -> str:
    if value is None or value is pd.NA:  # missing in a nullable column (e.g. Int64)
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|")


def frame_to_markdown(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def render(result: Result, *, width: int = 100, table: str | None = None) -> str:
    parts = []
    headline = getattr(result, "headline", None)  # optional: a one-line answer shown first
    if headline is not None:
        parts.append(f"**{headline()}**\n")
    for name, frame in result.tables().items():
        if table is None or table == name:
            parts.append(f"### {name}\n\n{frame_to_markdown(frame)}\n")
    parts.extend(f"> {n}" for n in result.notes())
    return "\n".join(parts) + "\n"
