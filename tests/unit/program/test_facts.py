"""etprof.program.facts reads each instruction's arguments and consumers from a `.pte` without
the runtime; checked against ExecuTorch's own deserializer (exir's `deserialize_pte_binary`) on
real programs, and the advice it feeds labels a fix untested, with its condition, when the
program cannot be read (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest

from etprof.backends import CHECKED, UNTESTED, OpContext, get
from etprof.program.facts import DTYPES, method_facts

from conftest import DATA

SMALL = DATA / "small_xnnpack.pte"


def exir_args(pte: Path) -> dict[int, list[str]]:
    """Per instruction, each argument as ExecuTorch's deserializer reads it, in facts' terms."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    loaded = deserialize_pte_binary(pte.read_bytes())
    plan = getattr(loaded, "program", loaded).execution_plan[0]
    out: dict[int, list[str]] = {}
    for i, ins in enumerate(plan.chains[0].instructions):
        args = getattr(ins.instr_args, "args", None)
        if args is None:
            continue
        described = []
        for v in args:
            val = plan.values[v].val
            kind = type(val).__name__
            if kind == "Tensor":
                sizes = ", ".join(map(str, val.sizes))
                described.append(f"{DTYPES[int(val.scalar_type)]}[{sizes}]")
            elif kind == "Int":
                described.append(str(val.int_val))
            elif kind == "Bool":
                described.append(str(bool(val.bool_val)))
            elif kind == "IntList":  # items are indices of Int values
                items = ", ".join(str(plan.values[j].val.int_val) for j in val.items)
                described.append(f"({items})")
            elif kind == "Null":
                described.append("none")
            else:
                described.append("other" if kind != "Double" else "double")
        out[i] = described
    return out


def test_arguments_are_those_executorch_reads() -> None:
    pytest.importorskip("executorch")
    facts = method_facts(SMALL.read_bytes(), "forward")
    assert facts is not None
    theirs = exir_args(SMALL)
    assert set(facts.ops) == set(theirs)
    for i, f in facts.ops.items():
        assert [v.describe() for v in f.args] == theirs[i], i
    # the mean between the two delegate calls: over dims (2, 3) of a 4-D tensor, keepdim=False,
    # read by the second delegate call (instruction 2)
    mean = facts.ops[1]
    assert [v.describe() for v in mean.args[:3]] == ["float32[1, 8, 14, 14]", "(2, 3)", "False"]
    assert mean.consumers == (2,) and facts.float_dtype() == "float32"


def test_a_fix_without_the_program_is_untested_with_its_condition() -> None:
    xnn = get("XnnpackBackend")
    mean = xnn.fallback_note("aten::mean.out", "constraint", ["aten::mean.out"], OpContext())
    assert mean is not None and mean.evidence == UNTESTED
    assert "keepdim=False" in mean.condition and "keepdim=True).flatten(1)" in mean.condition
    expand = xnn.fallback_note("aten::expand_copy.out", "unsupported", [], OpContext())
    assert expand is not None and expand.evidence == UNTESTED
    assert "element-wise operator, not a matmul" in expand.condition
    # with the program: the small program's mean is the keepdim case, checked
    facts = method_facts(SMALL.read_bytes(), "forward")
    assert facts is not None
    ctx = OpContext(
        dtype="float32",
        instances=(facts.ops[1],),
        consumers=(("XnnpackBackend",),),
        program_ops=("XnnpackBackend", "aten::mean.out", "XnnpackBackend"),
        program=tuple(facts.ops.values()),
    )
    checked = xnn.fallback_note("aten::mean.out", "constraint", ["aten::mean.out"], ctx)
    assert checked is not None and checked.evidence == CHECKED
    assert checked.fix.startswith("keep the dimensions")
