"""Building the event table of a :class:`~etprof.trace.model.Trace` from a read ETDump: one row
per profile event, its kind, method, iteration, operator and backend (the columns are described
in etprof.trace.model). Pure construction; the Trace itself only selects and groups.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.backends import resolve as resolve_backend
from etprof.errors import InputError
from etprof.program.types import Instruction, MethodInfo
from etprof.trace.etdump.reader import RawDump
from etprof.trace.model import (
    DELEGATE_CALL,
    DELEGATE_OP,
    EXECUTE_RUN,
    KERNEL,
    KINDS,
    NAMED_KINDS,
    OPERATOR_CALL,
    OTHER,
)
from etprof.trace.sidecar import TraceMeta


def events_frame(
    raw: RawDump, meta: TraceMeta | None = None, method: str | None = None
) -> pd.DataFrame:
    """Build the event table from the reader's columns (shared by every engine).

    `method`: the method of Execute runs that neither the schedule nor the instruction tables
    can tell (see :func:`run_methods`).
    """
    run_is_exec = np.array([n == EXECUTE_RUN for n in raw.run_names], dtype=bool)
    exec_of_run = np.where(run_is_exec, np.cumsum(run_is_exec) - 1, -1)
    start = raw.start.astype(np.int64)
    end = raw.end.astype(np.int64)
    names, name_codes = [*raw.names, ""], _absent_last(raw.name_codes, len(raw.names))
    dnames, dcodes = (
        [*raw.delegate_names, ""],
        _absent_last(raw.delegate_codes, len(raw.delegate_names)),
    )
    delegate_id_int = raw.delegate_id_int.astype(np.int32)
    instruction_id = raw.instruction_id.astype(np.int32)
    exec_index = exec_of_run[raw.run] if raw.run.size else np.zeros(0, np.int64)
    columns = _derived(
        names, name_codes, dnames, dcodes, delegate_id_int, instruction_id, exec_index, meta, method
    )
    return pd.DataFrame(
        {
            "run": raw.run.astype(np.int32),
            "seq": raw.seq.astype(np.int32),
            "iteration": columns.pop("iteration"),
            "name": _categorical(names, name_codes),
            "delegate_op": _categorical(dnames, dcodes),
            "delegate_id_int": delegate_id_int,
            "instruction_id": instruction_id,
            "chain_index": raw.chain_index.astype(np.int32),
            "start_ns": start,
            "end_ns": end,
            "duration_ns": end - start,
            **columns,
        }
    )


def annotate(
    frame: pd.DataFrame, meta: TraceMeta | None, method: str | None = None
) -> pd.DataFrame:
    """Add the ``kind``, ``op``, ``method`` and ``backend`` columns from names, the instruction
    tables and the schedule; ``iteration`` (given as the Execute run's index) becomes the
    iteration of its method."""
    names, name_codes = _strings_and_codes(frame["name"])
    dnames, dcodes = _strings_and_codes(frame["delegate_op"])
    columns = _derived(
        names,
        name_codes,
        dnames,
        dcodes,
        frame["delegate_id_int"].to_numpy(),
        frame["instruction_id"].to_numpy(),
        frame["iteration"].to_numpy(np.int64),
        meta,
        method,
    )
    out = frame.copy()
    for name, values in columns.items():
        out[name] = values
    return out


def _derived(
    names: list[str],
    name_codes: npt.NDArray[np.int64],
    dnames: list[str],
    dcodes: npt.NDArray[np.int64],
    delegate_id_int: npt.NDArray[np.integer],
    instruction_id: npt.NDArray[np.integer],
    exec_index: npt.NDArray[np.int64],
    meta: TraceMeta | None,
    method: str | None,
) -> dict[str, npt.NDArray[np.int32] | pd.Categorical]:
    """The columns computed from the raw ones: iteration (per method), kind, op, method,
    backend."""
    kind, is_delegate_op = _kinds(names, name_codes, dnames, dcodes, delegate_id_int)
    n_exec = int(exec_index.max()) + 1 if exec_index.size else 0
    call = (kind == KINDS.index(OPERATOR_CALL)) | (kind == KINDS.index(DELEGATE_CALL))
    methods = run_methods(meta, n_exec, exec_index, kind, instruction_id, method)
    labels = [*sorted(set(methods)), ""]
    run_code = np.array([labels.index(m) for m in methods] + [len(labels) - 1], dtype=np.int64)
    method_code = run_code[exec_index]  # exec_index -1: the "" of loading events
    iteration = np.full(exec_index.size, -1, dtype=np.int32)
    in_method = _index_within(run_code[:-1])
    executed = exec_index >= 0
    iteration[executed] = in_method[exec_index[executed]]
    table = _instruction_table(meta, labels)
    op, backend = _ops_and_backends(
        names,
        name_codes,
        dnames,
        dcodes,
        kind,
        is_delegate_op,
        call,
        method_code,
        instruction_id,
        table,
    )
    steps = meta.run.phases if meta is not None else ()
    phase_labels = [*sorted({s.phase for s in steps}), ""]
    phase_of_run = np.array(
        [
            phase_labels.index(steps[e % len(steps)].phase) if steps else len(phase_labels) - 1
            for e in range(n_exec)
        ]
        + [len(phase_labels) - 1],
        dtype=np.int64,
    )
    return {
        "iteration": iteration,
        "kind": pd.Categorical.from_codes(kind, dtype=pd.CategoricalDtype(KINDS)),
        "op": op,
        "method": _categorical(labels, method_code),
        "backend": backend,
        "phase": _categorical(phase_labels, phase_of_run[exec_index]),
    }


def _kinds(
    names: list[str],
    name_codes: npt.NDArray[np.int64],
    dnames: list[str],
    dcodes: npt.NDArray[np.int64],
    delegate_id_int: npt.NDArray[np.integer],
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """Each row's kind code, and whether it is a delegate operator.

    Works on the distinct names, not on the rows: a trace of half a million events has a few
    hundred distinct names, and every per-row step here and below is one numpy gather.
    """
    kind_of_name = np.array(
        [KINDS.index(KERNEL if is_kernel_name(n) else NAMED_KINDS.get(n, OTHER)) for n in names],
        dtype=np.int8,
    )
    kind = kind_of_name[name_codes]
    is_delegate_op = np.array([d != "" for d in dnames], dtype=bool)[dcodes] | (
        (delegate_id_int != -1) & np.array([n == "" for n in names], dtype=bool)[name_codes]
    )
    kind[is_delegate_op] = KINDS.index(DELEGATE_OP)
    return kind, is_delegate_op


_KERNEL_PREFIX = "native_call_"
_RUNTIME_SCOPES = ("Method::", "Program::")


def is_kernel_name(name: str) -> bool:
    """A portable kernel's event: ``native_call_<op>`` (the runtime's generated kernels), or a
    custom operator's own ``namespace::op.overload`` (ExecuTorch's LLM custom ops record
    ``llama::custom_sdpa.out``, ``llama::update_cache.out`` under their OPERATOR_CALL)."""
    if name.startswith(_KERNEL_PREFIX):
        return True
    if "::" not in name or name.startswith(_RUNTIME_SCOPES) or name in NAMED_KINDS:
        return False
    space, _, op = name.partition("::")
    return bool(space) and space.isidentifier() and "." in op and " " not in op


def kernel_op(name: str) -> str:
    """The operator a kernel event names: `native_call_` dropped, a custom op's name as is."""
    return name.removeprefix(_KERNEL_PREFIX)


