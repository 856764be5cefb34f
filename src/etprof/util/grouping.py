"""Integer group-by sums without pandas' general group-by machinery.

The analyses sum event durations per instruction, per iteration or per (instruction,
iteration). On a 500k-event trace a pandas ``groupby(...).sum()`` costs ~7 ms each (it
factorizes the keys and checks their order every time); these helpers use ``np.bincount`` on the
small integer keys instead. Sums stay exact: durations are integer nanoseconds and every partial
sum is far below 2**53, checked before trusting the float accumulator.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

_EXACT = 2**53


def group_sum(keys: npt.ArrayLike, values: npt.ArrayLike) -> pd.Series:
    """Sum of integer `values` per integer key: an int64 Series indexed by the keys present,
    sorted (what ``Series(values).groupby(keys).sum()`` returns)."""
    k = np.asarray(keys, dtype=np.int64)
    v = np.asarray(values, dtype=np.int64)
    index, inverse = group_codes(k)
    if not index.size:
        return pd.Series(np.zeros(0, np.int64), index=pd.Index(index, dtype="int64"))
    if int(np.abs(v).sum(dtype=np.float64)) >= _EXACT:  # would round: take the exact path
        return pd.Series(v).groupby(k).sum().astype("int64")
    sums = np.bincount(inverse, weights=v, minlength=index.size)
    return pd.Series(np.rint(sums).astype(np.int64), index=pd.Index(index, dtype="int64"))


def group_min(
    groups: npt.NDArray[np.int64], count: int, values: npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """Smallest integer value per group (`groups` from :func:`group_codes`)."""
    out = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, groups, np.asarray(values, dtype=np.int64))
    return out


def group_first(groups: npt.NDArray[np.int64], count: int) -> npt.NDArray[np.int64]:
    """Index of each group's first row (`groups` from :func:`group_codes`)."""
    return group_min(groups, count, np.arange(groups.size, dtype=np.int64))


def group_cumcount(keys: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Each row's position among the earlier rows with its key (``groupby(keys).cumcount()``)."""
    k = np.asarray(keys, dtype=np.int64)
    order = np.argsort(k, kind="stable")
    sorted_keys = k[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if k.size else k
    sizes = np.diff(np.r_[starts, k.size])
    out = np.empty(k.size, dtype=np.int64)
    out[order] = np.arange(k.size, dtype=np.int64) - np.repeat(starts, sizes)
    return out


def group_count(keys: npt.ArrayLike) -> pd.Series:
    """Rows per integer key: an int64 Series indexed by the keys present, sorted."""
    k = np.asarray(keys, dtype=np.int64)
    index, inverse = group_codes(k)
    counts = np.bincount(inverse, minlength=index.size).astype(np.int64)
    return pd.Series(counts, index=pd.Index(index, dtype="int64"))


def group_codes(k: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(sorted distinct keys, each row's group: its index into them)."""
    if not k.size:
        return k, k
    low, high = int(k.min()), int(k.max())
    if high - low < 4 * k.size + 1024:  # dense keys: a table lookup, no sort
        present = np.bincount(k - low) > 0
        index = np.flatnonzero(present).astype(np.int64) + low
        rank = np.cumsum(present) - 1
        return index, rank[k - low]
    index, inverse = np.unique(k, return_inverse=True)
    return index.astype(np.int64), inverse.astype(np.int64)
