"""Bounds-checked FlatBuffers access, scalar and vectorised, with no generated code.

A FlatBuffer table starts with an int32 pointing back to its vtable; the vtable lists one uint16
offset per field (0 = field absent, use the schema default). Offsets to tables, strings and vectors
are uint32 relative to where they are stored. Every read here is checked against the buffer length,
so a corrupt file raises :class:`CorruptBuffer` instead of reading garbage or crashing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Positions = npt.NDArray[np.int64]


class CorruptBuffer(ValueError):
    """An offset or length points outside the buffer."""


@dataclass(frozen=True)
class Buffer:
    """A FlatBuffer held as bytes plus a uint8 view for vectorised gathers."""

    data: bytes
    u8: npt.NDArray[np.uint8]

    @classmethod
    def of(cls, data: bytes) -> Buffer:
        return cls(data, np.frombuffer(data, dtype=np.uint8))

    def __len__(self) -> int:
        return len(self.data)

    # -- scalar access ---------------------------------------------------------------------------
    def _check(self, pos: int, size: int) -> None:
        if pos < 0 or pos + size > len(self.data):
            raise CorruptBuffer(f"read of {size} bytes at {pos} outside a {len(self.data)}-byte buffer")

    def u8_at(self, pos: int) -> int:
        self._check(pos, 1)
        return self.data[pos]

    def u16_at(self, pos: int) -> int:
        self._check(pos, 2)
        return int(struct.unpack_from("<H", self.data, pos)[0])

    def i32_at(self, pos: int) -> int:
        self._check(pos, 4)
        return int(struct.unpack_from("<i", self.data, pos)[0])

    def u32_at(self, pos: int) -> int:
        self._check(pos, 4)
        return int(struct.unpack_from("<I", self.data, pos)[0])

    def deref(self, pos: int) -> int:
        """Follow the uoffset stored at `pos`."""
        target = pos + self.u32_at(pos)
        self._check(target, 4)
        return target

    def field_pos(self, table: int, field: int) -> int:
        """Absolute position of a table's field, or 0 when the field is absent."""
        vtable = table - self.i32_at(table)
        vt_size = self.u16_at(vtable)
        slot = 4 + 2 * field
        if slot + 2 > vt_size:
            return 0
        off = self.u16_at(vtable + slot)
        return table + off if off else 0

    def table_field(self, table: int, field: int) -> int | None:
        pos = self.field_pos(table, field)
        return self.deref(pos) if pos else None

    def int_field(self, table: int, field: int, default: int, signed: bool = True) -> int:
        pos = self.field_pos(table, field)
        if not pos:
            return default
        return self.i32_at(pos) if signed else self.u32_at(pos)

    def u8_field(self, table: int, field: int, default: int = 0) -> int:
        pos = self.field_pos(table, field)
        return self.u8_at(pos) if pos else default

    def string_field(self, table: int, field: int) -> str | None:
        pos = self.field_pos(table, field)
        if not pos:
            return None
        start = self.deref(pos)
        length = self.u32_at(start)
        self._check(start + 4, length)
        return self.data[start + 4 : start + 4 + length].decode("utf-8", errors="replace")

    def vector_field(self, table: int, field: int) -> tuple[int, int]:
        """(position of the first element, length) of a vector field; (0, 0) when absent."""
        pos = self.field_pos(table, field)
        if not pos:
            return 0, 0
        start = self.deref(pos)
        length = self.u32_at(start)
        return start + 4, length

    def table_vector(self, table: int, field: int) -> list[int]:
        first, length = self.vector_field(table, field)
        self._check(first, 4 * length)
        return [self.deref(first + 4 * i) for i in range(length)]

    # -- vectorised access -----------------------------------------------------------------------
    def _vcheck(self, pos: Positions, size: int) -> None:
        if pos.size and (int(pos.min()) < 0 or int(pos.max()) + size > len(self.data)):
            raise CorruptBuffer(f"a {size}-byte read falls outside the {len(self.data)}-byte buffer")

    def gather_u16(self, pos: Positions) -> Positions:
        self._vcheck(pos, 2)
        b = self.u8
        return b[pos].astype(np.int64) | (b[pos + 1].astype(np.int64) << 8)

    def gather_u32(self, pos: Positions) -> Positions:
        self._vcheck(pos, 4)
        b = self.u8
        return (
            b[pos].astype(np.int64)
            | (b[pos + 1].astype(np.int64) << 8)
            | (b[pos + 2].astype(np.int64) << 16)
            | (b[pos + 3].astype(np.int64) << 24)
        )

    def gather_i32(self, pos: Positions) -> Positions:
        return self.gather_u32(pos).astype(np.uint32).view(np.int32).astype(np.int64)

    def gather_u64(self, pos: Positions) -> npt.NDArray[np.uint64]:
        self._vcheck(pos, 8)
        lo = self.gather_u32(pos).astype(np.uint64)
        hi = self.gather_u32(pos + 4).astype(np.uint64)
        return lo | (hi << np.uint64(32))

    def gather_deref(self, pos: Positions) -> Positions:
        target = pos + self.gather_u32(pos)
        self._vcheck(target, 4)
        return target

    def gather_field_pos(self, tables: Positions, field: int) -> Positions:
        """Absolute field positions for many tables at once; 0 where the field is absent."""
        vtables = tables - self.gather_i32(tables)
        vt_size = self.gather_u16(vtables)
        slot = 4 + 2 * field
        present = slot + 2 <= vt_size
        off = np.zeros(tables.shape, dtype=np.int64)
        if present.any():
            off[present] = self.gather_u16(vtables[present] + slot)
        return np.where(off > 0, tables + off, 0)

    def gather_table_field(self, tables: Positions, field: int) -> Positions:
        """Positions of sub-tables; 0 where absent."""
        pos = self.gather_field_pos(tables, field)
        out = np.zeros(tables.shape, dtype=np.int64)
        has = pos > 0
        if has.any():
            out[has] = self.gather_deref(pos[has])
        return out

    def gather_int_field(self, tables: Positions, field: int, default: int) -> Positions:
        pos = self.gather_field_pos(tables, field)
        out = np.full(tables.shape, default, dtype=np.int64)
        has = pos > 0
        if has.any():
            out[has] = self.gather_i32(pos[has])
        return out

    def gather_u64_field(self, tables: Positions, field: int) -> npt.NDArray[np.uint64]:
        pos = self.gather_field_pos(tables, field)
        out = np.zeros(tables.shape, dtype=np.uint64)
        has = pos > 0
        if has.any():
            out[has] = self.gather_u64(pos[has])
        return out

    def gather_strings(self, tables: Positions, field: int) -> tuple[list[str], Positions]:
        """Distinct strings of a string field and, per table, the code into them (-1 = absent).

        Strings are deduplicated by content, so a trace of a million events repeating a few
        hundred operator names costs one decode per distinct name.
        """
        pos = self.gather_field_pos(tables, field)
        codes = np.full(tables.shape, -1, dtype=np.int64)
        has = np.flatnonzero(pos > 0)
        if not has.size:
            return [], codes
        starts = self.gather_deref(pos[has])
        lengths = self.gather_u32(starts)
        ends = starts + 4 + lengths
        if int(ends.max()) > len(self.data):
            raise CorruptBuffer("a string runs past the end of the buffer")
        data = self.data
        index: dict[bytes, int] = {}
        names: list[str] = []
        local = np.empty(has.size, dtype=np.int64)
        for i, (s, e) in enumerate(zip((starts + 4).tolist(), ends.tolist())):
            raw = data[s:e]
            code = index.get(raw)
            if code is None:
                code = index[raw] = len(names)
                names.append(raw.decode("utf-8", errors="replace"))
            local[i] = code
        codes[has] = local
        return names, codes

    def gather_table_vectors(self, vectors: list[tuple[int, int]]) -> tuple[Positions, Positions]:
        """Element tables of many table-vectors: (positions, index of the owning vector)."""
        lengths = np.array([n for _, n in vectors], dtype=np.int64)
        firsts = np.array([f for f, _ in vectors], dtype=np.int64)
        total = int(lengths.sum()) if lengths.size else 0
        owner = np.repeat(np.arange(len(vectors), dtype=np.int64), lengths)
        if not total:
            return np.zeros(0, dtype=np.int64), owner
        within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        slots = np.repeat(firsts, lengths) + 4 * within
        return self.gather_deref(slots), owner
