"""A torch-free ETDump writer for tests (schema etdump_schema_flatcc.fbs, identifier "ED00").

Writes every kind of event (profile, allocation, debug), allocators, absent fields and shared
strings, with the `flatbuffers` package, so reader tests need neither torch nor flatc. Also a
slow reference reader that walks the same file one table at a time with the scalar
:class:`~etprof.util.flatbuf.Buffer`, to check the vectorised reader against; `everything()`, a
trace with every kind of field; and `check_consistent`, what any successful read must satisfy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np

from etprof.trace.etdump.reader import RawDump
from etprof.util.flatbuf import Buffer


@dataclass(frozen=True)
class Prof:
    name: str | bytes | None
    instruction: int = -1
    start: int = 0
    end: int = 0
    delegate: str | bytes | None = None  # delegate_debug_id_str
    delegate_int: int = -1
    chain: int = 0
    metadata: bytes | None = None  # delegate_debug_metadata (skipped by the reader)


@dataclass(frozen=True)
class Alloc:
    allocator: int
    size: int


@dataclass(frozen=True)
class Debug:
    name: str | None
    instruction: int = -1
    value: int = 0


Event = Prof | Alloc | Debug


@dataclass(frozen=True)
class Run:
    name: str | None
    events: list[Event] | None = field(default_factory=list)
    allocators: list[str] | None = None


def build(
    runs: list[Run], *, version: int = 0, prefixed: bool = True, share_strings: bool = False
) -> bytes:
    """An ETDump with `runs`; `share_strings` stores each distinct string once."""
    b = flatbuffers.Builder(1024)
    cache: dict[bytes, int] = {}

    def string(s: str | bytes | None) -> int | None:
        if s is None:
            return None
        raw = s.encode() if isinstance(s, str) else s
        if share_strings and raw in cache:
            return cache[raw]
        off = b.CreateString(raw)
        cache[raw] = off
        return off

    def vector(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def profile(e: Prof) -> int:
        name, dstr = string(e.name), string(e.delegate)
        meta = None if e.metadata is None else b.CreateByteVector(e.metadata)
        b.StartObject(8)
        if name is not None:
            b.PrependUOffsetTRelativeSlot(0, name, 0)
        b.PrependInt32Slot(1, e.chain, 0)
        b.PrependInt32Slot(2, e.instruction, -1)
        b.PrependInt32Slot(3, e.delegate_int, -1)
        if dstr is not None:
            b.PrependUOffsetTRelativeSlot(4, dstr, 0)
        if meta is not None:
            b.PrependUOffsetTRelativeSlot(5, meta, 0)
        b.PrependUint64Slot(6, e.start, 0)
        b.PrependUint64Slot(7, e.end, 0)
        return int(b.EndObject())

    def allocation(e: Alloc) -> int:
        b.StartObject(2)
        b.PrependInt32Slot(0, e.allocator, 0)
        b.PrependUint64Slot(1, e.size, 0)
        return int(b.EndObject())

    def debug(e: Debug) -> int:
        name = string(e.name)
        b.StartObject(1)  # Int
        b.PrependInt64Slot(0, e.value, 0)
        int_value = b.EndObject()
        b.StartObject(8)  # Value
        b.PrependUint8Slot(0, 1, 0)  # ValueType.Int
        b.PrependUOffsetTRelativeSlot(3, int_value, 0)
        value = b.EndObject()
        b.StartObject(6)  # DebugEvent
        b.PrependUint64Slot(0, 0, 0)
        b.PrependInt32Slot(1, e.instruction, -1)
        b.PrependUOffsetTRelativeSlot(2, value, 0)
        if name is not None:
            b.PrependUOffsetTRelativeSlot(5, name, 0)
        return int(b.EndObject())

    run_offsets = []
    for run in runs:
        events = []
        for e in run.events or []:
            slot, inner = (
                (0, profile(e))
                if isinstance(e, Prof)
                else (1, allocation(e))
                if isinstance(e, Alloc)
                else (2, debug(e))
            )
            b.StartObject(3)  # Event
            b.PrependUOffsetTRelativeSlot(slot, inner, 0)
            events.append(b.EndObject())
        ev_vec = None if run.events is None else vector(events)
        allocs = None
        if run.allocators is not None:
            names = [string(a) for a in run.allocators]
            tables = []
            for n in names:
                b.StartObject(1)
                b.PrependUOffsetTRelativeSlot(0, n, 0)
                tables.append(b.EndObject())
            allocs = vector(tables)
        name = string(run.name)
        b.StartObject(4)  # RunData
        if name is not None:
            b.PrependUOffsetTRelativeSlot(0, name, 0)
        b.PrependInt32Slot(1, -1, -1)
        if allocs is not None:
            b.PrependUOffsetTRelativeSlot(2, allocs, 0)
        if ev_vec is not None:
            b.PrependUOffsetTRelativeSlot(3, ev_vec, 0)
        run_offsets.append(b.EndObject())
    runs_vec = vector(run_offsets)
    b.StartObject(2)  # ETDump
    b.PrependUint32Slot(0, version, 0)
    b.PrependUOffsetTRelativeSlot(1, runs_vec, 0)
    root = b.EndObject()
    if prefixed:
        b.FinishSizePrefixed(root, file_identifier=b"ED00")
    else:
        b.Finish(root, file_identifier=b"ED00")
    return bytes(b.Output())


def write(path: Path, runs: list[Run], **kwargs: object) -> Path:
    path.write_bytes(build(runs, **kwargs))  # type: ignore[arg-type]
    return path


def reference_read(data: bytes) -> RawDump:
    """The same columns as read_dump, read one table at a time (slow, simple, independent)."""
    prefixed = data[8:12] == b"ED00"
    buf = Buffer.of(data)
    root = buf.deref(4 if prefixed else 0)
    names: list[str] = []
    dnames: list[str] = []
    cols: dict[str, list[int]] = {
        k: []
        for k in (
            "run",
            "seq",
            "name",
            "dstr",
            "dint",
            "instr",
            "chain",
            "start",
            "end",
            "alloc_run",
            "alloc_id",
            "alloc_size",
        )
    }
    run_names, allocator_names, debug = [], [], 0

    def code(table: list[str], value: str | None) -> int:
        if value is None:
            return -1
        if value not in table:
            table.append(value)
        return table.index(value)

    def u64(table: int, index: int) -> int:
        pos = buf.field_pos(table, index)
        return int.from_bytes(bytes(buf.data[pos : pos + 8]), "little") if pos else 0

    for r, run in enumerate(buf.table_vector(root, 1)):
        run_names.append(buf.string_field(run, 0) or "")
        allocator_names.append([buf.string_field(a, 0) or "" for a in buf.table_vector(run, 2)])
        for seq, ev in enumerate(buf.table_vector(run, 3)):
            pe, ae = buf.table_field(ev, 0), buf.table_field(ev, 1)
            if pe is not None:
                cols["run"].append(r)
                cols["seq"].append(seq)
                cols["name"].append(code(names, buf.string_field(pe, 0)))
                cols["dstr"].append(code(dnames, buf.string_field(pe, 4)))
                cols["chain"].append(buf.int_field(pe, 1, 0))
                cols["instr"].append(buf.int_field(pe, 2, -1))
                cols["dint"].append(buf.int_field(pe, 3, -1))
                cols["start"].append(u64(pe, 6))
                cols["end"].append(u64(pe, 7))
            elif ae is not None:
                cols["alloc_run"].append(r)
                cols["alloc_id"].append(buf.int_field(ae, 0, 0))
                cols["alloc_size"].append(u64(ae, 1))
            elif buf.field_pos(ev, 2):
                debug += 1

    def i64(key: str) -> np.ndarray:
        return np.array(cols[key], dtype=np.int64)

    def u(key: str) -> np.ndarray:
        return np.array(cols[key], dtype=np.uint64)

    return RawDump(
        version=buf.int_field(root, 0, 0, signed=False),
        run_names=run_names,
        run=i64("run"),
        seq=i64("seq"),
        name_codes=i64("name"),
        names=names,
        delegate_codes=i64("dstr"),
        delegate_names=dnames,
        delegate_id_int=i64("dint"),
        instruction_id=i64("instr"),
        chain_index=i64("chain"),
        start=u("start"),
        end=u("end"),
        alloc_run=i64("alloc_run"),
        alloc_allocator=i64("alloc_id"),
        alloc_size=u("alloc_size"),
        allocator_names=allocator_names,
        debug_event_count=debug,
    )


def everything() -> list[Run]:
    long = "Fully Connected (NC, QS8, QC8W) GEMM with a name longer than sixty-four bytes #1"
    return [
        Run(
            "Default",
            [Alloc(0, 4096), Prof("Method::init", 0, 10, 90, chain=-1)],
            allocators=["method", "planned"],
        ),
        Run(
            "Execute",
            [
                Prof(None, 0, 100, 200, delegate="Convolution (NHWC, F32) IGEMM #1"),
                Prof(None, 0, 200, 260, delegate_int=7),  # integer delegate id only
                Prof(None, 0, 260, 300, delegate=long, metadata=b"\x01\x02\x03"),
                Prof("DELEGATE_CALL", 0, 90, 310),
                Debug("aten::mean.out", 1, 42),
                Prof("native_call_mean.out", 1, 320, 400),
                Prof("OPERATOR_CALL", 1, 310, 410),
                Prof("", 2, 410, 420),  # empty, not absent
                Prof("12345678", 3, 420, 430),  # exactly one word
                Prof("1234567812345678", 3, 430, 440),  # exactly two
                Prof(b"bad \xff utf-8", 4, 440, 450),
                Prof("huge", 5, 2**64 - 100, 2**64 - 1),
                Alloc(1, 2**40),
                Prof("Method::execute", 0, 80, 500, chain=-1),
            ],
            allocators=["method"],
        ),
        Run("Execute", []),
        Run("Execute", None),  # event vector absent
        Run(None, [Prof("Method::execute", 0, 600, 700)]),  # run name absent
    ]


def check_consistent(raw: RawDump) -> None:
    """What every result must satisfy, whatever the bytes were."""
    n = raw.run.size
    for col in (
        raw.seq,
        raw.name_codes,
        raw.delegate_codes,
        raw.delegate_id_int,
        raw.instruction_id,
        raw.chain_index,
        raw.start,
        raw.end,
    ):
        assert col.size == n
    assert raw.alloc_allocator.size == raw.alloc_size.size == raw.alloc_run.size
    assert len(raw.names) == len(set(raw.names))
    assert len(raw.delegate_names) == len(set(raw.delegate_names))
    for codes, table in ((raw.name_codes, raw.names), (raw.delegate_codes, raw.delegate_names)):
        assert codes.size == 0 or (codes.min() >= -1 and codes.max() < len(table))
    assert n == 0 or (raw.run.min() >= 0 and raw.run.max() < len(raw.run_names))
    assert len(raw.allocator_names) == len(raw.run_names)
