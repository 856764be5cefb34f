"""Hide the C-level log noise that the ExecuTorch runtime and torchao print on import and load.

The noise is written straight to file descriptors 1 and 2 by C++ code, so Python-level redirection
cannot catch it: we point the descriptors at a temporary file while heavy code runs. The CLI keeps
a handle on the real terminal (:func:`terminal`) for its progress bar.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import IO

_saved_stderr: IO[str] | None = None


def terminal() -> IO[str]:
    """A stream on the real stderr, usable while the descriptors are silenced."""
    global _saved_stderr
    if _saved_stderr is None:
        _saved_stderr = os.fdopen(os.dup(2), "w", buffering=1)
    return _saved_stderr


@contextlib.contextmanager
def silenced(enabled: bool = True) -> Iterator[list[str]]:
    """Silence fds 1 and 2 and Python warnings; yields a list filled with what was captured."""
    captured: list[str] = []
    if not enabled:
        yield captured
        return
    terminal()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            logging.disable(previous)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", errors="replace"))
