"""`etprof diff A B` on two LLM traces without --phase: one diff per phase, each the same as
`--phase X`'s, in one sectioned result (analyzers/_diff_phases.py); the CI gate per phase.

Hand-built LLM traces (tests/hand_traces.py plus the sidecar's `run.phases`): 2 sessions of 5
prefill+decode sequences (the first dropped), every duration a whole number of microseconds.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from etprof.program.llm import DECODE, PREFILL, Step
from etprof.trace.sidecar import TraceMeta, sidecar_path

from conftest import DATA, assert_one_line_error, run_cli
from hand_traces import Call, execute_run, loading, method, write_trace

FORWARD = method(
    "forward", [("delegate", "XnnpackBackend"), ("operator", "aten::add.out")], ("XnnpackBackend",)
)
P, G, SEQUENCES, SESSIONS = 4, 3, 5, 2
SEQUENCE = (Step(PREFILL, 0, P), *(Step(DECODE, P + i, 1) for i in range(G)))


def llm_trace(path: Path, prefill_us: int, decode_us: int) -> Path:
    """An LLM trace: each Execute run one delegate call and one add kernel; the j-th run of a
    phase in a session lasts its base time + j % 3 us (the delegate call carries the rest)."""
    runs = []
    for _ in range(SESSIONS):
        runs.append(loading(1))
        count = {PREFILL: 0, DECODE: 0}
        for step in SEQUENCE * SEQUENCES:
            j = count[step.phase]
            count[step.phase] += 1
            total = (prefill_us if step.phase == PREFILL else decode_us) + j % 3
            work = total - 10
            runs.append(
                execute_run(
                    [
                        Call(0, work - 4, (("Fully Connected (NC, F32) GEMM #1", work - 6),)),
                        Call(1, 4, (("add.out", 2),), delegate=False),
                    ],
                    total,
                )
            )
    write_trace(
        path,
        runs,
        (FORWARD,),
        sessions=SESSIONS,
        warmup=len(SEQUENCE),
        iters=len(SEQUENCE) * SEQUENCES,
        model="tinyllm",
    )
    meta = TraceMeta.from_json(sidecar_path(path).read_text())
    meta = replace(meta, run=replace(meta.run, phases=SEQUENCE * SEQUENCES))
    sidecar_path(path).write_text(meta.to_json(), encoding="utf-8")
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A, and B: prefill as fast, decode half as slow again."""
    return (llm_trace(tmp_path / "a.etdp", 400, 100), llm_trace(tmp_path / "b.etdp", 400, 150))


def diff_json(*args: object) -> tuple[int, dict]:
    result = run_cli("diff", *args, "-f", "json")
    assert result.returncode in (0, 4, 5), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_each_phase_is_its_own_diff(pair: tuple[Path, Path]) -> None:
    a, b = pair
    code, doc = diff_json(a, b)
    assert code == 0
    assert doc["schema"] == "etprof.diff" and doc["gate"] is None
    assert list(doc["phases"]) == [PREFILL, DECODE]
    for phase in (PREFILL, DECODE):
        _, alone = diff_json(a, b, "--phase", phase)
        assert doc["phases"][phase] == {
            k: v for k, v in alone.items() if k not in ("schema", "version")
        }
    assert doc["phases"][PREFILL]["a"]["measured"] == SESSIONS * (SEQUENCES - 1)
    assert doc["phases"][DECODE]["a"]["measured"] == SESSIONS * (SEQUENCES - 1) * G
    mean = {p: doc["phases"][p]["run_model"][0] for p in (PREFILL, DECODE)}
    assert mean[PREFILL]["delta_ms"] == pytest.approx(0.0, abs=1e-9)
    assert mean[DECODE]["delta_ms"] == pytest.approx(0.050, abs=1e-9)  # 50 us per decode run


def test_table_has_a_headline_and_tables_per_phase(pair: tuple[Path, Path]) -> None:
    a, b = pair
    text = run_cli("diff", a, b, "-f", "markdown").stdout
    lines = text.splitlines()
    assert lines[0].startswith("**prefill: a.etdp -> b.etdp: ")
    assert lines[1].startswith("decode: a.etdp -> b.etdp: slower by 0.050 ms")
    for phase in (PREFILL, DECODE):
        for table in ("run model", "buckets", "top contributors"):
            assert f"{phase}: {table}" in text
    assert "> decode: where it went: " in text


def test_with_a_phase_the_output_is_that_phases_diff_alone(pair: tuple[Path, Path]) -> None:
    a, b = pair
    text = run_cli("diff", a, b, "--phase", "decode").stdout
    assert text.startswith("a.etdp -> b.etdp: slower")
    assert "prefill" not in text


