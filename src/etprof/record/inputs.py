"""The inputs `etprof run` gives a method, planned from the program alone (docs/inputs.md).

Planning needs no torch: it reads the method's input tensors (dtype, shape, dynamic upper bound)
and the program's constant metadata methods (ExecuTorch's LLM exports: `get_vocab_size`,
`get_max_context_len`, ...), and names inputs from the ETRecord when one is beside the program.

- float inputs: standard normal, seeded; bool inputs: a seeded coin flip each;
- integer inputs that are token ids: uniform in [0, vocabulary size) when the program says its
  vocabulary size, else zeros (always a valid index), and the description says so;
- integer position inputs (`input_pos`, `cache_position`; in an LLM export the small int input
  after the tokens): they advance by the prompt length every run and wrap within the KV cache
  (`get_max_context_len`, else `get_max_seq_len`), so a program whose state changes between runs
  always gets a valid position; without a cache length, zeros;
- a dynamic-shape input takes its upper bound unless `--shape` gives a smaller one.

Building the tensors (`build`, `position_values`) is the only part that needs torch.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from etprof.errors import InputError
from etprof.program.methods import Constant, MethodShape, TensorInput

# ExecuTorch ScalarType codes (schema/scalar_type.fbs) -> torch dtype names
DTYPES = {
    0: "uint8",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "int64",
    5: "float16",
    6: "float32",
    7: "float64",
    11: "bool",
    15: "bfloat16",
}
_FLOATS = {"float16", "float32", "float64", "bfloat16"}
_POSITION_NAME = re.compile(r"(^|_)(input_)?pos(ition)?s?($|_)|cache_position|start_pos")
SEED = 0


@dataclass(frozen=True)
class ShapeOverride:
    """`--shape [METHOD:]NAME_OR_INDEX=AxBxC`."""

    key: str  # an input's name or index
    dims: tuple[int, ...]
    method: str = ""  # "": every method with such an input
    text: str = ""


@dataclass(frozen=True)
class PlannedInput:
    index: int
    name: str  # from the ETRecord; "" without one
    dtype: str  # torch dtype name
    shape: tuple[int, ...]  # the shape used
    bound: tuple[int, ...]  # the method's (upper-bound) shape
    dynamic: bool
    fill: str  # "normal" | "coin" | "tokens" | "position" | "zeros"
    high: int = 0  # tokens: the vocabulary size; position: the cache length
    source: str = ""  # the constant method `high` came from, or why zeros
    overridden: bool = False

    def label(self) -> str:
        return f"input {self.index}" + (f" '{self.name}'" if self.name else "")


@dataclass(frozen=True)
class MethodInputs:
    method: str
    inputs: tuple[PlannedInput, ...]

    @property
    def step(self) -> int:
        """Positions advance by this much per run: the token inputs' length."""
        tokens = [i.shape[-1] for i in self.inputs if i.fill == "tokens" and i.shape]
        return max(tokens, default=1)

    def describe(self) -> str:
        parts = [_describe(i, self.step) for i in self.inputs]
        return f"{self.method}: " + ("; ".join(parts) if parts else "no inputs")


def plan(
    method: MethodShape,
    constants: dict[str, Constant],
    names: Sequence[str] = (),
    shapes: Sequence[ShapeOverride] = (),
) -> MethodInputs:
    """The inputs `method` gets by default (random floats, valid integers), `shapes` applied."""
    vocab = _int_constant(constants, "get_vocab_size")
    context = _int_constant(constants, "get_max_context_len")
    context_source = "get_max_context_len"
    if context is None:
        context, context_source = _int_constant(constants, "get_max_seq_len"), "get_max_seq_len"
    llm = vocab is not None or context is not None
    planned = []
    for i, t in enumerate(method.tensor_inputs):
        if t is None:
            raise InputError(
                f"input {i} of {method.name} is not a tensor, which etprof cannot generate",
                "pass --inputs with the method's inputs",
            )
        name = names[i] if i < len(names) else ""
        dtype = DTYPES.get(t.scalar_type)
        if dtype is None:
            raise InputError(
                f"{method.name} input {i} has scalar type {t.scalar_type}, which "
                "etprof cannot generate",
                "pass --inputs with a tensor file",
            )
        shape = _override(method, t, name, shapes)
        base = PlannedInput(
            i,
            name,
            dtype,
            shape or t.sizes,
            t.sizes,
            t.dynamic,
            "normal",
            overridden=shape is not None,
        )
        planned.append(_fill(base, i, method, vocab, context, context_source, llm))
    return MethodInputs(method.name, tuple(planned))


