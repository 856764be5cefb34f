"""One verdict vocabulary: diff's headline and JSON say faster, slower, no change or
inconclusive (and why), the CI gate's words (analyzers/stats/gate.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from etprof.analyzers.stats import gate
from etprof.analyzers.stats.significance import (
    INCONCLUSIVE,
    NO_CHANGE,
    NO_CHANGE_WORD,
    Method,
    compare,
)

RNG = np.random.default_rng(0)
A = 1.0 + 0.01 * RNG.standard_normal(200)


def test_a_change_the_noise_band_decides_on_a_busy_machine_is_inconclusive() -> None:
    """The issue's case: the interval excludes 0 (p tiny) but reaches into a band widened for
    CPU contention: not "no significant change" but inconclusive, the busy machine named."""
    c = compare(A, A * 0.6, replace(Method(), contention_pct=60.0))
    assert c.verdict == NO_CHANGE and c.p_value < 1e-10 and c.ci_high_pct < 0
    word, why = c.outcome()
    assert word == INCONCLUSIVE == gate.INCONCLUSIVE
    assert why.startswith("busy machine:")
    doc = c.to_dict()
    assert (doc["outcome"], doc["outcome_reason"]) == (word, why)


def test_no_change_only_when_the_interval_lies_within_the_band() -> None:
    c = compare(A, A, Method())
    assert c.outcome() == (NO_CHANGE_WORD, "the 95% interval lies within the +/-1% noise band")
    noisy = 1.0 + 0.5 * RNG.standard_normal(20)
    word, why = compare(noisy, noisy[::-1] * 1.02, Method()).outcome()
    assert word == INCONCLUSIVE and "not ruled out" in why


def test_a_significant_change_keeps_its_direction() -> None:
    assert compare(A, A * 0.8, Method()).outcome() == ("faster", "")
    assert compare(A, A * 1.2, Method()).outcome() == ("slower", "")
