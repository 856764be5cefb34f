"""Attach nn.Module paths to a program's instructions, from the ETRecord saved at export.

The ETRecord links the two ends. ``to_executorch()`` records, per method, which debug handles each
instruction came from (``debug_handle_map``: instruction id -> handle or handles; a delegate call
lists the handles of every node of its lowered subgraph). The edge program recorded by
``to_edge_transform_and_lower(..., generate_etrecord=True)`` is the graph *before* partitioning,
whose nodes carry the same ``debug_handle`` and their ``nn_module_stack`` (outermost module
first). An instruction's ``modules`` are the innermost module paths of its nodes, distinct, in
graph order; "" is the root module.

If ``debug_handle_map`` lacks a delegate instruction, the handles of its ``delegate_map`` entry
(delegate debug id -> handles, recorded by backends that provide one) stand in.

Inside a delegate: XNNPACK records no ``delegate_map`` (empty in executorch 1.5.1), but its blob
serializes each node's ``debug_handle`` (``Instruction.graph_handles``, etprof.backends.xnnpack_graph);
those are the edge program's handles, so each node of the delegate's graph gets its own module
(``Instruction.graph_modules``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from etprof.errors import InputError, MismatchError
from etprof.program.types import Instruction, ProgramInfo
from etprof.util.quiet import silenced

_SAVE_FIX = (
    "save it from to_executorch()'s result: "
    "to_edge_transform_and_lower(..., generate_etrecord=True).to_executorch().get_etrecord()"
    ".save(path)"
)


def attach_modules(info: ProgramInfo, etrecord: Path) -> ProgramInfo:
    """A copy of ``info`` whose instructions carry their nn.Module paths from ``etrecord``: those
    of ``info.method`` (refused when the ETRecord does not fit them), and of each other method
    the ETRecord maps by name (instruction ids are per method)."""
    record = _parse(etrecord)
    instructions = _attached(record, info, info.method, info.instructions, etrecord)
    methods = []
    for m in info.methods:
        if m.name == info.method:
            m = dataclasses.replace(m, instructions=instructions)
        elif m.name in (record._debug_handle_map or {}):
            m = dataclasses.replace(
                m, instructions=_attached(record, info, m.name, m.instructions, etrecord)
            )
        methods.append(m)
    return dataclasses.replace(
        info, instructions=instructions, etrecord=str(etrecord), methods=tuple(methods)
    )


def _attached(
    record: Any,
    info: ProgramInfo,
    method: str,
    instructions: tuple[Instruction, ...],
    etrecord: Path,
) -> tuple[Instruction, ...]:
    handles = _method_map(record._debug_handle_map, method, etrecord, "debug handle map")
    delegates = _method_map(record._delegate_map or {}, method, etrecord, None)
    _check_matches(
        dataclasses.replace(info, instructions=instructions), handles, delegates, etrecord
    )
    paths = _module_paths(_edge_program(record.edge_dialect_program, method, etrecord))
    return tuple(
        dataclasses.replace(
            instr,
            modules=_distinct(
                paths[h] for h in _handles_of(instr.id, handles, delegates) if h in paths
            ),
            # a delegate's nodes carry the edge program's debug handles (XNNPACK serializes
            # them in its blob): each node's own module; "" for a node of no module (the
            # layout transposes lowering inserts have no handle of the edge program)
            graph_modules=tuple(paths.get(h, "") for h in instr.graph_handles),
        )
        for instr in instructions
    )


def _parse(path: Path) -> Any:
    if not path.is_file():
        what = "is a directory, not an ETRecord" if path.is_dir() else "does not exist"
        raise InputError(f"ETRecord {path} {what}", "check the --etrecord path")
    with silenced():
        from executorch.devtools.etrecord import parse_etrecord

        try:
            record = parse_etrecord(str(path))
        except (RuntimeError, ValueError, KeyError, TypeError, AssertionError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{path} is not a readable ETRecord ({reason})", _SAVE_FIX) from None
    if record._debug_handle_map is None:
        raise InputError(
            f"ETRecord {path} has no instruction map (it was saved before to_executorch())",
            _SAVE_FIX,
        )
    if record.edge_dialect_program is None:
        raise InputError(f"ETRecord {path} has no edge program", _SAVE_FIX)
    return record


def _method_map(
    by_method: Mapping[str, Any], method: str, path: Path, what: str | None
) -> dict[int, Any]:
    """The per-instruction map of one method, keyed by int instruction id."""
    if by_method and all(str(k).lstrip("-").isdigit() for k in by_method):
        table = by_method  # older ETRecords: one method, not keyed by name
    elif method in by_method:
        table = by_method[method]
    elif what is None:
        return {}
    else:
        raise InputError(
            f"ETRecord {path} has no {what} for method '{method}' "
            f"(it has: {', '.join(map(str, by_method)) or 'none'})",
            "pass the ETRecord saved with this .pte, or --method",
        )
    return {int(k): v for k, v in table.items()}


def _edge_program(programs: Any, method: str, path: Path) -> Any:
    if isinstance(programs, dict):
        if method not in programs:
            raise InputError(
                f"ETRecord {path} has no edge program for method '{method}'",
                "pass the ETRecord saved with this .pte, or --method",
            )
        return programs[method]
    return programs


def _check_matches(
    info: ProgramInfo, handles: dict[int, Any], delegates: dict[int, Any], path: Path
) -> None:
    """Refuse an ETRecord whose instruction ids cannot be this program's."""
    kinds = {i.id: i.kind for i in info.instructions}
    wanted = dict.fromkeys(handles, ("operator", "delegate")) | dict.fromkeys(
        delegates, ("delegate",)
    )
    for instr, allowed in sorted(wanted.items()):
        if kinds.get(instr) not in allowed:
            raise MismatchError(
                f"ETRecord {path} does not match {info.path or 'the program'}: it maps "
                f"instruction {instr} to {' or '.join(allowed)} code, the program has "
                f"{kinds.get(instr, 'no such instruction')} there",
                "pass the ETRecord saved with this .pte",
            )


def _handles_of(instr: int, handles: dict[int, Any], delegates: dict[int, Any]) -> list[int]:
    if instr in handles:
        return _ints(handles[instr])
    entry = delegates.get(instr) or {}
    return [h for v in (entry.get("delegate_map") or {}).values() for h in _ints(v)]


def _ints(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [h for v in value for h in _ints(v)]
    return [int(value)]


def _module_paths(program: Any) -> dict[int, str]:
    """Debug handle -> innermost nn.Module path of the node that carries it."""
    out: dict[int, str] = {}
    for node in program.graph_module.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        handle = node.meta.get("debug_handle")
        if not stack or handle is None:
            continue
        path = str(list(stack.values())[-1][0])
        for h in _ints(handle):
            out.setdefault(h, path)
    return out


def _distinct(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(paths))
