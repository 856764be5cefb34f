"""`etprof run` on an LLM program: per session, whole prefill+decode sequences (docs/llm.md).

Each session loads the program afresh (its KV cache starts empty) and runs `WARMUP_SEQUENCES`
sequences that are dropped, then `MEASURED_SEQUENCES` measured ones. A sequence is a prefill of P
tokens at position 0 (one execute of a [1, P] token tensor where forward takes dynamic shapes,
else P single-token executes) and G decode steps of one token at positions P .. P+G-1. A later
sequence of the same session starts again at position 0: the cache entries it overwrites are the
ones it attends to, and the causal mask hides the rest, so each sequence sees a cache of exactly
its own positions. Token ids are seeded uniform draws from the vocabulary.

`--iters` and `--warmup` count whole sequences for an LLM program (measured and dropped per
session; default `MEASURED_SEQUENCES` and `WARMUP_SEQUENCES`), never single runs: a warm-up
cut in the middle of a sequence would leave the KV cache half-filled. The runner's generic
settings then become: `iters` = runs per session (every sequence's steps), `warmup` = the runs
of the dropped sequences, `run.phases` = each run's phase, position and token count. Building
tensors is the only part that needs torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etprof.errors import InputError
from etprof.program.llm import (
    LlmInfo,
    Step,
    check_lengths,
    check_prompt,
    default_lengths,
    plan_steps,
    prefill_note,
    recognise,
    require,
)
from etprof.program.reader import Program

WARMUP_SEQUENCES = 1
MEASURED_SEQUENCES = 1
SEED = 0


@dataclass(frozen=True)
class LlmPlan:
    """An LLM run as planned from the program: its settings and one sequence's steps."""

    info: LlmInfo
    prefill: int
    decode: int
    steps: tuple[Step, ...]  # one sequence
    sequences: int = MEASURED_SEQUENCES  # measured per session (--iters)
    warmup_sequences: int = WARMUP_SEQUENCES  # dropped per session (--warmup)

    @property
    def session_steps(self) -> tuple[Step, ...]:
        """Every Execute run of one session, warm-up sequences first (`run.phases`)."""
        return self.steps * (self.warmup_sequences + self.sequences)

    @property
    def warmup_runs(self) -> int:
        return len(self.steps) * self.warmup_sequences

    def describe(self) -> str:
        return (
            f"llm:seed={SEED}; token ids in [0, {self.info.vocab_size}) (get_vocab_size); "
            f"pp{self.prefill} tg{self.decode}; {prefill_note(self.info, self.prefill)}; "
            f"{_count(self.warmup_sequences)} dropped, {_count(self.sequences)} measured "
            "per session"
        )

    def counting(self) -> str:
        """What --iters/--warmup mean for this run, said on stderr."""
        return (
            f"--iters/--warmup count whole prefill+decode sequences for an LLM program: "
            f"{self.sequences} measured and {self.warmup_sequences} dropped per session "
            f"({len(self.session_steps)} Execute runs of forward per session)"
        )


def _count(n: int) -> str:
    return f"{n} sequence{'s' if n != 1 else ''}"


def plan_llm(
    program: Callable[[], Program],
    prefill: int | None,
    decode: int | None,
    *,
    method: str = "forward",
    inputs: Path | None = None,
    sequences: int | None = None,
    warmup_sequences: int | None = None,
) -> LlmPlan | None:
    """The LLM plan of `pte`, or None to run it as any program: it is not recognised as an LLM
    (and neither --prefill nor --decode was given), --inputs was given, or another method is
    run. `sequences`/`warmup_sequences`: --iters/--warmup as given (None: the defaults).
    Refuses --prefill/--decode that cannot apply, in one line. `program` reads the program
    when it is needed (not for --inputs or another method)."""

    asked = prefill is not None or decode is not None
    if asked and inputs is not None:
        raise InputError(
            "--prefill/--decode generate an LLM's inputs, and --inputs was given",
            "drop --inputs, or drop --prefill/--decode to run the file's inputs",
        )
    if asked and method != "forward":
        raise InputError(
            f"--prefill/--decode run forward(tokens, input_pos), and --method {method} was given",
            "drop --method",
        )
    if inputs is not None or method != "forward":
        return None
    pte = program().path
    info, why = recognise(program().shapes)
    if info is None and not asked:
        return None
    info = require(info, why, str(pte))
    if not info.dynamic_shape and info.max_prompt > 1:
        raise InputError(
            f"{pte}'s forward takes exactly {info.max_prompt} tokens per execute "
            "(a static prompt length), which etprof cannot split into prefill and "
            "decode",
            "export it with dynamic shapes (enable_dynamic_shape) or a single-token forward",
        )
    p, g = default_lengths(info, prefill, decode)
    check_lengths(info, p, g, str(pte))
    check_prompt(info, p, str(pte))
    measured = MEASURED_SEQUENCES if sequences is None else sequences
    dropped = WARMUP_SEQUENCES if warmup_sequences is None else warmup_sequences
    if measured < 1:
        raise InputError(
            f"--iters {measured}: an LLM run counts whole prefill+decode sequences "
            "per session, and at least one must be measured",
            f"use --iters 1 or more (default {MEASURED_SEQUENCES})",
        )
    if dropped < 0:
        raise InputError(
            f"--warmup {dropped} is negative",
            f"use 0 or more sequences (default {WARMUP_SEQUENCES})",
        )
    return LlmPlan(info, p, g, plan_steps(info, p, g), measured, dropped)


def run_sequences(
    plan: LlmPlan,
    run: Callable[[tuple[Any, ...]], None],
    torch: Any,
    tick: Callable[[], None],
    measured_start: Callable[[], None],
    untraced: Callable[[tuple[Any, ...]], None] | None = None,
) -> dict[str, list[float]] | None:
    """Run one session's sequences through `run(inputs)` (the traced forward);
    `measured_start` is called before the first measured sequence.

    With `untraced` (the forward of a second load without ETDump, its own KV cache), every
    sequence runs on both, whole, taking turns which goes first, each step timed by the wall
    clock: returns the measured steps' wall ms, traced and untraced, in step order (the shipped
    figures, docs/llm.md); None without `untraced`.
    """
    gen = torch.Generator().manual_seed(SEED)
    vocab = plan.info.vocab_size
    times: dict[str, list[float]] = {"traced_ms": [], "untraced_ms": []}
    for q in range(plan.warmup_sequences + plan.sequences):
        if q == plan.warmup_sequences:
            measured_start()
        inputs = [_step_inputs(plan, step, gen, vocab, torch) for step in plan.steps]
        sides = [(run, "traced_ms", True)]
        if untraced is not None:
            sides.append((untraced, "untraced_ms", False))
            sides = sides if q % 2 == 0 else sides[::-1]
        for forward, key, traced in sides:
            measured = q >= plan.warmup_sequences
            for args in inputs:
                began = time.perf_counter()
                forward(args)
                if measured:
                    times[key].append(1e3 * (time.perf_counter() - began))
                if traced:
                    tick()
    return times if untraced is not None else None


def _step_inputs(plan: LlmPlan, step: Step, gen: Any, vocab: int, torch: Any) -> tuple[Any, ...]:
    tokens = torch.randint(0, vocab, (1, step.tokens), generator=gen, dtype=torch.long)
    if plan.info.takes_position:
        return tokens, torch.tensor([step.position], dtype=torch.long)
    return (tokens,)  # forward(tokens): no KV cache, the whole prompt in one execute