def _fill(
    p: PlannedInput,
    i: int,
    method: MethodShape,
    vocab: int | None,
    context: int | None,
    context_source: str,
    llm: bool,
) -> PlannedInput:
    if p.dtype in _FLOATS:
        return p
    if p.dtype == "bool":
        return replace(p, fill="coin")
    numel = _numel(p.shape)
    position = (
        bool(_POSITION_NAME.search(p.name))
        if p.name
        else (llm and i > 0 and len(p.shape) == 1 and numel <= max(1, _token_length(method)))
    )
    if position:
        if context is None:
            return replace(p, fill="zeros", source="the program states no cache length")
        return replace(p, fill="position", high=context, source=context_source)
    if vocab is None:
        return replace(p, fill="zeros", source="the program states no vocabulary size")
    return replace(p, fill="tokens", high=vocab, source="get_vocab_size")


def _token_length(method: MethodShape) -> int:
    first = method.tensor_inputs[0] if method.tensor_inputs else None
    return first.sizes[-1] if first is not None and first.sizes else 1


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _int_constant(constants: dict[str, Constant], name: str) -> int | None:
    value = constants.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _override(
    method: MethodShape, t: TensorInput, name: str, shapes: Sequence[ShapeOverride]
) -> tuple[int, ...] | None:
    chosen = None
    for s in shapes:
        if s.method and s.method != method.name:
            continue
        if s.key != str(t.index) and (not name or s.key != name):
            continue
        check_shape(s.dims, t, f"--shape {s.text}", f"{method.name} input {t.index}")
        chosen = s.dims
    return chosen


def check_shape(dims: tuple[int, ...], t: TensorInput, what: str, where: str) -> None:
    """A shape is legal for `t` when it is `t`'s, or, for a dynamic-shape input, no larger than
    its upper bound in any dimension (same rank)."""
    bound = list(t.sizes)
    if dims == t.sizes:
        return
    if not t.dynamic:
        raise InputError(
            f"{what}: {where} has the static shape {bound}",
            f"give it {bound} (only a dynamic-shape input may be smaller)",
        )
    if len(dims) != len(t.sizes) or any(
        d < 1 or d > b for d, b in zip(dims, t.sizes, strict=False)
    ):
        raise InputError(
            f"{what}: {where} takes shapes up to {bound} (rank {len(bound)})",
            f"give {len(bound)} sizes each between 1 and the bound",
        )


def unknown_overrides(
    methods: Sequence[MethodShape],
    names: Mapping[str, Sequence[str]],
    shapes: Sequence[ShapeOverride],
) -> None:
    """Refuse a `--shape` naming no input of the methods run."""
    for s in shapes:
        hits = [
            m
            for m in methods
            if (not s.method or s.method == m.name)
            and ((s.key.isdigit() and int(s.key) < m.inputs) or s.key in names.get(m.name, ()))
        ]
        if not hits:
            known = "; ".join(_inputs_of(m, names.get(m.name, ())) for m in methods)
            raise InputError(
                f"--shape {s.text} names no input of the method(s) run ({known})",
                "use an input's index or name, e.g. --shape 0=1x16",
            )


def _inputs_of(m: MethodShape, names: Sequence[str]) -> str:
    labels = [
        f"{i}" + (f" '{names[i]}'" if i < len(names) and names[i] else "") for i in range(m.inputs)
    ]
    return f"{m.name} takes " + (", ".join(labels) or "nothing")


