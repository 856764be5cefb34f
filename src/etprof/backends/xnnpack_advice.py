"""XNNPACK fixes whose precondition is checked against the program, each labelled by how far it
is known to work (etprof.backends: CHECKED, UNTESTED; MEASURED only from a comparison trace).

etprof.backends.xnnpack_fallback says why the partitioner left an operator out; this module
decides which fix applies to *this* program's instances of it, from what the `.pte` shows
(etprof.program.facts: the program's float dtype, each instance's arguments and consumers):

- a program computing in bfloat16: XNNPACK (executorch 1.5.1) takes little at that precision --
  scaled_dot_product_attention written out lowers to 0 partitions in bf16 (checked) -- so the
  fix is to compute in float32 first, and a fix checked in float32 only is untested here;
- ``mean.out`` over dims (2, 3) of a 4-D tensor with keepdim=False: fails XNNPACK's keepdim
  check only; ``x.mean((2, 3), keepdim=True).flatten(1)`` lowers (checked);
- ``expand_copy`` broadcasting the batch dimensions of a matmul operand (grouped-query
  attention's repeat_kv, torch's decomposition of a batched matmul) is not the explicit expand
  before an element-wise operator, whose fix (drop it, let the operator broadcast) is checked;
- select/squeeze/split are nn.LSTM's decomposition only in a program with an LSTM's 4-way gate
  split; on integer tensors (a position index) they have no fix;
- comparisons (eq, le, ge, ...) compare their inputs and output a bool tensor.

Where the program could not be read (no `.pte`), a fix checked elsewhere is given as untested,
with the condition it needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from etprof.backends import CHECKED, UNTESTED, OpContext
from etprof.backends import FallbackNote as Note
from etprof.backends.xnnpack_fallback import NO_FIX, SDPA, VERSION, base, decomposed_label, note
from etprof.program.facts import FLOATS, OpFacts, Value

BF16 = "bfloat16"
_COMPARE = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
# kernels that only pass a tensor on (a view, a copy): a consumer behind them is the real one
_PASS_ON = frozenset({"view_copy", "et_view", "clone", "_clone_dim_order", "_to_dim_order_copy"})
_ELEMENTWISE = frozenset({"mul", "add", "sub", "div", "maximum", "minimum", "where"})
_MATMUL = frozenset({"bmm", "mm", "matmul", "baddbmm", "addmm"})
# the fixes applied to a tiny model and found delegated (docs/fallback.md, "What was checked";
# tests/integration/test_real_programs.py, tests/integration/test_advice.py)
_CHECKED = {
    **dict.fromkeys(
        (
            SDPA,
            "mul.Scalar",
            "split_with_sizes_copy",
            "select_copy",
            "squeeze_copy",
            "unsqueeze_copy",
            "expand_copy",
        ),
        "",
    ),  # the dtype decides (_float_checked)
    **dict.fromkeys(("index_put", "copy_"), "checked on a KV-cache decoder step"),
}
# notes whose "fix" is no change to the model: a diagnostic step, or the intended kernel
_NOT_FIXES = ("lower with XnnpackPartitioner(verbose=True)", "none needed")


def advise(name: str, cls: str, program_ops: Iterable[str], ctx: OpContext) -> Note:
    """The note of `xnnpack_fallback.note`, its fix chosen by the program's facts and
    labelled (CHECKED / UNTESTED, with the condition it rests on)."""
    ops = list(program_ops)
    b = base(name)
    key = f"{b}.Scalar" if b == "mul" else b
    found = _labelled(note(name, cls, ops), SDPA if decomposed_label(name, ops) else key)
    if decomposed_label(name, ops) == SDPA:
        return _sdpa(found, ctx)
    if b in _COMPARE:
        return _compare(b, ctx)
    if b == "mean" and cls == "constraint":
        found = _mean(found, ctx)
    elif b == "expand_copy":
        found = _expand(found, ctx)
    elif b in ("select_copy", "squeeze_copy", "split_with_sizes_copy"):
        found = _shape_op(b, found, ctx)
    return _float_checked(found, ctx) if found.evidence == CHECKED else found


def _labelled(found: Note, b: str) -> Note:
    """A fix checked on a tiny model (docs/fallback.md, "What was checked") is CHECKED; any
    other fix UNTESTED, with its condition; no fix (or a diagnostic step), no label."""
    if not found.fixable or found.fix.startswith(_NOT_FIXES):
        return found
    if b in _CHECKED:
        return replace(found, evidence=CHECKED, condition=_CHECKED[b])
    return replace(
        found,
        evidence=UNTESTED,
        condition=f"not lowered by etprof to verify it (executorch {VERSION})",
    )


def _float_checked(found: Note, ctx: OpContext, extra: str = "") -> Note:
    """A fix checked on float32 programs: checked when this one computes in float32."""
    more = f"; {extra}" if extra else ""
    if found.condition and ctx.dtype != BF16:  # checked on something else than the dtype
        return replace(found, condition=found.condition + more)
    if ctx.dtype == "float32":
        return replace(found, condition=f"the program computes in float32{more}")
    if ctx.dtype:
        return replace(
            found,
            evidence=UNTESTED,
            condition=(
                f"checked in float32 only; this program computes in {ctx.dtype}, where XNNPACK "
                f"takes fewer operators{more}"
            ),
        )
    return replace(
        found,
        evidence=UNTESTED,
        condition=(f"checked in float32; the program's dtype is unknown (no .pte){more}"),
    )


def _sdpa(found: Note, ctx: OpContext) -> Note:
    if ctx.dtype == BF16:
        return replace(
            found,
            reason=f"{found.reason}; this program computes in bfloat16",
            fix=(
                "compute in float32 first (`model.float()` and float32 inputs), then "
                f"{found.fix}: in bfloat16 the written-out attention "
                "lowers to 0 XNNPACK partitions, worse than this"
            ),
            evidence=CHECKED,
            condition="in float32 XNNPACK takes the written-out attention's matmuls "
            "and softmax; in bfloat16 it takes none of it",
        )
    return _float_checked(found, ctx)


def _compare(b: str, ctx: OpContext) -> Note:
    # an out-variant kernel's arguments end with its out tensor and the result (the same one)
    inputs = sorted({v.dtype for f in ctx.instances for v in f.args[:-2] if v.kind == "tensor"})
    what = f"{' and '.join(inputs)} tensors" if inputs else "its inputs"
    return Note(
        f"XNNPACK has no {b} config: {b} compares {what} and outputs a bool tensor, "
        "and XNNPACK's configs take float tensors only, in and out",
        NO_FIX,
    )


def _mean(found: Note, ctx: OpContext) -> Note:
    if not ctx.known:
        return replace(
            found,
            evidence=UNTESTED,
            condition=(
                "if it is a mean over dims (2, 3) of a 4-D tensor with keepdim=False, "
                "`x.mean((2, 3), keepdim=True).flatten(1)` lowers (the .pte was not read)"
            ),
        )
    spatial = [f for f in ctx.instances if _spatial_mean(f)]
    if len(spatial) != len(ctx.instances):
        return found  # another reduction: no known fix (its own note)
    shapes = ", ".join(sorted({_in(f).describe() for f in spatial}))
    return Note(
        "XNNPACK's MeanDimConfig takes the mean of a 4-D tensor over dims (2, 3) with "
        "keepdim=True only; this one drops the dimensions (keepdim=False)",
        "keep the dimensions and flatten them after: `x.mean((2, 3), keepdim=True).flatten(1)`",
        evidence=CHECKED,
        condition=f"every instance is a mean over dims (2, 3) of a 4-D tensor ({shapes}) "
        "with keepdim=False",
    )


def _spatial_mean(f: OpFacts) -> bool:
    x, dims, keep = (f.args + (Value("other"),) * 3)[:3]
    rank = len(x.sizes)
    wanted = {2, 3}
    return (
        x.kind == "tensor"
        and rank == 4
        and dims.kind == "ints"
        and {d % rank for d in dims.ints} == wanted
        and keep.kind == "bool"
        and not keep.ints[0]
    )


def _expand(found: Note, ctx: OpContext) -> Note:
    if not ctx.known:
        return replace(
            found,
            evidence=UNTESTED,
            condition=(
                "if the expanded tensor feeds an element-wise operator, not a matmul (the .pte "
                "was not read)"
            ),
        )
    kinds = {_expand_kind(f, c, ctx) for f, c in zip(ctx.instances, ctx.consumers, strict=True)}
    shapes = ", ".join(
        sorted({f"{_in(f).describe()} -> {list(_out_sizes(f))}" for f in ctx.instances})
    )
    if kinds == {"matmul"}:
        return Note(
            "XNNPACK has no expand config, and this expand broadcasts the batch dimensions of "
            f"a matmul operand ({shapes}: grouped-query attention's repeat_kv, or torch's "
            "decomposition of a batched matmul), not the operand of an element-wise operator",
            f"{NO_FIX} for an expand feeding a matmul",
        )
    if kinds == {"elementwise"}:
        return _float_checked(
            replace(
                found,
                fix=(
                    "drop the explicit expand and let the element-wise operator broadcast, `a * b` "
                    "rather than `a.expand(...) * b`"
                ),
            ),
            ctx,
        )
    return replace(
        found,
        evidence=UNTESTED,
        condition=(
            f"for the instances that feed an element-wise operator only ({shapes}); an expand "
            "feeding a matmul has no known fix"
        ),
    )


def _expand_kind(f: OpFacts, consumers: tuple[str, ...], ctx: OpContext) -> str:
    """ "matmul" when the expand broadcasts leading (batch) dimensions only -- or a matmul
    kernel reads it -- "elementwise" when it broadcasts a trailing one."""
    names = {base(c) for c in consumers}
    if names & _MATMUL:
        return "matmul"
    if names & _ELEMENTWISE:
        return "elementwise"
    src, out = _in(f).sizes, _out_sizes(f)
    if len(src) != len(out) or not out:
        return "unknown"
    grown = [i for i, (a, b) in enumerate(zip(src, out, strict=True)) if a != b]
    return "matmul" if not grown or max(grown) < len(out) - 2 else "elementwise"


def _shape_op(b: str, found: Note, ctx: OpContext) -> Note:
    """select/squeeze/split: nn.LSTM's only where the program has an LSTM's gate split; no
    fix on integer tensors."""
    if not ctx.known:
        return found
    ints = [f for f in ctx.instances if _in(f).dtype and _in(f).dtype not in FLOATS]
    what = ", ".join(sorted({_in(f).describe() for f in ints}))
    if ints and len(ints) == len(ctx.instances):
        return Note(
            f"XNNPACK has no {b.removesuffix('_copy')} config, and this one works on "
            f"an integer tensor ({what}: index arithmetic, e.g. a position), which "
            "XNNPACK's configs never take",
            f"{NO_FIX} (cheap index arithmetic)",
        )
    if _lstm(ctx):
        return found
    reason = (
        found.reason
        if b != "select_copy"
        else ("XNNPACK has no select config (indexing one position, `y[:, -1]`, drops a dimension)")
    )
    found = replace(found, reason=reason, fix=found.fix.split("; for ")[0])
    if ints:  # the fix is for the float instances; integer ones are index arithmetic
        n = len(ctx.instances) - len(ints)
        return _float_checked(
            found,
            ctx,
            extra=(
                f"for the {n} on float tensors; the {len(ints)} on integer tensors ({what}: index "
                "arithmetic) have no fix"
            ),
        )
    return found


def _lstm(ctx: OpContext) -> bool:
    """Whether the program has nn.LSTM's decomposition: its gates split 4 ways, equally."""
    names = ctx.program_ops
    for f in ctx.program:
        if f.id < len(names) and base(names[f.id]) == "split_with_sizes_copy":
            sizes = f.args[1].ints if len(f.args) > 1 else ()
            if len(sizes) == 4 and len(set(sizes)) == 1:
                return True
    return False


def _in(f: OpFacts) -> Value:
    return f.args[0] if f.args else Value("other")


def _out_sizes(f: OpFacts) -> tuple[int, ...]:
    out = f.result
    return out.sizes if out is not None else ()
