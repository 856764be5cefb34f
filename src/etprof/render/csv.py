"""CSV: one of the result's tables (the first unless `table` names another), as pandas reads it."""

from __future__ import annotations

from etprof.errors import InputError
from etprof.result import Result


def render(result: Result, *, width: int = 100, table: str | None = None) -> str:
    tables = result.tables()
    if not tables:
        return ""
    name = table or next(iter(tables))
    if name not in tables:
        raise InputError(f"no table '{name}' in this result", f"use one of: {', '.join(tables)}")
    text: str = tables[name].to_csv(index=False, lineterminator="\n")
    return text
