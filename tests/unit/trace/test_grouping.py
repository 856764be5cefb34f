"""etprof.util.grouping against pandas' group-by, which it replaces on the hot paths; and the
trace's cached selections against the plain masks they stand for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etprof.trace.loading import load_trace
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, KERNEL, KINDS, RUN_MODEL
from etprof.util.grouping import (
    group_codes,
    group_count,
    group_cumcount,
    group_first,
    group_min,
    group_sum,
)

from conftest import SAMPLES

keys_st = st.one_of(
    st.lists(st.integers(-3, 40), max_size=200),  # dense: the table lookup
    st.lists(st.integers(-(2**40), 2**40), max_size=50),  # sparse: the sort
)


@settings(max_examples=200, deadline=None)
@given(keys=keys_st, data=st.data())
def test_group_sum_and_count_match_pandas(keys: list[int], data: st.DataObject) -> None:
    values = data.draw(st.lists(st.integers(0, 10**12), min_size=len(keys), max_size=len(keys)))
    expected = pd.Series(values, dtype="int64").groupby(np.array(keys, dtype=np.int64)).sum()
    got = group_sum(keys, values)
    assert got.index.tolist() == expected.index.tolist()
    assert got.tolist() == expected.tolist()
    counts = pd.Series(values, dtype="int64").groupby(np.array(keys, dtype=np.int64)).size()
    assert group_count(keys).tolist() == counts.tolist()


def test_group_sum_is_exact_past_float_precision() -> None:
    big = 2**53 + 1  # a float accumulator would round this
    got = group_sum([7, 7, 9], [big, 1, 3])
    assert got.to_dict() == {7: big + 1, 9: 3}


@settings(max_examples=200, deadline=None)
@given(keys=keys_st)
def test_group_cumcount_and_min_match_pandas(keys: list[int]) -> None:
    k = np.array(keys, dtype=np.int64)
    expected = pd.Series(k).groupby(k).cumcount().to_numpy()
    assert group_cumcount(k).tolist() == expected.tolist()
    index, groups = group_codes(k)
    assert index.tolist() == sorted(set(keys))
    first = group_first(groups, index.size)
    assert first.tolist() == [keys.index(v) for v in index.tolist()]
    assert group_min(groups, index.size, -k).tolist() == [-v for v in index.tolist()]


@pytest.mark.parametrize("name", ["mv3_xnnpack_q8_quantonly", "mv2_portable"])
def test_trace_selections_equal_their_masks(name: str) -> None:
    trace = load_trace(SAMPLES / f"{name}.etdp")
    ev = trace.events
    for kinds in [(RUN_MODEL,), (DELEGATE_OP, KERNEL), (DELEGATE_CALL,), KINDS]:
        expected = ev[ev["kind"].isin(kinds)].reset_index(drop=True)
        pd.testing.assert_frame_equal(trace.of_kind(*kinds), expected)
        executed = expected[expected["iteration"] >= 0].reset_index(drop=True)
        pd.testing.assert_frame_equal(trace.executed(*kinds), executed)
    measured = trace.measured(10)
    assert measured is trace.measured(10)  # cached per warm-up
    pd.testing.assert_frame_equal(measured.events, ev[ev["iteration"] >= 10].reset_index(drop=True))
    assert measured.iterations_present() == trace.iterations - 10
    assert trace.run_model_ns() == float(ev.loc[ev["kind"] == RUN_MODEL, "duration_ns"].sum())