def test_csv_stacks_the_phases_with_a_phase_column(pair: tuple[Path, Path]) -> None:
    a, b = pair
    for table in ("run model", "top contributors"):
        result = run_cli("diff", a, b, "-f", "csv", "--table", table)
        assert result.returncode == 0, result.stderr
        stacked = pd.read_csv(io.StringIO(result.stdout))
        assert stacked.columns[0] == "phase"
        for phase in (PREFILL, DECODE):
            alone = pd.read_csv(
                io.StringIO(
                    run_cli("diff", a, b, "--phase", phase, "-f", "csv", "--table", table).stdout
                )
            )
            mine = stacked[stacked["phase"] == phase].drop(columns="phase")
            pd.testing.assert_frame_equal(mine.reset_index(drop=True), alone)


@pytest.mark.parametrize(
    "args, codes, overall",
    [
        # prefill unchanged passes, decode +50% fails: a fail
        (("--fail-if-slower", "5"), {PREFILL: 0, DECODE: 4}, 4),
        # a pass needs 3 sessions: prefill inconclusive (5), decode still fails (4): a fail, as
        # one gate's inconclusive check and failed one make a fail
        (("--fail-if-slower", "5", "--min-sessions", "3"), {PREFILL: 5, DECODE: 4}, 4),
        # nothing faster anywhere: both pass
        (("--fail-if-faster", "5"), {PREFILL: 0, DECODE: 0}, 0),
        # a pass needs 3 sessions: both inconclusive
        (("--fail-if-faster", "5", "--min-sessions", "3"), {PREFILL: 5, DECODE: 5}, 5),
    ],
)
def test_gate_is_judged_per_phase(
    pair: tuple[Path, Path], args: tuple[str, ...], codes: dict[str, int], overall: int
) -> None:
    a, b = pair
    for phase, want in codes.items():
        code, alone = diff_json(a, b, "--phase", phase, *args)
        assert code == want == alone["gate"]["exit_code"], (phase, alone["gate"])
    code, doc = diff_json(a, b, *args)
    assert code == overall == doc["gate"]["exit_code"]
    assert {p: d["gate"]["exit_code"] for p, d in doc["phases"].items()} == codes
    worst = [p for p, c in codes.items() if c == overall and overall]
    assert doc["gate"]["decided_by"] == worst
    text = run_cli("diff", a, b, *args).stdout
    assert f"gate, all phases: {doc['gate']['outcome']} (exit code {overall})" in text
    if worst:
        assert f"from {' and '.join(worst)}" in text


def test_an_llm_trace_against_another_programs_is_one_line(pair: tuple[Path, Path]) -> None:
    a, _ = pair
    other = DATA / "small_xnnpack.etdp"
    assert_one_line_error(
        run_cli("diff", a, other),
        "A (",
        "is an LLM run with prefill and decode runs, B (",
        "is not an LLM run",
        "no phase-by-phase comparison",
    )
    assert_one_line_error(run_cli("diff", other, a), "is not an LLM run")


def test_report_compares_each_phase(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """`report A B`: one comparison card per phase, each with that phase's own verdict (the
    `--phase` diff's headline); `--phase decode` keeps its one card."""
    from html import escape

    a, b = pair
    out = tmp_path / "pair.html"
    result = run_cli("report", a, b, "-o", out)
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    for phase in (PREFILL, DECODE):
        _, alone = diff_json(a, b, "--phase", phase)
        card = html.index(
            f'<section class="card" id="diff-{phase}">'
            f"<h2>Comparison: B against A ({phase} runs)</h2>"
        )
        assert escape(alone["headline"]) in html[card : html.index("</section>", card)]
    assert html.index('id="diff-prefill"') < html.index('id="diff-decode"')
    assert html.count("<h2>Comparison: B against A") == 2
    run_cli("report", a, b, "--phase", "decode", "-o", out)
    html = out.read_text()
    assert html.count("<h2>Comparison: B against A") == 1
    assert '<section class="card" id="diff"><h2>Comparison: B against A (decode runs)</h2>' in html


def test_report_json_has_each_phases_diff(pair: tuple[Path, Path]) -> None:
    """The report as a result (Python API): its diff is `{"phases": {...}}`, each the `--phase`
    diff's body; tables and notes are prefixed by the phase."""
    from etprof.analyzers._report import build_report
    from etprof.analyzers.diff import DiffOptions, diff_traces
    from etprof.trace.loading import load_trace

    a, b = (load_trace(p) for p in pair)
    report = build_report(a, b)
    doc = report.to_dict()["diff"]
    assert list(doc["phases"]) == [PREFILL, DECODE]
    for phase in (PREFILL, DECODE):
        alone = diff_traces(a, b, DiffOptions(phase=phase))
        assert doc["phases"][phase] == alone.to_dict()
        assert f"diff: {phase}: run model" in report.tables()
        assert f"{phase}: {alone.headline()}" in report.headline().splitlines()
    assert any(n.startswith("decode: where it went") for n in report.notes())
