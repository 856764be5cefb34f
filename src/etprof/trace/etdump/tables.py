"""Read many FlatBuffer tables of one type at once, field by field, with numpy gathers.

A trace holds half a million event tables; reading them one by one in Python took seconds. Here
every step is a handful of whole-array numpy operations:

- Scalars are gathered from views of the buffer whose stride is one byte: element ``p`` of the
  uint32 view is the (possibly unaligned) uint32 starting at byte ``p``, so one fancy index reads
  a scalar from every table.
- Tables of one type written by one writer share a few vtables (flatcc deduplicates them), so
  field offsets are looked up once per distinct vtable, and bounds are checked from the largest
  table position plus the largest offset instead of element by element where that suffices.

Safety: nothing is followed recursively (the schema's depth is fixed), so corrupt offsets cannot
make the reader loop; every position is checked against the buffer before it is read (numpy
would wrap negative indices silently); every length is checked against the bytes that could hold
it before anything is allocated for it. Violations raise :class:`CorruptBuffer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from etprof.util.flatbuf import CorruptBuffer

Positions = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Columns:
    """A FlatBuffer seen through numpy: checked gathers of scalars at many positions."""

    data: bytes | memoryview
    _views: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    # the end of the furthest byte any checked read reached: where the buffer's data ends, for
    # a buffer without a size prefix (anything after it was appended)
    _reach: list[int] = field(default_factory=lambda: [0], repr=False, compare=False)

    @property
    def reach(self) -> int:
        return self._reach[0]

    def _note(self, end: int) -> None:
        if end > self._reach[0]:
            self._reach[0] = end

    def __len__(self) -> int:
        return len(self.data)

    def view(self, dtype: str) -> np.ndarray:
        """`dtype` scalars starting at every byte (an unaligned, one-byte-stride view)."""
        view = self._views.get(dtype)
        if view is None:
            count = max(len(self.data) - np.dtype(dtype).itemsize + 1, 0)
            view = np.ndarray((count,), dtype=dtype, buffer=self.data, offset=0, strides=(1,))
            self._views[dtype] = view
        return view

    def check(self, pos: Positions, size: int, what: str = "") -> None:
        """Raise unless every `size`-byte read at `pos` lies inside the buffer."""
        if not pos.size:
            return
        end = int(pos.max()) + size
        if int(pos.min()) < 0 or end > len(self.data):
            what = what or f"a {size}-byte read"
            raise CorruptBuffer(f"{what} falls outside the {len(self.data)}-byte buffer")
        self._note(end)

    def check_end(self, pos: Positions, size: int, what: str = "") -> None:
        """Like :meth:`check` for positions already known not to be negative."""
        if not pos.size:
            return
        end = int(pos.max()) + size
        if end > len(self.data):
            what = what or f"a {size}-byte read"
            raise CorruptBuffer(f"{what} runs past the end of the {len(self.data)}-byte buffer")
        self._note(end)

    def gather(self, pos: Positions, dtype: str) -> np.ndarray:
        self.check(pos, np.dtype(dtype).itemsize)
        return self.view(dtype)[pos]

    def deref(self, pos: Positions) -> Positions:
        """Follow the uoffsets stored at `pos`; each target must hold at least 4 bytes."""
        target: Positions = pos + self.gather(pos, "<u4")
        # uoffsets are unsigned: targets are never before `pos`, only the end needs checking
        self.check_end(target, 4, "an offset")
        return target

    def vector(self, pos: Positions, elem_size: int) -> tuple[Positions, Positions]:
        """(first element, length) of the vectors whose uoffsets are stored at `pos`.

        Each vector's elements must fit in the buffer, so a corrupt length of four billion is
        refused here rather than allocated later.
        """
        start = self.deref(pos)
        length = self.gather(start, "<u4").astype(np.int64)
        first = start + 4
        self.check_end(first + elem_size * length, 0, "a vector's length")
        return first, length

    def tables(self, pos: Positions) -> TableSet:
        """The tables at `pos`, ready to have their fields read."""
        self.check(pos, 4, "a table")
        vid, vtables = _factorize(pos - self.view("<i4")[pos])
        self.check(vtables, 4, "a table's vtable")
        vt_size = self.view("<u2")[vtables].astype(np.int64)
        top = int(pos.max()) if pos.size else 0
        return TableSet(self, pos, vid, vtables, vt_size, top)

    def table_vector_elements(
        self, first: Positions, length: Positions
    ) -> tuple[Positions, Positions, Positions]:
        """The element tables of many vectors of tables, flattened.

        Returns (table positions, index of the owning vector, index within it). Distinct vectors
        of a well-formed buffer never overlap, so their elements cannot outnumber the buffer's
        4-byte words; more than that means corrupt lengths (or vectors made to overlap), refused
        before the arrays are allocated.
        """
        total = int(length.sum()) if length.size else 0
        if total > len(self.data) // 4:
            raise CorruptBuffer(
                f"the vectors claim {total} elements, more than a "
                f"{len(self.data)}-byte buffer can hold"
            )
        owner = np.repeat(np.arange(length.size, dtype=np.int64), length)
        within = np.arange(total, dtype=np.int64)
        if length.size > 1:
            within -= (np.cumsum(length) - length)[owner]
        return self.deref(first[owner] + 4 * within), owner, within


def _factorize(values: Positions, few: int = 4) -> tuple[npt.NDArray[np.intp], Positions]:
    """(code per value, distinct values in order of appearance).

    Tables share a handful of vtables, so a few comparison passes beat hashing; many distinct
    values (a corrupt or unusual buffer) go to pandas' hash-based factorize.
    """
    codes = np.zeros(values.size, dtype=np.intp)
    if not values.size:
        return codes, values[:0]
    distinct = [int(values[0])]
    rest = np.flatnonzero(values != values[0])
    while rest.size and len(distinct) < few:
        value = values[rest[0]]
        same = values[rest] == value
        codes[rest[same]] = len(distinct)
        distinct.append(int(value))
        rest = rest[~same]
    if rest.size:
        import pandas as pd

        found, uniques = pd.factorize(values)
        return np.asarray(found, dtype=np.intp), np.asarray(uniques, dtype=np.int64)
    return codes, np.array(distinct, dtype=np.int64)


@dataclass(frozen=True)
class TableSet:
    """Many tables of one type: positions, and per table an index into the distinct vtables."""

    cols: Columns
    pos: Positions
    vid: npt.NDArray[np.intp]
    vtables: Positions  # distinct vtable positions
    vt_size: Positions  # their sizes in bytes
    top: int  # the largest table position

    def __len__(self) -> int:
        return int(self.pos.size)

    def subset(self, mask: npt.NDArray[np.bool_]) -> TableSet:
        pos = self.pos[mask]
        top = int(pos.max()) if pos.size else 0
        return TableSet(self.cols, pos, self.vid[mask], self.vtables, self.vt_size, top)

    def _offsets(self, index: int) -> Positions:
        """Offset of field `index` within the table, per distinct vtable (0 = absent)."""
        slot = 4 + 2 * index
        present = self.vt_size >= slot + 2
        at = np.where(present, self.vtables + slot, self.vtables)
        return np.where(present, self.cols.gather(at, "<u2"), 0).astype(np.int64)

    def field_pos(self, index: int, size: int) -> tuple[Positions, npt.NDArray[np.bool_] | None]:
        """(position of field `index` per table, mask of tables having it or None if all do).

        Where the field is absent the position is 0; every returned position can be read as a
        `size`-byte scalar.
        """
        off = self._offsets(index)
        if not off.size or not off.any():
            return np.zeros(self.pos.shape, dtype=np.int64), np.zeros(self.pos.shape, bool)
        lo, hi = int(off.min()), int(off.max())
        pos = self.pos + (hi if lo == hi else off[self.vid])
        has = None if lo > 0 else (off > 0)[self.vid]
        if has is not None:
            pos = np.where(has, pos, 0)
        if self.top + hi + size > len(self.cols):  # else no table's field can reach the end
            self.cols.check_end(pos, size, "a table's field")
        else:
            self.cols._note(self.top + hi + size)  # at most a table's size beyond its fields
        return pos, has

    def scalar(self, index: int, dtype: str, default: int) -> np.ndarray:
        """A scalar field of every table; `default` where absent."""
        pos, has = self.field_pos(index, np.dtype(dtype).itemsize)
        values = self.cols.view(dtype)[pos]  # absent fields read byte 0, replaced below
        if has is None:
            return values
        return np.where(has, values, np.asarray(default, dtype=values.dtype))

    def offset_target(self, index: int) -> tuple[Positions, npt.NDArray[np.bool_] | None]:
        """Where uoffset field `index` points per table (0 where absent), and the mask of has."""
        pos, has = self.field_pos(index, 4)
        target = pos + self.cols.view("<u4")[pos]
        if has is not None:
            target = np.where(has, target, 0)
        self.cols.check_end(target, 4, "an offset")
        return target, has

    def vectors(self, index: int, elem_size: int) -> tuple[Positions, Positions]:
        """(first element, length) of vector field `index` per table; (0, 0) where absent."""
        pos, has = self.field_pos(index, 4)
        if has is None:
            return self.cols.vector(pos, elem_size)
        first = np.zeros(self.pos.shape, dtype=np.int64)
        length = np.zeros(self.pos.shape, dtype=np.int64)
        if has.any():
            first[has], length[has] = self.cols.vector(pos[has], elem_size)
        return first, length

    def sub_tables(self, index: int) -> tuple[npt.NDArray[np.bool_] | None, TableSet]:
        """(mask of tables having it or None if all do, the sub-tables) of table field `index`."""
        target, has = self.offset_target(index)
        return has, self.cols.tables(target if has is None else target[has])

    def strings(self, index: int) -> tuple[list[str], Positions]:
        """Distinct values of string field `index` and, per table, a code into them (-1 absent).

        Strings are grouped by content (:mod:`etprof.trace.etdump.strings`), so half a million events
        repeating a few hundred names decode each distinct name once.
        """
        from etprof.trace.etdump.strings import distinct_strings

        target, has = self.offset_target(index)
        start = target if has is None else target[has]
        if not start.size:
            return [], np.full(self.pos.shape, -1, dtype=np.int64)
        length = self.cols.view("<u4")[start].astype(np.int64)
        self.cols.check_end(start + 4 + length, 0, "a string's length")
        names, local = distinct_strings(self.cols, start + 4, length)
        if has is None:
            return names, local
        codes = np.full(self.pos.shape, -1, dtype=np.int64)
        codes[has] = local
        return names, codes
