"""One error hierarchy: every user mistake becomes an EtprofError, caught once in the CLI."""

from __future__ import annotations

# control characters (line breaks above all) as Python writes them in a string literal
_ESCAPED = {c: repr(chr(c))[1:-1] for c in [*range(32), 127] if chr(c) != " "}


class EtprofError(Exception):
    """A problem the user can fix: `problem` says what is wrong, `fix` what to do about it."""

    exit_code = 2

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def one_line(self) -> str:
        """The problem and its fix on one line: a line break in a value the message quotes (a
        tag, a file name) is shown escaped, never as a second line."""
        text = f"{self.problem}; {self.fix}" if self.fix else self.problem
        return text.translate(_ESCAPED)


class InputError(EtprofError):
    """A file or argument given by the user cannot be used."""


class TraceFormatError(InputError):
    """A file is not a readable ETDump trace."""


class ProgramFormatError(InputError):
    """A file is not a readable ExecuTorch program (.pte)."""


class RuntimeUnavailableError(EtprofError):
    """The ExecuTorch runtime (or one of its backends) is not available here."""

    exit_code = 3


class MismatchError(EtprofError):
    """Two inputs that must describe the same thing do not."""


class OutputError(EtprofError):
    """An output file cannot be written (or must not be: it is an input, a directory, ...)."""


class CorruptTraceError(TraceFormatError):
    """A trace parses, but its events cannot be real (an event ending before it starts, a
    kernel outside its operator call, ...): numbers computed from it would be wrong."""


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread so that every `finally` and context manager
    cleans up (temporary files, session children), as Ctrl-C's KeyboardInterrupt does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
