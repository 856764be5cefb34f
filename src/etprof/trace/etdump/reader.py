"""Read an ETDump file (schema `etdump_schema_flatcc.fbs`, identifier "ED00") into column arrays.

This is etprof's fast engine: it walks the FlatBuffer with numpy gathers and never imports torch,
executorch's exir, or flatc. Field numbers below follow the schema's declaration order.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from etprof.errors import TraceFormatError
from etprof.trace.etdump.tables import Columns, TableSet
from etprof.util.flatbuf import Buffer, CorruptBuffer

IDENTIFIER = b"ED00"
# A FlatBuffer addresses at most 2 GiB: a larger file cannot be one trace, and is refused before
# it is read (a sparse file, a disk image named .etdp).
MAX_TRACE_BYTES = 2**31
_HEAD = 12  # enough for a size prefix and the identifier
# bytes an unprefixed buffer may hold past the last one its events reach (alignment padding,
# fields etprof does not read); beyond that, something was appended
_TAIL_SLACK = 64 * 1024

# table ETDump { version, run_data }
_ETDUMP_VERSION, _ETDUMP_RUN_DATA = 0, 1
# table RunData { name, bundled_input_index, allocators, events }
_RUN_NAME, _RUN_ALLOCATORS, _RUN_EVENTS = 0, 2, 3
# table Event { profile_event, allocation_event, debug_event }
_EV_PROFILE, _EV_ALLOCATION, _EV_DEBUG = 0, 1, 2
# table ProfileEvent
_PE_NAME, _PE_CHAIN, _PE_INSTRUCTION, _PE_DELEGATE_INT, _PE_DELEGATE_STR = 0, 1, 2, 3, 4
_PE_METADATA, _PE_START, _PE_END = 5, 6, 7
# table AllocationEvent { allocator_id, allocation_size }
_AE_ALLOCATOR, _AE_SIZE = 0, 1
# table Allocator { name }
_ALLOCATOR_NAME = 0


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


def _root(data: bytes | memoryview, source: str) -> tuple[Buffer, int]:
    """Check the identifier and the size prefix; return the buffer and the root table's position.

    Positions stay relative to the file: FlatBuffer offsets are relative, so a size-prefixed
    buffer is read in place (no copy of a 35 MB trace) with its root one uoffset further on.
    """
    fix = "pass the .etdp written by `etprof run` or by executor_runner --etdump_path"
    if len(data) == 0:
        raise TraceFormatError(f"{source} is empty", fix)
    if len(data) >= 12 and data[8:12] == IDENTIFIER:
        _check_declared(int.from_bytes(data[0:4], "little") + 4, len(data), source)
        buf, root_at = Buffer.of(memoryview(data)), 4
    elif len(data) >= 8 and data[4:8] == IDENTIFIER:
        buf, root_at = Buffer.of(data), 0
    else:
        kind = _guess_kind(bytes(data[:_HEAD]), len(data))
        raise TraceFormatError(f"{source} is not an ETDump trace ({kind})", fix)
    try:
        return buf, buf.deref(root_at)
    except CorruptBuffer as exc:
        raise TraceFormatError(
            f"{source} is a corrupt ETDump trace ({exc})",
            "re-copy the trace or run the model again",
        ) from None


def _check_declared(declared: int, size: int, source: str) -> None:
    """A size-prefixed trace holds exactly the bytes it declares."""
    if declared > size:
        raise TraceFormatError(
            f"{source} is truncated: it declares {declared} bytes but has {size}",
            "re-copy the trace or run the model again",
        )
    if declared < size:
        raise TraceFormatError(
            f"{source} has {size - declared} bytes after the end of its ETDump (which "
            f"declares {declared} bytes): something was appended to the trace",
            "re-copy the trace, or cut it to its declared size",
        )


def _guess_kind(data: bytes, size: int) -> str:
    if len(data) >= 8 and data[4:8] == b"ET12":
        return "it is an ExecuTorch program (.pte); run it with `etprof run` to make a trace"
    if data[:2] == b"PK":
        return "it is a zip archive, perhaps an ETRecord"
    if data[:1] in (b"{", b"["):
        return "it looks like JSON text"
    if size < 12:
        return f"only {size} bytes, too short to be one"
    for ident in (data[4:8], data[8:12]):
        if all(48 <= c < 123 and chr(c).isalnum() for c in ident):
            return f"it is a FlatBuffer with identifier '{ident.decode()}', not 'ED00'"
    return "no ED00 identifier"


def read_dump(path: Path) -> RawDump:
    """Read and validate an ETDump file; raise TraceFormatError on anything malformed."""
    return parse_dump(read_trace_bytes(path), str(path))


def read_trace_bytes(path: Path) -> bytes | memoryview:
    """The bytes of the trace at `path`, read whole only once it looks like a trace: a regular
    file of a plausible size whose first bytes hold the ETDump identifier (and, size-prefixed,
    a size that is the file's). So `/dev/zero`, a FIFO, a 2 GB file of zeros or a trace padded
    to 2 GiB is refused in one line at once, never read into memory or waited on."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise TraceFormatError(f"{path} is a directory, not a trace", "pass an .etdp file")
        if not stat.S_ISREG(st.st_mode):
            raise TraceFormatError(
                f"{path} is not a regular file (a device, FIFO or socket), so not a trace",
                "copy the trace to a file and pass that",
            )
        if st.st_size > MAX_TRACE_BYTES:
            raise TraceFormatError(
                f"{path} is {st.st_size} bytes, larger than any ETDump can be ({MAX_TRACE_BYTES})",
                "pass the .etdp file itself",
            )
        with open(path, "rb") as f:
            head = f.read(_HEAD)
            _check_head(head, st.st_size, str(path))
            if head[8:12] != IDENTIFIER:
                # no size prefix: how long the buffer is shows only once parsed (parse_dump),
                # so it is mapped, and bytes no event reaches are never read
                return memoryview(mmap.mmap(f.fileno(), st.st_size, access=mmap.ACCESS_READ))
            f.seek(0)
            # a file that grows while read is cut at the size it had: never read unbounded
            return f.read(st.st_size)
    except FileNotFoundError:
        raise TraceFormatError(
            f"no such trace: {path}", "check the path, or make one with `etprof run`"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TraceFormatError(
                f"{path} is a symlink loop, not a trace", "point it at the .etdp file"
            ) from None
        if exc.errno == errno.EISDIR:
            raise TraceFormatError(
                f"{path} is a directory, not a trace", "pass an .etdp file"
            ) from None
        raise TraceFormatError(f"cannot read {path}: {exc.strerror}", "check permissions") from None


def _check_head(head: bytes, size: int, source: str) -> None:
    """Refuse a file whose first bytes are not an ETDump's, before reading the rest."""
    if len(head) >= 12 and head[8:12] == IDENTIFIER:
        prefix = int.from_bytes(head[0:4], "little")
        _check_declared(prefix + 4, size, source)
    elif not (len(head) >= 8 and head[4:8] == IDENTIFIER):
        _root(head, source)  # raises: empty, too short, or not an ETDump (with what it is)


def parse_dump(data: bytes | memoryview, source: str = "trace") -> RawDump:
    """Parse an ETDump held in memory; raise TraceFormatError on anything malformed."""
    buf, root = _root(data, source)
    try:
        raw, reach = _parse(buf, root, prefixed=bytes(data[8:12]) == IDENTIFIER)
    except (CorruptBuffer, IndexError, ValueError, OverflowError) as exc:
        raise TraceFormatError(
            f"{source} is a corrupt ETDump trace ({exc})",
            "re-copy the trace or run the model again",
        ) from None
    # without a size prefix the buffer ends where its data does; debug events' values are not
    # read, so a trace holding them is not judged
    if reach and not raw.debug_event_count and len(data) - reach > _TAIL_SLACK:
        raise TraceFormatError(
            f"{source} has {len(data) - reach} bytes after the end of its ETDump (its data "
            f"ends at byte {reach}): something was appended to the trace",
            "re-copy the trace, or cut it to its ETDump",
        )
    return raw


def _parse(buf: Buffer, root: int, prefixed: bool) -> tuple[RawDump, int]:
    """The dump, and for a buffer without a size prefix the end of the furthest byte it
    reaches (0 for a prefixed one, whose size is declared)."""
    cols = Columns(buf.data)
    top = cols.tables(np.array([root], dtype=np.int64))
    version = int(top.scalar(_ETDUMP_VERSION, "<u4", 0)[0])
    run_pos, _, _ = cols.table_vector_elements(*top.vectors(_ETDUMP_RUN_DATA, 4))
    runs = cols.tables(run_pos)
    run_names = _decoded(*runs.strings(_RUN_NAME))
    allocator_names = _allocator_names(cols, runs)

    event_pos, owner, seq = cols.table_vector_elements(*runs.vectors(_RUN_EVENTS, 4))
    events = cols.tables(event_pos)
    has_prof, prof = events.sub_tables(_EV_PROFILE)
    is_prof = np.ones(len(events), dtype=bool) if has_prof is None else has_prof
    # "exactly one of these fields must be non-null": a profile event wins over the others
    is_alloc = _present(events, _EV_ALLOCATION) & ~is_prof
    _, alloc = events.subset(is_alloc).sub_tables(_EV_ALLOCATION)
    is_debug = _present(events, _EV_DEBUG) & ~is_prof & ~is_alloc

    names, name_codes = prof.strings(_PE_NAME)
    dnames, dcodes = prof.strings(_PE_DELEGATE_STR)
    every = has_prof is None
    if not prefixed:
        prof.vectors(_PE_METADATA, 1)  # read for its extent only
    raw = RawDump(
        version=version,
        run_names=run_names,
        run=owner if every else owner[is_prof],
        seq=seq if every else seq[is_prof],
        name_codes=name_codes,
        names=names,
        delegate_codes=dcodes,
        delegate_names=dnames,
        delegate_id_int=prof.scalar(_PE_DELEGATE_INT, "<i4", -1).astype(np.int64),
        instruction_id=prof.scalar(_PE_INSTRUCTION, "<i4", -1).astype(np.int64),
        chain_index=prof.scalar(_PE_CHAIN, "<i4", 0).astype(np.int64),
        start=prof.scalar(_PE_START, "<u8", 0).astype(np.uint64),
        end=prof.scalar(_PE_END, "<u8", 0).astype(np.uint64),
        alloc_run=owner[is_alloc],
        alloc_allocator=alloc.scalar(_AE_ALLOCATOR, "<i4", 0).astype(np.int64),
        alloc_size=alloc.scalar(_AE_SIZE, "<u8", 0).astype(np.uint64),
        allocator_names=allocator_names,
        debug_event_count=int(is_debug.sum()),
    )
    return raw, 0 if prefixed else cols.reach


def _present(tables: TableSet, index: int) -> npt.NDArray[np.bool_]:
    _, has = tables.field_pos(index, 4)
    return np.ones(len(tables), dtype=bool) if has is None else has


def _decoded(names: list[str], codes: npt.NDArray[np.int64]) -> list[str]:
    table = [*names, ""]  # code -1 (absent) picks the trailing ""
    return [table[c] for c in codes.tolist()]


def _allocator_names(cols: Columns, runs: TableSet) -> list[list[str]]:
    pos, owner, _ = cols.table_vector_elements(*runs.vectors(_RUN_ALLOCATORS, 4))
    flat = _decoded(*cols.tables(pos).strings(_ALLOCATOR_NAME))
    out: list[list[str]] = [[] for _ in range(len(runs))]
    for run, name in zip(owner.tolist(), flat, strict=False):
        out[run].append(name)
    return out
