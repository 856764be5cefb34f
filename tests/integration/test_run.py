"""`etprof run`: real profiled runs of a real XNNPACK program, the seed's arithmetic, bad inputs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from executorch_reads import execute_durations_ns

from etprof.trace.etdump.reader import read_dump
from etprof.trace.sidecar import FORMAT_VERSION, TraceMeta, sidecar_path

from conftest import TESTS, assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """One real 60-iteration run (seed methodology) of the small XNNPACK program."""
    work = tmp_path_factory.mktemp("run")
    pte = work / "small_xnnpack.pte"
    shutil.copy(TESTS / "data" / "small_xnnpack.pte", pte)
    result = run_cli("run", pte, "--iters", "60", "--warmup", "10", "--sessions", "1", "--json")
    assert result.returncode == 0, result.stderr
    return work / "small_xnnpack.etdp", json.loads(result.stdout)


def test_measured_mean_is_mean_of_iterations_11_to_60(
    profiled: tuple[Path, dict[str, object]],
) -> None:
    trace, doc = profiled
    durations = execute_durations_ns(trace)
    assert len(durations) == 60
    expected_ms = float(np.mean(durations[10:60])) / 1e6
    run_model = doc["run_model"]
    assert isinstance(run_model, dict)
    assert run_model["measured"] == 50 and run_model["warmup"] == 10
    assert run_model["mean_ms"] == pytest.approx(expected_ms, rel=1e-12)
    assert run_model["floored_ms"] == math.floor(expected_ms)
    assert run_model["median_ms"] == pytest.approx(float(np.median(durations[10:])) / 1e6)
    assert run_model["samples_ms"] == pytest.approx([d / 1e6 for d in durations[10:]])


def test_json_split_and_operators_cover_run_model(
    profiled: tuple[Path, dict[str, object]],
) -> None:
    _, doc = profiled
    assert doc["schema"] == "etprof.summary" and doc["version"] == 2
    split = doc["split"]
    assert isinstance(split, list)
    total = sum(row["mean_ms"] for row in split)
    assert total == pytest.approx(doc["run_model"]["mean_ms"], rel=1e-9)  # type: ignore[index]
    ops = {row["op"]: row for row in doc["top_operators"]}  # type: ignore[union-attr]
    assert ops["mean.out"]["side"] == "portable"
    assert any(row["side"] == "delegated" for row in ops.values())


def test_sidecar_makes_trace_self_describing(profiled: tuple[Path, dict[str, object]]) -> None:
    trace, _ = profiled
    doc = json.loads(sidecar_path(trace).read_text())
    assert doc["format"] == "etprof-trace-metadata" and doc["version"] == FORMAT_VERSION
    meta = TraceMeta.from_json(sidecar_path(trace).read_text())
    assert (meta.run.iters, meta.run.warmup, meta.run.threads) == (60, 10, 1)
    # one thread: the runner measured how much of the measured time it had the CPU
    assert meta.run.cpu_share_pct is not None and 0 < meta.run.cpu_share_pct <= 100
    assert meta.versions["executorch"] == "1.5.1"
    kinds = [(i.id, i.kind, i.name) for i in meta.program.instructions]
    assert kinds == [
        (0, "delegate", "XnnpackBackend"),
        (1, "operator", "aten::mean.out"),
        (2, "delegate", "XnnpackBackend"),
    ]
    assert meta.host.cores >= 1 and meta.host.cpu
    # the trace itself has the 60 Execute runs and the loading run
    assert read_dump(trace).run_names.count("Execute") == 60


def test_breakdown_needs_no_program(
    profiled: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    trace, _ = profiled
    alone = tmp_path / "alone.etdp"
    shutil.copy(trace, alone)
    shutil.copy(sidecar_path(trace), sidecar_path(alone))
    from etprof.trace.loading import load_trace

    loaded = load_trace(alone)
    assert loaded.has_meta and loaded.warmup == 10
    assert set(loaded.events.loc[loaded.events["kind"] == "delegate_call", "op"]) == {
        "XnnpackBackend"
    }


def test_inputs_file_of_right_and_wrong_shape(tmp_path: Path, small_pte: Path) -> None:
    good, bad = tmp_path / "good.npy", tmp_path / "bad.npy"
    np.save(good, np.ones((1, 3, 16, 16), dtype=np.float32))
    np.save(bad, np.ones((1, 3, 8, 8), dtype=np.float32))
    out = tmp_path / "t.etdp"
    ok = run_cli(
        "run",
        small_pte,
        "--iters",
        "12",
        "--warmup",
        "2",
        "--inputs",
        good,
        "--spread",
        "0",
        "--out",
        out,
    )
    assert ok.returncode == 0, ok.stderr
    assert TraceMeta.from_json(sidecar_path(out).read_text()).run.inputs == "file:good.npy"
    out2 = tmp_path / "t2.etdp"
    wrong = run_cli(
        "run", small_pte, "--iters", "12", "--warmup", "2", "--inputs", bad, "--out", out2
    )
    assert_one_line_error(wrong, "[1, 3, 8, 8]", "[1, 3, 16, 16]")
    assert not out2.exists() and not sidecar_path(out2).exists()


def test_missing_program(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("run", tmp_path / "nope.pte"), "no such program")


def test_not_a_program(tmp_path: Path, small_trace: Path) -> None:
    assert_one_line_error(
        run_cli("run", small_trace, "--out", tmp_path / "x.etdp"), "not an ExecuTorch program"
    )
    assert not (tmp_path / "x.etdp").exists()


def test_iters_not_above_warmup(small_pte: Path, tmp_path: Path) -> None:
    result = run_cli(
        "run", small_pte, "--iters", "10", "--warmup", "10", "--out", tmp_path / "x.etdp"
    )
    assert_one_line_error(result, "--iters 10", "--warmup 10")
    assert not (tmp_path / "x.etdp").exists()


def test_unwritable_output(small_pte: Path, tmp_path: Path) -> None:
    result = run_cli("run", small_pte, "--out", tmp_path / "no" / "such" / "dir" / "x.etdp")
    assert_one_line_error(result, "does not exist")


def test_backend_not_in_runtime(small_pte: Path, tmp_path: Path) -> None:
    # A real program whose delegate names a backend this runtime lacks (same-length rename).
    data = small_pte.read_bytes()
    assert data.count(b"XnnpackBackend") >= 1
    pte = tmp_path / "alien.pte"
    pte.write_bytes(data.replace(b"XnnpackBackend", b"VendorNpuBknd1"))
    result = run_cli("run", pte, "--out", tmp_path / "alien.etdp")
    assert_one_line_error(result, "VendorNpuBknd1", "does not have")
    assert not (tmp_path / "alien.etdp").exists()


@pytest.mark.slow
def test_export_then_run_with_etrecord_module_paths(tmp_path: Path) -> None:
    """The whole path on an exported model: export (the cache's) -> run -> self-describing trace."""
    from programs import program_copy

    # exported by `etprof export`'s own code (tests/programs.py), shared with tests/integration/test_export.py
    pte = program_copy(tmp_path, "etprof_tiny_models:tiny", "xnnpack_q8")
    assert pte.with_suffix(".etrecord").is_file()
    result = run_cli("run", pte, "--iters", "60", "--warmup", "10", "--sessions", "1", "--json")
    assert result.returncode == 0, result.stderr
    trace = pte.with_suffix(".etdp")
    durations = execute_durations_ns(trace)
    doc = json.loads(result.stdout)
    assert doc["run_model"]["mean_ms"] == pytest.approx(np.mean(durations[10:60]) / 1e6, rel=1e-12)
    meta = TraceMeta.from_json(sidecar_path(trace).read_text())
    assert meta.program.etrecord.endswith(".etrecord")
    delegated = [i for i in meta.program.instructions if i.kind == "delegate"]
    assert delegated and any(i.modules for i in delegated)
    assert {m.split(".")[0] for i in meta.program.instructions for m in i.modules} <= {
        "conv",
        "squeeze",
        "fc",
        "",
    }
