"""Delegates other than XNNPACK, and programs with two different delegates: attribution per
backend (etprof.backends), honest about what etprof does not know of a backend, on hand-built
traces whose instruction tables stand in for the `.pte`'s (tests/hand_traces.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from etprof import analyzers, backends
from etprof.analyzers.breakdown import BreakdownOptions
from etprof.analyzers.buckets import DELEGATED, backend_frames, bucket_frame
from etprof.trace.loading import load_trace

from conftest import run_cli
from hand_traces import Call, execute_run, loading, method, write_trace

ITERS, WARMUP = 8, 2
# one method: a Acme delegate, a portable add, an XNNPACK delegate, a second Acme call
MIXED = method(
    "forward",
    [
        ("delegate", "AcmeNpuBackend"),
        ("operator", "aten::add.out"),
        ("delegate", "XnnpackBackend"),
        ("delegate", "AcmeNpuBackend"),
    ],
    ("AcmeNpuBackend", "XnnpackBackend"),
)
ACME_ONLY = method(
    "forward", [("delegate", "AcmeNpuBackend"), ("operator", "aten::add.out")], ("AcmeNpuBackend",)
)


def mixed_run(j: int, slower: int = 0) -> list[Call]:
    return [
        Call(0, 12 + slower, (("conv2d_clamp_half #1", 5 + slower), ("copy_image #2", 3))),
        Call(1, 4, (("add.out", 3),), delegate=False),
        Call(2, 9, (("Convolution (NHWC, F32) IGEMM #1", 5), ("Transpose (ND, X32) #1", 2))),
        Call(3, 6, ()),
    ]  # a Acme call that recorded no operator events


def write_mixed(path: Path, slower: int = 0) -> Path:
    runs = [loading(1)] + [execute_run(mixed_run(j, slower), 40 + slower + j) for j in range(ITERS)]
    return write_trace(path, runs, (MIXED,), warmup=WARMUP, iters=ITERS, model="mixed")


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    return write_mixed(tmp_path / "mixed.etdp")


def test_an_unknown_backend_is_generic_and_labelled_by_its_id() -> None:
    vulkan = backends.get("AcmeNpuBackend")
    assert vulkan.label == "AcmeNpuBackend" and not vulkan.knows_glue
    assert vulkan.op_name("conv2d #1") == "conv2d #1" and not vulkan.explains_fallbacks
    xnnpack = backends.get("XnnpackBackend")
    assert xnnpack.label == "XNNPACK" and xnnpack.knows_glue and xnnpack.explains_fallbacks
    assert xnnpack.op_name("Convert (NC) #3") == "Convert (NC)"
    assert xnnpack.is_glue("Convert (NC)") and not xnnpack.is_glue("Copy Sign (ND)")


def test_known_backends_have_human_labels() -> None:
    labels = {
        b: backends.get(b).label
        for b in (
            "VulkanBackend",
            "CoreMLBackend",
            "QnnBackend",
            "OpenvinoBackend",
            "XnnpackBackend",
        )
    }
    assert labels == {
        "VulkanBackend": "Vulkan",
        "CoreMLBackend": "Core ML",
        "QnnBackend": "QNN",
        "OpenvinoBackend": "OpenVINO",
        "XnnpackBackend": "XNNPACK",
    }
    ov = backends.get("OpenvinoBackend")
    assert ov.opaque_label == "OpenVINO (no operator events)"
    assert ov.install_hint == "pip install 'etprof[openvino]'"
    assert ov.is_glue("Reorder") and not ov.is_glue("Convolution")
    assert ov.explains_fallbacks and ov.support_table().lookup("aten::convolution.out")
    note = ov.fallback_note("aten::foo.out", "unsupported", [])
    assert note is not None and not note.fixable


def test_backend_column_and_op_names_per_backend(mixed: Path) -> None:
    ev = load_trace(mixed).events
    calls = ev[ev["kind"] == "delegate_call"]
    assert set(zip(calls["instruction_id"], calls["backend"].astype(str), strict=False)) == {
        (0, "AcmeNpuBackend"),
        (2, "XnnpackBackend"),
        (3, "AcmeNpuBackend"),
    }
    ops = ev[ev["kind"] == "delegate_op"]
    named = set(zip(ops["backend"].astype(str), ops["op"].astype(str), strict=False))
    # XNNPACK's counters are stripped; a backend etprof does not know keeps its names
    assert named == {
        ("AcmeNpuBackend", "conv2d_clamp_half #1"),
        ("AcmeNpuBackend", "copy_image #2"),
        ("XnnpackBackend", "Convolution (NHWC, F32) IGEMM"),
        ("XnnpackBackend", "Transpose (ND, X32)"),
    }
    assert set(ev.loc[ev["kind"] == "kernel", "backend"].astype(str)) == {""}


def test_buckets_per_backend_sum_exactly_to_run_model(mixed: Path) -> None:
    trace = load_trace(mixed)
    total = bucket_frame(trace)
    per = backend_frames(trace)
    assert list(per) == ["AcmeNpuBackend", "XnnpackBackend"]
    for bucket in DELEGATED:  # the per-backend rows split the totals exactly
        assert (sum(f[bucket] for f in per.values()) == total[bucket]).all()
    parts = sum(f[list(DELEGATED)].sum(axis=1) for f in per.values()) + total[
        ["portable_kernels", "dispatch_overhead", "runtime_overhead"]
    ].sum(axis=1)
    assert (parts == total["run_model"]).all()
    us = 1000
    vk, xnn = per["AcmeNpuBackend"], per["XnnpackBackend"]
    assert (vk["delegate_compute"] == 8 * us).all()  # its operators, glue not told apart
    assert (vk["delegate_glue"] == 0).all()
    assert (vk["delegate_overhead"] == (12 - 8) * us).all()
    # the call that recorded no operator event is one opaque block of its backend, not overhead
    assert (vk["delegate_opaque"] == 6 * us).all() and (vk["opaque_calls"] == 1).all()
    assert (xnn["delegate_opaque"] == 0).all()
    assert (xnn["delegate_compute"] == 5 * us).all() and (xnn["delegate_glue"] == 2 * us).all()
    assert (xnn["delegate_overhead"] == 2 * us).all()
    assert (total["portable_kernels"] == 3 * us).all()
    assert (total["dispatch_overhead"] == 1 * us).all()
    j = np.arange(ITERS)
    assert (total["runtime_overhead"] == (40 + j - 12 - 4 - 9 - 6) * us).all()


def test_breakdown_rows_labels_and_notes(mixed: Path) -> None:
    result = analyzers.run("breakdown", load_trace(mixed), BreakdownOptions())
    table = result.buckets.table()
    rows = list(zip(table["bucket"], table["backend"], table["label"], strict=False))
    assert rows == [
        ("delegate_compute", "AcmeNpuBackend", "AcmeNpuBackend compute"),
        ("delegate_opaque", "AcmeNpuBackend", "AcmeNpuBackend (no operator events)"),
        ("delegate_overhead", "AcmeNpuBackend", "AcmeNpuBackend delegate overhead"),
        ("delegate_compute", "XnnpackBackend", "XNNPACK compute"),
        ("delegate_glue", "XnnpackBackend", "XNNPACK layout/precision glue"),
        # XNNPACK's timer resolution is known (1 us), Acme's is not: no such row for it
        ("delegate_unresolved", "XnnpackBackend", "XNNPACK operators below timer resolution"),
        ("delegate_overhead", "XnnpackBackend", "XNNPACK delegate overhead"),
        ("portable_kernels", "", "portable kernels"),
        ("dispatch_overhead", "", "operator dispatch overhead"),
        ("runtime_overhead", "", "runtime overhead"),
        ("run_model", "", "run model (Method::execute)"),
    ]
    body = table[table["bucket"] != "run_model"]
    assert body["mean_ms"].sum() == pytest.approx(result.buckets.run_model_ms, rel=1e-12)
    # mean run model 44.5 us: Acme 12 + 6, XNNPACK 9 (2 glue), portable 3 + 1
    assert result.headline() == (
        "mixed: 44.5 µs: AcmeNpuBackend 40.4% (13.5% opaque), XNNPACK 20.2% (4.5% "
        "glue), portable 9.0%, runtime 30.3%"
    )
    notes = result.notes()
    assert any("which AcmeNpuBackend operators only convert" in n for n in notes)
    assert any("some AcmeNpuBackend calls recorded no operator events" in n for n in notes)
    # the fallback explainer knows XNNPACK only: it does not judge a program with another delegate
    assert result.fallback is None
    assert "delegates to AcmeNpuBackend: etprof has no fallback knowledge" in result.fallback_error
    ops = result.operators.frame
    assert set(zip(ops["side"], ops["backend"], strict=False)) == {
        ("delegated", "AcmeNpuBackend"),
        ("delegated", "XnnpackBackend"),
        ("portable", ""),
    }


def test_a_backend_without_glue_knowledge_alone(tmp_path: Path) -> None:
    runs = [loading(1)] + [
        execute_run(
            [Call(0, 10, (("matmul #1", 7),)), Call(1, 3, (("add.out", 2),), False)], 20 + j
        )
        for j in range(ITERS)
    ]
    path = write_trace(
        tmp_path / "vk.etdp", runs, (ACME_ONLY,), warmup=WARMUP, iters=ITERS, model="vk"
    )
    result = analyzers.run("breakdown", load_trace(path), BreakdownOptions())
    # mean 24.5 us: Acme 10 (no glue figure: unknown), portable 3
    assert result.headline() == "vk: 24.5 µs: AcmeNpuBackend 40.8%, portable 12.2%, runtime 46.9%"
    assert list(result.bucket_rows()["label"])[:2] == [
        "AcmeNpuBackend compute",
        "AcmeNpuBackend delegate overhead",
    ]


def test_every_command_runs_on_it(mixed: Path, tmp_path: Path) -> None:
    other = write_mixed(tmp_path / "mixed_slower.etdp", slower=2)
    table = run_cli("breakdown", mixed)
    assert table.returncode == 0, table.stderr
    assert "AcmeNpuBackend compute" in table.stdout and "XNNPACK compute" in table.stdout
    doc = json.loads(run_cli("breakdown", mixed, "-f", "json").stdout)
    assert {(b["bucket"], b["backend"]) for b in doc["buckets"]} >= {
        ("delegate_compute", "AcmeNpuBackend"),
        ("delegate_compute", "XnnpackBackend"),
    }
    diff = run_cli("diff", mixed, other, "-f", "json")
    assert diff.returncode == 0, diff.stderr
    d = json.loads(diff.stdout)
    rows = {(r["bucket"], r["backend"]): r for r in d["buckets"]}
    assert rows[("delegate_compute", "AcmeNpuBackend")]["delta_ms"] == pytest.approx(0.002)
    assert rows[("delegate_compute", "AcmeNpuBackend")]["class"] == "AcmeNpuBackend compute"
    # two backends: the glue and overhead classes name theirs
    assert rows[("delegate_glue", "XnnpackBackend")]["class"] == "XNNPACK partition-boundary glue"
    assert (
        rows[("delegate_overhead", "AcmeNpuBackend")]["class"] == "AcmeNpuBackend delegate overhead"
    )
    assert d["contributors_sum_ms"] == pytest.approx(rows[("run_model", "")]["delta_ms"])
    page = tmp_path / "r.html"
    report = run_cli("report", mixed, other, "--force", "-o", page)
    assert report.returncode == 0, report.stderr
    html = page.read_text()
    assert "AcmeNpuBackend compute" in html and backends.get("AcmeNpuBackend").compute_color in html
    chrome = tmp_path / "t.json"
    timeline = run_cli("timeline", mixed, "-o", chrome)
    assert timeline.returncode == 0, timeline.stderr
    names = {e["name"] for e in json.loads(chrome.read_text())["traceEvents"]}
    assert "DELEGATE_CALL AcmeNpuBackend" in names and "conv2d_clamp_half #1" in names


def test_fallback_knowledge_is_the_backends() -> None:
    """Why an operator was left out and the fix come from the backend: a backend etprof knows
    nothing about has neither; XNNPACK's say an LLM export's custom SDPA kernel is intended and
    the in-place KV-cache write has no fix (executorch 1.5.1)."""

    other = backends.get("AcmeNpuBackend")
    assert other.fallback_note("aten::div.out", "unsupported", []) is None
    assert other.glue_kernels() == frozenset()
    xnn = backends.get("XnnpackBackend")
    assert "_to_copy" in xnn.glue_kernels() and "squeeze_copy" not in xnn.glue_kernels()
    sdpa = xnn.fallback_note("llama::custom_sdpa.out", "unsupported", ["llama::custom_sdpa.out"])
    assert sdpa is not None and "intended kernel" in sdpa.fix and sdpa.fixable
    write = xnn.fallback_note("aten::index_put_", "unsupported", ["aten::index_put_"])
    assert write is not None and not write.fixable and "already in place" in write.reason
    alone = xnn.fallback_note("aten::eq.Scalar_out", "unsupported", ["aten::eq.Scalar_out"])
    # a comparison compares and outputs bool (issue 22: it "computed on bool tensors")
    assert alone is not None and alone.label == "" and "outputs a bool tensor" in alone.reason


@pytest.mark.parametrize("backend", ["XnnpackBackend", "AcmeNpuBackend"])
def test_operators_that_read_zero_are_not_called_missing(tmp_path: Path, backend: str) -> None:
    """A delegate whose every operator event reads 0 recorded operators (an LSTM's XNNPACK
    calls: 65 per run, all under 1 µs): the note "recorded no operator events" is for calls
    with none. XNNPACK's timer-resolution warning says what 0 means; a backend of unknown
    resolution gets its own line."""
    table = method("forward", [("delegate", backend), ("operator", "aten::add.out")], (backend,))
    op = "Multiply (ND) #1" if backend == "XnnpackBackend" else "mul_half #1"
    runs = [loading(1)] + [
        execute_run(
            [Call(0, 9, ((op, 0), (op, 0))), Call(1, 4, (("add.out", 3),), delegate=False)], 20
        )
        for _ in range(ITERS)
    ]
    path = write_trace(
        tmp_path / "zeros.etdp", runs, (table,), warmup=WARMUP, iters=ITERS, model="zeros"
    )
    notes = analyzers.run("breakdown", load_trace(path), BreakdownOptions()).notes()
    label = backends.get(backend).label
    assert not any("recorded no operator events" in n for n in notes), notes
    if backend == "XnnpackBackend":
        assert any("of the XNNPACK operator events" in n and "read 0" in n for n in notes), notes
    else:
        assert (
            f"every {label} operator event reads 0: its whole call time shows as delegate "
            "overhead" in notes
        ), notes
