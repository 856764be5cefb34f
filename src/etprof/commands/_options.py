"""The options every trace-reading command shares, declared once: the program of a trace made by
another runner (`--pte`), its ETRecord (`--etrecord`), the method, and their one check.

A command reading two traces takes them per side (`--pte-a`/`--pte-b`); the help and the check
are the same."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from etprof.errors import InputError

METHOD_HELP = (
    "the method to analyse, for a program with several (default: each in turn, or the first "
    "where the output holds one)"
)


def pte_option(*names: str, whose: str = "the trace's") -> Any:
    return typer.Option(
        None,
        *(names or ("--pte",)),
        help=f"{whose} .pte, for a trace made by another runner (its instruction table)",
    )


def etrecord_option(*names: str, whose: str = "the trace's", needs: str = "--pte") -> Any:
    return typer.Option(
        None,
        *(names or ("--etrecord",)),
        help=f"{whose} ETRecord, for module paths (needs {needs})",
    )


def method_option() -> Any:
    return typer.Option(None, "--method", help=METHOD_HELP)


@dataclass(frozen=True)
class TraceArgs:
    """A trace as a command was given it: the file, and the program and ETRecord passed for it."""

    trace: Path
    pte: Path | None = None
    etrecord: Path | None = None
    side: str = ""  # "-a"/"-b" for the sides of a comparison, as the options are named

    def check(self) -> None:
        """Refused before anything is read: a folder for a trace, an ETRecord without its program."""
        if self.trace.is_dir():
            raise InputError(f"{self.trace} is a directory, not a trace", "pass an .etdp file")
        if self.etrecord is not None and self.pte is None:
            raise InputError(
                f"--etrecord{self.side} needs --pte{self.side} too",
                "pass the .pte the trace was made from",
            )
