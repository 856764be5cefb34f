"""Differential tests: the fast reader against ExecuTorch's own deserializer and Inspector.

Every trace is read by both engines, which must agree column by column; etprof's per-event means
over the measured iterations must equal what the Inspector computes. Traces: the checked-in
samples, the small XNNPACK trace, and hand-made ones written with ExecuTorch's own serializer to
reach what real runs rarely contain (allocation and debug events, missing names, integer delegate
ids, empty runs, timestamps near 2**64).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from etprof.errors import InputError, TraceFormatError
from etprof.trace.etdump.inspector_engine import (
    etprof_event_means,
    inspector_event_means,
    read_with_inspector,
)
from etprof.trace.etdump.reader import RawDump, read_dump
from etprof.trace.events import events_frame
from etprof.trace.model import DEFAULT_WARMUP, EXECUTE_RUN

from conftest import DATA, inspector_means, sample_traces

U64_MAX = 2**64 - 1

# -- hand-made traces --------------------------------------------------------------------------


class Builder:
    """Terse constructors for executorch's ETDump dataclasses (imported lazily: they pull torch)."""

    def __init__(self) -> None:
        import executorch.devtools.etdump.schema_flatcc as fc
        from executorch.devtools.etdump.serialize import serialize_to_etdump_flatcc

        self.fc = fc
        self.serialize = serialize_to_etdump_flatcc

    def profile(
        self,
        name: str | None,
        instruction: int,
        start: int,
        end: int,
        *,
        delegate_int: int = -1,
        delegate_str: str | None = None,
        chain: int = 0,
    ) -> Any:
        pe = self.fc.ProfileEvent(
            name=name,
            chain_index=chain,
            instruction_id=instruction,
            delegate_debug_id_int=delegate_int,
            delegate_debug_id_str=delegate_str,
            delegate_debug_metadata=None,
            start_time=start,
            end_time=end,
        )
        return self.fc.Event(profile_event=pe, allocation_event=None, debug_event=None)

    def allocation(self, allocator: int, size: int) -> Any:
        ae = self.fc.AllocationEvent(allocator_id=allocator, allocation_size=size)
        return self.fc.Event(profile_event=None, allocation_event=ae, debug_event=None)

    def debug(self, name: str | None, instruction: int, value: int) -> Any:
        fc = self.fc
        entry = fc.Value(
            val=fc.ValueType.INT.value,
            tensor=None,
            tensor_list=None,
            int_value=fc.Int(value),
            float_value=None,
            double_value=None,
            bool_value=None,
            output=None,
        )
        de = fc.DebugEvent(
            name=name,
            chain_index=0,
            instruction_id=instruction,
            delegate_debug_id_int=-1,
            delegate_debug_id_str=None,
            debug_entry=entry,
        )
        return fc.Event(profile_event=None, allocation_event=None, debug_event=de)

    def run(self, name: str, events: list[Any] | None, allocators: list[str] | None = None) -> Any:
        allocs = None if allocators is None else [self.fc.Allocator(a) for a in allocators]
        return self.fc.RunData(name=name, bundled_input_index=-1, allocators=allocs, events=events)

    def write(self, path: Path, runs: list[Any], version: int = 0, prefixed: bool = True) -> Path:
        body = self.serialize(self.fc.ETDumpFlatCC(version=version, run_data=runs))
        path.write_bytes(size_prefixed(body) if prefixed else body)
        return path


def size_prefixed(body: bytes) -> bytes:
    """flatc writes a plain buffer; the runtime writes it size-prefixed (body kept 8-aligned)."""
    root = struct.unpack_from("<I", body, 0)[0]
    rest = body[4:8] + bytes(4) + body[8:]
    return struct.pack("<II", 4 + len(rest), root + 4) + rest


def default_run(b: Builder) -> Any:
    return b.run(
        "Default",
        [
            b.allocation(0, 4096),
            b.profile("Method::init", 0, 1_000, 9_000, chain=-1),
            b.profile("Program::load_method", 0, 500, 9_500, chain=-1),
        ],
        ["method", "planned"],
    )


