"""The CI gate of `etprof diff --fail-if-slower PCT / --fail-if-faster PCT`: pass, fail or
inconclusive, each with its own exit code (docs/diff.md, "The CI gate").

It judges a :class:`~etprof.analyzers.stats.significance.Comparison`, never the samples: significance is
computed once, in :mod:`etprof.analyzers.stats.significance`. For a threshold ``T`` in the gated direction:

- **fail**: the verdict is a significant change in that direction and the change is beyond
  ``T`` (``change_pct > T`` for slower, ``< -T`` for faster);
- **pass**: the comparison rules a change beyond ``T`` out: the confidence interval stays on
  the near side of ``T``, the noise band is not wider than ``T`` (else a change of ``T`` could
  never be called), and there are enough sessions for the interval to cover run-to-run noise;
- **inconclusive**: anything else, with the reason. Never silently a pass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from etprof.analyzers.stats.significance import FASTER, SLOWER, Comparison
from etprof.errors import InputError

PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"
# 1 is Python's code for a crash, 2 etprof's for a user error, 3 a missing runtime
EXIT_CODES = {PASS: 0, FAIL: 4, INCONCLUSIVE: 5}
DEFAULT_MIN_SESSIONS = 2


@dataclass(frozen=True)
class GateCheck:
    """One threshold judged: `direction` is "slower" or "faster"."""

    direction: str
    threshold_pct: float
    outcome: str  # PASS | FAIL | INCONCLUSIVE
    reason: str

    def sentence(self) -> str:
        return f"--fail-if-{self.direction} {self.threshold_pct:g}: {self.outcome} ({self.reason})"


@dataclass(frozen=True)
class Gate:
    checks: tuple[GateCheck, ...]
    min_sessions: int

    @property
    def outcome(self) -> str:
        outcomes = {c.outcome for c in self.checks}
        return FAIL if FAIL in outcomes else INCONCLUSIVE if INCONCLUSIVE in outcomes else PASS

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "min_sessions": self.min_sessions,
            "checks": [asdict(c) for c in self.checks],
        }


def check_thresholds(slower: float | None, faster: float | None, min_sessions: int) -> None:
    for name, value in (("--fail-if-slower", slower), ("--fail-if-faster", faster)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InputError(
                f"{name} {value} is not a percentage >= 0",
                f"use e.g. {name} 5 (a change of more than 5%)",
            )
    if min_sessions < 1:
        raise InputError(f"--min-sessions {min_sessions} is less than 1", "use 1 or more")


def judge(
    c: Comparison,
    *,
    slower: float | None = None,
    faster: float | None = None,
    min_sessions: int = DEFAULT_MIN_SESSIONS,
) -> Gate | None:
    """The gate for these thresholds (percent), None when neither is given."""
    check_thresholds(slower, faster, min_sessions)
    checks = [
        _one(c, direction, t, min_sessions)
        for direction, t in ((SLOWER, slower), (FASTER, faster))
        if t is not None
    ]
    return Gate(tuple(checks), min_sessions) if checks else None


def _one(c: Comparison, direction: str, threshold: float, min_sessions: int) -> GateCheck:
    sign = 1.0 if direction == SLOWER else -1.0
    change, low, high = sign * c.change_pct, sign * c.ci_low_pct, sign * c.ci_high_pct
    if direction == FASTER:
        low, high = high, low  # the interval, seen in the gated direction
    band = c.method.band_pct
    if not all(math.isfinite(v) for v in (change, low, high)):
        return GateCheck(
            direction,
            threshold,
            INCONCLUSIVE,
            "no relative change exists (a baseline time of zero)",
        )
    if c.verdict == direction and change > threshold:
        return GateCheck(
            direction,
            threshold,
            FAIL,
            f"{direction} by {abs(c.change_pct):.1f}%, significant, beyond {threshold:g}%",
        )
    fewest = min(c.sessions_a, c.sessions_b)
    if fewest < min_sessions:
        return GateCheck(
            direction,
            threshold,
            INCONCLUSIVE,
            f"{fewest} session(s) on one side, fewer than --min-sessions "
            f"{min_sessions}: the interval cannot cover run-to-run variation",
        )
    if band > threshold:
        return GateCheck(
            direction,
            threshold,
            INCONCLUSIVE,
            f"the noise band +/-{band:.3g}% is wider than the {threshold:g}% "
            "threshold, so a change of that size could not be called",
        )
    if high > threshold:
        return GateCheck(
            direction,
            threshold,
            INCONCLUSIVE,
            f"the {100 * c.method.confidence:g}% interval reaches "
            f"{sign * high:+.1f}%, beyond the threshold: a change of more than "
            f"{threshold:g}% is not ruled out",
        )
    return GateCheck(
        direction,
        threshold,
        PASS,
        f"the interval ends at {sign * high:+.1f}%, within {threshold:g}%",
    )