def _index_within(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """For each entry, how many earlier entries have the same code (0, 1, ... per code)."""
    out = np.zeros(codes.size, dtype=np.int64)
    seen: dict[int, int] = {}
    for i, c in enumerate(codes.tolist()):
        out[i] = seen.get(c, 0)
        seen[c] = out[i] + 1
    return out


def run_methods(
    meta: TraceMeta | None,
    n_exec: int,
    exec_index: npt.NDArray[np.int64],
    kind: npt.NDArray[np.int8],
    instruction_id: npt.NDArray[np.integer],
    method: str | None = None,
) -> list[str]:
    """The method of each Execute run, in order.

    From ``run.schedule`` when the metadata has one (each session runs it); else, for a program
    of one method, that method; else each run's instruction ids must fit exactly one method's
    table (its OPERATOR_CALL ids are operator instructions and its DELEGATE_CALL ids delegate
    instructions of that method, preferring the method whose calls they cover exactly). A run
    that fits several or none is `method` when given, else refused.
    """
    program = meta.program if meta is not None else None
    schedule = meta.run.schedule if meta is not None else ()
    if schedule:
        return [schedule[e % len(schedule)] for e in range(n_exec)]
    tables = [m for m in program.all_methods() if m.instructions] if program else []
    default = program.method if program is not None else "forward"
    if len(tables) < 2:
        return [method or default] * n_exec
    return _inferred(tables, n_exec, exec_index, kind, instruction_id, method)


def _inferred(
    tables: list[MethodInfo],
    n_exec: int,
    exec_index: npt.NDArray[np.int64],
    kind: npt.NDArray[np.int8],
    instruction_id: npt.NDArray[np.integer],
    method: str | None,
) -> list[str]:
    call = ((kind == KINDS.index(OPERATOR_CALL)) | (kind == KINDS.index(DELEGATE_CALL))) & (
        exec_index >= 0
    )
    run = exec_index[call]
    iid = instruction_id[call].astype(np.int64)
    wanted = np.where(kind[call] == KINDS.index(DELEGATE_CALL), 2, 1)
    # distinct call instructions per run
    width = int(iid.max()) + 2 if iid.size else 1
    pairs = np.unique(run * width + (iid + 1))
    distinct = np.bincount(pairs // width, minlength=n_exec)
    fits, exact = [], []
    for m in tables:
        kind_of = np.zeros(
            max(width, max((i.id for i in m.instructions), default=0) + 2), dtype=np.int8
        )
        for i in m.instructions:
            if i.id >= 0:
                kind_of[i.id] = {"operator": 1, "delegate": 2}.get(i.kind, 3)
        ok = (iid >= 0) & (kind_of[np.clip(iid, 0, kind_of.size - 1)] == wanted)
        bad = np.bincount(run[~ok], minlength=n_exec)
        calls = sum(i.kind in ("operator", "delegate") for i in m.instructions)
        fits.append(bad == 0)
        exact.append((bad == 0) & (distinct == calls))
    out = []
    for e in range(n_exec):
        full = [m.name for m, x in zip(tables, exact, strict=False) if x[e]]
        some = [m.name for m, f in zip(tables, fits, strict=False) if f[e]]
        found = full if len(full) == 1 else some
        if len(found) == 1:
            out.append(found[0])
        elif method is not None:
            out.append(method)
        else:
            which = (
                f"its instructions fit {', '.join(some)}"
                if some
                else "its instructions fit none of " + ", ".join(m.name for m in tables)
            )
            raise InputError(
                f"cannot tell which method Execute run {e} of the trace belongs to ({which})",
                "record it with `etprof run --method NAME ...` (it writes the schedule), or "
                "pass --method NAME if every run is that method",
            )
    return out


def _instruction_table(
    meta: TraceMeta | None, methods: list[str]
) -> dict[tuple[int, int], Instruction]:
    """The instructions of every method, keyed by (code of the method in `methods`, id):
    instruction ids of different methods collide."""
    if meta is None:
        return {}
    out = {}
    for m in meta.program.all_methods():
        if m.name in methods:
            code = methods.index(m.name)
            out.update({(code, i.id): i for i in m.instructions})
    return out


def _ops_and_backends(
    names: list[str],
    name_codes: npt.NDArray[np.int64],
    dnames: list[str],
    dcodes: npt.NDArray[np.int64],
    kind: npt.NDArray[np.int8],
    is_delegate_op: npt.NDArray[np.bool_],
    call: npt.NDArray[np.bool_],
    method_code: npt.NDArray[np.int64],
    instruction_id: npt.NDArray[np.integer],
    table: dict[tuple[int, int], Instruction],
) -> tuple[pd.Categorical, pd.Categorical]:
    """The ``op`` and ``backend`` columns (see the module docstring)."""
    backends = [*sorted({table[k].name for k in table if table[k].kind == "delegate"}), ""]
    backend_code = np.full(kind.size, len(backends) - 1, dtype=np.int64)
    keys = sorted(table)
    known = np.zeros(kind.size, dtype=bool)
    at = np.zeros(kind.size, dtype=np.int64)
    if table:
        width = max(k[1] for k in keys) + 2
        flat = np.array([c * width + i + 1 for c, i in keys], dtype=np.int64)
        iid = instruction_id.astype(np.int64)
        row_key = method_code * width + np.where((iid >= 0) & (iid < width - 1), iid + 1, 0)
        at = np.minimum(np.searchsorted(flat, row_key), flat.size - 1)
        known = flat[at] == row_key  # unknown ids get "" (as a failed lookup did)
        backend_of = np.array(
            [
                backends.index(table[k].name) if table[k].kind == "delegate" else len(backends) - 1
                for k in keys
            ],
            dtype=np.int64,
        )
        delegated = ((kind == KINDS.index(DELEGATE_CALL)) | is_delegate_op) & known
        backend_code[delegated] = backend_of[at[delegated]]
    # one table of candidate op strings: "" | kernel names | delegate ops (as each backend names
    # them, per distinct (backend, name) pair) | instruction names
    kernel_ops = [kernel_op(n) for n in names]
    pair = backend_code[is_delegate_op] * len(dnames) + dcodes[is_delegate_op]
    pairs, pair_code = np.unique(pair, return_inverse=True)
    unnamed = [
        dnames[int(p) % len(dnames)]
        for p in pairs.tolist()
        if int(p) // len(dnames) == len(backends) - 1
    ]
    guess = resolve_backend("", unnamed)  # no program table: judged by operator names
    delegate_ops = [
        (
            resolve_backend(backends[int(p) // len(dnames)])
            if int(p) // len(dnames) < len(backends) - 1
            else guess
        ).op_name(dnames[int(p) % len(dnames)])
        for p in pairs.tolist()
    ]
    op_strings = ["", *kernel_ops, *delegate_ops, *(table[k].name for k in keys)]
    op_code = np.zeros(kind.size, dtype=np.int64)
    is_kernel = kind == KINDS.index(KERNEL)
    op_code[is_kernel] = 1 + name_codes[is_kernel]
    op_code[is_delegate_op] = 1 + len(names) + pair_code.reshape(-1)
    if table:
        base = 1 + len(names) + len(delegate_ops)
        op_code[call] = np.where(known[call], base + at[call], 0)
    _name_placeholders(
        op_strings, op_code, dnames, dcodes, is_delegate_op, method_code, instruction_id, table
    )
    return _categorical(op_strings, op_code), _categorical(backends, backend_code)


def _name_placeholders(
    op_strings: list[str],
    op_code: npt.NDArray[np.int64],
    dnames: list[str],
    dcodes: npt.NDArray[np.int64],
    is_delegate_op: npt.NDArray[np.bool_],
    method_code: npt.NDArray[np.int64],
    instruction_id: npt.NDArray[np.integer],
    table: dict[tuple[int, int], Instruction],
) -> None:
    """Point the delegate operators the runtime names by a placeholder at "Hardswish (Invalid
    Unary Op)" -- the delegate graph's node, the runtime's name beside it (appended to
    `op_strings`; `op_code` updated in place, both still being built)."""
    for (method, iid), instr in table.items():
        if not instr.graph:
            continue
        backend = resolve_backend(instr.name)
        rows = np.flatnonzero(is_delegate_op & (method_code == method) & (instruction_id == iid))
        codes = dcodes[rows]
        _, first = np.unique(codes, return_index=True)
        in_order = codes[np.sort(first)].tolist()  # the delegate's operators as they first ran
        renamed = backend.name_placeholders([dnames[c] for c in in_order], instr.graph)
        for c in in_order:
            if dnames[c] in renamed:
                op_code[rows[codes == c]] = len(op_strings)
                op_strings.append(f"{renamed[dnames[c]]} ({backend.op_name(dnames[c])})")


def _absent_last(codes: npt.NDArray[np.int64], absent: int) -> npt.NDArray[np.int64]:
    """Codes with -1 (absent) replaced by `absent`, the index of an appended ""."""
    return np.where(codes < 0, absent, codes) if codes.size and codes.min() < 0 else codes


def _categorical(strings: list[str], codes: npt.NDArray[np.int64]) -> pd.Categorical:
    """``strings[codes]`` as a Categorical, without per-row string work.

    Categories are the distinct values present, sorted, as ``pd.Categorical(values)`` makes them
    (so equal strings listed twice, by another engine, still make one category).
    """
    table = np.array(strings, dtype=object)
    used = np.zeros(table.size, dtype=bool)
    used[codes] = True
    categories = pd.Categorical(table[used]).categories
    remap = categories.get_indexer(pd.Index(table, dtype=object))
    return pd.Categorical.from_codes(remap[codes], dtype=pd.CategoricalDtype(categories))


def _strings_and_codes(column: pd.Series) -> tuple[list[str], npt.NDArray[np.int64]]:
    """A string column as (distinct strings, per-row codes into them); missing reads as ""."""
    cat = (
        column.array
        if isinstance(column.dtype, pd.CategoricalDtype)
        else pd.Categorical(column.to_numpy(dtype=object))
    )
    strings = [str(c) for c in cat.categories] + [""]
    codes = np.asarray(cat.codes, dtype=np.int64)
    return strings, np.where(codes < 0, len(strings) - 1, codes)
