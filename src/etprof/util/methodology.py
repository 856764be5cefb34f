"""The measurement methodology's defaults, in one place (docs/methodology.md).

The seed (ExecuTorch's XNNPACK README, 2023) ran 60 iterations, dropped the first 10 and averaged
the other 50, on one thread. `etprof run` adds sessions: the program loaded afresh several times,
spread over some seconds, so that the machine's drift shows as variation between sessions.
"""

from __future__ import annotations

ITERS = 60  # iterations per session (the seed: 60)
WARMUP = 10  # first iterations dropped per session (the seed: 10)
THREADS = 1  # runtime threads (the seed: 1)
AUTO_SESSIONS = 5  # sessions of `--sessions auto`
AUTO_BUDGET_S = 20.0  # ... unless that many would take longer than this
SPREAD_S = 10.0  # sessions are spread over at least this long
