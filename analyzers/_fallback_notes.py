"""The fallback explainer's plain-language explanation, written from a FallbackReport's data.

One line for the program (partitions, breaks), one per fallen-back operator (what, why), one for
the cost, and one with the fix (and its measured effect when a comparison trace was given). The
sentences name the report's target backend by its label; its knowledge (reasons and fixes,
decompositions, partitioner names, how etprof lowers to it) comes through etprof.backends.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pandas as pd

from etprof.analyzers._fallback_context import context, dtype_line, fix_words
from etprof.analyzers._fallback_program import (
    CONSTRAINT,
    GLUE,
    PRECISION,
    UNSUPPORTED,
)
from etprof.backends import PRECISION_LABELS, FallbackNote
from etprof.zoo.export import model_of_variant

if TYPE_CHECKING:
    # relative: mypy also checks this folder as `analyzers`, where the report must be that
    # package's own class
    from .fallback import FallbackReport


def explain(r: FallbackReport) -> list[str]:
    model = model_of_variant(r.model)  # `etprof export`'s file names
    label = r.backend.label
    partition = f"{label} partition"
    if r.partitions == 0:
        how = r.backend.export_command(model, quantize=False)
        return [
            (
                f"{r.model} has no delegate call: every operator runs on portable kernels, so "
                f"nothing fell back from {label}. Lower it to {label}"
                f"{f' with {how}' if how else ''}."
            )
        ]
    if r.portable_instructions == 0:
        partitions = _n(r.partitions, partition)
        return [
            (
                f"{r.model}: every operator runs inside {partitions}; no operator fell back to "
                "portable kernels and there is no graph break."
            )
        ]
    lines = [
        (
            f"{r.model}: {_n(r.portable_instructions, 'portable operator instruction')} per "
            f"run beside {_n(r.partitions, partition)}, "
            f"{_n(r.breaks, 'graph break')}."
        )
    ]
    lines += [line for line in (dtype_line(r),) if line]
    causes = r.causes.assign(cls=r.causes["class"])  # `class` is awkward as an attribute
    real = causes[causes["cls"] != GLUE]
    program_ops = [str(o) for o in r.instructions["op"]]
    pieces: dict[str, list[str]] = {}  # a decomposition the backend recognises: one line
    for op, group in real.groupby("op", sort=False):
        note = _note(r, str(op), str(group["cls"].iloc[0]), program_ops)
        if note is not None and note.label:
            if note.label not in pieces:
                pieces[note.label] = []
                lines.append(note.label)  # placeholder, replaced below
            pieces[note.label].append(_counted(str(op), group))
            continue
        lines.append(_why(r, str(op), group, r.instructions, note))
    for label, ops in pieces.items():
        note = _note(r, _first_op(real, label), UNSUPPORTED, program_ops)
        assert note is not None
        lines[lines.index(label)] = (
            f"{', '.join(ops)} ran on portable kernels: they are pieces of {label} as torch "
            f"decomposes it; {note.reason}. {fix_words(note)}."
        )
    glue = causes[causes["cls"] == GLUE]
    for row in glue.to_dict("records"):
        served = r.instructions[r.instructions["cause_op"] == row["op"]]
        where = ", ".join(sorted(set(served["where"])))
        lines.append(
            f"{row['op']} (x{row['count']}, {where}) is layout/constant glue on portable "
            f"kernels that no fallen-back operator accounts for; {_ms(row['total_ms'])} "
            f"per run ({row['share_pct']:.1f}% of run model)."
        )
    if not real.empty:
        lines.append(_cost(r))
        lines.append(_fix(r, model, real))
    return lines


def _note(r: FallbackReport, op: str, cls: str, program_ops: list[str]) -> FallbackNote | None:
    if cls not in (UNSUPPORTED, CONSTRAINT):
        return None
    return r.backend.fallback_note(op, cls, program_ops, context(r, op))


def _counted(op: str, group: pd.DataFrame) -> str:
    return f"{op} (x{int(group['count'].sum())})"


def _first_op(real: pd.DataFrame, label: str) -> str:
    return str(real.loc[real["decomposed_from"] == label, "op"].iloc[0])


def _why(
    r: FallbackReport, op: str, group: pd.DataFrame, instr: pd.DataFrame, note: FallbackNote | None
) -> str:
    from ._fallback_cost import SUPPORT

    label = r.backend.label
    count = int(group["count"].sum())
    cls = str(group["cls"].iloc[0])
    precisions = str(group[SUPPORT].iloc[0]).split(", ")
    supported = " and ".join(PRECISION_LABELS.get(p, p) for p in precisions if p)
    short = _short(op)
    if cls == PRECISION:
        quantized = [p for p in r.precisions if p != "fp32"]
        if quantized and "fp32" in precisions:
            which = r.backend.partitioner(mixed=False)
            why = (
                f"because {label} supports {short} only in {supported} and this program is "
                f"{_program(r)}: a partitioner that takes quantized partitions only"
                f"{f' ({which})' if which else ''} leaves the fp32 {short} out"
            )
        else:
            why = f"because {label} supports {short} only {supported}, and this program is fp32"
    elif cls == UNSUPPORTED:
        assert note is not None
        why = f"because {note.reason} (executorch {r.executorch}). {fix_words(note)}"
    else:
        assert cls == CONSTRAINT and note is not None
        why = f"although {label} supports {short} ({supported}): {note.reason}. {fix_words(note)}"
    line = f"{op} (x{count}) ran on portable kernels {why}."
    labels: Counter[str] = Counter()
    for name, k in zip(group["decomposed_from"], group["count"], strict=False):
        if name:
            labels[str(name)] += int(k)
    decomposed = r.backend.decompositions()
    activations = {name for name, _, _ in decomposed}
    if labels and all(name in activations for name in labels):
        pieces = " and ".join(f"{name} (x{k})" for name, k in labels.items())
        inside = sorted(
            {p for name, delegated, _ in decomposed if name in labels for p in delegated}
        )
        line += (
            f" They are the {short} pieces of {pieces}: lowering decomposed these "
            f"activations, and their other pieces ({', '.join(inside)}) ran inside {label}."
        )
    glue = int(group["glue"].sum())
    if glue:
        served = instr[instr["cause_op"] == op]
        glue_ops = sorted(
            set(served.loc[served["instruction"] != served["cause_instruction"], "op"])
        )
        line += f" {_n(glue, 'glue instruction')} ({', '.join(glue_ops)}) serve them."
    return line


def _cost(r: FallbackReport) -> str:
    c = r.causes
    label = r.backend.label
    parts = (
        f"portable kernels {_ms(c['portable_ms'].sum())}, boundary {r.backend.boundary_glue} "
        f"{_ms(c['boundary_ms'].sum())}, extra delegate calls {_ms(c['calls_ms'].sum())}"
    )
    split = (
        f"They split the graph into {_n(r.partitions, f'{label} partition')} "
        f"({_n(r.breaks, 'graph break')}); "
        if r.breaks
        else ""
    )
    line = (
        f"{split}fallback and boundary cost {_ms(r.fallback_ms)} per run "
        f"({r.fallback_pct:.1f}% of run model {_ms(r.run_model_ms)}): {parts}."
    )
    k = r.calls
    if r.breaks and k.calls:
        # a merge removes one call per break, not the calls' whole overhead (_fallback_calls)
        each, most = f"{k.fixed_ns / 1e3:.1f} µs", f"{k.smallest_ns / 1e3:.1f} µs"
        if k.basis == "fit":
            line += (
                f" The extra delegate calls are {r.breaks} x {each}, one call's fixed cost (the "
                f"intercept of the program's {k.calls} calls' overhead against their operator "
                f"count: {each} + {k.per_op_ns / 1e3:.1f} µs per operator), at most "
                f"{r.breaks} x {most} = {_ms(r.breaks * k.smallest_ns / 1e6)} (the smallest "
                "call's whole overhead); the rest of a call's overhead grows with its operators "
                "and stays after a merge."
            )
        else:
            line += (
                f" The extra delegate calls are at most {r.breaks} x {most}, the smallest of "
                f"the program's {k.calls} calls' whole overhead: too few calls to tell a call's "
                "fixed cost from its operators' share, which stays after a merge."
            )
    return line


def _fix(r: FallbackReport, model: str, real: pd.DataFrame) -> str:
    top = str(real.iloc[0]["cls"])  # the most expensive cause decides the headline fix
    ops = ", ".join(_short(o) for o in dict.fromkeys(real.loc[real["cls"] == top, "op"]))
    quantized = [p for p in r.precisions if p != "fp32"]
    label = r.backend.label
    how = r.backend.export_command(model, quantize=True)
    then = f": {how}" if how else ""
    if top == PRECISION and quantized:
        which = r.backend.partitioner(mixed=True) or f"a {label} partitioner"
        fix = f"Fix: lower with {which} (mixed precision: it also takes fp32 operators){then}"
    elif top == PRECISION:
        fix = f"Fix: quantize the model so {label} can take {ops}{then}"
    else:
        fix = _note_fix(r, real)
    c = r.comparison
    if c is None:
        if top == PRECISION and quantized:
            fix += (
                " (to measure the gain, profile that program with `etprof run` and compare "
                "the two traces)"
            )
        return fix + "."
    measured = (
        f"{_ms(r.run_model_ms)} -> {_ms(c.run_model_ms)} run model, "
        f"{_n(c.partitions, 'partition')}, {_n(c.breaks, 'graph break')}, "
        f"{_ms(c.fallback_ms)} fallback left"
    )
    # only a program that no longer falls back on these operators measures this fix
    gone = {_short(o) for o in c.causes}
    remain = list(
        dict.fromkeys(_short(o) for o in real.loc[real["cls"] == top, "op"] if _short(o) in gone)
    )
    if remain:
        there = (
            f"it has no {label} partition: every operator runs on portable kernels"
            if c.partitions == 0
            else f"{', '.join(remain)} still "
            f"{'falls' if len(remain) == 1 else 'fall'} back to portable kernels there"
        )
        return (
            f"{fix}. Compared with {c.model}: {measured}. That program does not apply "
            f"this fix ({there}), so the causes remain: this is a comparison, not the "
            "fix's measured effect."
        )
    line = f"{fix} (measured: {measured}, in {c.model})."
    gap = r.run_model_ms - c.run_model_ms
    if gap > 0:
        # the rest of the gap is inside the delegate blocks (layout changes mid-block, the
        # decomposed pieces run as separate operators, ...): say how much, do not guess why
        line += (
            f" The attribution above accounts for {_ms(r.fallback_ms - c.fallback_ms)} of "
            f"that {_ms(gap)} gap."
        )
    return line


def _note_fix(r: FallbackReport, real: pd.DataFrame) -> str:
    """The fix of the most expensive unsupported/rejected cause, and which others have one."""
    program_ops = [str(o) for o in r.instructions["op"]]
    notes = {
        str(op): _note(r, str(op), str(cls), program_ops)
        for op, cls in zip(real["op"], real["cls"], strict=False)
        if cls in (UNSUPPORTED, CONSTRAINT)
    }
    first = str(real.iloc[0]["op"])
    note = notes[first]
    assert note is not None
    what = note.label or _short(first)
    if note.fixable:
        return f"Fix: start with {what}, the most expensive cause (its fix is above)"
    others = list(
        dict.fromkeys(
            (n.label or _short(op)) for op, n in notes.items() if n is not None and n.fixable
        )
    )
    line = f"Fix: {what}, the most expensive cause, has {note.fix}"
    if others:
        return line + f"; the causes with a fix are {', '.join(others)} (above)"
    return line + "; nothing here has one, so accept the cost"


def _program(r: FallbackReport) -> str:
    quantized = [PRECISION_LABELS[p] for p in r.precisions if p != "fp32"]
    return " and ".join(quantized) if quantized else "fp32"


def _short(op: str) -> str:
    """ "aten::div.out" -> "div"."""
    return op.split("::")[-1].split(".")[0]


def _ms(x: float) -> str:
    return f"{x:.2f} ms" if abs(x) >= 1 else f"{x:.3f} ms"


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"
