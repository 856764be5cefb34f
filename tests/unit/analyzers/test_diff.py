"""`etprof diff`: significance, exact contributors, settings checks and bad input through the CLI.

Real traces: sample_traces/ (made by `etprof run`) and tests/data/small_xnnpack.etdp. Hand-built
traces (torch-free ETDump writer of test_attribution) where the true difference is known to the
nanosecond: one XNNPACK convolution made 10 us slower.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hand_runs import Ev, Run, default_run, write_etdump, xnnpack_ops

from etprof import render
from etprof.analyzers import get
from etprof.analyzers.diff import DiffOptions, DiffResult, diff_traces
from etprof.analyzers.stats.significance import (
    FASTER,
    NO_CHANGE,
    SLOWER,
    Method,
    compare,
    contention_pct,
)
from etprof.errors import InputError, MismatchError
from etprof.program.types import Instruction, ProgramInfo
from etprof.store.rows import model_base
from etprof.trace.loading import load_trace
from etprof.trace.sidecar import RunSettings, TraceMeta, sidecar_path

from conftest import DATA, ROOT, assert_one_line_error, run_cli

SAMPLES = ROOT / "sample_traces"
QUANTONLY = SAMPLES / "mv3_xnnpack_q8_quantonly.etdp"
MIXED = SAMPLES / "mv3_xnnpack_q8.etdp"
MV2 = SAMPLES / "mv2_xnnpack_fp32.etdp"
SMALL = DATA / "small_xnnpack.etdp"


def check_sum(result: DiffResult) -> None:
    """The invariant: contributors add up to the run-model mean delta, and per class to the
    bucket deltas (contributor classes are the buckets under other names)."""
    rows = result.contributors
    total = result.comparison.mean_delta_ms
    assert math.fsum(rows["delta_ms"]) == pytest.approx(total, abs=1e-9)
    assert math.fsum(rows["a_ms"]) == pytest.approx(result.comparison.mean_a_ms, abs=1e-9)
    assert math.fsum(rows["b_ms"]) == pytest.approx(result.comparison.mean_b_ms, abs=1e-9)
    by_class = rows.groupby("class")["delta_ms"].sum()
    buckets = result.buckets.set_index("class")["delta_ms"]
    for cls, delta in buckets.items():
        if cls != "run model (total)":
            assert by_class.get(cls, 0.0) == pytest.approx(delta, abs=1e-9), cls
    shown = result.top_contributors()
    assert shown["contributor"].iloc[-1] == "run model (total)"
    assert math.fsum(shown["delta_ms"].iloc[:-1]) == pytest.approx(total, abs=1e-9)


# ------------------------------------------------------------------ hand-built traces

ITERS, WARMUP = 30, 2
TOY_INSTRUCTIONS = (
    Instruction(0, "delegate", "XnnpackBackend", 0, ("features.0",)),
    Instruction(1, "operator", "aten::div.out", -1, ("features.0.act",)),
    Instruction(2, "delegate", "XnnpackBackend", 1, ("classifier",)),
)


def toy_runs(conv_us: int) -> list[Run]:
    """Per iteration: delegate 0 (Convert, Conv, Transpose), portable div, delegate 2 (FC).

    Durations jitter by whole microseconds with the iteration so the samples are not constant;
    every overhead is a fixed 1 us, so changing `conv_us` changes exactly one operator.
    """
    runs = [default_run()]
    for i in range(ITERS):
        j = (i * 7) % 5
        t = 1_000_000 * (i + 1)
        ev = xnnpack_ops(
            0,
            t + 1_000,
            [
                ("Convert (NC) #1", 2),
                ("Convolution (NHWC, QC8) IGEMM #1", conv_us + j),
                ("Transpose (ND, X8) #1", 5),
            ],
        )
        call0_end = t + 1_000 + 1_000 * (7 + conv_us + j) + 500
        ev.append(Ev("DELEGATE_CALL", 0, t + 500, call0_end))
        ev.append(Ev("native_call_div.out", 1, call0_end + 500, call0_end + 4_500 + 100 * j))
        ev.append(Ev("OPERATOR_CALL", 1, call0_end, call0_end + 5_000 + 100 * j))
        t2 = call0_end + 6_000 + 100 * j
        ev += xnnpack_ops(2, t2 + 500, [("Fully Connected (NC, QS8, QC8W) GEMM #1", 4)])
        ev.append(Ev("DELEGATE_CALL", 2, t2, t2 + 5_000))
        ev.append(Ev("Method::execute", 0, t, t2 + 6_000, chain=-1))
        runs.append(Run("Execute", ev))
    return runs


def toy_meta(
    model: str = "toy_xnnpack_q8", threads: int = 1, warmup: int = WARMUP, sha: str = "ab" * 32
) -> TraceMeta:
    return TraceMeta(
        program=ProgramInfo(
            path=f"{model}.pte",
            sha256=sha,
            model=model,
            instructions=TOY_INSTRUCTIONS,
            delegates=("XnnpackBackend", "XnnpackBackend"),
        ),
        run=RunSettings(iters=ITERS, warmup=warmup, threads=threads),
    )


def other_model_meta() -> TraceMeta:
    """Another model: its instructions come from other modules (same model is judged by what
    the programs share, never by their names)."""
    meta = toy_meta(model="resnet18_xnnpack_q8", sha="cd" * 32)
    table = tuple(replace(i, modules=(f"layer{i.id}.conv",)) for i in TOY_INSTRUCTIONS)
    return replace(meta, program=replace(meta.program, instructions=table))


def write_toy(folder: Path, name: str, conv_us: int = 30, meta: TraceMeta | None = None) -> Path:
    path = write_etdump(folder / f"{name}.etdp", toy_runs(conv_us))
    sidecar_path(path).write_text((meta or toy_meta()).to_json(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def toys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("toys")
    return {
        "base": write_toy(d, "base"),
        "slow": write_toy(d, "slow", conv_us=40),
        "threads": write_toy(d, "threads", meta=toy_meta(threads=4)),
        "warmup": write_toy(d, "warmup", meta=toy_meta(warmup=5)),
        "other_model": write_toy(d, "other", meta=other_model_meta()),
    }


def test_one_slower_operator_is_found_exactly(toys: dict[str, Path]) -> None:
    a, b = load_trace(toys["base"]), load_trace(toys["slow"])
    result = diff_traces(a, b, DiffOptions())
    assert result.match == "instruction"  # same sha256
    c = result.comparison
    assert c.mean_delta_ms == pytest.approx(0.010, abs=1e-12)  # 10 us per iteration
    assert c.verdict == SLOWER and c.significant and c.ci_low_pct > 1.0
    rows = result.contributors.set_index("contributor")
    conv = "Convolution (NHWC, QC8) IGEMM [instr 0 #1]"
    assert rows.loc[conv, "delta_ms"] == pytest.approx(0.010, abs=1e-12)
    assert rows.loc[conv, "share_pct"] == pytest.approx(100.0)
    others = rows.drop(index=conv)
    assert (others["delta_ms"].abs() < 1e-12).all(), others[others["delta_ms"] != 0]
    assert rows.loc[conv, "class"] == "XNNPACK compute"
    assert rows.loc["Transpose (ND, X8) [instr 0 #2]", "class"] == "partition-boundary glue"
    assert rows.loc["div.out [instr 1] (features.0.act)", "class"] == "portable fallback"
    check_sum(result)
    assert result.headline().startswith("base.etdp -> slow.etdp: slower by 0.010 ms (+")


def test_reversed_is_faster_by_the_same_amount(toys: dict[str, Path]) -> None:
    a, b = load_trace(toys["base"]), load_trace(toys["slow"])
    forward = diff_traces(a, b, DiffOptions())
    back = diff_traces(b, a, DiffOptions())
    assert back.comparison.verdict == FASTER
    assert back.comparison.mean_delta_ms == pytest.approx(-forward.comparison.mean_delta_ms)


def test_operator_matching_of_the_same_traces_gives_the_same_total(toys: dict[str, Path]) -> None:
    a, b = load_trace(toys["base"]), load_trace(toys["slow"])
    result = diff_traces(a, b, DiffOptions(match="operator"))
    assert result.match == "operator"
    rows = result.contributors.set_index("contributor")
    conv = rows.loc["Convolution (NHWC, QC8) IGEMM"]
    assert conv["delta_ms"] == pytest.approx(0.010, abs=1e-12)
    assert (conv["calls_a"], conv["calls_b"]) == (1.0, 1.0)
    check_sum(result)


def test_a_noise_band_wider_than_the_change_hides_it(toys: dict[str, Path]) -> None:
    a, b = load_trace(toys["base"]), load_trace(toys["slow"])
    result = diff_traces(a, b, DiffOptions(noise_pct=50.0))
    assert result.comparison.p_value < 0.05  # the test alone would call it
    assert result.comparison.verdict == NO_CHANGE
    assert "noise band" in result.comparison.reason


@pytest.mark.parametrize(
    ("key", "setting"), [("threads", "threads"), ("warmup", "warm-up"), ("other_model", "model")]
)
def test_different_settings_are_refused_unless_forced(
    toys: dict[str, Path], key: str, setting: str
) -> None:
    a, b = load_trace(toys["base"]), load_trace(toys[key])
    # another model is refused where a CI gate would judge it (issue 22), the rest always
    gate = {"fail_if_slower": 5.0} if setting == "model" else {}
    with pytest.raises(MismatchError, match=f"{setting} differs"):
        diff_traces(a, b, DiffOptions(**gate))  # type: ignore[arg-type]
    forced = diff_traces(a, b, DiffOptions(force=True, **gate))  # type: ignore[arg-type]
    assert forced.forced == (setting,)
    assert any(
        n.startswith(f"warning: {setting} differs") and "--force" in n for n in forced.notes()
    )
    check_sum(forced)


def test_an_explicit_warmup_makes_warmups_agree(toys: dict[str, Path]) -> None:
    a, b = load_trace(toys["base"]), load_trace(toys["warmup"])
    result = diff_traces(a, b, DiffOptions(warmup=5))
    assert result.a.warmup == result.b.warmup == 5
    assert result.comparison.n_a == ITERS - 5


def test_instruction_matching_needs_one_program(toys: dict[str, Path]) -> None:
    a = load_trace(toys["base"])
    b = load_trace(MIXED)
    with pytest.raises(InputError, match="same program"):
        diff_traces(a, b, DiffOptions(match="instruction", force=True))


# ------------------------------------------------------------------ real traces


@pytest.mark.parametrize("path", [SMALL, MIXED, QUANTONLY], ids=lambda p: p.name)
def test_a_trace_against_itself_is_no_change(path: Path) -> None:
    trace = load_trace(path)
    result = diff_traces(trace, trace, DiffOptions())
    c = result.comparison
    assert c.mean_delta_ms == 0.0 and c.median_delta_ms == 0.0 and c.change_pct == 0.0
    assert c.verdict == NO_CHANGE and not c.significant and c.p_value == 1.0
    assert c.ci_low_pct <= 0.0 <= c.ci_high_pct
    assert result.match == "instruction"
    assert (result.contributors["delta_ms"] == 0.0).all()
    assert (result.buckets["delta_ms"] == 0.0).all()
    # delta 0, p = 1, yet the interval of a few iterations reaches past the 1% band: the
    # gate's word for that is inconclusive, and the headline says why
    assert "inconclusive (the rank test does not reject (p=1" in result.headline()
    assert result.where_it_went() == ""
    check_sum(result)


def test_quant_only_against_mixed_names_fallback_and_glue() -> None:
    a, b = load_trace(QUANTONLY), load_trace(MIXED)
    result = diff_traces(a, b, DiffOptions())
    assert result.match == "operator"  # different programs of one model
    assert [c.status for c in result.checks if c.setting == "model"] == ["same"]
    c = result.comparison
    assert c.verdict == FASTER and c.p_value < 1e-6 and c.ci_high_pct < -1.0
    check_sum(result)
    buckets = result.buckets.set_index("class")
    for cls in ("portable fallback", "partition-boundary glue"):
        # each carries a real, significant share of the speed-up
        assert buckets.loc[cls, "share_pct"] >= 10.0, buckets
        assert buckets.loc[cls, "p_value"] < 0.05
        assert cls in result.where_it_went()
    # the mixed partitioner removed every portable division and most glue
    rows = result.contributors
    div = rows[rows["contributor"].str.startswith("div.out")]
    assert len(div) and (div["b_ms"] == 0).all() and (div["calls_a"] > 0).all()
    transpose = rows[rows["contributor"] == "Transpose (ND, X8)"].iloc[0]
    assert transpose["calls_b"] < transpose["calls_a"] and transpose["delta_ms"] < 0
    assert transpose["class"] == "partition-boundary glue"
    # portable kernels were matched by module path (the samples carry ETRecord module paths)
    assert div["where"].str.len().all()


def test_bootstrap_is_reproducible_and_seeded() -> None:
    a, b = load_trace(QUANTONLY), load_trace(MIXED)
    one = diff_traces(a, b, DiffOptions())
    two = diff_traces(a, b, DiffOptions())
    other = diff_traces(a, b, DiffOptions(seed=1))
    assert (one.comparison.ci_low_pct, one.comparison.ci_high_pct) == (
        two.comparison.ci_low_pct,
        two.comparison.ci_high_pct,
    )
    assert one.comparison.ci_low_pct != other.comparison.ci_low_pct
    assert render.render(one, "json") == render.render(two, "json")


def test_different_models_are_refused_under_a_gate_only() -> None:
    """A CI gate would pass or fail a change between unrelated programs: refused there. Without
    one the traces are compared, with a line saying they differ in structure (issue 22)."""
    with pytest.raises(MismatchError, match="model differs"):
        diff_traces(load_trace(QUANTONLY), load_trace(MV2), DiffOptions(fail_if_slower=5.0))
    with pytest.raises(MismatchError, match="model differs"):
        diff_traces(load_trace(QUANTONLY), load_trace(MV2), DiffOptions(fail_if_faster=5.0))
    result = diff_traces(load_trace(QUANTONLY), load_trace(MV2), DiffOptions())
    (check,) = [c for c in result.checks if c.setting == "model"]
    assert check.status == "differs" and not check.blocking and result.forced == ()
    assert any(
        w.startswith("the programs differ in structure") and "module paths" in w
        for w in result.warnings
    )


def test_two_lowerings_of_one_model_from_another_runner_are_compared(tmp_path: Path) -> None:
    """MobileNetV3 q8 with the quant-only and the default partitioner, traces without sidecars
    (as another runner writes them): their operator sequences agree to 51%, and `diff` used to
    refuse them as different models. Compared now: the verdict, the per-bucket story, and a line
    saying the programs differ in structure -- in text, JSON and the report."""
    a = Path(shutil.copyfile(QUANTONLY, tmp_path / QUANTONLY.name))
    b = Path(shutil.copyfile(MIXED, tmp_path / MIXED.name))
    result = run_cli("diff", a, b)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert text.startswith("mv3_xnnpack_q8_quantonly -> mv3_xnnpack_q8: faster by ")
    assert "where it went: partition-boundary glue" in text
    assert (
        "the programs differ in structure: 29 delegate calls and 84 operator calls per run "
        "(A) against 1 delegate call and 18 operator calls per run (B); their operator "
        "sequences agree to 51%"
    ) in text
    doc = json.loads(run_cli("diff", a, b, "-f", "json").stdout)
    assert doc["comparison"]["verdict"] == "faster"
    assert {r["bucket"] for r in doc["buckets"]} >= {"delegate_glue", "portable_kernels"}
    assert any(w.startswith("the programs differ in structure") for w in doc["warnings"])
    (check,) = [c for c in doc["checks"] if c["setting"] == "model"]
    assert check["status"] == "differs" and check["blocking"] is False
    report = tmp_path / "r.html"
    made = run_cli("report", a, b, "-o", report)
    assert made.returncode == 0, made.stderr
    assert "the programs differ in structure" in report.read_text()
    # a CI gate still refuses them, unless the user says they are one model
    gated = run_cli("diff", a, b, "--fail-if-slower", "5")
    assert_one_line_error(gated, "model differs", "51%", "--same-model", "--force")
    said = run_cli("diff", a, b, "--fail-if-slower", "5", "--same-model")
    # judged: inconclusive (exit 5), as the gate calls any one-session comparison
    assert said.returncode == 5 and "gate: inconclusive" in said.stdout, said.stderr
    assert "differ in structure" not in said.stdout


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("mv3_xnnpack_q8_quantonly", "mv3"),
        ("mv3_xnnpack_q8", "mv3"),
        ("mv2_portable", "mv2"),
        ("mv3-large_xnnpack_fp32", "mv3_large"),
        ("resnet18", "resnet18"),
        ("small", "small"),
    ],
)
def test_model_base(name: str, base: str) -> None:
    assert model_base(name) == base


# ------------------------------------------------------------------ statistics


def test_compare_on_known_samples() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(10.0, 0.5, 50)
    assert compare(a, a * 0.8).verdict == FASTER
    assert compare(a, a * 1.2).verdict == SLOWER
    tiny = compare(a, a + 0.05, Method(noise_pct=1.0))  # +0.5%: inside the band
    assert tiny.verdict == NO_CHANGE
    same = compare(np.ones(5), np.ones(5))  # all tied: no variance, no evidence
    assert same.p_value == 1.0 and same.verdict == NO_CHANGE
    median = compare(a, a * 0.8, Method(statistic="median"))
    assert median.delta_ms == pytest.approx(np.median(a) * 0.8 - np.median(a))


@pytest.mark.parametrize(
    "method",
    [Method(noise_pct=-1), Method(statistic="mode"), Method(alpha=0), Method(resamples=10)],
)
def test_bad_methods_are_refused(method: Method) -> None:
    with pytest.raises(InputError):
        compare([1.0, 2.0], [1.0, 2.0], method)


# ------------------------------------------------------------------ rendering and registry


def test_every_renderer_formats_a_diff() -> None:
    result = diff_traces(load_trace(QUANTONLY), load_trace(MIXED), DiffOptions())
    table = render.render(result, "table", width=100)
    assert table.splitlines()[0].startswith(
        "mv3_xnnpack_q8_quantonly -> mv3_xnnpack_q8: faster by "
    )
    assert "significant (Mann-Whitney p=" in table.splitlines()[0] + table.splitlines()[1]
    assert "where it went:" in table
    doc = json.loads(render.render(result, "json"))
    assert doc["schema"] == "etprof.diff" and doc["comparison"]["verdict"] == FASTER
    assert math.fsum(r["delta_ms"] for r in doc["contributors"]) == pytest.approx(
        doc["comparison"]["mean_b_ms"] - doc["comparison"]["mean_a_ms"], abs=1e-9
    )
    csv = pd.read_csv(io.StringIO(render.render(result, "csv", table="top contributors")))
    assert csv["contributor"].iloc[-1] == "run model (total)"
    assert "**mv3_xnnpack_q8_quantonly -> " in render.render(result, "markdown")


def test_registered_as_a_two_trace_analyzer() -> None:
    entry = get("diff")
    assert entry.inputs == 2 and entry.options is DiffOptions
    trace = load_trace(SMALL)
    assert entry.func(trace, trace, entry.options()).comparison.verdict == NO_CHANGE


# ------------------------------------------------------------------ the command


def test_cli_self_diff_is_zero(tmp_path: Path) -> None:
    result = run_cli("diff", SMALL, SMALL, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["comparison"]["mean_b_ms"] - doc["comparison"]["mean_a_ms"] == 0.0
    assert doc["comparison"]["verdict"] == NO_CHANGE


def test_cli_table_headline_and_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from etprof import cli\n"
        f"sys.argv = ['etprof', 'diff', {str(QUANTONLY)!r}, {str(MIXED)!r}]\n"
        "try:\n    cli.main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('HEAVY', sorted(m for m in ('torch', 'executorch') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, COLUMNS="100"),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("mv3_xnnpack_q8_quantonly -> mv3_xnnpack_q8: faster by ")
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_cli_unreadable_side(tmp_path: Path) -> None:
    junk = tmp_path / "junk.etdp"
    junk.write_text("not a trace\n")
    assert_one_line_error(run_cli("diff", MIXED, junk), "junk.etdp")
    assert_one_line_error(run_cli("diff", tmp_path / "missing.etdp", MIXED), "missing.etdp")


def test_cli_different_models_need_force_under_a_gate(tmp_path: Path) -> None:
    refused = run_cli("diff", QUANTONLY, MV2, "--fail-if-slower", "5")
    assert_one_line_error(refused, "model differs", "--force")
    assert refused.stdout == ""
    forced = run_cli("diff", QUANTONLY, MV2, "--force", "--fail-if-faster", "5")
    assert forced.returncode == 5 and "gate: inconclusive" in forced.stdout, forced.stderr
    assert (
        "warning: model differs: mv3_xnnpack_q8_quantonly (A) vs mv2_xnnpack_fp32 (B)"
        in forced.stdout.replace("\n", " ")
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--noise", "-2"],
        ["--statistic", "mode"],
        ["--match", "nearest"],
        ["--format", "xml"],
        ["--etrecord-a", "x.etrecord"],
    ],
)
def test_cli_bad_options(args: list[str]) -> None:
    assert_one_line_error(run_cli("diff", SMALL, SMALL, *args))


def test_cli_traces_from_elsewhere_take_their_programs() -> None:
    pte = DATA / "small_xnnpack.pte"  # the trace has no metadata: the .pte gives the table
    result = run_cli("diff", SMALL, SMALL, "--pte-a", pte, "--pte-b", pte, "-f", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["match"] == "instruction" and doc["a"]["program_sha256"]
    assert "mean.out [instr 1]" in {r["contributor"] for r in doc["contributors"]}
    not_a_program = QUANTONLY.with_suffix(".etprof.json")
    assert_one_line_error(
        run_cli("diff", SMALL, SMALL, "--pte-b", not_a_program), "not an ExecuTorch program"
    )


def test_cli_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "diff.json"
    result = run_cli("diff", SMALL, SMALL, "-o", out)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["schema"] == "etprof.diff"


def test_diff_of_traces_is_pure() -> None:
    trace = load_trace(SMALL)
    before = trace.events.copy()
    diff_traces(trace, replace(trace), DiffOptions())
    pd.testing.assert_frame_equal(trace.events, before)


# -- CPU contention and block resampling ---------------------------------------------------------


@pytest.mark.parametrize(
    "shares,expected",
    [
        ((None, None), 0.0),
        ((99.5, 100.0), 0.0),
        ((80.0, None), 25.0),
        ((50.0, 80.0), 100.0),
    ],
)
def test_contention_is_the_inflation_of_the_least_served_side(
    shares: tuple[float | None, float | None], expected: float
) -> None:
    assert contention_pct(*shares) == pytest.approx(expected)


def test_contention_widens_the_band_and_says_so(tmp_path: Path, toys: dict[str, Path]) -> None:
    contended = toy_meta()
    contended = replace(contended, run=replace(contended.run, cpu_share_pct=80.0))
    slow = write_toy(tmp_path, "slow_contended", conv_us=40, meta=contended)
    quiet = diff_traces(load_trace(toys["base"]), load_trace(toys["slow"]), DiffOptions())
    assert quiet.comparison.verdict == SLOWER and quiet.comparison.method.contention_pct == 0
    result = diff_traces(load_trace(toys["base"]), load_trace(slow), DiffOptions())
    c = result.comparison
    # the same +10 us per iteration, but 80% of the CPU can explain up to +25%
    assert c.change_pct == pytest.approx(quiet.comparison.change_pct)
    assert c.method.contention_pct == pytest.approx(25.0)
    assert c.verdict == NO_CHANGE and "CPU contention" in c.reason
    assert any("had its CPU 80%" in w for w in result.warnings)
    assert "for CPU contention" in result.headline()


def test_block_resampling_widens_the_interval_of_a_drifting_run() -> None:
    rng = np.random.default_rng(1)
    flat = 10.0 + rng.normal(0, 0.05, 50)
    drift = flat + np.repeat([0.0, 0.4], 25)  # the machine changed speed half way through
    blocks, single = (
        compare(flat, drift, Method(resampling=how)) for how in ("blocks", "iterations")
    )
    assert blocks.change_pct == single.change_pct
    width = {m: c.ci_high_pct - c.ci_low_pct for m, c in (("b", blocks), ("i", single))}
    assert width["b"] > 1.5 * width["i"]
    # independent iterations: both resamplings agree on the width within a fifth
    quiet = [
        compare(flat, flat[::-1] * 1.001, Method(resampling=how))
        for how in ("blocks", "iterations")
    ]
    w = [c.ci_high_pct - c.ci_low_pct for c in quiet]
    assert w[0] == pytest.approx(w[1], rel=0.2)
