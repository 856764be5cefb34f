"""A program's instruction tables with each delegate's own graph, read by its backend.

XNNPACK's profiler names some operators by a placeholder and fuses or splits nodes; the graph
serialized in the delegate blob says what ran (etprof.backends.xnnpack_graph). Each backend reads
its own blobs (:meth:`etprof.backends.Backend.graph`); a blob it does not understand leaves the
runtime's names as they are, and the program is still read.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from etprof import backends
from etprof.program.reader import Program
from etprof.program.types import Instruction, MethodInfo, ProgramInfo
from etprof.util.flatbuf import CorruptBuffer

Graph = tuple[tuple[str, ...], tuple[int, ...]]  # a delegate's node operators and debug handles


def program_info(program: Program, method: str | None = None) -> ProgramInfo:
    """`program` seen as `method` (etprof.program.reader.Program.info), every delegate
    instruction carrying its graph and its nodes' debug handles where its backend reads them."""
    program.method_name(method)  # an absent method is refused before any blob is read
    graphs = delegate_graphs(program)
    return program.info(method, tuple(_with_graphs(m, graphs) for m in program.methods))


def read_program(path: Path, method: str | None = None) -> ProgramInfo:
    """The program at `path` as :func:`program_info` sees it."""
    return program_info(Program.read(path), method)


def delegate_graphs(program: Program) -> dict[tuple[str, int], Graph]:
    """Each delegate's graph, keyed by (method, delegate index); ((), ()) where its backend
    cannot read the blob."""
    out: dict[tuple[str, int], Graph] = {}
    for key, backend_id, blob in program.blobs:
        backend = backends.get(backend_id)
        try:
            graph = backend.graph(blob)
            handles = backend.graph_handles(blob)
            out[key] = (graph, handles if len(handles) == len(graph) else ())
        except (CorruptBuffer, IndexError, ValueError):
            out[key] = ((), ())
    return out


def _with_graphs(method: MethodInfo, graphs: dict[tuple[str, int], Graph]) -> MethodInfo:
    def graph(i: Instruction) -> Instruction:
        nodes, handles = graphs.get((method.name, i.delegate_index), ((), ()))
        return replace(i, graph=nodes, graph_handles=handles)

    return replace(
        method,
        instructions=tuple(graph(i) if i.kind == "delegate" else i for i in method.instructions),
    )
