"""Fuzzing the fast reader with mutated real traces: a valid result or TraceFormatError, nothing
else (no IndexError, MemoryError, hang or crash), and the CLI answers a one-line error.

Mutations: byte flips, truncations, insertions, deletions, uint16 overwrites (vtable entries)
and uint32 overwrites with values that make offsets and lengths point outside the buffer, far
away or just past the end. Bounded:
a few hundred examples in total, no deadline (the machine is shared).
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etprof.errors import TraceFormatError
from etprof.etdump.reader import RawDump, parse_dump
from etprof.trace import events_frame

from conftest import DATA, assert_one_line_error, run_cli, sample_traces
from etdump_builder import build, check_consistent, everything


def _bases() -> dict[str, bytes]:
    bases = {"small_xnnpack": (DATA / "small_xnnpack.etdp").read_bytes(),
             "hand_built": build(everything(), share_strings=True)}
    # the two smallest real samples: mutations land everywhere in a few hundred examples
    for path in sorted(sample_traces(), key=lambda p: p.stat().st_size)[:2]:
        bases[path.stem] = path.read_bytes()
    return bases


BASES = _bases()
NAMES = sorted(BASES)
SPECIAL = [0, 1, 3, 4, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFC, 0xFFFFFFFF, 4_000_000_000]


@st.composite
def mutation(draw: st.DrawFn, size: int) -> tuple[str, int, int, bytes]:
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "u16", "u32", "u32"]))
    at = draw(st.integers(0, max(size - 1, 0)))
    if kind == "flip":
        return kind, at, draw(st.integers(1, 255)), b""
    if kind == "insert":
        return kind, at, 0, draw(st.binary(min_size=1, max_size=16))
    if kind == "delete":
        return kind, at, draw(st.integers(1, 64)), b""
    if kind == "u32":
        near_end = draw(st.integers(-16, 16))
        value = draw(st.one_of(st.sampled_from(SPECIAL), st.integers(0, 2**32 - 1),
                               st.just((size - at + near_end) % 2**32)))
        return kind, at & ~3, value, b""
    if kind == "u16":  # vtable entries: field offsets and sizes
        return kind, at & ~1, draw(st.sampled_from([0, 2, 4, 0xFFFF, 0x8000, 200])), b""
    return kind, at, 0, b""


def apply(data: bytes, m: tuple[str, int, int, bytes]) -> bytes:
    kind, at, value, extra = m
    if kind == "flip":
        out = bytearray(data)
        if at < len(out):
            out[at] ^= value
        return bytes(out)
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + extra + data[at:]
    if kind == "delete":
        return data[:at] + data[at + value :]
    out = bytearray(data)
    fmt = "<H" if kind == "u16" else "<I"
    if at + struct.calcsize(fmt) <= len(out):
        struct.pack_into(fmt, out, at, value)
    return bytes(out)


def outcome(data: bytes) -> RawDump | TraceFormatError:
    try:
        raw = parse_dump(data, "fuzzed.etdp")
    except TraceFormatError as exc:
        assert "\n" not in exc.one_line() and exc.problem.startswith("fuzzed.etdp")
        return exc
    check_consistent(raw)
    events_frame(raw)  # the codes and columns are usable downstream
    return raw


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = BASES[draw(st.sampled_from(NAMES))]
    for _ in range(draw(st.integers(1, 4))):
        data = apply(data, draw(mutation(len(data))))
    return data


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_traces_give_a_result_or_a_trace_format_error(data: bytes) -> None:
    outcome(data)


def test_unmutated_bases_read_cleanly() -> None:
    for name in NAMES:
        assert isinstance(outcome(BASES[name]), RawDump), name


def test_mutations_do_reach_the_structure() -> None:
    """The fuzzer is not vacuous: u32 overwrites inside the trace are refused often."""
    rng = random.Random(5)
    data = BASES["small_xnnpack"]
    refused = 0
    for _ in range(100):
        m = ("u32", rng.randrange(12, len(data)) & ~3, rng.choice(SPECIAL), b"")
        refused += isinstance(outcome(apply(data, m)), TraceFormatError)
    assert 10 <= refused < 100


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cli_on_mutated_traces(seed: int, tmp_path: Path) -> None:
    """Through `etprof breakdown`: a result, or one `etprof: error:` line and exit != 0."""
    rng = random.Random(seed)
    data = BASES["small_xnnpack"]
    while True:  # a mutation the reader refuses
        m = ("u32", rng.randrange(12, len(data)) & ~3, rng.choice(SPECIAL), b"")
        bad = apply(data, m)
        if isinstance(outcome(bad), TraceFormatError):
            break
    path = tmp_path / "fuzzed.etdp"
    path.write_bytes(bad)
    result = run_cli("breakdown", path)
    assert_one_line_error(result, "corrupt ETDump trace")
