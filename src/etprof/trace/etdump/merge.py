"""Join the ETDumps of several sessions into one ETDump, byte for byte.

`etprof run --sessions K` loads the program K times; each load has its own ETDump writer. The
joined file is an ordinary, size-prefixed ETDump (identifier "ED00") whose ``run_data`` lists the
sessions' RunData blocks in order, so any ETDump reader, the Inspector included, reads it.

Nothing is re-encoded: FlatBuffer offsets are relative to where they are stored, so each input
buffer is copied whole behind a new root table, and the new ``run_data`` vector points into the
copies. Each copy starts at a multiple of 16, which keeps every scalar as aligned as it was.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from etprof.util.flatbuf import Buffer, CorruptBuffer

IDENTIFIER = b"ED00"
_ALIGN = 16
# table ETDump { version: uint; run_data: [RunData]; }
_VERSION, _RUN_DATA = 0, 1


def merge_dumps(dumps: Sequence[bytes]) -> bytes:
    """One size-prefixed ETDump holding every RunData of `dumps`, in order.

    Raises CorruptBuffer when an input is not a well-formed ETDump.
    """
    if not dumps:
        raise ValueError("no ETDumps to merge")
    version = 0
    runs: list[list[int]] = []  # per input: its RunData positions, relative to the input
    for i, data in enumerate(dumps):
        buf, root = _root(data, i)
        if i == 0:
            version = buf.int_field(root, _VERSION, 0, signed=False)
        runs.append(buf.table_vector(root, _RUN_DATA))

    count = sum(len(r) for r in runs)
    # [size prefix][root uoffset][ED00][vtable 8 bytes][root table 12 bytes][vector]
    vtable_at, table_at, vector_at = 12, 20, 32
    header_end = vector_at + 4 + 4 * count
    out = bytearray(header_end)
    struct.pack_into("<I", out, 4, table_at - 4)
    out[8:12] = IDENTIFIER
    struct.pack_into("<HHHH", out, vtable_at, 8, 12, 4, 8)
    struct.pack_into(
        "<iII", out, table_at, table_at - vtable_at, version, vector_at - (table_at + 8)
    )
    struct.pack_into("<I", out, vector_at, count)
    slot = vector_at + 4
    for data, positions in zip(dumps, runs, strict=False):
        out.extend(bytes(-len(out) % _ALIGN))
        base = len(out)
        out.extend(data)
        for pos in positions:
            struct.pack_into("<I", out, slot, base + pos - slot)
            slot += 4
    out.extend(bytes(-len(out) % _ALIGN))
    struct.pack_into("<I", out, 0, len(out) - 4)
    return bytes(out)


def _root(data: bytes, index: int) -> tuple[Buffer, int]:
    """The input as a buffer (positions relative to its first byte) and its root table."""
    if len(data) >= 12 and data[8:12] == IDENTIFIER:
        buf = Buffer.of(data)
        return buf, buf.deref(4)
    if len(data) >= 8 and data[4:8] == IDENTIFIER:
        buf = Buffer.of(data)
        return buf, buf.deref(0)
    raise CorruptBuffer(f"session {index + 1}'s ETDump has no ED00 identifier")
