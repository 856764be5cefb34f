"""The central trace object: profile events as a DataFrame plus frozen metadata.

Event table columns (one row per ETDump profile event):

- ``run``: index of the RunData block in the file; ``seq``: position of the event in its block.
- ``iteration``: 0-based index among the "Execute" blocks (one per ``Method::execute``), -1 for
  the others (the "Default" block holds loading).
- ``name``: the event's name ("" when absent); ``delegate_op``: ``delegate_debug_id_str`` ("" when
  absent); ``delegate_id_int``, ``instruction_id``, ``chain_index``: as recorded.
- ``start_ns``, ``end_ns``, ``duration_ns``: int64 nanoseconds (Linux ETDump ticks are ns).
- ``kind``: see :data:`KINDS`; ``op``: a readable operator name (kernel name without the
  ``native_call_`` prefix, XNNPACK operator without its ``#N`` counter, or the instruction's
  operator / delegate backend when the program's instruction table is known).

A Trace is never mutated: selections return new Trace objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.errors import InputError
from etprof.etdump.reader import RawDump
from etprof.metadata import TraceMeta

DEFAULT_WARMUP = 10

RUN_MODEL = "run_model"
DELEGATE_CALL = "delegate_call"
OPERATOR_CALL = "operator_call"
KERNEL = "kernel"
DELEGATE_OP = "delegate_op"
LOAD = "load"
OTHER = "other"
KINDS = (RUN_MODEL, DELEGATE_CALL, OPERATOR_CALL, KERNEL, DELEGATE_OP, LOAD, OTHER)

_NAMED_KINDS = {
    "Method::execute": RUN_MODEL,
    "DELEGATE_CALL": DELEGATE_CALL,
    "OPERATOR_CALL": OPERATOR_CALL,
    "Program::load_method": LOAD,
    "Method::init": LOAD,
}
_COUNTER = re.compile(r"\s*#\d+$")
EXECUTE_RUN = "Execute"
T = TypeVar("T")


@dataclass(frozen=True)
class Trace:
    events: pd.DataFrame
    meta: TraceMeta
    source: str = ""
    has_meta: bool = False  # False when no sidecar was found: settings are defaults
    allocations: pd.DataFrame | None = None
    debug_event_count: int = 0
    etdump_version: int = 0
    # selections computed once per trace: analyses ask for the same ones many times, and on a
    # 500k-event trace each costs tens of ms. Not part of the value (compare=False).
    _cache: dict[object, object] = field(default_factory=dict, init=False, repr=False,
                                         compare=False)

    @property
    def warmup(self) -> int:
        return self.meta.run.warmup if self.has_meta else DEFAULT_WARMUP

    @property
    def iterations(self) -> int:
        it = self.events["iteration"]
        return int(it.max()) + 1 if len(it) and int(it.max()) >= 0 else 0

    @property
    def sessions(self) -> int:
        """How many times the program was loaded and run (`etprof run --sessions`); each session
        has its own warm-up. A trace made elsewhere is one session."""
        return max(1, self.meta.run.sessions) if self.has_meta else 1

    @property
    def session_length(self) -> int:
        """Iterations per session (the Execute runs are the sessions' runs one after another)."""
        return self.iterations // self.sessions if self.sessions > 1 else self.iterations

    def session_of(self, iteration: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """The 0-based session of each iteration index."""
        it = np.asarray(iteration, dtype=np.int64)
        return it // max(1, self.session_length) if self.sessions > 1 else np.zeros_like(it)

    def position_in_session(self, iteration: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Each iteration index counted from its session's first iteration."""
        it = np.asarray(iteration, dtype=np.int64)
        return it % max(1, self.session_length) if self.sessions > 1 else it

    def is_warmup(self, iteration: npt.ArrayLike, warmup: int | None = None) -> npt.NDArray[np.bool_]:
        """Whether each iteration index is one of its session's first `warmup` (dropped) ones."""
        skip = self.warmup if warmup is None else warmup
        return self.position_in_session(iteration) < skip

    @property
    def model(self) -> str:
        return self.meta.program.model or Path(self.source).stem

    def with_warmup(self, warmup: int) -> Trace:
        run = replace(self.meta.run, warmup=warmup)
        return replace(self, meta=replace(self.meta, run=run), has_meta=True)

    def measured(self, warmup: int | None = None) -> Trace:
        """The events of the measured iterations only (warm-up dropped)."""
        skip = self.warmup if warmup is None else warmup
        n = self.session_length
        if self.iterations == 0:
            raise InputError(
                f"{self.source or 'the trace'} has no Execute runs (no Method::execute recorded)",
                "profile with `etprof run`, or executor_runner with --etdump_path",
            )
        if n <= skip:
            per = " per session" if self.sessions > 1 else ""
            raise InputError(
                f"{self.source or 'the trace'} has {n} iterations{per}, not more than the {skip} "
                "warm-up iterations to drop",
                "record more (--iters) or lower --warmup",
            )
        key = ("measured", skip)
        if key not in self._cache:
            it = self.events["iteration"].to_numpy()
            keep = (it >= 0) & ~self.is_warmup(it, skip)
            self._cache[key] = replace(self, events=_rows(self.events, keep))
        return self._cache[key]  # type: ignore[return-value]

    def of_kind(self, *kinds: str) -> pd.DataFrame:
        """The events of these kinds, in trace order (cached: treat as read-only)."""
        key = ("kind", kinds)
        if key not in self._cache:
            ev = self.events
            codes = [KINDS.index(k) for k in kinds]
            kind = np.asarray(ev["kind"].array.codes)
            mask = kind == codes[0] if len(codes) == 1 else np.isin(kind, codes)
            self._cache[key] = _rows(ev, mask)
        return self._cache[key]

    def executed(self, *kinds: str) -> pd.DataFrame:
        """`of_kind` restricted to the Execute runs (iteration >= 0): no loading events."""
        key = ("executed", kinds)
        if key not in self._cache:
            ev = self.of_kind(*kinds)
            it = ev["iteration"].to_numpy()
            self._cache[key] = ev if not it.size or it.min() >= 0 else _rows(ev, it >= 0)
        return self._cache[key]

    def iterations_present(self) -> int:
        """How many distinct iterations (Execute runs) this trace's events cover."""
        def count() -> int:
            it = self.events["iteration"].to_numpy()
            return int(np.count_nonzero(np.bincount(it[it >= 0]))) if it.size else 0

        return self.memo("iterations_present", count)

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """`compute()` once per trace: for derived tables that several analyses share."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]  # type: ignore[return-value]

    def run_model_ns(self) -> float:
        """Total Method::execute time of the iterations in this trace, in ns."""
        return float(self.of_kind(RUN_MODEL)["duration_ns"].sum())


def _rows(frame: pd.DataFrame, mask: pd.Series | npt.NDArray[np.bool_]) -> pd.DataFrame:
    """``frame[mask]`` renumbered from 0; a slice, not a copy, when the rows are contiguous."""
    where = np.flatnonzero(np.asarray(mask))
    if where.size and int(where[-1]) - int(where[0]) + 1 == where.size:
        return frame.iloc[int(where[0]) : int(where[-1]) + 1].reset_index(drop=True)
    return frame.take(where).reset_index(drop=True)


def events_frame(raw: RawDump, meta: TraceMeta | None = None) -> pd.DataFrame:
    """Build the event table from the reader's columns (shared by every engine)."""
    run_is_exec = np.array([n == EXECUTE_RUN for n in raw.run_names], dtype=bool)
    iteration_of_run = np.where(run_is_exec, np.cumsum(run_is_exec) - 1, -1)
    start = raw.start.astype(np.int64)
    end = raw.end.astype(np.int64)
    names, name_codes = [*raw.names, ""], _absent_last(raw.name_codes, len(raw.names))
    dnames, dcodes = [*raw.delegate_names, ""], _absent_last(raw.delegate_codes,
                                                              len(raw.delegate_names))
    delegate_id_int = raw.delegate_id_int.astype(np.int32)
    instruction_id = raw.instruction_id.astype(np.int32)
    kind, op = _kind_and_op(names, name_codes, dnames, dcodes, delegate_id_int, instruction_id,
                            meta)
    return pd.DataFrame(
        {
            "run": raw.run.astype(np.int32),
            "seq": raw.seq.astype(np.int32),
            "iteration": iteration_of_run[raw.run].astype(np.int32)
            if raw.run.size
            else np.zeros(0, np.int32),
            "name": _categorical(names, name_codes),
            "delegate_op": _categorical(dnames, dcodes),
            "delegate_id_int": delegate_id_int,
            "instruction_id": instruction_id,
            "chain_index": raw.chain_index.astype(np.int32),
            "start_ns": start,
            "end_ns": end,
            "duration_ns": end - start,
            "kind": kind,
            "op": op,
        }
    )


def annotate(frame: pd.DataFrame, meta: TraceMeta | None) -> pd.DataFrame:
    """Add the ``kind`` and ``op`` columns from names and the instruction table."""
    names, name_codes = _strings_and_codes(frame["name"])
    dnames, dcodes = _strings_and_codes(frame["delegate_op"])
    kind, op = _kind_and_op(names, name_codes, dnames, dcodes,
                            frame["delegate_id_int"].to_numpy(),
                            frame["instruction_id"].to_numpy(), meta)
    out = frame.copy()
    out["kind"] = kind
    out["op"] = op
    return out


def _kind_and_op(
    names: list[str],
    name_codes: npt.NDArray[np.int64],
    dnames: list[str],
    dcodes: npt.NDArray[np.int64],
    delegate_id_int: npt.NDArray[np.integer],
    instruction_id: npt.NDArray[np.integer],
    meta: TraceMeta | None,
) -> tuple[pd.Categorical, pd.Categorical]:
    """The ``kind`` and ``op`` columns, from each row's codes into the distinct names.

    Works on the distinct names, not on the rows: a trace of half a million events has a few
    hundred distinct names, and every per-row step below is one numpy gather.
    """
    kind_of_name = np.array(
        [KINDS.index(KERNEL if n.startswith("native_call_") else _NAMED_KINDS.get(n, OTHER))
         for n in names],
        dtype=np.int8,
    )
    kind = kind_of_name[name_codes]
    is_delegate_op = np.array([d != "" for d in dnames], dtype=bool)[dcodes] | (
        (delegate_id_int != -1) & np.array([n == "" for n in names], dtype=bool)[name_codes]
    )
    kind[is_delegate_op] = KINDS.index(DELEGATE_OP)

    # one table of candidate op strings: "" | kernel names | delegate ops | instruction names
    kernel_ops = [n[len("native_call_") :] for n in names]
    delegate_ops = [_COUNTER.sub("", d) for d in dnames]
    table = _instruction_names(meta)
    ids = np.array(sorted(table), dtype=np.int64)
    op_strings = ["", *kernel_ops, *delegate_ops, *(table[i] for i in ids.tolist())]
    op_code = np.zeros(kind.size, dtype=np.int64)
    is_kernel = kind == KINDS.index(KERNEL)
    op_code[is_kernel] = 1 + name_codes[is_kernel]
    op_code[is_delegate_op] = 1 + len(names) + dcodes[is_delegate_op]
    if table:
        call = (kind == KINDS.index(OPERATOR_CALL)) | (kind == KINDS.index(DELEGATE_CALL))
        instr = instruction_id[call].astype(np.int64)
        at = np.minimum(np.searchsorted(ids, instr), ids.size - 1)
        known = ids[at] == instr  # unknown ids get "" (as a failed lookup did)
        op_code[call] = np.where(known, 1 + len(names) + len(dnames) + at, 0)
    return (pd.Categorical.from_codes(kind, dtype=pd.CategoricalDtype(KINDS)),
            _categorical(op_strings, op_code))


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
    cat = column.array if isinstance(column.dtype, pd.CategoricalDtype) else \
        pd.Categorical(column.to_numpy(dtype=object))
    strings = [str(c) for c in cat.categories] + [""]
    codes = np.asarray(cat.codes, dtype=np.int64)
    return strings, np.where(codes < 0, len(strings) - 1, codes)


def _instruction_names(meta: TraceMeta | None) -> dict[int, str]:
    if meta is None:
        return {}
    return {i.id: i.name for i in meta.program.instructions}
