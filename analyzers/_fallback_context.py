"""What the program shows about each portable operator, for the fallback explainer's advice.

A fix's precondition (a float32 program; a mean over dims (2, 3) with keepdim=False; an expand
broadcasting a matmul's batch dimensions) is checked against the program itself: its `.pte`, the
file the trace's metadata names, read when it is there and is the program the trace recorded
(same sha256). Without it the advice says which condition a fix needs (etprof.backends.OpContext,
the backend's fallback_note). Reading the `.pte` needs no torch.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from etprof.backends import FallbackNote, OpContext
from etprof.program.facts import MethodFacts, method_facts
from etprof.trace.model import Trace

if TYPE_CHECKING:
    from .fallback import FallbackReport

__all__ = ["MethodFacts", "context", "dtype_line", "fix_words", "program_facts"]


def program_facts(trace: Trace) -> MethodFacts | None:
    """The facts of the trace's method from its `.pte`; None when the file is gone or is not
    the program the trace was recorded with."""
    program = trace.meta.program
    method = trace.methods[0] if len(trace.methods) == 1 else program.method
    return _read(program.path, program.sha256, method) if program.path else None


@lru_cache(maxsize=16)
def _read(path: str, sha256: str, method: str) -> MethodFacts | None:
    import hashlib

    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        return None
    return method_facts(data, method)


def context(r: FallbackReport, op: str) -> OpContext:
    """What the program shows of the portable operator `op` (every instance of it)."""
    facts = r.facts
    if facts is None:
        return OpContext()
    names = [""] * (max(facts.ops, default=-1) + 1)
    for row in r.instructions[["instruction", "op"]].itertuples(index=False):
        if int(row.instruction) < len(names):
            names[int(row.instruction)] = str(row.op)
    ids = [int(i) for i in r.instructions.loc[r.instructions["op"] == op, "instruction"]]
    mine = tuple(facts.ops[i] for i in ids if i in facts.ops)
    delegate = r.backend.id or "delegate"
    consumers = tuple(
        tuple(names[c] or delegate for c in f.consumers if c < len(names)) for f in mine
    )
    return OpContext(
        dtype=facts.float_dtype(),
        instances=mine,
        consumers=consumers,
        program_ops=tuple(names),
        program=tuple(facts.ops.values()),
    )


def fix_words(note: FallbackNote) -> str:
    """ "Fix (checked: <condition>): ..." -- the fix with how far it is known to work."""
    if not note.evidence:
        return f"Fix: {note.fix}"
    condition = f": {note.condition}" if note.condition else ""
    return f"Fix ({note.evidence}{condition}): {note.fix}"


def dtype_line(r: FallbackReport) -> str:
    """A sentence for a program computing in a float dtype other than float32, else ""."""
    dtype = r.facts.float_dtype() if r.facts is not None else ""
    if dtype in ("", "float32"):
        return ""
    return (
        f"{r.model} computes in {dtype}: {r.backend.label}'s partitioner takes fewer "
        "operators at that precision than in float32 (the written-out attention: none), so "
        "a fix checked in float32 only is untested here."
    )
