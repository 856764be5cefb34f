"""The fallback explainer (analyzers/fallback.py, docs/fallback.md).

Real traces: sample_traces/mv3_xnnpack_q8_quantonly.etdp (the seed's story), its mixed-partitioner
twin mv3_xnnpack_q8.etdp, mv2_xnnpack_fp32.etdp, and the small XNNPACK fixture. Hand-built traces
(events written here, expected numbers worked out by hand) pin the cost attribution, and, with a
fake backend registered for the test, that the explainer is generic over delegate backends.

Golden file: tests/golden/fallback_samples.txt, the explainer's table (and for three cases JSON)
output on every sample trace. Regenerate it after an intended change of the output with

    ETPROF_UPDATE_GOLDEN=1 python -m pytest tests/unit/analyzers/test_fallback.py -k golden

and review the diff before committing it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etprof import analyzers, backends, render
from etprof.analyzers.fallback import (
    FallbackOptions,
    FallbackReport,
    explain_fallbacks,
    target_backend,
)
from etprof.analyzers.runmodel import RunModelOptions, run_model_stats
from etprof.backends import NO_FIX, Backend, FallbackNote, OpContext
from etprof.backends.support import OpSupport, SupportTable
from etprof.backends.xnnpack_support import dumps, load_table, table_from_dict
from etprof.errors import InputError
from etprof.program.types import Instruction, ProgramInfo
from etprof.trace.events import annotate
from etprof.trace.loading import load_trace
from etprof.trace.model import Trace
from etprof.trace.sidecar import RunSettings, TraceMeta

from conftest import ROOT, SAMPLES, TESTS

QUANTONLY = SAMPLES / "mv3_xnnpack_q8_quantonly.etdp"
MIXED = SAMPLES / "mv3_xnnpack_q8.etdp"
MV2_FP32 = SAMPLES / "mv2_xnnpack_fp32.etdp"


def sample(path: Path) -> Trace:
    if not path.exists():
        pytest.skip(
            f"{path.name} is not in sample_traces/ yet (made by `etprof run` on {path.stem}.pte)"
        )
    return load_trace(path)


# -- hand-built traces -------------------------------------------------------------------------

# An event: (name, delegate operator, instruction, duration ns). Events of one iteration are laid
# end to end; enclosing calls are listed after what they enclose, as ETDump records them.
Event = tuple[str, str, int, int]


def delegate(iid: int, ops: list[tuple[str, int]], overhead: int) -> list[Event]:
    inner = [("", f"{op} #{k + 1}", iid, ns) for k, (op, ns) in enumerate(ops)]
    return [*inner, ("DELEGATE_CALL", "", iid, sum(ns for _, ns in ops) + overhead)]


def operator(iid: int, kernel: str, kernel_ns: int, call_ns: int) -> list[Event]:
    return [(f"native_call_{kernel}", "", iid, kernel_ns), ("OPERATOR_CALL", "", iid, call_ns)]


def hand_trace(
    name: str,
    instructions: list[Instruction],
    iteration: list[Event],
    run_model_ns: int,
    iters: int = 3,
    warmup: int = 1,
) -> Trace:
    rows = []
    for it in range(iters):
        t = 1_000_000 * (it + 1)
        for seq, (ev_name, dop, iid, ns) in enumerate(iteration):
            rows.append((it, seq, ev_name, dop, iid, t, t + ns))
            t += ns
        rows.append(
            (
                it,
                len(iteration),
                "Method::execute",
                "",
                0,
                1_000_000 * (it + 1),
                1_000_000 * (it + 1) + run_model_ns,
            )
        )
    f = pd.DataFrame(
        rows,
        columns=["iteration", "seq", "name", "delegate_op", "instruction_id", "start_ns", "end_ns"],
    )
    f.insert(0, "run", f["iteration"] + 1)
    f["name"] = pd.Categorical(f["name"])
    f["delegate_op"] = pd.Categorical(f["delegate_op"])
    f["delegate_id_int"] = np.int32(-1)
    f["chain_index"] = np.int32(0)
    f["duration_ns"] = f["end_ns"] - f["start_ns"]
    meta = TraceMeta(
        program=ProgramInfo(model=name, instructions=tuple(instructions)),
        run=RunSettings(iters=iters, warmup=warmup),
    )
    return Trace(events=annotate(f, meta), meta=meta, source=f"{name}.etdp", has_meta=True)


def op(iid: int, name: str, *modules: str) -> Instruction:
    return Instruction(iid, "operator", name, -1, modules)


def xnn(iid: int, index: int) -> Instruction:
    return Instruction(iid, "delegate", "XnnpackBackend", index)


def fp32_program() -> Trace:
    """delegate | view_copy, foo (unsupported) | delegate | mean (after the last partition)."""
    events = [
        *delegate(
            0,
            [
                ("Transpose (ND, X32)", 2_000),
                ("Convolution (NHWC, F32) IGEMM", 10_000),
                ("Transpose (ND, X32)", 3_000),
            ],
            overhead=1_000,
        ),
        *operator(1, "view_copy.out", 400, 500),
        *operator(2, "foo.out", 3_500, 4_000),
        *delegate(
            3,
            [("Transpose (ND, X32)", 1_000), ("Fully Connected (NC, F32) GEMM", 6_000)],
            overhead=1_000,
        ),
        *operator(4, "mean.out", 1_800, 2_000),
    ]
    instrs = [
        xnn(0, 0),
        op(1, "aten::view_copy.out"),
        op(2, "aten::foo.out"),
        xnn(3, 1),
        op(4, "aten::mean.out"),
    ]
    return hand_trace("hb_xnnpack_fp32", instrs, events, run_model_ns=40_000)


def q8_program(quant_only: bool = True) -> Trace:
    """A hardswish decomposed in a static-quant program: its div falls back (quant-only), or
    everything sits in one partition (mixed)."""
    conv = ("Convolution (NHWC, QC8) IGEMM", 20_000)
    if not quant_only:
        events = [
            *operator(0, "_to_copy.out", 300, 600),
            *delegate(
                1,
                [
                    conv,
                    ("Convert (NC)", 500),
                    ("HardSwish (NC)", 1_000),
                    ("Convert (NC)", 500),
                    conv,
                ],
                overhead=2_000,
            ),
        ]
        return hand_trace(
            "hb_xnnpack_q8",
            [op(0, "aten::_to_copy.out", "act"), xnn(1, 0)],
            events,
            run_model_ns=50_000,
        )
    events = [
        *operator(0, "_to_copy.out", 300, 600),
        *operator(1, "_to_copy.out", 300, 600),
        *delegate(
            2,
            [
                ("Convert (NC)", 1_000),
                ("Transpose (ND, X8)", 2_000),
                conv,
                ("Transpose (ND, X8)", 3_000),
                ("Convert (NC)", 700),
                ("Add (ND)", 400),
                ("Clamp (NC)", 300),
                ("Multiply (ND)", 500),
            ],
            overhead=1_500,
        ),
        *operator(3, "div.out", 2_000, 2_500),
        *delegate(4, [("Convert (NC)", 800), ("Transpose (ND, X8)", 1_200), conv], overhead=2_500),
    ]
    instrs = [
        op(0, "aten::_to_copy.out", "act"),
        op(1, "aten::_to_copy.out", "act"),
        xnn(2, 0),
        op(3, "aten::div.out", "act"),
        xnn(4, 1),
    ]
    return hand_trace("hb_xnnpack_q8_quantonly", instrs, events, run_model_ns=100_000)


def test_fp32_hand_built_costs_and_classes() -> None:
    r = explain_fallbacks(fp32_program(), FallbackOptions())
    assert (r.partitions, r.breaks, r.portable_instructions, r.measured) == (2, 1, 3, 2)
    by_op = r.causes.set_index("op")
    foo = by_op.loc["aten::foo.out"]
    assert foo["class"] == "unsupported" and foo["count"] == 1 and foo["glue"] == 1
    # foo's break: view_copy 500 + foo 4000 own; the trailing Transpose of block 0 (3000) and
    # the leading Transpose of block 3 (1000); block 3's overhead 1000
    assert foo["portable_ms"] == pytest.approx(0.0045)
    assert foo["boundary_ms"] == pytest.approx(0.004)
    assert foo["calls_ms"] == pytest.approx(0.001)
    mean = by_op.loc["aten::mean.out"]  # after the last partition: no boundary cost
    assert mean["class"] == "constraint" and mean["breaks"] == 0
    assert (mean["total_ms"], mean["boundary_ms"]) == (pytest.approx(0.002), 0)
    assert r.fallback_ms == pytest.approx(0.0115)
    assert r.fallback_pct == pytest.approx(28.75)
    assert r.fallen_back_ops() == ["aten::foo.out", "aten::mean.out"]
    instr = r.instructions.set_index("instruction")
    assert instr.loc[1, "class"] == "glue" and instr.loc[1, "cause_instruction"] == 2
    notes = " ".join(r.notes())
    assert "XNNPACK has no partitioner config for foo" in notes
    assert "although XNNPACK supports mean" in notes
    assert "foo, the most expensive cause, has no known fix in executorch" in notes
    assert "1 graph break" in notes and "2 XNNPACK partitions" in notes


def test_cost_is_the_sum_of_portable_time_and_break_boundaries() -> None:
    for trace in (fp32_program(), q8_program()):
        r = explain_fallbacks(trace, FallbackOptions())
        b = r.break_table
        portable = r.instructions["own_ms"].sum()
        assert r.fallback_ms == pytest.approx(
            portable + b["boundary_ms"].sum() + b["calls_ms"].sum()
        )
        assert r.causes["share_pct"].sum() == pytest.approx(r.fallback_pct)


def test_quant_only_hand_built_tells_the_story() -> None:
    r = explain_fallbacks(q8_program(), FallbackOptions(compare=q8_program(quant_only=False)))
    assert r.precisions == ("static_quant",)
    (row,) = r.causes.to_dict("records")
    assert (row["cause"], row["class"], row["xnnpack"]) == (
        "div.out (hardswish)",
        "precision",
        "fp32",
    )
    assert row["glue"] == 2  # the two _to_copy of the same module, before the first partition
    # div 2500 + 2 x _to_copy 600; block 2's tail Transpose 3000 + Convert 700, block 4's head
    # Convert 800 + Transpose 1200; the extra call: block 4's overhead is 2500, but a merge
    # removes one call's fixed cost, with two calls at most the smaller overhead, block 2's 1500
    assert row["portable_ms"] == pytest.approx(0.0037)
    assert row["boundary_ms"] == pytest.approx(0.0057)
    assert row["calls_ms"] == pytest.approx(0.0015)
    assert r.calls.basis == "smallest call" and r.calls.smallest_ns == pytest.approx(1500)
    notes = r.notes()
    assert any(
        "XNNPACK supports div only in fp32" in n
        and "quant-only partitioner" in n
        and "div pieces of hardswish (x1)" in n
        for n in notes
    )
    fix = notes[-1]
    assert "`etprof export hb --quantize`" in fix
    assert "(measured: 0.100 ms -> 0.050 ms run model, 1 partition, 0 graph breaks" in fix
    assert r.comparison is not None and r.comparison.breaks == 0
    assert "comparison" in r.tables()


def test_glue_alone_in_a_break_is_judged_as_an_operator() -> None:
    # mv2 q8 with the quant-only partitioner: the classifier's Dropout is a clone, which XNNPACK
    # takes in fp32 only, between two quantized partitions
    conv = ("Convolution (NHWC, QC8) IGEMM", 1_000)
    events = [
        *delegate(0, [conv], 500),
        *operator(1, "clone.out", 300, 400),
        *delegate(2, [conv], 500),
        *operator(3, "_to_copy.out", 50, 80),
    ]
    instrs = [xnn(0, 0), op(1, "aten::clone.out"), xnn(2, 1), op(3, "aten::_to_copy.out")]
    r = explain_fallbacks(
        hand_trace("m_xnnpack_q8_quantonly", instrs, events, 10_000), FallbackOptions()
    )
    assert r.breaks == 1 and r.fallen_back_ops() == ["aten::clone.out"]
    classes = r.causes.set_index("op")["class"]
    assert classes["aten::clone.out"] == "precision"
    assert classes["aten::_to_copy.out"] == "glue"  # after the last partition: glue stays glue
    notes = " ".join(r.notes())
    assert "XNNPACK supports clone only in fp32" in notes
    assert "aten::_to_copy.out (x1, after last partition) is layout/constant glue" in notes


def test_portable_only_program() -> None:
    portable = hand_trace("p_portable", [op(0, "aten::div.out")], operator(0, "div.out", 5, 9), 100)
    r = explain_fallbacks(portable, FallbackOptions())
    assert (r.partitions, r.breaks) == (0, 0)
    assert "no delegate call" in r.notes()[0] and "`etprof export p`" in r.notes()[0]


def test_bad_traces_are_refused() -> None:
    events = [*delegate(0, [("Add (ND)", 1_000)], 500)]
    trace = hand_trace("short", [xnn(0, 0)], events, 5_000, iters=2, warmup=2)
    with pytest.raises(InputError, match="warm-up"):
        explain_fallbacks(trace, FallbackOptions())


# -- the real small XNNPACK fixture (no sidecar: the program order is rebuilt from events) -------


def test_small_fixture_mean_is_a_rejected_instance(small_trace: Path) -> None:
    trace = load_trace(small_trace)
    r = explain_fallbacks(trace, FallbackOptions())
    delegate_ids = trace.events.loc[trace.events["kind"] == "delegate_call", "instruction_id"]
    assert r.partitions == delegate_ids.nunique() == 2 and r.breaks == 1
    assert r.fallen_back_ops() == ["mean.out"]
    assert r.causes.loc[0, "class"] == "constraint"


def test_every_renderer_formats_the_report(small_trace: Path) -> None:
    for report in (
        explain_fallbacks(load_trace(small_trace), FallbackOptions()),
        explain_fallbacks(q8_program(), FallbackOptions(compare=q8_program(False))),
    ):
        json.dumps(report.to_dict())
        for fmt in ("table", "json", "csv", "markdown"):
            assert render.render(report, fmt).strip()
        assert json.loads(render.render(report, "json"))["schema"] == "etprof.fallback"


def test_registered_and_torch_free(small_trace: Path) -> None:
    assert analyzers.get("fallback").func is explain_fallbacks
    code = (
        "import sys; from etprof.trace.loading import load_trace; from etprof import analyzers; "
        f"r = analyzers.run('fallback', load_trace({str(small_trace)!r})); r.notes(); "
        "bad = [m for m in ('torch', 'executorch') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


# -- the XNNPACK support table -----------------------------------------------------------------


def test_support_table_round_trips_and_refuses_other_documents() -> None:
    table = load_table()
    assert table_from_dict(json.loads(dumps(table))) == table
    with pytest.raises(InputError) as err:
        table_from_dict({"format": "something-else", "version": 1})
    assert "regenerate it with scripts/gen_xnnpack_support.py" in err.value.one_line()


@pytest.mark.slow
def test_support_table_matches_the_installed_executorch() -> None:
    """The checked-in table is what scripts/gen_xnnpack_support.py would write today."""
    from etprof.backends.xnnpack_support import DATA_FILE, generate_table

    checked_in = TESTS.parent / "src" / "etprof" / "backends" / DATA_FILE
    assert dumps(generate_table()) == checked_in.read_text(encoding="utf-8"), (
        "executorch's XNNPACK configs changed: run scripts/gen_xnnpack_support.py"
    )


# -- the seed's story on real traces -----------------------------------------------------------


def run_model_ms(trace: Trace) -> float:
    return run_model_stats(trace, RunModelOptions()).mean_ms


def test_mv3_quant_only_names_the_fallen_back_ops() -> None:
    quant_only, mixed = sample(QUANTONLY), sample(MIXED)
    r = explain_fallbacks(quant_only, FallbackOptions(compare=mixed))
    table = quant_only.meta.program.instructions
    delegates = sum(i.kind == "delegate" for i in table)
    divs = [i for i in table if i.name == "aten::div.out"]
    assert r.partitions == delegates > 1
    assert r.breaks == delegates - 1
    assert r.fallen_back_ops() == ["aten::div.out"]
    labels = r.causes.set_index("decomposed_from")["count"]
    assert set(labels.index) == {"hardswish", "hardsigmoid"}
    assert labels.sum() == len(divs)
    if all(i.modules for i in divs):  # torchvision names the SE block's Hardsigmoid so
        se = sum(i.modules[-1].endswith("scale_activation") for i in divs)
        assert labels["hardsigmoid"] == se and labels["hardswish"] == len(divs) - se
    notes = r.notes()
    story = " ".join(notes)
    for needed in (
        "div",
        "hardswish",
        "hardsigmoid",
        f"{delegates} XNNPACK partitions",
        "supports div only in fp32",
        "quant-only partitioner",
        "`etprof export mv3 --quantize`",
    ):
        assert needed in story, needed
    cost = next(n for n in notes if n.startswith("They split the graph"))
    assert f"{r.fallback_pct:.1f}% of run model" in cost
    assert 0 < r.fallback_ms < run_model_ms(quant_only)
    before, after = run_model_ms(quant_only), run_model_ms(mixed)
    assert (
        f"measured: {before:.2f} ms -> {after:.2f} ms run model, 1 partition, 0 graph breaks"
        in notes[-1]
    )
    assert after < before  # the default (mixed) partitioner closes the gap


def test_mv2_fp32_has_no_graph_break() -> None:
    r = explain_fallbacks(sample(MV2_FP32), FallbackOptions())
    assert (r.partitions, r.breaks, r.fallen_back_ops()) == (1, 0, [])
    assert "no graph break" in r.notes()[0]


def test_mv3_mixed_has_no_graph_break() -> None:
    r = explain_fallbacks(sample(MIXED), FallbackOptions())
    assert (r.partitions, r.breaks, r.fallen_back_ops()) == (1, 0, [])
    assert set(r.causes["class"]) <= {"glue"}


def test_real_samples_keep_the_cost_invariant() -> None:
    paths = sorted(SAMPLES.glob("*.etdp"))
    if not paths:
        pytest.skip("no sample traces yet")
    for path in paths:
        r: FallbackReport = explain_fallbacks(load_trace(path), FallbackOptions())
        b = r.break_table
        total = r.instructions["own_ms"].sum() + b["boundary_ms"].sum() + b["calls_ms"].sum()
        assert r.fallback_ms == pytest.approx(total), path.name
        assert r.breaks <= max(0, r.partitions - 1), path.name
        if "portable" in path.stem:
            assert r.partitions == 0 and re.search("no delegate call", r.notes()[0])


# -- the explainer is generic over delegate backends --------------------------------------------

FAKE_ID = "FakeBackend"
FAKE_TABLE = SupportTable(
    executorch="fake-1",
    ops=(
        OpSupport("AddConfig", ("aten.add.Tensor",), ("aten::add.out",), ("fp32",), False),
        OpSupport("DivConfig", ("aten.div.Tensor",), ("aten::div.out",), ("static_quant",), False),
    ),
)


@dataclass(frozen=True)
class Fake(Backend):
    """A backend etprof knows for this test only: its glue is "reformat", its table FAKE_TABLE."""

    def is_glue(self, op: str) -> bool:
        return op.startswith("reformat")

    def support_table(self) -> SupportTable:
        return FAKE_TABLE

    def fallback_note(
        self, op: str, cls: str, program_ops: Sequence[str], context: OpContext | None = None
    ) -> FallbackNote:
        if cls == "constraint":
            return FallbackNote("Fakeo rejects this shape", "reshape it first")
        return FallbackNote(
            f"Fakeo's compiler has no {op.split('::')[-1].split('.')[0]}", f"{NO_FIX} in fakeo 0.1"
        )

    def glue_kernels(self) -> frozenset[str]:
        return frozenset({"view_copy"})

    @property
    def explains_fallbacks(self) -> bool:
        return True


FAKE = Fake(id=FAKE_ID, label="Fakeo", knows_glue=True, boundary_glue="reformats")


def _register(monkeypatch: pytest.MonkeyPatch, registry: dict[str, str]) -> Iterator[None]:
    module = types.ModuleType("etprof_test_fake_backend")
    module.BACKEND = FAKE  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(
        backends, "_MODULES", {k: v or module.__name__ for k, v in registry.items()}
    )
    backends.get.cache_clear()
    yield
    backends.get.cache_clear()


@pytest.fixture
def fake_too(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """FakeBackend registered after XNNPACK."""
    yield from _register(monkeypatch, {**backends._MODULES, FAKE_ID: ""})


@pytest.fixture
def fake_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """FakeBackend the only registered backend (so the default target)."""
    yield from _register(monkeypatch, {FAKE_ID: ""})


def fake(iid: int, index: int) -> Instruction:
    return Instruction(iid, "delegate", FAKE_ID, index)


def fake_program() -> Trace:
    """fake | view_copy (glue), foo (unsupported) | fake | add (constraint), div (precision)."""
    events = [
        *delegate(0, [("conv", 10_000), ("reformat", 3_000)], overhead=1_000),
        *operator(1, "view_copy.out", 400, 500),
        *operator(2, "foo.out", 3_500, 4_000),
        *delegate(3, [("reformat", 1_000), ("matmul", 6_000)], overhead=1_000),
        *operator(4, "add.out", 1_800, 2_000),
        *operator(5, "div.out", 700, 900),
    ]
    instrs = [
        fake(0, 0),
        op(1, "aten::view_copy.out"),
        op(2, "aten::foo.out"),
        fake(3, 1),
        op(4, "aten::add.out"),
        op(5, "aten::div.out"),
    ]
    return hand_trace("hb_fake", instrs, events, run_model_ns=40_000)


def test_a_registered_backend_is_explained_with_its_own_label(fake_too: None) -> None:
    trace = fake_program()
    assert target_backend(trace) is FAKE
    r = explain_fallbacks(trace, FallbackOptions())
    assert (r.partitions, r.breaks, r.portable_instructions) == (2, 1, 4)
    causes = r.causes.set_index("op")
    assert dict(causes["class"]) == {
        "aten::foo.out": "unsupported",
        "aten::add.out": "constraint",
        "aten::div.out": "precision",
    }
    assert dict(causes["why"]) == {
        "aten::foo.out": "not supported by Fakeo",
        "aten::add.out": "supported by Fakeo, this instance not taken",
        "aten::div.out": "supported by Fakeo only at another precision",
    }
    foo = causes.loc["aten::foo.out"]
    # its break: view_copy 500 (the fake's glue, serving foo) + foo 4000; the fake's "reformat"
    # glue at the tail of block 0 (3000) and the head of block 3 (1000); block 3's overhead 1000
    assert foo["glue"] == 1 and foo["breaks"] == 1
    assert (foo["portable_ms"], foo["boundary_ms"], foo["calls_ms"]) == (
        pytest.approx(0.0045),
        pytest.approx(0.004),
        pytest.approx(0.001),
    )
    assert r.fallback_ms == pytest.approx(0.0045 + 0.004 + 0.001 + 0.002 + 0.0009)
    assert causes.loc["aten::div.out", "xnnpack"] == "static_quant"  # the fake's table
    notes = r.notes()
    assert notes[0] == (
        "hb_fake: 4 portable operator instructions per run beside 2 Fakeo "
        "partitions, 1 graph break."
    )
    text = "\n".join(notes)
    assert (
        "aten::foo.out (x1) ran on portable kernels because Fakeo's compiler has no foo "
        "(executorch fake-1)"
    ) in text
    assert "although Fakeo supports add (fp32): Fakeo rejects this shape. Fix: reshape it" in text
    assert (
        "because Fakeo supports div only static 8-bit quantized, and this program is fp32" in text
    )
    assert "They split the graph into 2 Fakeo partitions (1 graph break)" in text
    assert "boundary reformats 0.004 ms" in text
    assert notes[-1] == (
        "Fix: foo, the most expensive cause, has no known fix in fakeo 0.1; "
        "the causes with a fix are add (above)."
    )
    document = render.render(r, "json") + render.render(r, "table")
    assert "fake-1" in document and not re.search(
        "xnnpack|XNNPACK", document.replace('"xnnpack', '"')
    )  # the schema's field names, nothing else


def test_the_default_target_explains_a_portable_program(fake_only: None) -> None:
    portable = hand_trace("p_portable", [op(0, "aten::div.out")], operator(0, "div.out", 5, 9), 100)
    assert backends.default_target() is FAKE
    r = explain_fallbacks(portable, FallbackOptions())
    assert r.backend is FAKE and r.executorch == "fake-1"
    # the fake has no etprof command that lowers to it: the fix names none
    assert r.notes() == [
        (
            "p_portable has no delegate call: every operator runs on portable "
            "kernels, so nothing fell back from Fakeo. Lower it to Fakeo."
        )
    ]


def test_the_default_target_is_the_first_registered_explainer(fake_too: None) -> None:
    target = backends.default_target()
    assert target is not None and target.id == "XnnpackBackend"
    assert [b.label for b in backends.explainers()] == ["XNNPACK", "OpenVINO", "Fakeo"]


def test_a_backend_without_fallback_knowledge_is_refused() -> None:
    events = [*delegate(0, [("conv", 1_000)], 500), *operator(1, "div.out", 300, 400)]
    trace = hand_trace(
        "coreml",
        [Instruction(0, "delegate", "CoreMLBackend", 0), op(1, "aten::div.out")],
        events,
        10_000,
    )
    assert not backends.get("CoreMLBackend").explains_fallbacks
    with pytest.raises(InputError) as err:
        explain_fallbacks(trace, FallbackOptions())
    line = err.value.one_line()
    assert "\n" not in line
    assert line == (
        "coreml.etdp delegates to Core ML: etprof has no fallback knowledge of "
        "it; read the buckets and operators; the explanation needs a program lowered "
        "to a backend etprof explains (XNNPACK, OpenVINO)"
    )


def test_two_backends_with_fallback_knowledge_are_refused(fake_too: None) -> None:
    events = [
        *delegate(0, [("Convolution (NHWC, F32) IGEMM", 1_000)], 500),
        *operator(1, "div.out", 300, 400),
        *delegate(2, [("conv", 1_000)], 500),
    ]
    trace = hand_trace("two", [xnn(0, 0), op(1, "aten::div.out"), fake(2, 1)], events, 10_000)
    with pytest.raises(
        InputError,
        match="delegates to XNNPACK and Fakeo: etprof explains the "
        "fallbacks of one backend at a time",
    ):
        explain_fallbacks(trace, FallbackOptions())


def test_no_backend_knowledge_in_the_explainer() -> None:
    """Backend-specific knowledge lives behind etprof.backends, not in the explainer."""
    files = sorted((ROOT / "analyzers").glob("fallback*.py")) + sorted(
        (ROOT / "analyzers").glob("_fallback_*.py")
    )
    assert len(files) >= 3
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "XNNPACK" not in text and "Xnnpack" not in text, path.name
        assert "backends.xnnpack" not in text, path.name


GOLDEN = ROOT / "tests" / "golden" / "fallback_samples.txt"
GOLDEN_PAIRS = (
    ("mv3_xnnpack_q8_quantonly", "mv3_xnnpack_q8"),
    ("mv2_xnnpack_q8_quantonly", "mv2_xnnpack_q8"),
)
GOLDEN_JSON = (
    "mv3_xnnpack_q8_quantonly vs mv3_xnnpack_q8",
    "mv2_xnnpack_q8_quantonly",
    "mv3_xnnpack_q8",
)


def test_golden_sample_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """The explainer's output on every sample trace is what it was (XNNPACK's wording)."""
    monkeypatch.chdir(ROOT)
    paths = sorted(SAMPLES.glob("*.etdp"))
    if not paths:
        pytest.skip("no sample traces yet")
    traces = {p.stem: load_trace(p.relative_to(ROOT)) for p in paths}
    cases = [(stem, trace, None) for stem, trace in traces.items()]
    cases += [
        (f"{a} vs {b}", traces[a], traces[b])
        for a, b in GOLDEN_PAIRS
        if a in traces and b in traces
    ]
    parts = []
    for name, trace, compare in cases:
        report = explain_fallbacks(trace, FallbackOptions(compare=compare))
        parts.append(f"== {name}: table\n{render.render(report, 'table')}")
        if name in GOLDEN_JSON:
            parts.append(f"== {name}: json\n{render.render(report, 'json')}")
    text = "\n".join(parts)
    if os.environ.get("ETPROF_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.is_file(), "run with ETPROF_UPDATE_GOLDEN=1 to create the golden file"
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_extra_delegate_calls_are_one_calls_fixed_cost() -> None:
    """MV3 q8 with the quant-only partitioner: 29 delegate calls whose overhead outside their
    operators grows with their size (7.8 µs with 3 operators, 40 µs with 17). A merge removes one
    call, so each of the 28 graph breaks costs the fixed part -- the intercept of overhead against
    operator count, computed here from the event table -- not the whole overhead of the call
    after it (0.553 ms before, issue 22)."""
    trace = sample(QUANTONLY)
    report = explain_fallbacks(trace, FallbackOptions())
    ev = trace.measured(None).events
    calls = ev[ev["kind"] == "delegate_call"].groupby("instruction_id")["duration_ns"].mean()
    ops = ev[ev["kind"] == "delegate_op"].groupby(["instruction_id", "iteration"])["duration_ns"]
    inner = ops.sum().groupby(level=0).mean().reindex(calls.index, fill_value=0)
    count = ops.size().groupby(level=0).mean().reindex(calls.index, fill_value=0)
    overhead = calls - inner
    slope, intercept = np.polyfit(count.to_numpy(float), overhead.to_numpy(float), 1)
    fixed = min(intercept, overhead.min())
    assert report.calls.basis == "fit" and report.calls.calls == 29
    assert report.calls.fixed_ns == pytest.approx(fixed, rel=1e-9)
    assert report.calls.per_op_ns == pytest.approx(slope, rel=1e-9)
    assert report.breaks == 28
    assert report.causes["calls_ms"].sum() == pytest.approx(28 * fixed / 1e6, rel=1e-9)
    whole = sum(overhead[int(b)] for b in report.break_table["before"]) / 1e6
    assert whole > 0.5 and report.causes["calls_ms"].sum() < 0.2 * whole
    line = next(x for x in report.notes() if "extra delegate calls are" in x)
    assert f"28 x {fixed / 1e3:.1f} µs, one call's fixed cost" in line
    assert f"at most 28 x {overhead.min() / 1e3:.1f} µs" in line