def mixed_runs(b: Builder) -> list[Any]:
    """A Default run, four Execute runs of every event shape, then two empty Execute runs."""
    runs = [default_run(b)]
    for i in range(4):
        t = 100_000 * (i + 1)
        huge = U64_MAX - 50_000 + 1_000 * i  # above 2**63: int64 wraps, differences do not
        runs.append(
            b.run(
                EXECUTE_RUN,
                [
                    b.allocation(0, 64),
                    b.profile(None, 0, t + 10, t + 210 + 7 * i, delegate_int=3),
                    b.profile(None, 0, t + 300, t + 900 + i, delegate_str="Convolution #1"),
                    b.profile(None, 0, t + 950, t + 990, delegate_int=5, delegate_str="both #1"),
                    b.allocation(1, 2**40 + i),
                    b.profile("DELEGATE_CALL", 0, t + 5, t + 1_000 + 11 * i),
                    b.debug("dbg", 7, 42),
                    b.profile("native_call_mean.out", 1, t + 1_100, t + 1_900 + 13 * i),
                    b.profile("OPERATOR_CALL", 1, t + 1_050, t + 1_950 + 13 * i),
                    b.profile(None, 2, t + 2_000, t + 2_100 + i),  # name absent
                    b.profile("", 3, t + 2_200, t + 2_300 + 2 * i),  # name empty
                    b.profile("huge", 4, huge, huge + 1_234 + i),
                    b.profile("chained", 6, t + 2_400, t + 2_450, chain=1),
                    b.profile("Method::execute", 0, t, t + 3_000 + 17 * i, chain=-1),
                ],
                ["method", "planned"],
            )
        )
    runs.append(b.run(EXECUTE_RUN, []))  # an iteration with zero events
    runs.append(b.run(EXECUTE_RUN, None))  # and one whose event vector is absent
    return runs


def blocks_runs(b: Builder) -> list[Any]:
    """The first Execute run has an extra event, so the Inspector makes two EventBlocks."""
    runs = [default_run(b)]
    for i in range(3):
        t = 10_000 * (i + 1)
        events = [
            b.profile("native_call_add.out", 0, t + 10, t + 110 + i),
            b.profile("OPERATOR_CALL", 0, t + 5, t + 120 + i),
            b.profile("Method::execute", 0, t, t + 500 + 3 * i, chain=-1),
        ]
        if i == 0:
            events.insert(0, b.profile("lazy_init", 0, t + 1, t + 4))
        runs.append(b.run(EXECUTE_RUN, events))
    return runs


HAND_MADE: dict[str, tuple[Callable[[Builder], list[Any]], int, bool, int]] = {
    # name: (runs, ETDump version, size-prefixed, warm-up for the means)
    "mixed": (mixed_runs, 3, True, 1),
    "mixed-plain": (mixed_runs, 0, False, 2),
    "blocks": (blocks_runs, 0, True, 0),  # keeps the odd first run: two EventBlocks
}


@pytest.fixture(scope="session")
def builder() -> Builder:
    return Builder()


