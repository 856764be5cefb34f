"""The CI gate of `etprof diff`: pass, fail and inconclusive on real pairs, and their exit codes.

Real pairs: the quant-only and the mixed-partitioner MobileNetV3 q8 (sample_traces/, a real
significant change of about 17%), in both directions; and the same program recorded twice,
taking turns, in 3 sessions each (tests/data/small_pair_*.etdp, made by make_small_pair.sh).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from etprof.analyzers.diff import DiffOptions, diff_traces
from etprof.analyzers.stats.gate import EXIT_CODES, FAIL, INCONCLUSIVE, PASS, judge
from etprof.analyzers.stats.significance import FASTER, NO_CHANGE, SLOWER
from etprof.errors import InputError
from etprof.trace.loading import load_trace

from conftest import DATA, ROOT, assert_one_line_error, run_cli

QUANTONLY = ROOT / "sample_traces" / "mv3_xnnpack_q8_quantonly.etdp"
MIXED = ROOT / "sample_traces" / "mv3_xnnpack_q8.etdp"
PAIR_A, PAIR_B = DATA / "small_pair_a.etdp", DATA / "small_pair_b.etdp"


def test_exit_codes_do_not_collide_with_errors() -> None:
    # 1: a Python crash, 2: a user error (EtprofError), 3: runtime unavailable, 130: interrupt
    assert EXIT_CODES == {PASS: 0, FAIL: 4, INCONCLUSIVE: 5}


def test_quant_only_to_mixed_fails_a_faster_gate_and_passes_a_slower_one() -> None:
    a, b = load_trace(QUANTONLY), load_trace(MIXED)
    result = diff_traces(a, b, DiffOptions(fail_if_faster=5.0, fail_if_slower=5.0, min_sessions=1))
    c = result.comparison
    assert c.verdict == FASTER and c.change_pct < -5.0
    assert result.gate is not None
    outcomes = {g.direction: g.outcome for g in result.gate.checks}
    assert outcomes == {FASTER: FAIL, SLOWER: PASS}
    assert result.gate.outcome == FAIL and result.gate.exit_code == 4


def test_mixed_to_quant_only_fails_the_slower_gate() -> None:
    result = diff_traces(load_trace(MIXED), load_trace(QUANTONLY), DiffOptions(fail_if_slower=5.0))
    assert result.comparison.verdict == SLOWER
    assert result.gate is not None and result.gate.outcome == FAIL
    # beyond the threshold only: the same pair with a threshold above the change passes nothing
    c = result.comparison
    above = judge(c, slower=c.change_pct + 1.0, min_sessions=1)
    assert above is not None and above.outcome != FAIL


def test_one_session_traces_never_pass_by_default() -> None:
    """Single-session intervals miss run-to-run variation (docs/diff.md): too few sessions."""
    result = diff_traces(load_trace(QUANTONLY), load_trace(MIXED), DiffOptions(fail_if_slower=5))
    assert result.comparison.sessions_a == result.comparison.sessions_b == 1
    assert result.gate is not None and result.gate.outcome == INCONCLUSIVE
    assert "session" in result.gate.checks[0].reason


def test_same_program_twice_passes_or_is_inconclusive_never_fails() -> None:
    a, b = load_trace(PAIR_A), load_trace(PAIR_B)
    assert a.sessions == b.sessions == 3
    c = diff_traces(a, b, DiffOptions()).comparison
    assert c.verdict == NO_CHANGE and c.by_session
    band = c.method.band_pct
    # a threshold beyond both the band and the interval: the comparison rules it out
    wide = max(band, c.ci_high_pct, -c.ci_low_pct) + 1.0
    gate = judge(c, slower=wide, faster=wide)
    assert gate is not None and gate.outcome == PASS, gate
    # a threshold inside the noise band cannot be judged: inconclusive, never a pass
    tight = judge(c, slower=band / 2)
    assert tight is not None and tight.outcome == INCONCLUSIVE
    assert "noise band" in tight.checks[0].reason or "interval" in tight.checks[0].reason


def test_an_interval_reaching_past_the_threshold_is_inconclusive() -> None:
    c = diff_traces(load_trace(PAIR_A), load_trace(PAIR_B), DiffOptions(noise_pct=0.0)).comparison
    assert c.ci_high_pct > 0
    threshold = c.ci_high_pct / 2
    method = replace(c.method, contention_pct=0.0)
    gate = judge(replace(c, method=method), slower=threshold)
    assert gate is not None and gate.outcome == INCONCLUSIVE
    assert "not ruled out" in gate.checks[0].reason


@pytest.mark.parametrize(
    "args",
    [
        ["--fail-if-slower", "-1"],
        ["--fail-if-faster", "nan"],
        ["--min-sessions", "0", "--fail-if-slower", "5"],
    ],
)
def test_bad_thresholds_are_one_line_errors(args: list[str]) -> None:
    result = run_cli("diff", PAIR_A, PAIR_B, *args)
    assert_one_line_error(result)
    assert result.returncode == 2


def test_bad_threshold_in_python_is_an_input_error() -> None:
    with pytest.raises(InputError):
        DiffOptions(fail_if_slower=-3.0).check()


def test_cli_exit_codes_and_json_say_which() -> None:
    fail = run_cli("diff", MIXED, QUANTONLY, "--fail-if-slower", "5", "-f", "json")
    assert fail.returncode == 4, fail.stderr
    doc = json.loads(fail.stdout)
    assert doc["gate"]["outcome"] == FAIL and doc["gate"]["exit_code"] == 4
    assert doc["gate"]["checks"][0]["direction"] == SLOWER

    passed = run_cli("diff", QUANTONLY, MIXED, "--fail-if-slower", "5", "--min-sessions", "1")
    assert passed.returncode == 0, passed.stderr
    assert "gate: pass (exit code 0)" in passed.stdout

    unsure = run_cli("diff", PAIR_A, PAIR_B, "--fail-if-slower", "0.5", "-f", "json")
    assert unsure.returncode == 5, unsure.stderr
    assert json.loads(unsure.stdout)["gate"]["outcome"] == INCONCLUSIVE

    plain = run_cli("diff", PAIR_A, PAIR_B, "-f", "json")
    assert plain.returncode == 0 and json.loads(plain.stdout)["gate"] is None
