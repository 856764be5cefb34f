"""Two LLM traces compared phase by phase: one full diff per phase, as one sectioned result.

An LLM trace's prefill and decode runs differ by the prompt length, so one mean of both means
nothing; `etprof diff A B` without `--phase` compares each phase on its own
(:func:`etprof.analyzers.diff.diff`), exactly as `--phase prefill` and `--phase decode` would,
and shows the sections in phase order (docs/diff.md, "LLM traces").

The CI gate is each phase's own; the command's exit code is the gate of all phases' checks
together, which fails when any phase fails, else is inconclusive when any is (the rule one gate
applies to its own checks, etprof.analyzers.stats.gate), and says which phase decided it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from etprof.analyzers.stats.gate import PASS, Gate


class DiffResult(Protocol):
    """What a section needs of :class:`etprof.analyzers.diff.DiffResult` (a protocol: that
    module imports this one)."""

    @property
    def gate(self) -> Gate | None: ...

    def headline(self) -> str: ...

    def tables(self) -> dict[str, pd.DataFrame]: ...

    def notes(self) -> list[str]: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PhaseDiffs:
    """The diff of each LLM phase both traces have, in phase order (prefill, then decode)."""

    sections: tuple[tuple[str, DiffResult], ...]  # (phase, its diff)
    stacked: bool = False  # tables(): one table per kind with a `phase` column (for CSV)

    schema = "etprof.diff"

    @property
    def phases(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.sections)

    @property
    def gate(self) -> Gate | None:
        """Every phase's gate checks judged together (None without a threshold)."""
        gates = [d.gate for _, d in self.sections if d.gate is not None]
        if not gates:
            return None
        return Gate(tuple(c for g in gates for c in g.checks), gates[0].min_sessions)

    def decided_by(self) -> tuple[str, ...]:
        """The phases whose own gate outcome is the overall one (none when it passes)."""
        gate = self.gate
        if gate is None or gate.outcome == PASS:
            return ()
        return tuple(
            p for p, d in self.sections if d.gate is not None and d.gate.outcome == gate.outcome
        )

    def headline(self) -> str:
        return "\n".join(f"{p}: {d.headline()}" for p, d in self.sections)

    def tables(self) -> dict[str, pd.DataFrame]:
        if self.stacked:
            names = list(dict.fromkeys(n for _, d in self.sections for n in d.tables()))
            return {
                n: pd.concat(
                    [_with_phase(p, d.tables()[n]) for p, d in self.sections], ignore_index=True
                )
                for n in names
            }
        return {f"{p}: {n}": t for p, d in self.sections for n, t in d.tables().items()}

    def notes(self) -> list[str]:
        out = [f"{p}: {n}" for p, d in self.sections for n in d.notes()]
        gate = self.gate
        if gate is not None:
            by = self.decided_by()
            out.append(
                f"gate, all phases: {gate.outcome} (exit code {gate.exit_code})"
                + (f", from {' and '.join(by)}" if by else "")
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        gate = self.gate
        return {
            "phases": {p: d.to_dict() for p, d in self.sections},
            "gate": None
            if gate is None
            else {**gate.to_dict(), "decided_by": list(self.decided_by())},
        }


def _with_phase(phase: str, table: pd.DataFrame) -> pd.DataFrame:
    """`table` with a first column `phase`."""
    out = table.copy()
    out.insert(0, "phase", phase)
    return out
