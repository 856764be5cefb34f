"""The fast ETDump reader: every column against a slow table-by-table reference, on real traces
and hand-built ones (tests/etdump_builder.py, no torch), and bad files refused one by one with a
one-line TraceFormatError, quickly and without large allocations.

The differential test against ExecuTorch's own Inspector is tests/unit/trace/test_engines.py.
"""

from __future__ import annotations

import dataclasses
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from etprof.errors import TraceFormatError
from etprof.trace.etdump import strings
from etprof.trace.etdump.reader import RawDump, parse_dump, read_dump
from etprof.trace.events import events_frame
from etprof.util.flatbuf import Buffer

from conftest import DATA, assert_one_line_error, run_cli, sample_traces
from etdump_builder import (
    Alloc,
    Debug,
    Prof,
    Run,
    build,
    check_consistent,
    everything,
    reference_read,
    write,
)

REAL_TRACES = [DATA / "small_xnnpack.etdp", *sample_traces()]


def assert_same(a: RawDump, b: RawDump) -> None:
    for f in dataclasses.fields(RawDump):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, f.name
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


@pytest.mark.parametrize("path", REAL_TRACES, ids=lambda p: p.name)
def test_real_traces_match_the_reference_reader(path: Path) -> None:
    raw = read_dump(path)
    assert_same(raw, reference_read(path.read_bytes()))
    check_consistent(raw)
    assert raw.run.size > 0 and "Method::execute" in raw.names
    ev = events_frame(raw)
    assert (ev["iteration"].max() + 1) == raw.run_names.count("Execute")


@pytest.mark.parametrize("prefixed", [True, False])
@pytest.mark.parametrize("shared", [False, True])
def test_hand_built_trace_with_every_kind_of_field(prefixed: bool, shared: bool) -> None:
    data = build(everything(), version=5, prefixed=prefixed, share_strings=shared)
    raw = parse_dump(data)
    assert_same(raw, reference_read(data))
    check_consistent(raw)
    assert raw.version == 5
    assert raw.run_names == ["Default", "Execute", "Execute", "Execute", ""]
    assert raw.allocator_names == [["method", "planned"], ["method"], [], [], []]
    assert raw.debug_event_count == 1
    assert raw.alloc_size.tolist() == [4096, 2**40] and raw.alloc_run.tolist() == [0, 1]
    names = [([*raw.names, None])[c] for c in raw.name_codes]
    assert names[1:4] == [None, None, None] and "" in names and "bad \ufffd utf-8" in names
    assert raw.seq[raw.run == 1].tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 13]
    assert raw.delegate_id_int[2] == 7 and raw.end.max() == 2**64 - 1


def test_shared_strings_are_read_once(tmp_path: Path) -> None:
    """A writer that stores each string once: positions repeat; content still groups them."""
    events: list[Prof] = [Prof(f"op{i % 3}", i, i, i + 1) for i in range(50)]
    data = build([Run("Execute", list(events))], share_strings=True)
    raw = parse_dump(data)
    assert raw.names == ["op0", "op1", "op2"]
    assert raw.name_codes.tolist() == [i % 3 for i in range(50)]


def test_hash_collisions_fall_back_to_exact_grouping(monkeypatch: pytest.MonkeyPatch) -> None:
    data = build(everything())
    expected = parse_dump(data)
    monkeypatch.setattr(
        strings, "_hash_rows", lambda words, length: np.zeros(length.size, np.uint64)
    )
    assert_same(parse_dump(data), expected)


def test_many_vtables() -> None:
    """Every event with its own field layout: the distinct-vtable shortcut must not matter."""
    events: list[Prof | Alloc | Debug] = []
    for i in range(40):
        events.append(
            Prof(
                f"n{i % 5}" if i % 2 else None,
                i % 7,
                i,
                i + i % 3,
                delegate=f"d{i % 4}" if i % 3 else None,
                delegate_int=i % 5 - 1,
                chain=i % 2,
            )
        )
        if i % 6 == 0:
            events.append(Alloc(i, i * 10))
    data = build([Run("Execute", events)])
    assert_same(parse_dump(data), reference_read(data))


# -- bad files, one by one ---------------------------------------------------------------------


def small() -> bytes:
    return (DATA / "small_xnnpack.etdp").read_bytes()


