"""Programs with several methods: the `method` column, iterations and warm-up per method,
instruction ids keyed by (method, id), the schedule from the sidecar, and methods inferred from
the instruction tables for a trace that has none (metadata v4; docs/trace-metadata.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from etprof import analyzers
from etprof.errors import InputError, MismatchError
from etprof.trace.loading import load_trace
from etprof.trace.sidecar import TraceMeta, sidecar_path

from hand_traces import Call, execute_run, loading, method, write_trace

FORWARD = method(
    "forward", [("delegate", "XnnpackBackend"), ("operator", "aten::add.out")], ("XnnpackBackend",)
)
ENCODE = method(
    "encode",
    [("operator", "aten::mul.out"), ("delegate", "XnnpackBackend"), ("operator", "aten::sub.out")],
    ("XnnpackBackend",),
)
SCHEDULE = ("forward", "encode") * 3


def forward_run(j: int) -> list[Call]:
    return [
        Call(0, 10, (("Convolution (NHWC, F32) IGEMM #1", 4), ("Convert (NC) #2", 2))),
        Call(1, 3, (("add.out", 2),), delegate=False),
    ]


def encode_run(j: int) -> list[Call]:
    return [
        Call(0, 5, (("mul.out", 4),), delegate=False),
        Call(1, 8, (("Fully Connected (NC, F32) GEMM #1", 6),)),
        Call(2, 4, (("sub.out", 3),), delegate=False),
    ]


def alternating(sessions: int = 2) -> list:
    """Each session: load both methods, then forward and encode taking turns, 3 runs each.
    forward's j-th run (j counted over all sessions) takes 20 + j us, encode's 30 + 2j us."""
    runs = []
    count = {"forward": 0, "encode": 0}
    for _ in range(sessions):
        runs.append(loading(2))
        for m in SCHEDULE:
            j = count[m]
            count[m] += 1
            if m == "forward":
                runs.append(execute_run(forward_run(j), 20 + j))
            else:
                runs.append(execute_run(encode_run(j), 30 + 2 * j))
    return runs


@pytest.fixture
def scheduled(tmp_path: Path) -> Path:
    return write_trace(
        tmp_path / "two.etdp",
        alternating(),
        (FORWARD, ENCODE),
        schedule=SCHEDULE,
        sessions=2,
        warmup=1,
    )


def test_method_column_and_iterations_per_method(scheduled: Path) -> None:
    trace = load_trace(scheduled)
    ev = trace.events
    assert trace.methods == ("forward", "encode")
    assert trace.execute_runs == 12
    execute = ev[ev["name"] == "Method::execute"]
    assert execute["method"].astype(str).tolist() == list(SCHEDULE) * 2
    for m in ("forward", "encode"):
        its = execute.loc[execute["method"] == m, "iteration"].tolist()
        assert its == list(range(6)), m  # counted per method, across the sessions
    assert set(ev.loc[ev["iteration"] < 0, "method"].astype(str)) == {""}


def test_instruction_ids_are_looked_up_per_method(scheduled: Path) -> None:
    ev = load_trace(scheduled).events
    calls = ev[ev["kind"].isin(["delegate_call", "operator_call"])]
    seen = {
        (str(r.method), int(r.instruction_id), str(r.kind), str(r.op), str(r.backend))
        for r in calls.itertuples()
    }
    assert seen == {
        ("forward", 0, "delegate_call", "XnnpackBackend", "XnnpackBackend"),
        ("forward", 1, "operator_call", "aten::add.out", ""),
        ("encode", 0, "operator_call", "aten::mul.out", ""),
        ("encode", 1, "delegate_call", "XnnpackBackend", "XnnpackBackend"),
        ("encode", 2, "operator_call", "aten::sub.out", ""),
    }
    ops = ev[ev["kind"] == "delegate_op"]
    assert set(ops["backend"].astype(str)) == {"XnnpackBackend"}
    assert set(ops["op"].astype(str)) == {
        "Convolution (NHWC, F32) IGEMM",
        "Convert (NC)",
        "Fully Connected (NC, F32) GEMM",
    }


def test_warmup_is_dropped_per_method_per_session(scheduled: Path) -> None:
    trace = load_trace(scheduled)
    for m, expected_us in (("forward", [21, 22, 24, 25]), ("encode", [32, 34, 38, 40])):
        one = trace.for_method(m)
        assert one.methods == (m,)
        assert one.meta.program.method == m
        assert one.sessions == 2 and one.session_length == 3
        stats = analyzers.run("runmodel", one)
        assert [round(x * 1000) for x in stats.samples_ms] == expected_us
        assert stats.mean_ms == pytest.approx(np.mean(expected_us) / 1000)
        assert stats.iterations == 6 and stats.warmup == 1


def test_a_blend_of_methods_is_refused(scheduled: Path) -> None:
    trace = load_trace(scheduled)
    with pytest.raises(InputError, match="several methods"):
        trace.measured()
    with pytest.raises(InputError, match="no runs of method 'decode'"):
        trace.for_method("decode")


def test_methods_are_inferred_from_the_tables_without_a_schedule(tmp_path: Path) -> None:
    path = write_trace(
        tmp_path / "other_runner.etdp", alternating(1), (FORWARD, ENCODE), warmup=1, iters=6
    )
    ev = load_trace(path).events
    execute = ev[ev["name"] == "Method::execute"]
    assert execute["method"].astype(str).tolist() == list(SCHEDULE)


def test_methods_that_cannot_be_told_apart_are_refused(tmp_path: Path) -> None:
    twin = method("twin", [(i.kind, i.name) for i in FORWARD.instructions], FORWARD.delegates)
    runs = [loading(1)] + [execute_run(forward_run(j), 20 + j) for j in range(4)]
    path = write_trace(tmp_path / "twins.etdp", runs, (FORWARD, twin), warmup=1, iters=4)
    with pytest.raises(InputError, match="fit forward, twin") as exc:
        load_trace(path)
    assert "--method" in exc.value.one_line()
    trace = load_trace(path, method="twin")
    assert trace.methods == ("twin",)


def test_a_schedule_that_does_not_fit_the_runs_is_refused(tmp_path: Path) -> None:
    path = write_trace(
        tmp_path / "short.etdp",
        alternating(1),
        (FORWARD, ENCODE),
        schedule=("forward", "encode"),
        sessions=1,
        warmup=1,
    )
    with pytest.raises(MismatchError, match="schedule of 2 runs"):
        load_trace(path)


def test_version_3_documents_still_read(tmp_path: Path) -> None:
    path = write_trace(
        tmp_path / "v3.etdp", alternating(1), (FORWARD, ENCODE), schedule=SCHEDULE, warmup=1
    )
    doc = json.loads(sidecar_path(path).read_text())
    doc["version"] = 3
    del doc["program"]["methods"]
    del doc["run"]["schedule"]
    meta = TraceMeta.from_json(json.dumps(doc))
    assert meta.program.methods == () and meta.run.schedule == ()
    assert meta.program.method_names() == ("forward",)
    assert meta.program.all_methods()[0].instructions == FORWARD.instructions


def test_version_4_round_trips(scheduled: Path) -> None:
    meta = TraceMeta.from_json(sidecar_path(scheduled).read_text())
    assert meta.run.schedule == SCHEDULE
    assert meta.program.methods == (FORWARD, ENCODE)
    assert TraceMeta.from_json(meta.to_json()) == meta


def test_breakdown_has_one_section_per_method(scheduled: Path) -> None:
    from conftest import run_cli

    table = run_cli("breakdown", scheduled)
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert "forward: buckets" in out and "encode: buckets" in out
    assert out.index("forward: buckets") < out.index("encode: buckets")
    doc = json.loads(run_cli("breakdown", scheduled, "-f", "json").stdout)
    sections = {s["method"]: s for s in doc["methods"]}
    assert list(sections) == ["forward", "encode"]
    assert sections["forward"]["run_model"]["mean_ms"] == pytest.approx(0.023)
    assert sections["encode"]["run_model"]["mean_ms"] == pytest.approx(0.036)
    for s in sections.values():  # buckets sum exactly to run model, per method and iteration
        for row in s["buckets_per_iteration_ns"]:
            parts = [v for k, v in row.items() if k not in ("iteration", "run_model")]
            assert sum(parts) == row["run_model"]
    one = json.loads(run_cli("breakdown", scheduled, "--method", "encode", "-f", "json").stdout)
    assert one["method"] == "encode" and one["settings"]["methods"] == 2
    assert one["run_model"] == sections["encode"]["run_model"]
    blend = run_cli("diff", scheduled, scheduled)
    assert blend.returncode != 0 and "--method" in blend.stderr
    assert run_cli("diff", scheduled, scheduled, "--method", "encode").returncode == 0


def test_summary_has_one_section_per_method(scheduled: Path) -> None:
    from etprof.analyzers.summary import MethodSummaries, SummaryOptions

    result = analyzers.run("summary", load_trace(scheduled), SummaryOptions())
    assert isinstance(result, MethodSummaries)
    means = {s.settings["method"]: s.stats.mean_ms for s in result.sections}
    assert means == pytest.approx({"forward": 0.023, "encode": 0.036})
    assert "encode: split" in result.tables()
    one = analyzers.run("summary", load_trace(scheduled), SummaryOptions(method="forward"))
    assert one.stats.mean_ms == pytest.approx(0.023)
