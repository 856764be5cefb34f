"""Bounds-checked FlatBuffers access one scalar at a time, with no generated code and no numpy.

A FlatBuffer table starts with an int32 soffset to its vtable (signed: the vtable may sit before
or after the table); the vtable starts with its own size in bytes, then the table's size, then one
uint16 offset per field (0 = field absent, use the schema default). Offsets to tables, strings and
vectors are uint32, relative to where they are stored, so they only point forward.

Every read is checked against the buffer length, so a corrupt file raises :class:`CorruptBuffer`
instead of reading garbage or crashing. This module serves small tables read one by one (the
`.pte` reader, the ETDump's root); :mod:`etprof.trace.etdump.tables` reads a trace's half a million
events with numpy. It imports nothing heavy, so importing the `.pte` reader stays cheap.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


class CorruptBuffer(ValueError):
    """An offset or length points outside the buffer."""


@dataclass(frozen=True)
class Buffer:
    """A FlatBuffer held as bytes (or a memoryview of them, to avoid copying a large file)."""

    data: bytes | memoryview

    @classmethod
    def of(cls, data: bytes | memoryview) -> Buffer:
        return cls(data)

    def __len__(self) -> int:
        return len(self.data)

    def check(self, pos: int, size: int) -> None:
        if pos < 0 or size < 0 or pos + size > len(self.data):
            raise CorruptBuffer(
                f"a read of {size} bytes at {pos} falls outside the {len(self.data)}-byte buffer"
            )

    def u8_at(self, pos: int) -> int:
        self.check(pos, 1)
        return int(self.data[pos])

    def u16_at(self, pos: int) -> int:
        self.check(pos, 2)
        return int(struct.unpack_from("<H", self.data, pos)[0])

    def i32_at(self, pos: int) -> int:
        self.check(pos, 4)
        return int(struct.unpack_from("<i", self.data, pos)[0])

    def u32_at(self, pos: int) -> int:
        self.check(pos, 4)
        return int(struct.unpack_from("<I", self.data, pos)[0])

    def u64_at(self, pos: int) -> int:
        self.check(pos, 8)
        return int(struct.unpack_from("<Q", self.data, pos)[0])

    def deref(self, pos: int) -> int:
        """Follow the uoffset stored at `pos`; the target must hold at least 4 bytes."""
        target = pos + self.u32_at(pos)
        self.check(target, 4)
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

    def u64_field(self, table: int, field: int, default: int = 0) -> int:
        pos = self.field_pos(table, field)
        return self.u64_at(pos) if pos else default

    def u8_field(self, table: int, field: int, default: int = 0) -> int:
        pos = self.field_pos(table, field)
        return self.u8_at(pos) if pos else default

    def string_field(self, table: int, field: int) -> str | None:
        pos = self.field_pos(table, field)
        if not pos:
            return None
        start = self.deref(pos)
        length = self.u32_at(start)
        self.check(start + 4, length)
        return str(self.data[start + 4 : start + 4 + length], "utf-8", "replace")

    def vector_field(self, table: int, field: int) -> tuple[int, int]:
        """(position of the first element, length) of a vector field; (0, 0) when absent."""
        pos = self.field_pos(table, field)
        if not pos:
            return 0, 0
        start = self.deref(pos)
        return start + 4, self.u32_at(start)

    def table_vector(self, table: int, field: int) -> list[int]:
        """The tables of a vector-of-tables field (checked to fit before any is read)."""
        first, length = self.vector_field(table, field)
        self.check(first, 4 * length)
        return [self.deref(first + 4 * i) for i in range(length)]