def parse_shape(text: str) -> ShapeOverride:
    key, eq, dims = text.partition("=")
    method, colon, name = key.partition(":")
    if not colon:
        method, name = "", key
    try:
        sizes = tuple(int(d) for d in dims.lower().split("x"))
    except ValueError:
        sizes = ()
    if not eq or not name.strip() or not sizes:
        raise InputError(
            f"--shape {text!r} is not NAME_OR_INDEX=AxBxC",
            "use e.g. --shape 0=1x16x64 or --shape tokens=1x8",
        )
    return ShapeOverride(name.strip(), sizes, method.strip(), text)


def _describe(i: PlannedInput, step: int) -> str:
    shape = list(i.shape)
    if i.overridden:
        shape_note = f"{shape} (--shape; bound {list(i.bound)})"
    elif i.dynamic:
        shape_note = f"{shape} (the upper bound)"
    else:
        shape_note = f"{shape}"
    what = {
        "normal": "random normal",
        "coin": "random true/false",
        "tokens": f"token ids in [0, {i.high}) ({i.source})",
        "position": f"position advancing {step} per run, wrapping within {i.high} ({i.source})",
        "zeros": f"zeros ({i.source}; pass --inputs for real values)",
    }[i.fill]
    return f"{i.label()} {i.dtype} {shape_note}: {what}"


def describe(plans: Sequence[MethodInputs]) -> str:
    return f"random:seed={SEED}; " + " | ".join(p.describe() for p in plans)


def position_start(run: int, step: int, context: int) -> int:
    """The position of the `run`-th run (0-based) of a method: runs follow each other in the
    cache, `step` tokens apart, and start again at 0 before the cache would overflow."""
    span = context - step + 1
    return (run * step) % span if span > 0 else 0


def input_names(etrecord: Path | None, method: str) -> tuple[str, ...]:
    """The method's user input names from an ETRecord (its edge program's signature); () when
    there is no ETRecord or it says nothing readable. Reads JSON only: no torch."""
    if etrecord is None:
        return ()
    try:
        with zipfile.ZipFile(etrecord) as z:
            member = f"edge_dialect_exported_program/{method}"
            if member not in z.namelist():
                member = "edge_dialect_exported_program"
            doc = json.loads(z.read(member))
        specs = doc["graph_module"]["signature"]["input_specs"]
        names = [s["user_input"]["arg"]["as_tensor"]["name"] for s in specs if "user_input" in s]
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return ()
    return tuple(str(n) for n in names)


# --- building (torch) --------------------------------------------------------------------------


def build(p: MethodInputs, torch: Any) -> list[Any]:
    """The tensors of a plan (positions at their first value)."""
    gen = torch.Generator().manual_seed(SEED)
    out = []
    for i in p.inputs:
        dtype = getattr(torch, i.dtype)
        if i.fill == "normal":
            out.append(torch.randn(i.shape, generator=gen).to(dtype))
        elif i.fill == "coin":
            out.append(torch.rand(i.shape, generator=gen) > 0.5)
        elif i.fill == "tokens":
            out.append(torch.randint(0, i.high, i.shape, generator=gen).to(dtype))
        else:
            out.append(torch.zeros(i.shape, dtype=dtype))
    return out


def with_positions(p: MethodInputs, values: list[Any], run: int, torch: Any) -> tuple[Any, ...]:
    """`values` with every position input set for the `run`-th run of the method."""
    if not any(i.fill == "position" for i in p.inputs):
        return tuple(values)
    out = list(values)
    for i in p.inputs:
        if i.fill == "position":
            start = position_start(run, p.step, i.high)
            n = _numel(i.shape)
            out[i.index] = (start + torch.arange(n)).reshape(i.shape).to(getattr(torch, i.dtype))
    return tuple(out)


def flatten(value: Any, torch: Any) -> list[Any] | None:
    """Tensors of a nested tuple/list/dict in the order ExecuTorch flattens a method's inputs
    (depth first, dicts in insertion order); None when something else is inside."""
    if isinstance(value, torch.Tensor):
        return [value]
    items = value.values() if isinstance(value, dict) else value
    if not isinstance(value, (tuple, list, dict)):
        return None
    out: list[Any] = []
    for v in items:
        inner = flatten(v, torch)
        if inner is None:
            return None
        out += inner
    return out
