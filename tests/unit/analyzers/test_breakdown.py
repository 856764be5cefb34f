"""`etprof breakdown`: every --by and --format on every trace, CSV/JSON round trips, the golden
table, bad input through the real CLI, and no torch import.

Golden file: tests/golden/breakdown_<trace stem>.txt, the default table output at width 100.
Regenerate it after an intended change of the output with

    ETPROF_UPDATE_GOLDEN=1 /work/venv/bin/pytest tests/unit/analyzers/test_breakdown.py -k golden

and review the diff before committing it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from hand_runs import (
    MODEL_ITERS,
    Ev,
    Run,
    default_run,
    write_empty_trace,
    write_etdump,
    write_model_trace,
)
from typer.testing import CliRunner

from etprof import render
from etprof.analyzers.breakdown import BY, BreakdownOptions, breakdown
from etprof.cli import app
from etprof.commands.breakdown import view
from etprof.trace.loading import load_trace

from conftest import DATA, ROOT, assert_one_line_error, run_cli, sample_traces

FORMATS = ("table", "json", "csv", "markdown")
GOLDEN_DIR = ROOT / "tests" / "golden"
# The seed's story in one sample: MobileNetV3, static 8-bit, quant-only partitioner. Relative to
# ROOT so that the header's trace path is stable.
GOLDEN_TRACE = Path("sample_traces") / "mv3_xnnpack_q8_quantonly.etdp"


@pytest.fixture(scope="module")
def hand_built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hand_built")
    return {"model": write_model_trace(folder), "empty": write_empty_trace(folder)}


def trace_by_id(name: str, hand_built: dict[str, Path]) -> Path:
    return DATA / "small_xnnpack.etdp" if name == "small_xnnpack" else hand_built[name]


def invoke(*args: str | Path) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "100"})
    if result.exception is not None:
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


# -- every --by and --format on every trace ------------------------------------------------------


def check_outputs(trace: Path, outputs: dict[tuple[str | None, str], str]) -> None:
    """Check every (by, format) output of `etprof breakdown` on `trace`."""
    loaded = load_trace(trace)
    results = {by: breakdown(loaded, BreakdownOptions(by=by)) for by in (None, *BY)}
    for (by, fmt), out in outputs.items():
        assert out.strip(), (by, fmt)
        expected = results[by]
        if fmt == "json":
            check_json(json.loads(out), loaded.iterations)
        elif fmt == "csv":
            shown, table = view("csv", by)
            assert shown is not None and table is not None
            check_csv_round_trip(out, results[shown].tables()[table])
        elif fmt in ("table", "markdown"):
            assert expected.headline().split(":")[0] in out.splitlines()[0]
            for title in expected.tables():
                assert title in out
            flat = " ".join(out.split())  # notes wrap at the width
            for note in expected.notes():
                assert " ".join(note.split()[:8]) in flat, note


@pytest.mark.parametrize("name", ["small_xnnpack", "model", "empty"])
def test_every_view_and_format_through_the_cli(name: str, hand_built: dict[str, Path]) -> None:
    path = trace_by_id(name, hand_built)
    outputs = {}
    for by in (None, *BY):
        for fmt in FORMATS:
            args = ["breakdown", path, "--format", fmt] + (["--by", by] if by else [])
            outputs[(by, fmt)] = invoke(*args)
    check_outputs(path, outputs)


@pytest.mark.parametrize("path", sample_traces(), ids=lambda p: p.name)
def test_every_view_and_format_on_samples(path: Path) -> None:
    """The same matrix on every sample, rendered the way the command renders (its `view`),
    without re-running the analysis twenty times per trace."""
    loaded = load_trace(path)
    results = {by: breakdown(loaded, BreakdownOptions(by=by)) for by in (None, *BY)}
    outputs = {}
    for by in (None, *BY):
        for fmt in FORMATS:
            shown, table = view(fmt, by)
            outputs[(by, fmt)] = render.render(results[shown], fmt, width=100, table=table)
    check_outputs(path, outputs)


def check_csv_round_trip(text: str, expected: pd.DataFrame) -> None:
    back = pd.read_csv(io.StringIO(text))
    assert list(back.columns) == list(expected.columns)
    if expected.empty:
        assert back.empty
        return
    # the same values: floats exactly (CSV keeps repr), strings, booleans and integers as such
    pd.testing.assert_frame_equal(
        back, expected.reset_index(drop=True), check_dtype=False, check_exact=True
    )


def check_json(doc: dict[str, object], iterations: int) -> None:
    assert doc["schema"] == "etprof.breakdown" and doc["version"] == 2
    for key in (
        "settings",
        "run_model",
        "buckets",
        "buckets_per_iteration_ns",
        "operators",
        "blocks",
        "block_operators",
        "modules",
        "iterations",
        "fallback",
        "notes",
    ):
        assert key in doc, key
    rows = doc["buckets_per_iteration_ns"]
    assert isinstance(rows, list) and rows
    for row in rows:  # the invariant survives serialisation: integers, exactly
        parts = [v for k, v in row.items() if k not in ("iteration", "run_model")]
        assert all(isinstance(v, int) for v in parts)
        assert sum(parts) == row["run_model"]
    iters = doc["iterations"]
    assert isinstance(iters, dict) and len(iters["rows"]) == iterations
    assert set(iters["stability"]) >= {"cv_pct", "spearman_rho", "noisy", "trending"}


def test_csv_default_is_the_operator_table(hand_built: dict[str, Path]) -> None:
    path = hand_built["model"]
    out = invoke("breakdown", path, "--format", "csv")
    back = pd.read_csv(io.StringIO(out))
    # per iteration: Conv 30 us, mean 18.5 us, Convert 2 + 3 us and Transpose 5 us (a tie: by
    # name), Fully Connected 4 us
    assert list(back["op"]) == [
        "Convolution (NHWC, QC8) IGEMM",
        "mean.out",
        "Convert (NC)",
        "Transpose (ND, X8)",
        "Fully Connected (NC, QS8, QC8W) GEMM",
    ]
    assert list(back["per_iter_ms"] * 1e6) == pytest.approx([30_000, 18_500, 5_000, 5_000, 4_000])
    assert list(back["count"]) == [1, 1, 2, 1, 1]
    assert list(back["glue"]) == [False, False, True, True, False]
    assert list(back["side"]) == ["XNNPACK", "portable", "XNNPACK", "XNNPACK", "XNNPACK"]


def test_headline_of_the_hand_built_model(hand_built: dict[str, Path]) -> None:
    out = invoke("breakdown", hand_built["model"])
    # measured iterations 1..3: run model 81, 82, 83 us; XNNPACK 44 us of operators plus
    # (8 + i) - 0.5 us of delegate overhead; glue 10 us; portable 20 us; runtime 8.5 us
    assert out.splitlines()[0] == (
        "model: 82.0 µs: XNNPACK 65.2% (12.2% glue), portable 24.4%, runtime 10.4%"
    )


def test_output_file_and_format_from_extension(hand_built: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "blocks.csv"
    result = CliRunner().invoke(
        app, ["breakdown", str(hand_built["model"]), "--by", "block", "-o", str(out)]
    )
    assert result.exit_code == 0 and result.stdout == ""
    back = pd.read_csv(out)
    assert set(back["instruction"]) == {0, 2}
    assert (back.groupby("instruction")["part"].last() == "overhead").all()


def test_top_and_warmup(hand_built: dict[str, Path]) -> None:
    path = hand_built["model"]
    doc = json.loads(invoke("breakdown", path, "--format", "json", "--warmup", "2"))
    assert doc["settings"]["warmup"] == 2 and doc["settings"]["warmup_from"] == "--warmup"
    assert doc["run_model"]["measured"] == MODEL_ITERS - 2
    assert [r["dropped"] for r in doc["iterations"]["rows"]] == [True, True, False, False]
    out = invoke("breakdown", path, "--by", "op", "--top", "2", "--format", "csv")
    assert len(pd.read_csv(io.StringIO(out))) == 2


def test_pte_supplies_the_instruction_table(
    small_pte: Path, small_trace: Path, tmp_path: Path
) -> None:
    trace = tmp_path / "phone.etdp"  # as if copied from a phone: no metadata beside it
    shutil.copy(small_trace, trace)
    without = json.loads(invoke("breakdown", trace, "-f", "json"))
    assert without["settings"]["program"] is None and without["settings"]["threads"] is None
    assert {b["backend"] for b in without["blocks"]} == {"(unknown)"}
    with_pte = json.loads(invoke("breakdown", trace, "--pte", small_pte, "-f", "json"))
    assert with_pte["settings"]["program"] == str(small_pte)
    assert {b["backend"] for b in with_pte["blocks"]} == {"XnnpackBackend"}
    # the same figures; without the program the backend is not named, only guessed from the
    # operator names (and said so)
    assert [{**b, "backend": ""} for b in with_pte["buckets"]] == without["buckets"]
    assert {b["backend"] for b in with_pte["buckets"] if b["side"] == "delegated"} == {
        "XnnpackBackend"
    }
    assert any("attributed as XNNPACK; pass --pte" in n for n in without["notes"])


def test_fallback_explanation_when_available(small_trace: Path) -> None:
    trace = load_trace(small_trace)
    result = breakdown(trace, BreakdownOptions())
    try:
        from etprof.analyzers.fallback import FallbackOptions, explain_fallbacks
    except ModuleNotFoundError:
        assert result.fallback is None and result.to_dict()["fallback"] is None
        return
    from etprof.errors import EtprofError

    try:
        report = explain_fallbacks(trace, FallbackOptions())
    except EtprofError as exc:
        assert result.fallback is None and exc.one_line() in result.fallback_error
        return
    for note in report.notes():
        assert note in result.notes()
    assert result.to_dict()["fallback"] == report.to_dict()


# -- golden output -------------------------------------------------------------------------------


def test_golden_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = breakdown(load_trace(GOLDEN_TRACE), BreakdownOptions())
    # the fallback notes belong to analyzers/fallback.py and are tested there
    text = render.render(replace(result, fallback=None, fallback_error=""), "table", width=100)
    golden = GOLDEN_DIR / f"breakdown_{GOLDEN_TRACE.stem}.txt"
    if os.environ.get("ETPROF_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), "run with ETPROF_UPDATE_GOLDEN=1 to create the golden file"
    assert text == golden.read_text(encoding="utf-8")
    assert max(len(line) for line in text.splitlines()) <= 100


# -- bad input, through the real command line ----------------------------------------------------


@pytest.fixture(scope="module")
def bad_traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    no_runs = write_etdump(folder / "no_runs.etdp", [default_run()])
    few = write_etdump(
        folder / "few.etdp",
        [
            default_run(),
            *(
                Run("Execute", [Ev("Method::execute", 0, 1_000 * i, 1_000 * i + 500, chain=-1)])
                for i in range(1, 4)
            ),
        ],
    )
    foreign = write_etdump(
        folder / "foreign.etdp",
        [
            default_run(),
            Run(
                "Execute",
                [
                    Ev("native_call_add.out", 7, 1_100, 1_200),
                    Ev("OPERATOR_CALL", 7, 1_050, 1_250),
                    Ev("Method::execute", 0, 1_000, 1_300, chain=-1),
                ],
            ),
        ]
        * 12,
    )
    (folder / "a_directory.etdp").mkdir()
    return {
        "no_runs": no_runs,
        "few": few,
        "foreign": foreign,
        "directory": folder / "a_directory.etdp",
        "missing": folder / "missing.etdp",
    }


BAD_CASES = {
    # name: (arguments after `breakdown`, words the one-line error must contain)
    "no Execute runs": (["{no_runs}"], ["no Execute runs"]),
    "fewer iterations than warm-up": (["{few}"], ["3 iterations", "warm-up"]),
    "--warmup too large": (["{few}", "--warmup", "3"], ["warm-up"]),
    "a .pte as trace": (["{pte}"], ["not an ETDump trace", "ExecuTorch program"]),
    "mismatched --pte": (["{foreign}", "--pte", "{pte}"], ["does not match", "instruction 7"]),
    "missing file": (["{missing}"], ["no such trace"]),
    "directory": (["{directory}"], ["is a directory"]),
    "bad --by": (["{few}", "--by", "layer"], ["unknown --by 'layer'", "op, block"]),
    "bad --format": (["{few}", "--format", "xml"], ["unknown format 'xml'"]),
    "bad --top": (["{few}", "--top", "0"], ["--top 0"]),
    "bad --engine": (["{few}", "--engine", "slow"], ["unknown engine 'slow'"]),
    "unwritable -o": (["{few}", "-o", "/nonexistent-dir/x.csv"], ["does not exist"]),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_is_one_line(case: str, bad_traces: dict[str, Path], small_pte: Path) -> None:
    args, needles = BAD_CASES[case]
    paths = {**{k: str(v) for k, v in bad_traces.items()}, "pte": str(small_pte)}
    result = run_cli("breakdown", *(a.format(**paths) for a in args))
    assert_one_line_error(result, *needles)
    assert result.stdout == ""  # no partial output


# -- no torch ------------------------------------------------------------------------------------

HEAVY_CHECK = """
import sys
sys.argv = ["etprof", *sys.argv[1:]]
from etprof.cli import main
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "executorch"))
print("HEAVY", heavy, file=sys.stderr)
"""


@pytest.mark.parametrize(
    "extra",
    [[], ["--by", "block", "-f", "json"], ["--by", "module"], ["--by", "iteration", "-f", "csv"]],
)
def test_breakdown_does_not_import_torch(extra: list[str], small_trace: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", HEAVY_CHECK, "breakdown", str(small_trace), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr, proc.stderr
    assert proc.stdout.strip()


@pytest.mark.slow
def test_inspector_engine_agrees(small_trace: Path) -> None:
    pytest.importorskip("etprof.trace.etdump.inspector_engine")
    fast = json.loads(invoke("breakdown", small_trace, "-f", "json"))
    slow = json.loads(invoke("breakdown", small_trace, "-f", "json", "--engine", "inspector"))
    assert slow["buckets_per_iteration_ns"] == fast["buckets_per_iteration_ns"]
    assert slow["block_operators"] == fast["block_operators"]