@pytest.fixture(scope="session")
def hand_made(builder: Builder, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("hand_made")
    return {
        name: builder.write(out / f"{name}.etdp", runs(builder), version, prefixed)
        for name, (runs, version, prefixed, _) in HAND_MADE.items()
    }


TRACES = [f"sample:{p.name}" for p in sample_traces()] + ["small_xnnpack"] + list(HAND_MADE)


def trace_path(name: str, hand_made: dict[str, Path]) -> Path:
    if name.startswith("sample:"):
        return next(p for p in sample_traces() if p.name == name.removeprefix("sample:"))
    if name == "small_xnnpack":
        return DATA / "small_xnnpack.etdp"
    return hand_made[name]


# -- the differential tests --------------------------------------------------------------------


def assert_same_raw(fast: RawDump, reference: RawDump) -> None:
    for field in dataclasses.fields(RawDump):
        a, b = getattr(fast, field.name), getattr(reference, field.name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype, field.name
            np.testing.assert_array_equal(a, b, err_msg=field.name)
        else:
            assert a == b, field.name


@pytest.mark.parametrize("name", TRACES)
def test_engines_give_identical_columns(name: str, hand_made: dict[str, Path]) -> None:
    path = trace_path(name, hand_made)
    fast, reference = read_dump(path), read_with_inspector(path)
    assert_same_raw(fast, reference)
    a, b = events_frame(fast), events_frame(reference)
    pd.testing.assert_frame_equal(a, b)
    assert (a["duration_ns"].to_numpy() == (fast.end - fast.start).astype(np.int64)).all()


@pytest.mark.parametrize("name", TRACES)
def test_means_equal_the_inspectors(name: str, hand_made: dict[str, Path]) -> None:
    path = trace_path(name, hand_made)
    raw = read_dump(path)
    executes = sum(n == EXECUTE_RUN for n in raw.run_names)
    warmup = HAND_MADE[name][3] if name in HAND_MADE else min(DEFAULT_WARMUP, executes - 1)
    events = events_frame(raw)
    ours = etprof_event_means(events[events["iteration"] >= warmup])
    theirs = inspector_means(path, warmup)  # shared with test_attribution
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    assert len(ours) > 0


def test_hand_made_traces_hold_what_they_claim(hand_made: dict[str, Path]) -> None:
    raw = read_dump(hand_made["mixed"])
    assert raw.version == 3
    assert raw.debug_event_count == 4 and raw.alloc_run.size == 1 + 8
    assert raw.alloc_size.max() == 2**40 + 3
    assert raw.start.max() > 2**63 and raw.end.max() < U64_MAX
    assert -1 in raw.name_codes and "" in raw.names and 3 in raw.delegate_id_int
    assert raw.run_names.count(EXECUTE_RUN) == 6 and raw.run.max() == 4
    assert raw.allocator_names[0] == ["method", "planned"] and raw.allocator_names[-1] == []
    # seq counts allocation and debug events too
    first = raw.seq[raw.run == 1]
    assert first.tolist() == [1, 2, 3, 5, 7, 8, 9, 10, 11, 12, 13]
    ev = events_frame(raw)
    assert (ev.loc[ev["name"] == "huge", "duration_ns"] == [1234, 1235, 1236, 1237]).all()
    means = inspector_event_means(hand_made["blocks"], 0)
    assert means.set_index("name").loc["lazy_init", "count"] == 1


def test_empty_dump(builder: Builder, tmp_path: Path) -> None:
    path = builder.write(tmp_path / "empty.etdp", [])
    fast = read_dump(path)
    assert_same_raw(fast, read_with_inspector(path))
    assert fast.run.size == 0 and fast.run_names == []
    with pytest.raises(InputError, match="no Execute runs"):
        inspector_event_means(path, 0)


def test_means_refuse_too_few_iterations(small_trace: Path) -> None:
    with pytest.raises(InputError, match="warm-up"):
        inspector_event_means(small_trace, 1000)


def test_known_differences_of_the_inspector(builder: Builder, tmp_path: Path) -> None:
    """What the Inspector does differently, as the inspector_engine docstring says."""
    b = builder
    big = 2**62
    runs = [
        b.run(
            EXECUTE_RUN,
            [
                b.profile("dup", 1, 100, 110),  # same signature twice in a run
                b.profile("dup", 1, 200, 220),
                b.profile(None, 2, big + 100, big + 1_100, delegate_int=9),  # > 2**53
                b.profile("wrap", 3, 2**32 - 100, 50),  # a 32-bit timer wrapped
                b.profile("OPERATOR_CALL", 4, 300, 400),
                b.debug("named_by_debug", 4, 1),  # lends its name to instruction 4's events
            ],
        )
        for _ in range(2)
    ]
    path = b.write(tmp_path / "quirks.etdp", runs)
    theirs = inspector_event_means(path, 0).set_index(["name", "instruction_id", "occurrence"])
    events = events_frame(read_dump(path))
    ours = etprof_event_means(events).set_index(["name", "instruction_id", "occurrence"])

    assert ours.loc[("dup", 1, 0), "mean_ns"] == 10 and ours.loc[("dup", 1, 1), "mean_ns"] == 20
    assert theirs.loc[("dup", 1, 0), "mean_ns"] == 20 and ("dup", 1, 1) not in theirs.index
    assert ours.loc[("9", 2, 0), "mean_ns"] == 1_000
    assert theirs.loc[("9", 2, 0), "mean_ns"] == float(big + 1_100) - float(big + 100) == 1_024
    assert ours.loc[("wrap", 3, 0), "mean_ns"] == 50 - (2**32 - 100)
    assert theirs.loc[("wrap", 3, 0), "mean_ns"] == (2**32 - 1 - (2**32 - 100)) + 50
    assert ("OPERATOR_CALL", 4, 0) in ours.index and ("OPERATOR_CALL", 4, 0) not in theirs.index
    assert theirs.loc[("named_by_debug", 4, 0), "mean_ns"] == 100


def patched(at: int, value: int) -> Callable[[bytes], bytes]:
    return lambda d: d[:at] + value.to_bytes(4, "little", signed=True) + d[at + 4 :]


BAD_FILES: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda d: b"",
    "truncated": lambda d: d[: len(d) // 2],
    "program": lambda d: (DATA / "small_xnnpack.pte").read_bytes(),
    "json": lambda d: b'{"version": 0}',
    "garbage": lambda d: bytes(range(256)) * 4,
    "root offset": patched(4, 10**6),
    "vtable offset": patched(12, -(10**6)),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_files_are_refused_by_both_engines(
    kind: str, small_trace: Path, tmp_path: Path
) -> None:
    path = tmp_path / "bad.etdp"
    path.write_bytes(BAD_FILES[kind](small_trace.read_bytes()))
    for engine in (read_dump, read_with_inspector):
        with pytest.raises(TraceFormatError) as info:
            engine(path)
        assert "\n" not in info.value.one_line()
        assert str(path) in info.value.problem


def test_flatc_does_not_verify_what_the_fast_reader_refuses(
    small_trace: Path, tmp_path: Path
) -> None:
    """flatc decodes a body of 0xff bytes as an empty dump; the bounds-checked reader refuses it."""
    data = small_trace.read_bytes()
    path = tmp_path / "bad.etdp"
    path.write_bytes(data[:12] + b"\xff" * (len(data) - 12))
    with pytest.raises(TraceFormatError, match="corrupt"):
        read_dump(path)
    assert read_with_inspector(path).run_names == []


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_unreadable_paths(make: str, tmp_path: Path) -> None:
    path = tmp_path / "t.etdp"
    if make == "directory":
        path.mkdir()
    for engine in (read_dump, read_with_inspector):
        with pytest.raises(TraceFormatError):
            engine(path)
