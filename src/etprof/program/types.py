"""The program's own types, as read from a `.pte` (etprof.program.reader) or from a trace's
sidecar (etprof.trace.sidecar): instruction tables per method, delegate blobs by content, and
the program as a whole."""

from __future__ import annotations

from dataclasses import dataclass, replace

from etprof.program.llm import LlmInfo
from etprof.program.memory import PlannedMemory


@dataclass(frozen=True)
class Instruction:
    """One instruction of the program's execution plan (chain 0 of the profiled method)."""

    id: int
    kind: str  # "operator" | "delegate" | "move" | "jump" | "free" | "unknown"
    name: str  # operator "aten::mean.out", or the delegate's backend id "XnnpackBackend"
    delegate_index: int = -1
    modules: tuple[str, ...] = ()  # nn.Module paths, when an ETRecord was found
    # a delegate's own graph: its nodes' operators in execution order, when the backend's blob
    # can be read (XNNPACK: etprof.backends.xnnpack_graph); resolves the runtime's placeholder names
    graph: tuple[str, ...] = ()
    # per node of `graph`: its debug handle (from the blob) and its nn.Module path from the
    # ETRecord ("" outside every module or unknown), so a delegate's operators can be charged to
    # their own modules (analyzers/modules.py)
    graph_handles: tuple[int, ...] = ()
    graph_modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class MethodInfo:
    """One method of the program: its instruction table (chain 0) and its delegates' backend
    ids, by delegate index. Instruction ids are per method: two methods both have an id 0."""

    name: str
    instructions: tuple[Instruction, ...] = ()
    delegates: tuple[str, ...] = ()


@dataclass(frozen=True)
class BlobDigest:
    """One delegate's processed blob: where it is in the program, its size and sha256."""

    method: str
    index: int  # in the method's delegate table
    backend: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ProgramContent:
    """What a program is, by content (version 4): a sha256 over every method's instruction
    table and each delegate blob's sha256. Two files with equal content run the same
    instructions and delegates (their constant weights outside delegates may differ)."""

    instructions_sha256: str
    delegates: tuple[BlobDigest, ...] = ()

    def difference(self, other: ProgramContent) -> str:
        """What differs from `other` ("" when nothing): "the instruction tables", "the
        delegate blobs" or both."""
        parts = []
        if self.instructions_sha256 != other.instructions_sha256:
            parts.append("the instruction tables")
        if self.delegates != other.delegates:
            parts.append("the delegate blobs")
        return " and ".join(parts)


@dataclass(frozen=True)
class ProgramInfo:
    path: str = ""
    sha256: str = ""
    method: str = "forward"  # the method `instructions` and `delegates` belong to
    model: str = ""
    instructions: tuple[Instruction, ...] = ()
    delegates: tuple[str, ...] = ()
    etrecord: str = ""
    memory: PlannedMemory | None = None  # None: not read (a version 1-3 document)
    methods: tuple[MethodInfo, ...] = ()  # every method (version 4); () in older documents
    llm: LlmInfo | None = None  # an LLM program's settings (version 4); None: not an LLM
    content: ProgramContent | None = None  # what it holds, by hash (version 4); None: unknown
    # the model the program was exported from, as `etprof run --model` named it (version 4);
    # "": not said (two programs of one model are then recognised by what they share)
    source_model: str = ""

    def all_methods(self) -> tuple[MethodInfo, ...]:
        """Every method with its table: `methods`, else the one of older documents."""
        if self.methods:
            return self.methods
        return (MethodInfo(self.method, self.instructions, self.delegates),)

    def method_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.all_methods())

    def method_info(self, name: str) -> MethodInfo | None:
        return next((m for m in self.all_methods() if m.name == name), None)

    def for_method(self, name: str) -> ProgramInfo:
        """This program seen as method `name`: `instructions`/`delegates` become its table."""
        if name == self.method:
            return self
        info = self.method_info(name)
        if info is None:
            return replace(self, method=name, instructions=(), delegates=())
        return replace(self, method=name, instructions=info.instructions, delegates=info.delegates)
