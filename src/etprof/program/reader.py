"""Read a `.pte` program once (schema `program.fbs`, identifier "ET12"): :class:`Program` holds
its bytes and parses each part on first use -- the instruction tables (:attr:`Program.methods`),
what each method takes and its constants (:attr:`Program.shapes`, etprof.program.methods), the
planned memory (:attr:`Program.memory`, etprof.program.memory) and the delegate blobs. Every
stage that needs the program is handed this object; nothing reads the file again. No torch, no
exir. A delegate's own graph is read by its backend (etprof.backends.graphs).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from etprof.errors import ProgramFormatError
from etprof.program import schema as S
from etprof.program.memory import PlannedMemory, planned_memory
from etprof.program.methods import MethodShape, parse_methods
from etprof.program.schema import (
    HEAD_BYTES,
    MAX_FLATBUFFER_BYTES,
    declared_size,
    looks_like_program,
    segment_base,
)
from etprof.program.types import BlobDigest, Instruction, MethodInfo, ProgramContent, ProgramInfo
from etprof.util.flatbuf import Buffer, CorruptBuffer

T = TypeVar("T")
Blob = tuple[tuple[str, int], str, memoryview]  # ((method, delegate index), backend id, bytes)


def read_pte(path: Path) -> bytes:
    """The bytes of the program file at `path`, read whole only once it looks like a program:
    a regular file (a device or FIFO is refused at once, never read or waited on) whose first
    bytes hold the ET12 identifier and whose size is the one its extended header declares (at
    most MAX_FLATBUFFER_BYTES without one). One-line errors for everything else."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ProgramFormatError(f"{path} is a directory", "pass a .pte file")
        if not stat.S_ISREG(st.st_mode):
            raise ProgramFormatError(
                f"{path} is not a regular file (a device, FIFO or socket), so not a program",
                "copy the .pte to a file and pass that",
            )
        with open(path, "rb") as f:
            _check_head(f.read(HEAD_BYTES), st.st_size, path)
            f.seek(0)
            return f.read(st.st_size)  # a file that grows meanwhile is cut at its checked size
    except FileNotFoundError:
        raise ProgramFormatError(f"no such program: {path}", "check the path") from None
    except IsADirectoryError:
        raise ProgramFormatError(f"{path} is a directory", "pass a .pte file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ProgramFormatError(f"{path} is a symlink loop", "point it at the .pte") from None
        raise ProgramFormatError(
            f"cannot read {path}: {exc.strerror}", "check permissions"
        ) from None


def _check_head(head: bytes, size: int, path: Path) -> None:
    """Refuse a file that is not a whole program from its first bytes and its size."""
    if not looks_like_program(head):
        what = "it is an ETDump trace" if head[4:8] == b"ED00" or head[8:12] == b"ED00" else ""
        raise ProgramFormatError(
            f"{path} is not an ExecuTorch program (no ET12 identifier"
            + (f"; {what})" if what else ")"),
            "pass a .pte made by `etprof export` or ExecuTorch's to_executorch()",
        )
    declared = declared_size(head)
    if declared is None:
        if size > MAX_FLATBUFFER_BYTES:
            raise ProgramFormatError(
                f"{path} is {size} bytes, and a program without segments is one FlatBuffer, "
                f"at most {MAX_FLATBUFFER_BYTES} bytes",
                "pass the .pte file itself",
            )
        return
    if size < declared:
        raise ProgramFormatError(
            f"{path} is truncated: its header declares {declared} bytes but it has {size}",
            "copy or export it again",
        )
    if size > declared:
        raise ProgramFormatError(
            f"{path} has {size - declared} bytes after the end of the program its header "
            f"declares ({declared} bytes): something was appended",
            "copy or export it again, or cut it to its declared size",
        )


@dataclass(frozen=True, eq=False)
class Program:
    """A `.pte` read once; its parts are parsed on first use and kept."""

    path: Path
    data: bytes

    @classmethod
    def read(cls, path: Path) -> Program:
        """The program at `path`, refused in one line when it is not a whole `.pte`: every
        segment must lie inside the file, so a truncated one is refused here, not by the
        runtime's "error 0x23" minutes later."""
        program = cls(path, read_pte(path))
        if not looks_like_program(program.data):
            raise ProgramFormatError(
                f"{path} is not an ExecuTorch program (no ET12 identifier)",
                "pass a .pte made by `etprof export` or ExecuTorch's to_executorch()",
            )
        program.memory  # noqa: B018 -- parsed for its checks
        return program

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def memory(self) -> PlannedMemory:
        return planned_memory(self.data, str(self.path))

    @cached_property
    def shapes(self) -> tuple[MethodShape, ...]:
        return parse_methods(self.data, str(self.path))

    @cached_property
    def methods(self) -> tuple[MethodInfo, ...]:
        """Every method's instruction table (chain 0), without its delegates' graphs."""
        return self._parsed(lambda: tuple(_methods(Buffer.of(self.data))))

    @cached_property
    def blobs(self) -> tuple[Blob, ...]:
        return self._parsed(lambda: tuple(delegate_blobs(self.data)))

    def method_name(self, method: str | None) -> str:
        """`method` (refused when absent), else "forward" when the program has one, else its
        first method."""
        names = [m.name for m in self.methods]
        if method is None:
            return "forward" if "forward" in names or not names else names[0]
        if method not in names:
            raise ProgramFormatError(
                f"{self.path} has no method '{method}' (it has: {', '.join(names) or 'none'})",
                "pass --method with one of those",
            )
        return method

    def info(self, method: str | None = None, methods: tuple[MethodInfo, ...] = ()) -> ProgramInfo:
        """The program as a trace's sidecar records it, seen as `method`; `methods` replaces
        the instruction tables (the same tables with their delegates' graphs)."""
        name = self.method_name(method)
        tables = methods or self.methods
        chosen = next(m for m in tables if m.name == name) if tables else MethodInfo(name)
        content = self._parsed(lambda: program_content(list(tables), list(self.blobs)))
        return ProgramInfo(
            path=str(self.path),
            sha256=self.sha256,
            method=name,
            model=self.path.stem,
            instructions=chosen.instructions,
            delegates=chosen.delegates,
            methods=tuple(tables),
            content=content,
        )

    def _parsed(self, parse: Callable[[], T]) -> T:
        try:
            return parse()
        except (CorruptBuffer, IndexError, ValueError) as exc:
            raise ProgramFormatError(
                f"{self.path} is a corrupt .pte ({exc})", "export it again"
            ) from None


def program_content(
    methods: list[MethodInfo], blobs: list[tuple[tuple[str, int], str, memoryview]]
) -> ProgramContent:
    """The program by content: a sha256 over every method's instruction table (name, then each
    instruction's id, kind, operator or backend and delegate index, one line each) and the
    sha256 of each delegate blob."""
    table = hashlib.sha256()
    for m in methods:
        table.update(f"method {m.name}\n".encode())
        for i in m.instructions:
            table.update(f"{i.id} {i.kind} {i.name} {i.delegate_index}\n".encode())
    return ProgramContent(
        instructions_sha256=table.hexdigest(),
        delegates=tuple(
            BlobDigest(
                method=key[0],
                index=key[1],
                backend=backend,
                size=len(blob),
                sha256=hashlib.sha256(blob).hexdigest(),
            )
            for key, backend, blob in blobs
        ),
    )


def delegate_blobs(pte: bytes) -> list[tuple[tuple[str, int], str, memoryview]]:
    """Every delegate's processed blob, inline or in a segment after the flatbuffer, as
    ((method, index in its delegate table), backend id, bytes)."""
    data = memoryview(pte)
    program_size, base = segment_base(data)
    buf = Buffer.of(data[:program_size])
    root = buf.deref(0)
    segments = [
        (buf.u64_field(s, 0), buf.u64_field(s, 1)) for s in buf.table_vector(root, S.SEGMENTS)
    ]
    inline = buf.table_vector(root, S.DELEGATE_DATA)
    out = []
    for plan in buf.table_vector(root, S.PROGRAM_PLANS):
        method = buf.string_field(plan, S.PLAN_NAME) or ""
        for k, delegate in enumerate(buf.table_vector(plan, S.PLAN_DELEGATES)):
            ref = buf.table_field(delegate, 1)  # BackendDelegate.processed
            if ref is None:
                continue
            index = buf.int_field(ref, 1, 0, signed=False)
            if buf.u8_field(ref, 0) == S.SEGMENT:
                offset, size = segments[index]
                if base + offset + size > len(data):
                    raise ValueError(f"delegate segment {index} runs past the end of the file")
                blob = data[base + offset : base + offset + size]
            else:
                first, size = buf.vector_field(inline[index], 0)
                buf.check(first, size)
                blob = data[first : first + size]
            out.append(((method, k), buf.string_field(delegate, 0) or "?", blob))
    return out


def _methods(buf: Buffer) -> list[MethodInfo]:
    root = buf.deref(0)
    out: list[MethodInfo] = []
    for plan in buf.table_vector(root, S.PROGRAM_PLANS):
        name = buf.string_field(plan, S.PLAN_NAME) or ""
        operators = []
        for op in buf.table_vector(plan, S.PLAN_OPERATORS):
            base = buf.string_field(op, 0) or "?"
            overload = buf.string_field(op, 1) or ""
            operators.append(f"{base}.{overload}" if overload else base)
        delegates = [
            buf.string_field(d, 0) or "?" for d in buf.table_vector(plan, S.PLAN_DELEGATES)
        ]
        chains = buf.table_vector(plan, S.PLAN_CHAINS)
        instructions: list[Instruction] = []
        if chains:
            for idx, instr in enumerate(buf.table_vector(chains[0], S.CHAIN_INSTRUCTIONS)):
                instructions.append(_instruction(buf, idx, instr, operators, delegates))
        out.append(MethodInfo(name, tuple(instructions), tuple(delegates)))
    return out


def _instruction(
    buf: Buffer, idx: int, instr: int, operators: list[str], delegates: list[str]
) -> Instruction:
    kind = S.UNION_KINDS.get(buf.u8_field(instr, S.INSTR_TYPE), "unknown")
    value = buf.table_field(instr, S.INSTR_VALUE)
    if kind == "operator" and value is not None:
        op_index = buf.int_field(value, 0, 0)
        name = operators[op_index] if 0 <= op_index < len(operators) else "?"
        return Instruction(id=idx, kind=kind, name=name)
    if kind == "delegate" and value is not None:
        d = buf.int_field(value, 0, 0)
        name = delegates[d] if 0 <= d < len(delegates) else "?"
        return Instruction(id=idx, kind=kind, name=name, delegate_index=d)
    return Instruction(id=idx, kind=kind, name=kind)