def locate(data: bytes) -> dict[str, int]:
    """Byte positions of interesting uint32 fields of a real size-prefixed trace."""
    buf = Buffer.of(data)
    root = buf.deref(4)
    runs_at = buf.field_pos(root, 1)
    runs = buf.table_vector(root, 1)
    execute = runs[1]
    events_at = buf.field_pos(execute, 3)
    events = buf.table_vector(execute, 3)
    profile = buf.table_field(events[0], 0)
    assert profile is not None
    name_field = buf.field_pos(profile, 4) or buf.field_pos(profile, 0)
    return {
        "root": 4,
        "runs_len": buf.deref(runs_at),
        "events_len": buf.deref(events_at),
        "event_offset": buf.deref(events_at) + 4,
        "vtable": events[0],  # an Event table's soffset to its vtable
        "string_len": buf.deref(name_field),
    }


def put(data: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def other_flatbuffer() -> bytes:
    body = build([Run("Execute", [Prof("x", 0, 1, 2)])])
    return body[:8] + b"ABCD" + body[12:]


BAD: dict[str, tuple[object, str]] = {
    # name: (bytes or a function of the small trace, words the message must contain)
    "empty": (b"", "empty"),
    "truncated": (lambda d: d[: len(d) // 2], "truncated"),
    "wrong identifier": (lambda d: d[:8] + b"ED01" + d[12:], "not an ETDump"),
    "program": (lambda d: (DATA / "small_xnnpack.pte").read_bytes(), ".pte"),
    "other flatbuffer": (lambda d: other_flatbuffer(), "'ABCD'"),
    "random bytes": (lambda d: np.random.default_rng(7).bytes(5000), "not an ETDump"),
    "json": (b'{"version": 0}', "JSON"),
    "root outside": (lambda d: put(d, 4, "<I", len(d)), "corrupt"),
    "run vector length 4e9": (lambda d: put(d, locate(d)["runs_len"], "<I", 0xFFFFFFFF), "corrupt"),
    "event vector length 4e9": (
        lambda d: put(d, locate(d)["events_len"], "<I", 4_000_000_000),
        "corrupt",
    ),
    "event offset outside": (
        lambda d: put(d, locate(d)["event_offset"], "<I", 0xFFFFFFF0),
        "corrupt",
    ),
    "vtable before the start": (lambda d: put(d, locate(d)["vtable"], "<i", 2**31 - 1), "corrupt"),
    "vtable past the end": (lambda d: put(d, locate(d)["vtable"], "<i", -(2**31)), "corrupt"),
    "string length 4e9": (lambda d: put(d, locate(d)["string_len"], "<I", 0xFFFFFFFF), "corrupt"),
    "string past the end": (lambda d: put(d, locate(d)["string_len"], "<I", len(d)), "corrupt"),
}


def bad_bytes(kind: str) -> bytes:
    make = BAD[kind][0]
    return make(small()) if callable(make) else make  # type: ignore[return-value]


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_files_are_refused_in_one_line(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.etdp"
    path.write_bytes(bad_bytes(kind))
    tracemalloc.start()
    try:
        with pytest.raises(TraceFormatError) as info:
            read_dump(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    line = info.value.one_line()
    assert "\n" not in line and str(path) in line and BAD[kind][1] in line
    assert info.value.fix  # says what to do
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"


def test_overlapping_vectors_cannot_multiply_the_work() -> None:
    """Runs all pointing at one event vector: refused once they claim more than fits."""
    runs = [Run("Execute", [Prof("x", 0, 1, 2)] * 3000)]
    runs += [Run("Execute", [Prof("y", 0, 1, 2)]) for _ in range(400)]
    data = bytearray(build(runs))
    buf = Buffer.of(bytes(data))
    tables = buf.table_vector(buf.deref(4), 1)
    big = buf.deref(buf.field_pos(tables[0], 3))  # written first: after the others
    for run in tables[1:]:
        at = buf.field_pos(run, 3)
        struct.pack_into("<I", data, at, big - at)
    with pytest.raises(TraceFormatError, match="more than"):
        parse_dump(bytes(data))


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="no such trace"):
        read_dump(tmp_path / "nope.etdp")
    with pytest.raises(TraceFormatError, match="directory"):
        read_dump(tmp_path)


@pytest.mark.parametrize("kind", ["truncated", "event vector length 4e9", "program"])
def test_cli_refuses_bad_traces_in_one_line(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.etdp"
    path.write_bytes(bad_bytes(kind))
    result = run_cli("breakdown", path)
    assert_one_line_error(result, str(path))
    assert result.stdout == ""


def test_hand_built_file_round_trips_through_load(tmp_path: Path) -> None:
    from etprof.trace.loading import load_trace

    path = write(tmp_path / "t.etdp", everything())
    trace = load_trace(path)
    ev = trace.events
    assert len(ev) == parse_dump(path.read_bytes()).run.size
    assert ev.loc[ev["name"] == "huge", "duration_ns"].tolist() == [99]
    assert trace.allocations is not None and len(trace.allocations) == 2
    assert trace.debug_event_count == 1
