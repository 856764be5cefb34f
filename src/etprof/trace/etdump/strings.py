"""Group a trace's strings by content without a Python loop per string.

A 1000-iteration trace holds half a million event names repeating a few hundred distinct values,
each stored as its own FlatBuffer string. Decoding them one by one dominated the reader. Here the
strings are sorted into classes by their length in 8-byte words; each class is gathered as one
matrix of little-endian words (one numpy fancy index), hashed row-wise, and the rows grouped by
hash. Every row is then compared word for word with its group's first row, so the grouping is
exact; only if two different strings shared a hash (never seen in practice) does it fall back to
a dictionary of raw bytes. Only the distinct strings are decoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from etprof.util.flatbuf import CorruptBuffer

if TYPE_CHECKING:
    from etprof.trace.etdump.tables import Columns, Positions

Words = npt.NDArray[np.uint64]

_U64 = np.uint64
_MIX = _U64(0x9E3779B97F4A7C15)  # odd multipliers: bijections of the 64-bit words
_MIX2 = _U64(0xBF58476D1CE4E5B9)
# _KEEP[k]: the low k bytes of a little-endian word (the bytes after a string are not its own)
_KEEP = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)


def distinct_strings(
    cols: Columns, first: Positions, length: Positions
) -> tuple[list[str], Positions]:
    """Group the byte strings ``data[first:first+length]`` by content.

    Returns the distinct strings decoded (invalid UTF-8 replaced), in order of first appearance,
    and each string's index into them. Each string must already be checked to fit the buffer.
    """
    import pandas as pd  # a hash-based factorize; numpy only has a sort-based unique

    upos, ulen, inverse = first, length, None
    if int(length.sum()) > len(cols):
        # only strings referenced more than once can claim more bytes than the buffer holds:
        # distinct strings of a well-formed buffer do not overlap
        upos, ulen, inverse = _distinct_positions(first, length)
        if int(ulen.sum()) > len(cols):
            raise CorruptBuffer("the strings claim more bytes than the buffer holds")
    classes = _word_classes(cols, upos, ulen)
    key = np.empty(upos.size, dtype=np.uint64)
    for rows, words in classes:
        key[rows] = _hash_rows(words, ulen[rows])
    group, uniques = pd.factorize(key)  # numbered by first appearance
    group = np.asarray(group, dtype=np.int64)
    rep = np.empty(len(uniques), dtype=np.int64)
    rep[group[::-1]] = np.arange(group.size - 1, -1, -1, dtype=np.int64)  # the earliest wins
    if not _all_equal_to_rep(classes, ulen, rep[group]):
        return _by_dictionary(cols, upos, ulen, inverse)
    data = cols.data
    names = [
        str(data[p : p + n], "utf-8", "replace")
        for p, n in zip(upos[rep].tolist(), ulen[rep].tolist(), strict=False)
    ]
    return names, group if inverse is None else group[inverse]


def _distinct_positions(
    first: Positions, length: Positions
) -> tuple[Positions, Positions, Positions]:
    """Strings referenced many times, each once: (positions, lengths, inverse).

    Positions come back in order of first reference, so groups numbered by first appearance
    among them are numbered by first appearance among the events too.
    """
    import pandas as pd

    inverse, upos = pd.factorize(first)
    ulen = np.empty(len(upos), dtype=np.int64)
    ulen[inverse] = length  # the same position always reads the same length
    return np.asarray(upos, dtype=np.int64), ulen, np.asarray(inverse, dtype=np.int64)


def _word_classes(
    cols: Columns, pos: Positions, length: Positions
) -> list[tuple[Positions, Words]]:
    """Rows grouped by their length in words, each group's strings as a (rows, words) matrix.

    Trailing bytes past each string are masked to zero. The number of classes is small: each
    needs a string of its own length, and all the strings' bytes fit in the buffer.
    """
    nwords = (length + 7) >> 3
    data = cols.data
    widest = int(nwords.max(initial=0))
    if int((pos + 8 * nwords).max(initial=0)) > len(data):
        data = bytes(data) + bytes(8)  # a word read near the end would leave the buffer
    # a stable radix sort on small keys: rows of each class stay in order
    order = np.argsort(nwords.astype(np.uint16 if widest < 2**16 else np.int64), kind="stable")
    counts = np.bincount(nwords, minlength=widest + 1)
    ends = np.cumsum(counts)
    out: list[tuple[Positions, Words]] = []
    for width in np.flatnonzero(counts).tolist():
        count = int(counts[width])
        rows = order[int(ends[width]) - count : int(ends[width])]
        if width == 0:
            out.append((rows, np.zeros((count, 0), dtype=np.uint64)))
            continue
        view = np.ndarray(
            (len(data) - 8 * width + 1,), dtype=f"V{8 * width}", buffer=data, strides=(1,)
        )
        words = view[pos[rows]].view("<u8").reshape(count, width)
        words[:, -1] &= _KEEP[length[rows] - 8 * (width - 1)]
        out.append((rows, words))
    return out


def _hash_rows(words: Words, length: Positions) -> Words:
    """A 64-bit hash of each row (a string's words and its length); collisions are checked."""
    h = length.astype(np.uint64) * _MIX2 + _U64(1)
    if words.shape[1]:
        x = words * _MIX
        x ^= x >> _U64(29)
        # weight each word by its position so that permuted words hash differently
        x *= (np.arange(words.shape[1], dtype=np.uint64) * _U64(2) + _U64(1)) * _MIX2
        h += x.sum(axis=1, dtype=np.uint64)
    h ^= h >> _U64(31)
    h *= _MIX
    h ^= h >> _U64(29)
    return h


def _all_equal_to_rep(
    classes: list[tuple[Positions, Words]], length: Positions, rep: Positions
) -> bool:
    """Whether every string equals its group's representative (`rep`, per string)."""
    if not (length == length[rep]).all():
        return False
    local = np.empty(length.size, dtype=np.int64)
    for rows, words in classes:
        # equal lengths put a string's representative in the same class
        local[rows] = np.arange(rows.size, dtype=np.int64)
        if words.shape[1] and not (words == words[local[rep[rows]]]).all():
            return False
    return True


def _by_dictionary(
    cols: Columns, pos: Positions, length: Positions, inverse: Positions | None
) -> tuple[list[str], Positions]:
    """The exact slow path, for when two different strings share a hash."""
    index: dict[bytes, int] = {}
    names: list[str] = []
    codes = np.empty(pos.size, dtype=np.int64)
    data = cols.data
    for i, (p, n) in enumerate(zip(pos.tolist(), length.tolist(), strict=False)):
        raw = bytes(data[p : p + n])
        code = index.get(raw)
        if code is None:
            code = index[raw] = len(names)
            names.append(raw.decode("utf-8", "replace"))
        codes[i] = code
    return names, codes if inverse is None else codes[inverse]
