"""Read a `.pte` program's instruction table (schema `program.fbs`, identifier "ET12").

Only what attribution needs: for each method, each instruction of its first chain, whether it
calls a kernel (and which operator) or a delegate (and which backend). No torch, no exir.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from etprof.errors import ProgramFormatError
from etprof.util.flatbuf import Buffer, CorruptBuffer
from etprof.program.types import BlobDigest, Instruction, MethodInfo, ProgramContent, ProgramInfo
from etprof.program.memory import planned_memory, read_pte

IDENTIFIER = b"ET12"
# Program fields
_PROGRAM_PLANS, _PROGRAM_DELEGATE_DATA, _PROGRAM_SEGMENTS = 1, 3, 4
_EXTENDED_HEADER = b"eh00"
_IN_SEGMENT = 1  # DataLocation.SEGMENT
# ExecutionPlan fields
_PLAN_NAME, _PLAN_CHAINS, _PLAN_OPERATORS, _PLAN_DELEGATES = 0, 5, 6, 7
_CHAIN_INSTRUCTIONS = 2
# union InstructionArguments occupies two slots: its type tag (0) then the value (1)
_INSTR_TYPE, _INSTR_VALUE = 0, 1
_UNION_KINDS = {1: "operator", 2: "delegate", 3: "move", 4: "jump", 5: "free"}


def looks_like_program(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == IDENTIFIER


def read_program(path: Path, method: str | None = None) -> ProgramInfo:
    """Every method's instruction table; `program.method` is `method` (refused when absent),
    else "forward" when the program has one, else its first method."""
    data = read_pte(path)
    if not looks_like_program(data):
        raise ProgramFormatError(
            f"{path} is not an ExecuTorch program (no ET12 identifier)",
            "pass a .pte made by `etprof export` or ExecuTorch's to_executorch()",
        )
    # every segment inside the file: a truncated .pte is refused here, in one line with the fix,
    # not by the runtime's "error 0x23" minutes later
    planned_memory(data, str(path))
    try:
        graphs = _delegate_graphs(data)
        methods = [_with_graphs(m, graphs) for m in _methods(Buffer.of(data))]
        content = program_content(methods, delegate_blobs(data))
    except (CorruptBuffer, IndexError, ValueError) as exc:
        raise ProgramFormatError(f"{path} is a corrupt .pte ({exc})", "export it again") from None
    names = [m.name for m in methods]
    if method is None:
        method = "forward" if "forward" in names or not names else names[0]
    chosen = next((m for m in methods if m.name == method), None)
    if chosen is None:
        raise ProgramFormatError(
            f"{path} has no method '{method}' (it has: {', '.join(names) or 'none'})",
            "pass --method with one of those",
        )
    return ProgramInfo(
        path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        method=method,
        model=path.stem,
        instructions=chosen.instructions,
        delegates=chosen.delegates,
        methods=tuple(methods),
        content=content,
    )


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
    program_size, base = len(data), 0
    if len(data) >= 32 and bytes(data[8:12]) == _EXTENDED_HEADER:  # segments follow
        head = Buffer.of(data)
        program_size, base = head.u64_at(16), head.u64_at(24)
    buf = Buffer.of(data[:program_size])
    root = buf.deref(0)
    segments = [
        (buf.u64_field(s, 0), buf.u64_field(s, 1))
        for s in buf.table_vector(root, _PROGRAM_SEGMENTS)
    ]
    inline = buf.table_vector(root, _PROGRAM_DELEGATE_DATA)
    out = []
    for plan in buf.table_vector(root, _PROGRAM_PLANS):
        method = buf.string_field(plan, _PLAN_NAME) or ""
        for k, delegate in enumerate(buf.table_vector(plan, _PLAN_DELEGATES)):
            ref = buf.table_field(delegate, 1)  # BackendDelegate.processed
            if ref is None:
                continue
            index = buf.int_field(ref, 1, 0, signed=False)
            if buf.u8_field(ref, 0) == _IN_SEGMENT:
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


Graph = tuple[tuple[str, ...], tuple[int, ...]]  # a delegate's node operators and debug handles


def _delegate_graphs(pte: bytes) -> dict[tuple[str, int], Graph]:
    """Each delegate's graph as its backend reads it (etprof.backends), with its nodes' debug
    handles. () when it cannot: a blob it does not understand leaves the runtime's names as they
    are, the program still read."""
    from etprof import backends

    out: dict[tuple[str, int], Graph] = {}
    for key, backend, blob in delegate_blobs(pte):
        try:
            graph = backends.get(backend).graph(blob)
            handles = backends.get(backend).graph_handles(blob)
            out[key] = (graph, handles if len(handles) == len(graph) else ())
        except (CorruptBuffer, IndexError, ValueError):
            out[key] = ((), ())
    return out


def _with_graphs(method: MethodInfo, graphs: dict[tuple[str, int], Graph]) -> MethodInfo:
    """The method with each delegate instruction's graph, where the backend's blob has one."""

    def graph(i: Instruction) -> Instruction:
        nodes, handles = graphs.get((method.name, i.delegate_index), ((), ()))
        return replace(i, graph=nodes, graph_handles=handles)

    return replace(
        method,
        instructions=tuple(graph(i) if i.kind == "delegate" else i for i in method.instructions),
    )


def _methods(buf: Buffer) -> list[MethodInfo]:
    root = buf.deref(0)
    out: list[MethodInfo] = []
    for plan in buf.table_vector(root, _PROGRAM_PLANS):
        name = buf.string_field(plan, _PLAN_NAME) or ""
        operators = []
        for op in buf.table_vector(plan, _PLAN_OPERATORS):
            base = buf.string_field(op, 0) or "?"
            overload = buf.string_field(op, 1) or ""
            operators.append(f"{base}.{overload}" if overload else base)
        delegates = [buf.string_field(d, 0) or "?" for d in buf.table_vector(plan, _PLAN_DELEGATES)]
        chains = buf.table_vector(plan, _PLAN_CHAINS)
        instructions: list[Instruction] = []
        if chains:
            for idx, instr in enumerate(buf.table_vector(chains[0], _CHAIN_INSTRUCTIONS)):
                instructions.append(_instruction(buf, idx, instr, operators, delegates))
        out.append(MethodInfo(name, tuple(instructions), tuple(delegates)))
    return out


def _instruction(
    buf: Buffer, idx: int, instr: int, operators: list[str], delegates: list[str]
) -> Instruction:
    kind = _UNION_KINDS.get(buf.u8_field(instr, _INSTR_TYPE), "unknown")
    value = buf.table_field(instr, _INSTR_VALUE)
    if kind == "operator" and value is not None:
        op_index = buf.int_field(value, 0, 0)
        name = operators[op_index] if 0 <= op_index < len(operators) else "?"
        return Instruction(id=idx, kind=kind, name=name)
    if kind == "delegate" and value is not None:
        d = buf.int_field(value, 0, 0)
        name = delegates[d] if 0 <= d < len(delegates) else "?"
        return Instruction(id=idx, kind=kind, name=name, delegate_index=d)
    return Instruction(id=idx, kind=kind, name=kind)
