"""The reference engine: ExecuTorch's own ETDump deserializer and Inspector, to cross-check etprof.

:func:`read_with_inspector` builds the same :class:`~etprof.trace.etdump.reader.RawDump` as the fast
reader, but through ExecuTorch's official path (``deserialize_from_etdump_flatcc``: flatc turns the
FlatBuffer into JSON, then JSON into the ``schema_flatcc`` dataclasses). It is slow (a flatc
process and a JSON document the size of the trace) and needs torch, but shares no code with the
fast reader, so the two agreeing is evidence that both are right. It is a weaker judge of bad
files: flatc checks the identifier and follows offsets, but does not verify the buffer, so some
corrupt bodies decode silently (a body of 0xff bytes reads as an empty dump); the fast reader's
bounds checks refuse them.

:func:`inspector_event_means` reports what ExecuTorch's ``Inspector`` itself computes per event,
and :func:`etprof_event_means` computes the same table from etprof's event table. How the
Inspector's numbers relate to etprof's:

- Grouping. The Inspector folds each RunData into an ``EventBlock`` keyed by its *run signature*
  (run name, bundled input index, and the ordered tuple of event signatures). Runs with identical
  signatures share one block, and each event of a block holds one duration per run in
  ``perf_data.raw``. The "Default" run (``Method::init``, ``Program::load_method``) is a block of
  its own; etprof gives its events iteration -1. Both exclude it from per-iteration statistics.
  The Inspector has no notion of warm-up: ``perf_data.avg`` covers every run of the block. Here the
  first ``warmup`` "Execute" runs are dropped before the Inspector sees the dump, which is the
  same selection as :meth:`etprof.trace.model.Trace.measured`.
- Naming. An event's signature is (name, instruction id, delegate_debug_id_int,
  delegate_debug_id_str). A delegated event (either delegate id present) is named after the id:
  ``str(delegate_debug_id_int)`` when it is not -1, else ``delegate_debug_id_str`` (XNNPACK's
  "Convolution (NHWC, F32) IGEMM #1"). Other events keep their name ("" when absent). etprof keeps
  name and delegate id as separate columns; :func:`inspector_name` derives the Inspector's name.
- Duplicates. Two profile events of one run with the same signature (an instruction executed
  twice, or differing only in chain_index) collapse: the Inspector keeps the *last* one. etprof
  keeps every event; ``occurrence`` numbers them in run order.
- Debug events. A debug event sharing an instruction (and delegate ids) with profile events lends
  its name to all of them, so those profile events are reported under the debug event's name.
  Debug events whose value is marked as a run output are dropped; others must hold the same
  value in every run of a block (the Inspector asserts it).
- Allocation events. The Inspector raises ``ValueError("Unable to find populated event")`` on any
  event that is neither a profile nor a debug event, so allocation events are stripped before the
  dump is handed over (they carry no timing).
- Units. ETDump timestamps are ticks; the Inspector assumes ``source_time_scale=NS`` (true for the
  Linux runtime, and what etprof assumes) and by default divides by 1e6 to report milliseconds.
  Non-delegated durations are ``(end - start) / factor`` on exact integers; delegated ones go
  through ``delegate_time_scale_converter``, which by default converts each timestamp to float
  *before* subtracting, so they are rounded once timestamps exceed 2**53. This module asks for
  NS -> NS, so values are ns (as floats). etprof subtracts uint64 timestamps in int64.
- Wrap-around. When start > end and both fit in 32 bits, the Inspector assumes a 32-bit timer
  wrapped and reports ``(2**32 - 1 - start) + end``; with larger values it raises. etprof reports
  ``end - start`` (negative), leaving the judgement to its checks.
"""

from __future__ import annotations

import dataclasses
import struct
import subprocess
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.errors import InputError, TraceFormatError
from etprof.trace.etdump.reader import IDENTIFIER, RawDump
from etprof.trace.model import EXECUTE_RUN
from etprof.util.quiet import silenced

