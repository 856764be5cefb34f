"""`etprof breakdown A --compare B`: the fallback fix quotes B's measured run-model time."""

from __future__ import annotations

import re

import pytest

from etprof.analyzers.runmodel import RunModelOptions, run_model_stats
from etprof.loading import load_trace

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
    assert_one_line_error(run_cli("breakdown", QUANT_ONLY, "--compare", SAMPLES / "nope.etdp"),
                          "nope.etdp")
