"""The `etprof` command line. Thin: each subcommand lives in etprof.commands.<name> and only
checks inputs, loads, analyses, renders and writes. Errors are caught once, here."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from etprof import commands
from etprof.errors import EtprofError

app = typer.Typer(
    name="etprof",
    help="Profile ExecuTorch programs: where run-model time goes between XNNPACK and portable "
    "kernels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Profile ExecuTorch programs: where run-model time goes between XNNPACK and portable
    kernels. Start with `etprof demo`, or `etprof run MODEL.pte`."""


def _register_commands() -> None:
    """Each module of etprof.commands exposes `register(app)`; adding a module adds a command."""
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)


_register_commands()


def main() -> None:
    try:
        app()
    except EtprofError as exc:
        print(f"etprof: error: {exc.one_line()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("etprof: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
