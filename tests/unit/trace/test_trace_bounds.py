"""Traces that cannot be real are refused, not turned into impossible numbers (issue 26, items
2 and 3): a padded trace is refused from its header and size before it is read; a flipped bit
that moves an XNNPACK operator far outside its DELEGATE_CALL, or a run's end by 2^53 ns, is a
corrupt trace, not `delegate_glue 434,249,300 %` or a mean of 81,883,630 ms."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from etprof.errors import CorruptTraceError, TraceFormatError
from etprof.trace.etdump.reader import parse_dump, read_trace_bytes
from etprof.trace.loading import load_trace
from etprof.trace.timing_bounds import MAX_IDLE_NS

from conftest import DATA, assert_one_line_error, run_cli
from memory_probe import cost

PAIR = DATA / "small_pair_a.etdp"  # a real 3-session XNNPACK trace with its sidecar


def _read(path: Path) -> None:
    parse_dump(read_trace_bytes(path), str(path))


def _refused_quickly(path: Path, needle: str) -> None:
    took, grew_mb, raised = cost(lambda: _read(path))
    assert isinstance(raised, TraceFormatError), raised
    assert needle in raised.one_line(), raised.one_line()
    assert took < 1.0 and grew_mb < 200, (took, grew_mb)


def test_a_trace_padded_with_zeros_to_2_gib_is_refused_unread(tmp_path: Path) -> None:
    padded = tmp_path / "padded.etdp"
    padded.write_bytes(PAIR.read_bytes())
    with open(padded, "ab") as f:
        f.truncate(2**31)  # sparse: no disk used
    _refused_quickly(padded, "bytes after the end of its ETDump (which declares 94032 bytes)")


def test_an_unprefixed_trace_followed_by_1_gib_is_refused_unread(tmp_path: Path) -> None:
    body = PAIR.read_bytes()[4:]  # the same buffer without its size prefix
    junk = tmp_path / "junk.etdp"
    junk.write_bytes(body + b"\xa5" * 4096)
    with open(junk, "ab") as f:
        f.truncate(len(body) + 2**30)
    _refused_quickly(junk, "bytes after the end of its ETDump (its data ends at byte")


def test_an_unprefixed_trace_reads_as_the_prefixed_one(tmp_path: Path) -> None:
    plain = tmp_path / "plain.etdp"
    plain.write_bytes(PAIR.read_bytes()[4:])
    a, b = parse_dump(PAIR.read_bytes()), parse_dump(read_trace_bytes(plain))
    assert np.array_equal(a.start, b.start) and np.array_equal(a.end, b.end)
    assert a.names == b.names


def test_dev_zero_and_a_fifo_as_a_trace_are_refused_at_once(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "t.etdp"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo):
        _refused_quickly(path, "not a regular file")


# -- item 3: one flipped bit --------------------------------------------------------------------


def _field_positions(data: bytes, field: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(run, seq, byte position of uint64 field `field`) of every profile event of `data`."""
    from etprof.trace.etdump import reader
    from etprof.trace.etdump.tables import Columns

    buf, root = reader._root(data, "trace")
    cols = Columns(buf.data)
    top = cols.tables(np.array([root], dtype=np.int64))
    run_pos, _, _ = cols.table_vector_elements(*top.vectors(1, 4))
    ev_pos, run, seq = cols.table_vector_elements(*cols.tables(run_pos).vectors(3, 4))
    has, prof = cols.tables(ev_pos).sub_tables(0)
    assert has is None  # every event of this trace is a profile event
    pos, _ = prof.field_pos(field, 8)
    return run, seq, pos


def _flipped(tmp_path: Path, kind: str, which: str, bit: int, pick: int = 0) -> Path:
    """small_pair_a (with its sidecar) with one bit of one event's timestamp flipped: the
    `which` ("start_ns"/"end_ns") of the `pick`-th event of `kind`."""
    trace = load_trace(PAIR)
    event = trace.events[trace.events["kind"].astype(str) == kind].iloc[pick]
    data = bytearray(PAIR.read_bytes())
    run, seq, pos = _field_positions(bytes(data), 6 if which == "start_ns" else 7)
    at = int(pos[(run == int(event["run"])) & (seq == int(event["seq"]))][0])
    assert struct.unpack_from("<Q", data, at)[0] == int(event[which])
    data[at + bit // 8] ^= 1 << (bit % 8)
    out = tmp_path / "flipped.etdp"
    out.write_bytes(bytes(data))
    sidecar = PAIR.with_suffix(".etprof.json").read_text()
    out.with_suffix(".etprof.json").write_text(sidecar)
    return out


# an end 2^34 ns (17 s) or 2^27 ns later, a start 2^25 ns earlier (that bit is set in it)
@pytest.mark.parametrize(("which", "bit"), [("end_ns", 34), ("end_ns", 27), ("start_ns", 25)])
def test_an_xnnpack_operator_far_outside_its_call_is_refused(
    tmp_path: Path, which: str, bit: int
) -> None:
    """Bit 34 of a Transpose's end: once `delegate_glue 163 ms` in an 18 µs run."""
    flipped = _flipped(tmp_path, "delegate_op", which, bit, pick=0)
    with pytest.raises(CorruptTraceError, match="outside its DELEGATE_CALL by more than"):
        load_trace(flipped)


def test_rounding_within_a_tick_per_operator_is_kept(tmp_path: Path) -> None:
    """Bit 9 (512 ns) of an operator's end: within XNNPACK's rounding, the trace loads."""
    flipped = _flipped(tmp_path, "delegate_op", "end_ns", 9, pick=0)
    assert load_trace(flipped).events["duration_ns"].max() > 0


def test_a_run_ending_2_to_the_53_ns_later_is_refused(tmp_path: Path) -> None:
    """The first run's end moved by 2^53 ns (104 days): it overlaps the runs after it."""
    flipped = _flipped(tmp_path, "run_model", "end_ns", 53, pick=0)
    with pytest.raises(CorruptTraceError, match=r"starts .* before run block .* ends"):
        load_trace(flipped)


def test_the_last_run_ending_2_to_the_53_ns_later_is_refused(tmp_path: Path) -> None:
    """The last run has no run after it: Method::execute idle for 104 days after its last
    instruction is refused."""
    flipped = _flipped(tmp_path, "run_model", "end_ns", 53, pick=-1)
    with pytest.raises(CorruptTraceError, match="after its last instruction"):
        load_trace(flipped)


def test_cli_says_it_in_one_line(tmp_path: Path) -> None:
    flipped = _flipped(tmp_path, "delegate_op", "end_ns", 34, pick=0)
    assert_one_line_error(run_cli("breakdown", flipped), "corrupt trace", "DELEGATE_CALL")


def test_the_idle_bound_is_far_above_any_recorded_trace() -> None:
    """Measured on every trace the project ships: Method::execute outside its instructions
    is microseconds (the bound is a second)."""
    from conftest import sample_traces

    worst = 0
    for path in [*sample_traces(), PAIR, DATA / "small_xnnpack.etdp"]:
        ev = load_trace(path).events
        kind = ev["kind"].astype(str)
        calls = ev[kind.isin(["operator_call", "delegate_call"])].groupby("run")
        execute = ev[kind == "run_model"].set_index("run")
        tail = (execute["end_ns"] - calls["end_ns"].max()).dropna()
        head = (calls["start_ns"].min() - execute["start_ns"]).dropna()
        worst = max(worst, int(tail.max()), int(head.max()))
    assert 0 < worst < MAX_IDLE_NS / 1000, worst