if TYPE_CHECKING:
    from executorch.devtools.etdump.schema_flatcc import ETDumpFlatCC, RunData

_FIX = "pass the .etdp written by `etprof run` or by executor_runner --etdump_path"
_RECOPY = "re-copy the trace or run the model again"
MEANS_COLUMNS = ("name", "instruction_id", "occurrence", "delegated", "count", "mean_ns")


def read_with_inspector(path: Path) -> RawDump:
    """Read an ETDump with ExecuTorch's deserializer into the same columns as the fast reader."""
    return _to_raw(_deserialize(_read(path), str(path)))


def inspector_event_means(path: Path, warmup: int) -> pd.DataFrame:
    """Per event, the Inspector's mean duration (ns) over the Execute runs after ``warmup``.

    One row per (``name``, ``instruction_id``, ``occurrence``) as the Inspector names events
    (see the module docstring), with ``count`` durations averaged into ``mean_ns``.
    """
    source = str(path)
    dump = _deserialize(_read(path), source)
    runs = [run for run in dump.run_data if run.name == EXECUTE_RUN]
    _check_iterations(len(runs), warmup, source)
    measured = dataclasses.replace(
        dump, run_data=[_profile_and_debug_only(run) for run in runs[warmup:]]
    )
    with silenced():
        from executorch.devtools import Inspector
        from executorch.devtools.etdump.serialize import serialize_to_etdump_flatcc
        from executorch.devtools.inspector._inspector_utils import TimeScale

        blob = _size_prefixed(serialize_to_etdump_flatcc(measured))
        try:
            inspector = Inspector(
                etdump_data=blob,
                etrecord=None,
                source_time_scale=TimeScale.NS,
                target_time_scale=TimeScale.NS,
            )
        except (ValueError, AssertionError, RuntimeError) as exc:
            raise TraceFormatError(
                f"ExecuTorch's Inspector cannot read {source} ({exc})", "use the fast engine"
            ) from None
    durations: dict[tuple[str, int, int], list[float]] = {}
    delegated: dict[tuple[str, int, int], bool] = {}
    for block in inspector.event_blocks:
        seen: Counter[tuple[str, int]] = Counter()
        for event in block.events:
            if event.perf_data is None:
                continue  # a debug event without timing
            instruction = -1 if event._instruction_id is None else int(event._instruction_id)
            occurrence = seen[(event.name, instruction)]
            seen[(event.name, instruction)] += 1
            key = (str(event.name), instruction, occurrence)
            durations.setdefault(key, []).extend(float(x) for x in event.perf_data.raw)
            delegated[key] = bool(event.is_delegated_op)
    rows = [
        (n, i, o, delegated[(n, i, o)], len(v), float(np.mean(v)))
        for (n, i, o), v in durations.items()
    ]
    return _means_frame(rows)


def inspector_blocks(path: Path) -> list[dict[tuple[str, int], list[float]]]:
    """The Inspector's event blocks of the Execute runs, each as (event name, instruction id)
    -> its durations (ns), one per run of the block in run order (the first occurrence of a
    name and id in a run). Runs of different methods have different signatures, so each method
    gets blocks of its own: this is what a per-method mean is checked against."""
    source = str(path)
    dump = _deserialize(_read(path), source)
    runs = [_profile_and_debug_only(run) for run in dump.run_data if run.name == EXECUTE_RUN]
    with silenced():
        from executorch.devtools import Inspector
        from executorch.devtools.etdump.serialize import serialize_to_etdump_flatcc
        from executorch.devtools.inspector._inspector_utils import TimeScale

        blob = _size_prefixed(serialize_to_etdump_flatcc(dataclasses.replace(dump, run_data=runs)))
        inspector = Inspector(
            etdump_data=blob,
            etrecord=None,
            source_time_scale=TimeScale.NS,
            target_time_scale=TimeScale.NS,
        )
    out = []
    for block in inspector.event_blocks:
        events: dict[tuple[str, int], list[float]] = {}
        for event in block.events:
            if event.perf_data is None:
                continue
            key = (
                str(event.name),
                -1 if event._instruction_id is None else int(event._instruction_id),
            )
            events.setdefault(key, [float(x) for x in event.perf_data.raw])
        out.append(events)
    return out


