"""What a session measures besides its ETDump: resident memory, and the program run untraced.

The session body (etprof.record.runner) calls the probe around its load and each iteration:

1. ``before_load``, ``loaded(module)``: resident memory before and after the traced load; the
   peak is reset so that the warm-up's high-water mark covers the first runs only.
2. ``measuring(run)`` at the first measured iteration: the warm-up's peak is taken (the traced
   program alone: XNNPACK allocates its runtime and packed weights at the first run, not at
   load); then (unless untraced timing is off) the program is loaded a second time without
   ETDump and warmed up as many times, and what that copy added is noted; the peak is reset.
3. ``run(i, run)`` for every iteration: the traced call, and from the first measured iteration
   on, the untraced one too, taking turns which goes first, each timed by the wall clock. The
   two are called the same way from the same thread, so their difference is what ETDump's
   recording costs (docs/memory.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from etprof.record.rss import MemorySampler, peak_bytes, rss_bytes
from etprof.record.session import SessionResult
from etprof.trace.sidecar import SessionMemory, UntracedTimes

Run = Callable[[Any], object]  # one iteration: calls the method on the module it is given


class SessionProbe:
    def __init__(self, load_untraced: Callable[[], Any] | None, warmup: int) -> None:
        self._load_untraced = load_untraced
        self._warmup = warmup
        self.memory = MemorySampler()
        self._traced: Any = None
        self._untraced: Any = None
        self.traced_ms: list[float] = []
        self.untraced_ms: list[float] = []

    def before_load(self) -> None:
        self.memory.before_load = rss_bytes()

    def loaded(self, module: Any) -> None:
        self._traced = module
        # reset, then read: the phase's peak then covers the reading (memory freed between a
        # reading and a later reset would leave the peak below the start)
        self.memory.start_phase()
        self.memory.after_load = rss_bytes()

    def load_beside(self, load: Callable[[], Any]) -> Any:
        """Load the untraced copy now (an LLM session: it runs whole sequences of its own);
        what it added is noted."""
        before = rss_bytes()
        module = load()
        after = rss_bytes()
        if before is not None and after is not None:
            self.memory.untraced_copy = after - before
        return module

    def measuring(self, run: Run) -> None:
        self.memory.warmup_peak = peak_bytes()
        if self._load_untraced is not None:
            before = rss_bytes()
            self._untraced = self._load_untraced()
            for _ in range(max(1, self._warmup)):  # the runtime allocates most at the first run
                run(self._untraced)
            after = rss_bytes()
            if before is not None and after is not None:
                self.memory.untraced_copy = after - before
        self.memory.start_phase()  # reset, then read (as in `loaded`)
        self.memory.measured_start = rss_bytes()

    def run(self, i: int, run: Run) -> None:
        if self._untraced is None or i < self._warmup:
            run(self._traced)
            return
        order = ((self._traced, self.traced_ms), (self._untraced, self.untraced_ms))
        for module, times in order if i % 2 == 0 else order[::-1]:
            began = time.perf_counter()
            run(module)
            times.append(1e3 * (time.perf_counter() - began))

    def finish(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(memory samples, untraced timings or None) as the session reports them."""
        self.memory.measured_peak = peak_bytes()
        untraced = None
        if self._untraced is not None:
            untraced = {"traced_ms": self.traced_ms, "untraced_ms": self.untraced_ms}
        return self.memory.to_dict(), untraced


def session_samples(results: Sequence[SessionResult]) -> dict[str, Any]:
    """``run.memory`` and ``run.untraced`` of the metadata, from the sessions' reports."""
    memory = tuple(SessionMemory(**r.memory) for r in results if r.memory is not None)
    untraced = tuple(
        UntracedTimes(tuple(r.untraced["traced_ms"]), tuple(r.untraced["untraced_ms"]))
        for r in results
        if r.untraced is not None
    )
    return {
        "memory": memory if len(memory) == len(results) else (),
        "untraced": untraced if len(untraced) == len(results) else (),
    }
