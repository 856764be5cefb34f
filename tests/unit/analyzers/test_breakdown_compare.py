"""`etprof breakdown A --compare B`: the fallback fix quotes B's measured run-model time."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from etprof.analyzers.runmodel import RunModelOptions, run_model_stats
from etprof.trace.loading import load_trace
from etprof.trace.sidecar import sidecar_path

from conftest import SAMPLES, assert_one_line_error, run_cli

QUANT_ONLY = SAMPLES / "mv3_xnnpack_q8_quantonly.etdp"
MIXED = SAMPLES / "mv3_xnnpack_q8.etdp"


def test_fix_line_quotes_the_compared_trace() -> None:
    result = run_cli("breakdown", QUANT_ONLY, "--compare", MIXED)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    match = re.search(r"measured: ([\d.]+) ms -> ([\d.]+) ms run model", text)
    assert match, text[-800:]
    before = run_model_stats(load_trace(QUANT_ONLY), RunModelOptions()).mean_ms
    after = run_model_stats(load_trace(MIXED), RunModelOptions()).mean_ms
    assert float(match.group(1)) == pytest.approx(before, abs=0.006)
    assert float(match.group(2)) == pytest.approx(after, abs=0.006)
    assert "in mv3_xnnpack_q8" in text


def test_without_compare_the_fix_says_how_to_measure() -> None:
    result = run_cli("breakdown", QUANT_ONLY)
    assert result.returncode == 0, result.stderr
    assert "measured:" not in result.stdout


def test_missing_compare_trace(tmp_path: object) -> None:
    assert_one_line_error(
        run_cli("breakdown", QUANT_ONLY, "--compare", SAMPLES / "nope.etdp"), "nope.etdp"
    )


@pytest.mark.parametrize("other", ["same", "portable"])
def test_a_program_that_keeps_the_causes_is_not_called_the_fix(tmp_path: Path, other: str) -> None:
    """Issue 12 item 5: the quant-only program compared with another recording of itself (the
    same 28 graph breaks) or with the portable program (no partition: div still on portable)
    is a comparison, not the fix's measured effect."""
    if other == "same":
        compare = tmp_path / "again.etdp"
        shutil.copy(QUANT_ONLY, compare)
        shutil.copy(sidecar_path(QUANT_ONLY), sidecar_path(compare))
        there = "div still falls back to portable kernels there"
    else:
        compare = SAMPLES / "mv3_portable.etdp"
        there = "it has no XNNPACK partition"
    result = run_cli("breakdown", QUANT_ONLY, "--compare", compare)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "measured:" not in text
    assert there in text
    assert "so the causes remain: this is a comparison, not the fix's measured effect" in text
    breaks = 28 if other == "same" else 0
    assert re.search(
        rf"Compared with \S+: [\d.]+ ms -> [\d.]+ ms run model, \d+ partitions?, "
        rf"{breaks} graph breaks",
        text,
    ), text[-800:]


def test_the_compared_programs_causes_are_in_the_json() -> None:
    result = run_cli("breakdown", QUANT_ONLY, "--compare", MIXED, "-f", "json")
    assert result.returncode == 0, result.stderr
    comparison = json.loads(result.stdout)["fallback"]["comparison"]
    assert comparison["breaks"] == 0
    assert "aten::div.out" not in comparison["causes"]
