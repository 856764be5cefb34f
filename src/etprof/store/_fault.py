"""Injected faults for the tests of crash safety: ``ETPROF_TEST_KILL_AT=<point>`` kills the
process at that point with SIGKILL, as ``kill -9`` or a power cut would (nothing runs after it:
no ``finally``, no atexit). Points: ``duckdb:inserted:<table>``, ``lake:staged:<table>``,
``lake:published:<table>``, ``lake:before-marker``."""

from __future__ import annotations

import os
import signal

ENV = "ETPROF_TEST_KILL_AT"


def fault(point: str) -> None:
    if os.environ.get(ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)
