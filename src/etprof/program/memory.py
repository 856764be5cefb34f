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
from typing import Any

from etprof.errors import ProgramFormatError
from etprof.program import schema as S
from etprof.program.schema import looks_like_program, segment_base
from etprof.util.flatbuf import Buffer, CorruptBuffer


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


def planned_memory(data: bytes, source: str = "the program") -> PlannedMemory:
    if not looks_like_program(data):
        raise ProgramFormatError(
            f"{source} is not an ExecuTorch program (no ET12 identifier)",
            "pass a .pte made by `etprof export` or ExecuTorch's to_executorch()",
        )
    try:
        return _read(data)
    except (CorruptBuffer, IndexError, ValueError) as exc:
        raise ProgramFormatError(f"{source} is a corrupt .pte ({exc})", "export it again") from None


def _read(data: bytes) -> PlannedMemory:
    program_size, base = segment_base(data)
    buf = Buffer.of(memoryview(data)[:program_size])
    root = buf.deref(0)
    segments = [
        (buf.u64_field(s, 0), buf.u64_field(s, 1)) for s in buf.table_vector(root, S.SEGMENTS)
    ]
    for i, (offset, size) in enumerate(segments):
        if base + offset + size > len(data):
            raise ValueError(f"segment {i} runs past the end of the file (truncated?)")

    def segment_size(index: int) -> int:
        if not 0 <= index < len(segments):
            raise ValueError(f"segment index {index} of {len(segments)} segments")
        return segments[index][1]

    inline = [_vector_bytes(buf, d, 0) for d in buf.table_vector(root, S.DELEGATE_DATA)]
    methods, delegates = [], []
    for plan in buf.table_vector(root, S.PROGRAM_PLANS):
        name = buf.string_field(plan, S.PLAN_NAME) or ""
        first, n = buf.vector_field(plan, S.PLAN_NON_CONST_SIZES)
        buf.check(first, 8 * n)
        sizes = tuple(buf.u64_at(first + 8 * i) for i in range(n))
        methods.append(MethodPlan(name, sizes[1:]))
        for k, delegate in enumerate(buf.table_vector(plan, S.PLAN_DELEGATES)):
            ref = buf.table_field(delegate, S.DELEGATE_PROCESSED)
            where = buf.u8_field(ref, 0) if ref is not None else S.INLINE
            index = buf.int_field(ref, 1, 0, signed=False) if ref is not None else 0
            if where == S.SEGMENT:
                size, location = segment_size(index), "segment"
            elif 0 <= index < len(inline):
                size, location = inline[index], "inline"
            else:
                raise ValueError(f"delegate {k} of {name} points at missing inline data {index}")
            delegates.append(
                DelegateBlob(
                    name, k, buf.string_field(delegate, S.DELEGATE_ID) or "?", location, size
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
                    for entry in buf.table_vector(root, S.NAMED_DATA)
                }
            )
        ),
        delegates=tuple(delegates),
        file_bytes=len(data),
    )


def _constant_bytes(buf: Buffer, root: int, segment_size: Any) -> int:
    legacy = sum(_vector_bytes(buf, b, 0) for b in buf.table_vector(root, S.CONSTANT_BUFFER))
    table = buf.table_field(root, S.CONSTANT_SEGMENT)
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
