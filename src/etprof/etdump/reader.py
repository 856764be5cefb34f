"""Read an ETDump file (schema `etdump_schema_flatcc.fbs`, identifier "ED00") into column arrays.

This is etprof's fast engine: it walks the FlatBuffer with numpy gathers and never imports torch,
executorch's exir, or flatc. Field numbers below follow the schema's declaration order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from etprof.errors import TraceFormatError
from etprof.etdump.flatbuf import Buffer, CorruptBuffer

IDENTIFIER = b"ED00"

# table ETDump { version, run_data }
_ETDUMP_VERSION, _ETDUMP_RUN_DATA = 0, 1
# table RunData { name, bundled_input_index, allocators, events }
_RUN_NAME, _RUN_ALLOCATORS, _RUN_EVENTS = 0, 2, 3
# table Event { profile_event, allocation_event, debug_event }
_EV_PROFILE, _EV_ALLOCATION, _EV_DEBUG = 0, 1, 2
# table ProfileEvent
_PE_NAME, _PE_CHAIN, _PE_INSTRUCTION, _PE_DELEGATE_INT, _PE_DELEGATE_STR = 0, 1, 2, 3, 4
_PE_START, _PE_END = 6, 7
# table AllocationEvent { allocator_id, allocation_size }
_AE_ALLOCATOR, _AE_SIZE = 0, 1


@dataclass(frozen=True)
class RawDump:
    """The columns of an ETDump's profile and allocation events, one entry per event.

    String columns are given as codes into a list of distinct strings (-1 = absent).
    """

    version: int
    run_names: list[str]
    # profile events
    run: npt.NDArray[np.int64]
    seq: npt.NDArray[np.int64]
    name_codes: npt.NDArray[np.int64]
    names: list[str]
    delegate_codes: npt.NDArray[np.int64]
    delegate_names: list[str]
    delegate_id_int: npt.NDArray[np.int64]
    instruction_id: npt.NDArray[np.int64]
    chain_index: npt.NDArray[np.int64]
    start: npt.NDArray[np.uint64]
    end: npt.NDArray[np.uint64]
    # allocation events
    alloc_run: npt.NDArray[np.int64]
    alloc_allocator: npt.NDArray[np.int64]
    alloc_size: npt.NDArray[np.uint64]
    allocator_names: list[list[str]]
    debug_event_count: int


def _root(data: bytes, source: str) -> tuple[Buffer, int]:
    fix = "pass the .etdp written by `etprof run` or by executor_runner --etdump_path"
    if len(data) == 0:
        raise TraceFormatError(f"{source} is empty", fix)
    if len(data) >= 12 and data[8:12] == IDENTIFIER:
        prefix = int.from_bytes(data[0:4], "little")
        if prefix + 4 > len(data):
            raise TraceFormatError(
                f"{source} is truncated: it declares {prefix + 4} bytes but has {len(data)}",
                "re-copy the trace or run the model again",
            )
        body = data[4 : 4 + prefix]
    elif len(data) >= 8 and data[4:8] == IDENTIFIER:
        body = data
    else:
        kind = _guess_kind(data)
        raise TraceFormatError(f"{source} is not an ETDump trace ({kind})", fix)
    buf = Buffer.of(body)
    try:
        return buf, buf.deref(0)
    except CorruptBuffer as exc:
        raise TraceFormatError(f"{source} is a corrupt ETDump trace ({exc})", fix) from None


def _guess_kind(data: bytes) -> str:
    if len(data) >= 8 and data[4:8] == b"ET12":
        return "it is an ExecuTorch program (.pte); run it with `etprof run` to make a trace"
    if data[:2] == b"PK":
        return "it is a zip archive, perhaps an ETRecord"
    if data[:1] in (b"{", b"["):
        return "it looks like JSON text"
    if len(data) < 12:
        return f"only {len(data)} bytes, too short to be one"
    return "no ED00 identifier"


def read_dump(path: Path) -> RawDump:
    """Read and validate an ETDump file; raise TraceFormatError on anything malformed."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TraceFormatError(f"no such trace: {path}", "check the path") from None
    except IsADirectoryError:
        raise TraceFormatError(f"{path} is a directory, not a trace", "pass an .etdp file") from None
    except OSError as exc:
        raise TraceFormatError(f"cannot read {path}: {exc.strerror}", "check permissions") from None
    return parse_dump(data, str(path))


def parse_dump(data: bytes, source: str = "trace") -> RawDump:
    buf, root = _root(data, source)
    try:
        return _parse(buf, root)
    except (CorruptBuffer, UnicodeDecodeError, IndexError, ValueError, OverflowError) as exc:
        raise TraceFormatError(
            f"{source} is a corrupt ETDump trace ({exc})",
            "re-copy the trace or run the model again",
        ) from None


def _parse(buf: Buffer, root: int) -> RawDump:
    version = buf.int_field(root, _ETDUMP_VERSION, 0, signed=False)
    runs = buf.table_vector(root, _ETDUMP_RUN_DATA)
    run_names = [buf.string_field(r, _RUN_NAME) or "" for r in runs]
    allocator_names = [
        [buf.string_field(a, 0) or "" for a in buf.table_vector(r, _RUN_ALLOCATORS)] for r in runs
    ]
    vectors = [buf.vector_field(r, _RUN_EVENTS) for r in runs]
    for first, length in vectors:
        if first + 4 * length > len(buf):
            raise CorruptBuffer("an event vector runs past the end of the buffer")
    events, owner = buf.gather_table_vectors(vectors)
    seq_all = np.arange(events.size, dtype=np.int64)
    if owner.size:
        seq_all -= np.repeat(np.cumsum([n for _, n in vectors]) - [n for _, n in vectors],
                             [n for _, n in vectors])

    prof = buf.gather_table_field(events, _EV_PROFILE)
    alloc = buf.gather_table_field(events, _EV_ALLOCATION)
    debug_pos = buf.gather_field_pos(events, _EV_DEBUG)

    is_prof = prof > 0
    p = prof[is_prof]
    names, name_codes = buf.gather_strings(p, _PE_NAME)
    dnames, dcodes = buf.gather_strings(p, _PE_DELEGATE_STR)

    is_alloc = (alloc > 0) & ~is_prof
    a = alloc[is_alloc]
    return RawDump(
        version=version,
        run_names=run_names,
        run=owner[is_prof],
        seq=seq_all[is_prof],
        name_codes=name_codes,
        names=names,
        delegate_codes=dcodes,
        delegate_names=dnames,
        delegate_id_int=buf.gather_int_field(p, _PE_DELEGATE_INT, -1),
        instruction_id=buf.gather_int_field(p, _PE_INSTRUCTION, -1),
        chain_index=buf.gather_int_field(p, _PE_CHAIN, 0),
        start=buf.gather_u64_field(p, _PE_START),
        end=buf.gather_u64_field(p, _PE_END),
        alloc_run=owner[is_alloc],
        alloc_allocator=buf.gather_int_field(a, _AE_ALLOCATOR, 0),
        alloc_size=buf.gather_u64_field(a, _AE_SIZE),
        allocator_names=allocator_names,
        debug_event_count=int(((debug_pos > 0) & ~is_prof & ~is_alloc).sum()),
    )