def etprof_event_means(events: pd.DataFrame) -> pd.DataFrame:
    """The :func:`inspector_event_means` table computed from etprof's (measured) event table."""
    ev = events[events["iteration"] >= 0]
    name = inspector_name(ev)
    instruction = ev["instruction_id"].astype(np.int64)
    occurrence = (
        pd.DataFrame({"run": ev["run"], "name": name, "instruction_id": instruction})
        .groupby(["run", "name", "instruction_id"], sort=False)
        .cumcount()
    )
    table = pd.DataFrame(
        {
            "name": name,
            "instruction_id": instruction,
            "occurrence": occurrence.astype(np.int64),
            "delegated": _is_delegated(ev),
            "duration_ns": ev["duration_ns"].astype(np.float64),
        }
    )
    grouped = table.groupby(["name", "instruction_id", "occurrence", "delegated"], sort=False)
    out = grouped["duration_ns"].agg(["count", "mean"]).reset_index()
    rows = [
        (
            str(r.name),
            int(r.instruction_id),
            int(r.occurrence),
            bool(r.delegated),
            int(r.count),
            float(r.mean),
        )
        for r in out.itertuples(index=False)
    ]
    return _means_frame(rows)


def inspector_name(events: pd.DataFrame) -> pd.Series:
    """The name the Inspector gives each event: its delegate id when delegated, else its name."""
    name = events["name"].astype(str)
    by_str = events["delegate_op"].astype(str)
    by_int = events["delegate_id_int"].astype(np.int64)
    out = name.where(by_str == "", by_str)
    return out.where(by_int == -1, by_int.astype(str))


def _is_delegated(events: pd.DataFrame) -> pd.Series:
    return (events["delegate_id_int"] != -1) | (events["delegate_op"].astype(str) != "")


