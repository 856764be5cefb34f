"""Recognising an LLM program from the `.pte` alone (no torch) and planning its prefill/decode run.

ExecuTorch's LLM exports (`export_llama`, optimum-executorch) carry their settings as constant
methods (`get_max_seq_len` -> 128, `get_vocab_size` -> 32000, `use_kv_cache` -> True,
`enable_dynamic_shape` -> True, `get_bos_id`, `get_eos_ids`, ...; read by
:mod:`etprof.program.methods`) and a `forward(tokens, input_pos)` method: a [1, S] int64 token
tensor (S dynamic up to the prompt bound with `enable_dynamic_shape`) and a [1] int64 start
position. A program with both is an LLM: `etprof run` then runs a prefill of P tokens and G
decode steps per session (:func:`plan_steps`), and the trace's runs carry their phase.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from etprof.errors import InputError
from etprof.util.jsonspec import known

if TYPE_CHECKING:  # etprof.program.methods imports etprof.trace.sidecar, which imports this module
    from etprof.program.methods import Constant, MethodShape, TensorInput

PREFILL, DECODE = "prefill", "decode"
PHASES = (PREFILL, DECODE)
# llama-bench's defaults (pp512, tg128), capped by the program's sequence length
DEFAULT_PREFILL, DEFAULT_DECODE = 512, 128
_INT64 = 4  # ExecuTorch ScalarType code
# the constant methods ExecuTorch's LLM exports write; any of them marks an LLM export
KNOWN = (
    "get_max_seq_len",
    "get_max_context_len",
    "get_vocab_size",
    "use_kv_cache",
    "enable_dynamic_shape",
    "get_bos_id",
    "get_eos_ids",
    "get_n_layers",
    "use_sdpa_with_kv_cache",
    "get_max_batch_size",
)


@dataclass(frozen=True)
class LlmInfo:
    """What the program's metadata methods and `forward` signature say (metadata v4
    `program.llm`)."""

    vocab_size: int
    max_seq_len: int  # the most positions a sequence may use (prompt + generated)
    max_context_len: int | None = None  # the KV cache's length, when stated apart
    use_kv_cache: bool = False
    dynamic_shape: bool = False  # forward takes a [1, S] prompt in one execute
    max_prompt: int = 1  # the longest token tensor forward accepts
    bos_id: int | None = None
    eos_ids: tuple[int, ...] = ()
    metadata_methods: tuple[str, ...] = ()  # the constant methods found, in program order
    # forward(tokens, input_pos); False: forward(tokens), as ExecuTorch's llama export writes a
    # program without a KV cache (each execute runs the whole sequence)
    takes_position: bool = True

    @property
    def positions(self) -> int:
        """Positions a whole sequence may use: the shorter of the sequence and the cache."""
        return min(self.max_seq_len, self.max_context_len or self.max_seq_len)

    def describe(self) -> str:
        cache = "KV cache" if self.use_kv_cache else "no KV cache"
        prompt = (
            f"prompt of up to {self.max_prompt} tokens in one execute"
            if self.dynamic_shape
            else "one token per execute"
        )
        signature = "forward(tokens, input_pos)" if self.takes_position else "forward(tokens)"
        return (
            f"LLM program ({signature}; {', '.join(self.metadata_methods)}): "
            f"vocabulary {self.vocab_size}, max sequence {self.max_seq_len}, {cache}, "
            f"{prompt}"
        )

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["eos_ids"] = list(self.eos_ids)
        doc["metadata_methods"] = list(self.metadata_methods)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LlmInfo:
        return cls(
            **{
                **known(cls, doc),
                "eos_ids": tuple(doc.get("eos_ids", ())),
                "metadata_methods": tuple(doc.get("metadata_methods", ())),
            }
        )


def recognise(methods: tuple[MethodShape, ...]) -> tuple[LlmInfo | None, str]:
    """The program's LLM settings, or (None, why it is not recognised as an LLM): it needs the
    metadata methods `get_vocab_size` and `get_max_seq_len` and a `forward(tokens [1, S] int64,
    input_pos [1] int64)`."""
    consts = {m.name: m.value for m in methods if m.constant}
    found = tuple(n for n in consts if n in KNOWN)
    forward = next((m for m in methods if m.name == "forward"), None)
    if not found:
        return None, "it has none of the LLM metadata methods (get_vocab_size, get_max_seq_len)"
    no_cache = consts.get("use_kv_cache") is not True
    if forward is None or not (_llm_signature(forward) or (no_cache and _tokens_only(forward))):
        took = "no forward method" if forward is None else _signature(forward)
        return None, (
            f"it has LLM metadata methods ({', '.join(found)}) but {took}, not "
            "forward(tokens [1, S] int64, input_pos [1] int64)"
            + (" nor forward(tokens [1, S] int64) (no KV cache)" if no_cache else "")
        )
    vocab = _int(consts, "get_vocab_size")
    seq = _int(consts, "get_max_seq_len")
    missing = [n for n, v in (("get_vocab_size", vocab), ("get_max_seq_len", seq)) if v is None]
    if vocab is None or seq is None:
        return None, (f"its LLM metadata lacks {' and '.join(missing)} (it has {', '.join(found)})")
    tokens = forward.tensor_inputs[0]
    assert tokens is not None
    eos = consts.get("get_eos_ids")
    eos_ids = (
        eos
        if isinstance(eos, tuple)
        else ((eos,) if isinstance(eos, int) and not isinstance(eos, bool) else ())
    )
    return LlmInfo(
        vocab_size=vocab,
        max_seq_len=seq,
        max_context_len=_int(consts, "get_max_context_len"),
        use_kv_cache=consts.get("use_kv_cache") is True,
        dynamic_shape=tokens.dynamic and tokens.sizes[-1] > 1,
        max_prompt=tokens.sizes[-1],
        bos_id=_int(consts, "get_bos_id"),
        eos_ids=eos_ids,
        metadata_methods=found,
        takes_position=len(forward.tensor_inputs) == 2,
    ), ""


def require(info: LlmInfo | None, why: str, source: str) -> LlmInfo:
    """`info`, or the one-line refusal of --prefill/--decode on a program not recognised."""
    if info is None:
        raise InputError(
            f"--prefill/--decode need an LLM program, and {source} is not recognised as one "
            f"({why})",
            "export it with ExecuTorch's LLM export (its constant_methods: get_vocab_size, "
            "get_max_seq_len, use_kv_cache, ...), or drop --prefill/--decode to run it as any "
            "program",
        )
    return info


def _llm_signature(m: MethodShape) -> bool:
    if len(m.tensor_inputs) != 2:
        return False
    tokens, pos = m.tensor_inputs
    return _int64(tokens, 2) and _int64(pos, 1) and tokens is not None and tokens.sizes[0] == 1


def _tokens_only(m: MethodShape) -> bool:
    """forward(tokens [1, S] int64): an LLM exported without a KV cache."""
    return (
        len(m.tensor_inputs) == 1
        and _int64(m.tensor_inputs[0], 2)
        and m.tensor_inputs[0] is not None
        and m.tensor_inputs[0].sizes[0] == 1
    )


def _int64(t: TensorInput | None, rank: int) -> bool:
    return t is not None and t.scalar_type == _INT64 and len(t.sizes) == rank


def _signature(m: MethodShape) -> str:
    shapes = ", ".join(
        "non-tensor" if t is None else f"{list(t.sizes)} type {t.scalar_type}"
        for t in m.tensor_inputs
    )
    return f"forward takes ({shapes})"


def _int(consts: dict[str, Constant | None], name: str) -> int | None:
    v = consts.get(name)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


@dataclass(frozen=True)
class Step:
    """One Execute run of an LLM sequence: its phase, first position and token count."""

    phase: str
    position: int
    tokens: int


def default_lengths(info: LlmInfo, prefill: int | None, decode: int | None) -> tuple[int, int]:
    """--prefill/--decode, defaulting like llama-bench (pp512, tg128) capped to fit the
    sequence: the prompt to half the positions (and the prompt bound), decode to the rest."""
    room = info.positions
    p = (
        prefill
        if prefill is not None
        else min(
            DEFAULT_PREFILL, max(1, room // 2), info.max_prompt if info.dynamic_shape else room
        )
    )
    if decode is None and not info.use_kv_cache:
        return p, 0  # without a KV cache there is no decode step to time (prefill alone)
    g = decode if decode is not None else min(DEFAULT_DECODE, max(0, room - p))
    return p, g


def check_lengths(info: LlmInfo, prefill: int, decode: int, source: str) -> None:
    """Refuse a prefill/decode that does not fit the program, in one line with the fix."""
    room = info.positions
    if prefill < 1:
        raise InputError(
            f"--prefill {prefill} must be at least 1 (the first token's prompt)",
            "use e.g. --prefill 16",
        )
    if decode < 0:
        raise InputError(f"--decode {decode} is negative", "use 0 or more")
    if prefill + decode > room:
        raise InputError(
            f"--prefill {prefill} + --decode {decode} = {prefill + decode} positions, beyond the "
            f"{room} the program holds ({source}: get_max_seq_len {info.max_seq_len}"
            + (f", get_max_context_len {info.max_context_len}" if info.max_context_len else "")
            + ")",
            f"keep --prefill + --decode within {room}, e.g. --prefill {room // 2} "
            f"--decode {room - room // 2}",
        )
    if decode > 0 and not info.use_kv_cache:
        raise InputError(
            f"--decode {decode} asks for decode steps, but {source} has no KV cache "
            "(use_kv_cache is not true), so each step would recompute the whole sequence",
            "export it with a KV cache (use_kv_cache=True), or pass --decode 0 to time prefill",
        )


def check_prompt(info: LlmInfo, prefill: int, source: str) -> None:
    """Refuse a prefill a program without a KV cache cannot run in one execute (token by token,
    nothing would carry from one execute to the next)."""
    if not info.use_kv_cache and not (info.dynamic_shape and prefill <= info.max_prompt):
        raise InputError(
            f"--prefill {prefill}: {source} has no KV cache, so its prompt must go in one execute, "
            f"and forward takes "
            + (
                f"at most {info.max_prompt} tokens"
                if info.dynamic_shape
                else "a fixed token count (no dynamic shapes)"
            ),
            f"use --prefill {info.max_prompt} or less"
            if info.dynamic_shape
            else "export it with dynamic shapes (enable_dynamic_shape) or a KV cache",
        )


def plan_steps(info: LlmInfo, prefill: int, decode: int) -> tuple[Step, ...]:
    """One sequence: the prefill (one execute of `prefill` tokens where forward takes dynamic
    shapes and the prompt fits, else one execute per token), then `decode` single-token steps
    at positions prefill .. prefill + decode - 1."""
    if info.dynamic_shape and prefill <= info.max_prompt:
        steps = [Step(PREFILL, 0, prefill)]
    else:
        steps = [Step(PREFILL, i, 1) for i in range(prefill)]
    steps += [Step(DECODE, prefill + i, 1) for i in range(decode)]
    return tuple(steps)


def prefill_note(info: LlmInfo, prefill: int) -> str:
    """How the prefill runs, said to the user when it is not one execute."""
    if info.dynamic_shape and prefill <= info.max_prompt:
        return f"prefill: one execute of [1, {prefill}] tokens"
    why = (
        f"the prompt bound is {info.max_prompt}"
        if info.dynamic_shape
        else "forward takes one token at a time (no dynamic shapes)"
    )
    return f"prefill: {prefill} single-token executes ({why})"
