"""The range of every numeric command-line option, checked before any work is done.

A value outside its range is refused in one line naming the option, its range and why: a
runaway `--iters 1000000000000` would otherwise run for minutes and then crash the runtime
(its ETDump buffer), `--threads 1000000000` abort it, and `demo --iters -1` export for a minute
before being refused. docs/guarantees.md lists these ranges (a test keeps them in step).
"""

from __future__ import annotations

from dataclasses import dataclass

from etprof.errors import InputError


@dataclass(frozen=True)
class Limit:
    """`low <= value <= high` for option `flag`; `why` says where the bound comes from."""

    flag: str
    low: float
    high: float
    why: str

    def check(self, value: float | None) -> None:
        if value is None:
            return
        if value != value or not self.low <= value <= self.high:  # NaN is in no range
            raise InputError(
                f"{self.flag} {value:g} is outside {self.range} ({self.why})",
                f"pass {self.flag} between {number(self.low)} and {number(self.high)}",
            )

    @property
    def range(self) -> str:
        return f"{number(self.low)} .. {number(self.high)}"


def number(value: float) -> str:
    """`10,000`, `4,294,967,295`, `0.5`: as docs/guarantees.md writes a bound."""
    return f"{int(value):,}" if value == int(value) else f"{value:,g}"


MAX_ITERS = 10_000
MAX_SESSIONS = 100
MAX_THREADS = 256

LIMITS = {
    limit.flag: limit
    for limit in (
        Limit(
            "--iters",
            1,
            MAX_ITERS,
            "a session holds the ETDump of all its iterations in "
            "memory, and a trace is at most 2 GiB",
        ),
        Limit(
            "--warmup",
            0,
            1_000_000,
            "iterations dropped as warm-up; `run`, `bench` and `demo` also want fewer than --iters",
        ),
        Limit("--threads", 1, MAX_THREADS, "threads of the runtime's pool"),
        Limit("--sessions", 1, MAX_SESSIONS, "sessions each load the program once"),
        Limit("--spread", 0, 3600, "seconds the sessions span"),
        Limit(
            "--prefill", 1, 1_000_000, "prompt tokens, also capped to the program's sequence length"
        ),
        Limit(
            "--decode",
            0,
            1_000_000,
            "generated tokens, also capped to the program's sequence length",
        ),
        Limit("--top", 1, 10_000, "rows listed"),
        Limit("--noise", 0, 100, "a percentage"),
        Limit("--seed", 0, 2**32 - 1, "a bootstrap seed is 32 bits"),
        Limit("--fail-if-slower", 0, 1000, "a percentage"),
        Limit("--fail-if-faster", 0, 1000, "a percentage"),
        Limit("--min-sessions", 1, MAX_SESSIONS, "sessions on a side"),
        Limit("--window", 1, 10_000, "stored runs pooled"),
        Limit("--wait", 0, 3600, "seconds to wait for another process's lock on the store"),
        Limit("--iteration", 0, 10**9, "an iteration's index, 0-based"),
    )
}


def check_limits(**values: float | None) -> None:
    """Refuse any of `values` (keyed by option name, `fail_if_slower` for
    `--fail-if-slower`) outside its range; None (an option not given) passes."""
    for name, value in values.items():
        LIMITS["--" + name.replace("_", "-")].check(value)


def check_iters(iters: int | None, warmup: int | None) -> None:
    """Iterations and warm-up each in range, and something left to measure."""
    check_limits(iters=iters, warmup=warmup)
    if iters is not None and warmup is not None and iters <= warmup:
        raise InputError(
            f"--iters {iters} is not greater than --warmup {warmup}: nothing would be measured",
            f"use e.g. --iters {warmup + 50} (the seed runs 60 and drops 10)",
        )