def _means_frame(rows: list[tuple[str, int, int, bool, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(MEANS_COLUMNS))
    frame = frame.astype(
        {
            "name": object,
            "instruction_id": np.int64,
            "occurrence": np.int64,
            "delegated": bool,
            "count": np.int64,
            "mean_ns": np.float64,
        }
    )
    return frame.sort_values(["name", "instruction_id", "occurrence"]).reset_index(drop=True)


def _check_iterations(n: int, warmup: int, source: str) -> None:
    if n == 0:
        raise InputError(
            f"{source} has no Execute runs (no Method::execute recorded)",
            "profile with `etprof run`, or executor_runner with --etdump_path",
        )
    if n <= warmup:
        raise InputError(
            f"{source} has {n} iterations, not more than the {warmup} warm-up iterations to drop",
            "record more (--iters) or lower --warmup",
        )


def _profile_and_debug_only(run: RunData) -> RunData:
    # The Inspector raises on events that are neither profile nor debug events.
    if run.events is None:
        return run
    kept = [e for e in run.events if e.profile_event is not None or e.debug_event is not None]
    return dataclasses.replace(run, events=kept)


def _size_prefixed(body: bytes) -> bytes:
    """Turn flatc's plain buffer into the size-prefixed layout the runtime writes.

    The Inspector only reads size-prefixed dumps. Prefix, root offset and identifier take 12
    bytes; 4 bytes of padding keep the body at its 8-byte alignment (it moves by 8).
    """
    root = struct.unpack_from("<I", body, 0)[0]
    rest = body[4:8] + bytes(4) + body[8:]
    return struct.pack("<II", 4 + len(rest), root + 4) + rest


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TraceFormatError(f"no such trace: {path}", "check the path") from None
    except IsADirectoryError:
        raise TraceFormatError(
            f"{path} is a directory, not a trace", "pass an .etdp file"
        ) from None
    except OSError as exc:
        raise TraceFormatError(f"cannot read {path}: {exc.strerror}", "check permissions") from None


def _is_size_prefixed(data: bytes, source: str) -> bool:
    if len(data) == 0:
        raise TraceFormatError(f"{source} is empty", _FIX)
    if len(data) >= 12 and data[8:12] == IDENTIFIER:
        declared = int.from_bytes(data[0:4], "little") + 4
        if declared > len(data):
            raise TraceFormatError(
                f"{source} is truncated: it declares {declared} bytes but has {len(data)}",
                _RECOPY,
            )
        return True
    if len(data) >= 8 and data[4:8] == IDENTIFIER:
        return False
    raise TraceFormatError(f"{source} is not an ETDump trace (no ED00 identifier)", _FIX)


def _deserialize(data: bytes, source: str) -> ETDumpFlatCC:
    size_prefixed = _is_size_prefixed(data, source)
    # flatc reports a bad buffer on stderr: keep it off the user's terminal.
    with silenced():
        from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

        try:
            return deserialize_from_etdump_flatcc(data, size_prefixed=size_prefixed)
        except (subprocess.CalledProcessError, ValueError, TypeError, KeyError) as exc:
            why = (
                "flatc cannot decode it" if isinstance(exc, subprocess.CalledProcessError) else exc
            )
            raise TraceFormatError(f"{source} is a corrupt ETDump trace ({why})", _RECOPY) from None


class _Codes:
    """Distinct strings in order of first appearance, as the fast reader codes them."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def code(self, value: str | None) -> int:
        if value is None:
            return -1
        return self.index.setdefault(value, len(self.index))

    @property
    def strings(self) -> list[str]:
        return list(self.index)


def _to_raw(dump: ETDumpFlatCC) -> RawDump:
    runs = dump.run_data
    # (run, seq, event) with seq counting every event of the run, like the fast reader
    numbered = [(r, s, e) for r, run in enumerate(runs) for s, e in enumerate(run.events or [])]
    prof = [(r, s, e.profile_event) for r, s, e in numbered if e.profile_event is not None]
    alloc = [
        (r, e.allocation_event)
        for r, _, e in numbered
        if e.profile_event is None and e.allocation_event is not None
    ]
    names, delegates = _Codes(), _Codes()
    name_codes = [names.code(p.name) for _, _, p in prof]
    delegate_codes = [delegates.code(p.delegate_debug_id_str) for _, _, p in prof]
    return RawDump(
        version=_or(dump.version, 0),
        run_names=[run.name or "" for run in runs],
        run=_i64([r for r, _, _ in prof]),
        seq=_i64([s for _, s, _ in prof]),
        name_codes=_i64(name_codes),
        names=names.strings,
        delegate_codes=_i64(delegate_codes),
        delegate_names=delegates.strings,
        delegate_id_int=_i64([_or(p.delegate_debug_id_int, -1) for _, _, p in prof]),
        instruction_id=_i64([_or(p.instruction_id, -1) for _, _, p in prof]),
        chain_index=_i64([_or(p.chain_index, 0) for _, _, p in prof]),
        start=_u64([_or(p.start_time, 0) for _, _, p in prof]),
        end=_u64([_or(p.end_time, 0) for _, _, p in prof]),
        alloc_run=_i64([r for r, _ in alloc]),
        alloc_allocator=_i64([_or(a.allocator_id, 0) for _, a in alloc]),
        alloc_size=_u64([_or(a.allocation_size, 0) for _, a in alloc]),
        allocator_names=[[a.name or "" for a in run.allocators or []] for run in runs],
        debug_event_count=sum(
            1
            for _, _, e in numbered
            if e.profile_event is None and e.allocation_event is None and e.debug_event is not None
        ),
    )


def _i64(values: list[int]) -> npt.NDArray[np.int64]:
    return np.array(values, dtype=np.int64)


def _u64(values: list[int]) -> npt.NDArray[np.uint64]:
    return np.array(values, dtype=np.uint64)


def _or(value: int | None, default: int) -> int:
    return default if value is None else int(value)
