"""The `etprof` command line. Thin: each subcommand lives in etprof.commands.<name> and only
checks inputs, loads, analyses, renders and writes. Errors are caught once, here."""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys
from types import FrameType

import typer

from etprof import commands
from etprof.errors import EtprofError, Terminated

try:  # typer 0.28 carries its own click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover -- older typer uses click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]

app = typer.Typer(
    name="etprof",
    help="Profile ExecuTorch programs: where run-model time goes between XNNPACK and portable "
    "kernels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _show_version(wanted: bool) -> None:
    if wanted:
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_show_version,
        help="print etprof's, executorch's and torch's versions",
    ),
) -> None:
    """Profile ExecuTorch programs: where run-model time goes between XNNPACK and portable
    kernels. Start with `etprof demo`, or `etprof run MODEL.pte`."""


def version_line() -> str:
    """`etprof 0.1.0, executorch 1.5.1, torch 2.13.0+cpu, Python 3.11.7`, read from the
    installed packages' metadata (importing torch would take seconds)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from etprof.util.version import __version__

    parts = [f"etprof {__version__}"]
    for package in ("executorch", "torch"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} not installed")
    return ", ".join(parts) + f", Python {platform.python_version()}"


def _register_commands() -> None:
    """Each module of etprof.commands exposes `register(app)`; adding a module adds a command."""
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)


_register_commands()


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = app(prog_name="etprof", standalone_mode=False)
    except EtprofError as exc:
        print(f"etprof: error: {exc.one_line()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()  # `etprof` alone: the help
        sys.exit(exc.exit_code)
    except click_errors.ClickException as exc:
        print(f"etprof: error: {usage_line(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("etprof: interrupted", file=sys.stderr)
        sys.exit(130)
    except Terminated as exc:
        print("etprof: terminated", file=sys.stderr)
        sys.exit(128 + exc.signum)
    if code == 130:  # typer turns Ctrl-C into exit status 130
        print("etprof: interrupted", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


def usage_line(exc: click_errors.ClickException) -> str:
    """Typer's (click's) own usage errors in etprof's one-line form, with the help to read."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    where = f"`{ctx.command_path} --help`" if ctx is not None else "`etprof --help`"
    return f"{message}; see {where}"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)  # unwinds like Ctrl-C: temporary files and children are cleaned up


if __name__ == "__main__":
    main()
