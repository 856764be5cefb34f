"""The `.pte` format as etprof reads it: ExecuTorch's `schema/program.fbs` field numbers (one
copy, used by every parser of etprof.program), the file identifier and the extended header.

A `.pte` is a FlatBuffer (identifier "ET12" at byte 4) optionally followed by segments
(constant data, delegate blobs); the extended header ("eh00" at byte 8) then says how long the
FlatBuffer is and where the segments start.
"""

from __future__ import annotations

from etprof.util.flatbuf import Buffer

IDENTIFIER = b"ET12"
EXTENDED_HEADER = b"eh00"
HEAD_BYTES = 40  # the identifier and a whole extended header (magic, length and three u64s)
MAX_FLATBUFFER_BYTES = 2**31  # what a FlatBuffer's 32-bit offsets can address

# table Program
PROGRAM_PLANS, CONSTANT_BUFFER, DELEGATE_DATA, SEGMENTS, CONSTANT_SEGMENT = 1, 2, 3, 4, 5
NAMED_DATA = 7
# table ExecutionPlan
PLAN_NAME, PLAN_VALUES, PLAN_INPUTS, PLAN_OUTPUTS, PLAN_CHAINS = 0, 2, 3, 4, 5
PLAN_OPERATORS, PLAN_DELEGATES, PLAN_NON_CONST_SIZES = 6, 7, 8
# table Chain
CHAIN_INSTRUCTIONS = 2
# table Instruction: union InstructionArguments, its type tag (0) then the value (1)
INSTR_TYPE, INSTR_VALUE = 0, 1
UNION_KINDS = {1: "operator", 2: "delegate", 3: "move", 4: "jump", 5: "free"}
# table BackendDelegate and its DataLocation
DELEGATE_ID, DELEGATE_PROCESSED = 0, 1
INLINE, SEGMENT = 0, 1
# EValue.val (union KernelTypes): type tags
EVALUE_INT, EVALUE_BOOL, EVALUE_DOUBLE, EVALUE_TENSOR, EVALUE_INT_LIST = 2, 3, 4, 5, 7
# table Tensor
TENSOR_SCALAR_TYPE, TENSOR_SIZES, TENSOR_DYNAMISM = 0, 2, 8


def looks_like_program(data: bytes | memoryview) -> bool:
    return len(data) >= 8 and bytes(data[4:8]) == IDENTIFIER


def segment_base(data: bytes | memoryview) -> tuple[int, int]:
    """(FlatBuffer size, offset where segments start; 0 without an extended header)."""
    if len(data) < 32 or bytes(data[8:12]) != EXTENDED_HEADER:
        return len(data), 0
    head = Buffer.of(data)
    if head.u32_at(12) < 24:  # shorter than magic, length, program size and segment base
        return len(data), 0
    program_size, base = head.u64_at(16), head.u64_at(24)
    if program_size > len(data) or base > len(data):
        raise ValueError(f"the extended header points past the end of the {len(data)}-byte file")
    return program_size, base


def declared_size(head: bytes | memoryview) -> int | None:
    """The file size the extended header at the start of a `.pte` declares: the end of its
    segments (their base plus their size), or the FlatBuffer's size when it has none. None
    without an extended header recent enough to say (one of 32 bytes or more)."""
    if len(head) < HEAD_BYTES or bytes(head[8:12]) != EXTENDED_HEADER:
        return None
    buf = Buffer.of(head)
    if buf.u32_at(12) < 32:
        return None
    program_size, base, segments = buf.u64_at(16), buf.u64_at(24), buf.u64_at(32)
    return base + segments if base else program_size
