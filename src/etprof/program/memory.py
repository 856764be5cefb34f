"""The memory a `.pte` program plans for, read from its flatbuffer and segments (no torch).

Three figures a user weighs against the process's resident memory:

- **activations**: per method, the memory-planned arenas (``ExecutionPlan.non_const_buffer_sizes``;
  entry 0 is reserved by the schema and not counted). The runtime allocates them at load.
- **weights**: constant tensor data -- the constant segment (or, in files older than September
  2024, the inline ``constant_buffer``) plus the named data blobs that backends such as XNNPACK
  store their weights in (``Program.named_data``, each segment counted once).
- **delegate blobs**: each ``BackendDelegate``'s processed payload, inline
  (``backend_delegate_data``) or in a segment.

Segments follow the flatbuffer; the extended header ("eh00" at byte 8) says where they start.
Sizes are the bytes stored in the file, alignment padding inside the constant segment included.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etprof.errors import ProgramFormatError
from etprof.util.flatbuf import Buffer, CorruptBuffer

# Program fields (schema/program.fbs)
_PROGRAM_PLANS, _CONSTANT_BUFFER, _DELEGATE_DATA, _SEGMENTS, _CONSTANT_SEGMENT = 1, 2, 3, 4, 5
_NAMED_DATA = 7
_PLAN_NAME, _PLAN_DELEGATES, _PLAN_NON_CONST_SIZES = 0, 7, 8
_DELEGATE_ID, _DELEGATE_PROCESSED = 0, 1
_INLINE, _SEGMENT = 0, 1
_HEADER_MAGIC = b"eh00"
_IDENTIFIER = b"ET12"


@dataclass(frozen=True)
class DelegateBlob:
    method: str
    index: int  # position in the method's delegate table
    backend: str  # "XnnpackBackend"
    location: str  # "inline" | "segment"
    size_bytes: int


@dataclass(frozen=True)
class MethodPlan:
    name: str
    arenas_bytes: tuple[int, ...]  # non_const_buffer_sizes[1:]

    @property
    def activations_bytes(self) -> int:
        return sum(self.arenas_bytes)


@dataclass(frozen=True)
class PlannedMemory:
    methods: tuple[MethodPlan, ...] = ()
    constant_bytes: int = 0  # constant segment or inline constant buffers
    named_data_bytes: int = 0  # backend weights stored by name, each segment once
    delegates: tuple[DelegateBlob, ...] = ()
    file_bytes: int = 0

    @property
    def weights_bytes(self) -> int:
        return self.constant_bytes + self.named_data_bytes

    @property
    def delegate_bytes(self) -> int:
        return sum(d.size_bytes for d in self.delegates)

    def activations_bytes(self, method: str | None = None) -> int:
        """The planned arenas of `method` (every method's, summed, when None)."""
        return sum(m.activations_bytes for m in self.methods if method in (None, m.name))

    def delegate_bytes_by_backend(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.delegates:
            out[d.backend] = out.get(d.backend, 0) + d.size_bytes
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": [
                {"name": m.name, "arenas_bytes": list(m.arenas_bytes)} for m in self.methods
            ],
            "constant_bytes": self.constant_bytes,
            "named_data_bytes": self.named_data_bytes,
            "delegates": [
                {
                    "method": d.method,
                    "index": d.index,
                    "backend": d.backend,
                    "location": d.location,
                    "size_bytes": d.size_bytes,
                }
                for d in self.delegates
            ],
            "file_bytes": self.file_bytes,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PlannedMemory:
        return cls(
            methods=tuple(
                MethodPlan(str(m["name"]), tuple(int(x) for x in m["arenas_bytes"]))
                for m in doc.get("methods", ())
            ),
            constant_bytes=int(doc.get("constant_bytes", 0)),
            named_data_bytes=int(doc.get("named_data_bytes", 0)),
            delegates=tuple(
                DelegateBlob(
                    str(d["method"]),
                    int(d["index"]),
                    str(d["backend"]),
                    str(d["location"]),
                    int(d["size_bytes"]),
                )
                for d in doc.get("delegates", ())
            ),
            file_bytes=int(doc.get("file_bytes", 0)),
        )


def read_pte(path: Path) -> bytes:
    """The bytes of the program file at `path`; one-line errors for unreadable files."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ProgramFormatError(f"no such program: {path}", "check the path") from None
    except IsADirectoryError:
        raise ProgramFormatError(f"{path} is a directory", "pass a .pte file") from None
    except OSError as exc:
        raise ProgramFormatError(
            f"cannot read {path}: {exc.strerror}", "check permissions"
        ) from None


def read_planned_memory(path: Path) -> PlannedMemory:
    """The planned memory of the program at `path`; one-line errors for unreadable files."""
    return planned_memory(read_pte(path), str(path))


def planned_memory(data: bytes, source: str = "the program") -> PlannedMemory:
    if len(data) < 8 or data[4:8] != _IDENTIFIER:
        raise ProgramFormatError(
            f"{source} is not an ExecuTorch program (no ET12 identifier)",
            "pass a .pte made by `etprof export` or ExecuTorch's to_executorch()",
        )
    try:
        return _read(data)
    except (CorruptBuffer, IndexError, ValueError) as exc:
        raise ProgramFormatError(f"{source} is a corrupt .pte ({exc})", "export it again") from None


def _segment_base(data: bytes) -> tuple[int, int]:
    """(flatbuffer size, offset where segments start; 0 without an extended header)."""
    if len(data) < 32 or data[8:12] != _HEADER_MAGIC:
        return len(data), 0
    head = Buffer.of(data)
    if head.u32_at(12) < 24:  # shorter than magic, length, program size and segment base
        return len(data), 0
    program_size, base = head.u64_at(16), head.u64_at(24)
    if program_size > len(data) or base > len(data):
        raise ValueError(f"the extended header points past the end of the {len(data)}-byte file")
    return program_size, base


def _read(data: bytes) -> PlannedMemory:
    program_size, base = _segment_base(data)
    buf = Buffer.of(memoryview(data)[:program_size])
    root = buf.deref(0)
    segments = [
        (buf.u64_field(s, 0), buf.u64_field(s, 1)) for s in buf.table_vector(root, _SEGMENTS)
    ]
    for i, (offset, size) in enumerate(segments):
        if base + offset + size > len(data):
            raise ValueError(f"segment {i} runs past the end of the file (truncated?)")

    def segment_size(index: int) -> int:
        if not 0 <= index < len(segments):
            raise ValueError(f"segment index {index} of {len(segments)} segments")
        return segments[index][1]

    inline = [_vector_bytes(buf, d, 0) for d in buf.table_vector(root, _DELEGATE_DATA)]
    methods, delegates = [], []
    for plan in buf.table_vector(root, _PROGRAM_PLANS):
        name = buf.string_field(plan, _PLAN_NAME) or ""
        first, n = buf.vector_field(plan, _PLAN_NON_CONST_SIZES)
        buf.check(first, 8 * n)
        sizes = tuple(buf.u64_at(first + 8 * i) for i in range(n))
        methods.append(MethodPlan(name, sizes[1:]))
        for k, delegate in enumerate(buf.table_vector(plan, _PLAN_DELEGATES)):
            ref = buf.table_field(delegate, _DELEGATE_PROCESSED)
            where = buf.u8_field(ref, 0) if ref is not None else _INLINE
            index = buf.int_field(ref, 1, 0, signed=False) if ref is not None else 0
            if where == _SEGMENT:
                size, location = segment_size(index), "segment"
            elif 0 <= index < len(inline):
                size, location = inline[index], "inline"
            else:
                raise ValueError(f"delegate {k} of {name} points at missing inline data {index}")
            delegates.append(
                DelegateBlob(
                    name, k, buf.string_field(delegate, _DELEGATE_ID) or "?", location, size
                )
            )
    return PlannedMemory(
        methods=tuple(methods),
        constant_bytes=_constant_bytes(buf, root, segment_size),
        named_data_bytes=sum(
            segment_size(i)
            for i in sorted(
                {
                    buf.int_field(entry, 1, 0, signed=False)
                    for entry in buf.table_vector(root, _NAMED_DATA)
                }
            )
        ),
        delegates=tuple(delegates),
        file_bytes=len(data),
    )


def _constant_bytes(buf: Buffer, root: int, segment_size: Any) -> int:
    legacy = sum(_vector_bytes(buf, b, 0) for b in buf.table_vector(root, _CONSTANT_BUFFER))
    table = buf.table_field(root, _CONSTANT_SEGMENT)
    if table is None:
        return legacy
    first, n = buf.vector_field(table, 1)
    if not n:
        return legacy
    buf.check(first, 8 * n)
    # offsets[0] belongs to the reserved entry 0 (non-constant tensors); data starts there
    return int(segment_size(buf.int_field(table, 0, 0, signed=False))) - buf.u64_at(first)


def _vector_bytes(buf: Buffer, table: int, field: int) -> int:
    first, n = buf.vector_field(table, field)
    buf.check(first, n)
    return n
