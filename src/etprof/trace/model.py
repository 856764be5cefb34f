"""The central trace object: profile events as a DataFrame plus frozen metadata.

Event table columns (one row per ETDump profile event):

- ``run``: index of the RunData block in the file; ``seq``: position of the event in its block.
- ``method``: the method of the "Execute" block (one per ``Method::execute``) the event belongs
  to, "" for the others (the "Default" block holds loading); see :func:`etprof.trace.events.run_methods`.
- ``iteration``: 0-based index among the "Execute" blocks of the event's method (iterations are
  counted per method), -1 for the others.
- ``name``: the event's name ("" when absent); ``delegate_op``: ``delegate_debug_id_str`` ("" when
  absent); ``delegate_id_int``, ``instruction_id``, ``chain_index``: as recorded.
- ``start_ns``, ``end_ns``, ``duration_ns``: int64 nanoseconds (Linux ETDump ticks are ns).
- ``kind``: see :data:`KINDS` (a kernel: ``native_call_<op>``, or a custom operator's own
  ``namespace::op.overload`` event, :func:`etprof.trace.events.is_kernel_name`); ``op``: a readable operator name
  (kernel name without the ``native_call_`` prefix, a custom operator's as recorded, a delegate operator as its backend names its type (XNNPACK's without
  its ``#N`` counter; etprof.backends), or the instruction's operator / delegate backend when
  the program's instruction table is known). An operator the runtime names by a placeholder
  reads as the delegate graph's node with the runtime's name beside it, "Hardswish (Invalid
  Unary Op)", when the instruction table carries the graph.
- ``backend``: the delegate's backend id (e.g. "XnnpackBackend", from the method's delegate
  instruction) on DELEGATE_CALL and delegate-operator rows, "" elsewhere and when the program's
  instruction table is unknown.
- ``phase``: an LLM run's phase of the event's Execute run ("prefill" or "decode", from the
  metadata's ``run.phases``), "" for loading events and for runs of any other program; see
  :meth:`Trace.for_phase`.

Instruction ids are per method: every lookup in the instruction tables is keyed by
(method, instruction id). Analyses work on one method at a time (:meth:`Trace.for_method`).

A Trace is never mutated: selections return new Trace objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.errors import InputError
from etprof.trace.sidecar import TraceMeta, UntracedTimes
from etprof.util import methodology

DEFAULT_WARMUP = methodology.WARMUP  # a trace without metadata

RUN_MODEL = "run_model"
DELEGATE_CALL = "delegate_call"
OPERATOR_CALL = "operator_call"
KERNEL = "kernel"
DELEGATE_OP = "delegate_op"
LOAD = "load"
OTHER = "other"
KINDS = (RUN_MODEL, DELEGATE_CALL, OPERATOR_CALL, KERNEL, DELEGATE_OP, LOAD, OTHER)

NAMED_KINDS = {
    "Method::execute": RUN_MODEL,
    "DELEGATE_CALL": DELEGATE_CALL,
    "OPERATOR_CALL": OPERATOR_CALL,
    "Program::load_method": LOAD,
    "Method::init": LOAD,
}
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
    _cache: dict[object, object] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def warmup(self) -> int:
        return self.meta.run.warmup if self.has_meta else DEFAULT_WARMUP

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods of the trace's Execute runs, in order of their first run."""

        def find() -> tuple[str, ...]:
            ev = self.events
            if "method" not in ev:
                return (self.meta.program.method,) if self.iterations else ()
            m = ev["method"].array
            codes = np.asarray(m.codes)[ev["iteration"].to_numpy() >= 0]
            _, first = np.unique(codes, return_index=True)
            return tuple(str(m.categories[c]) for c in codes[np.sort(first)] if c >= 0)

        return self.memo("methods", find)

    def for_method(self, name: str) -> Trace:
        """The trace of method `name`: its Execute runs and the loading events, with the
        program seen as that method (its instruction table) and a schedule of that method
        only. A trace of one method is returned as it is."""
        if self.methods == (name,) or (not self.methods and name == self.meta.program.method):
            return self
        if name not in self.methods:
            raise InputError(
                f"{self.source or 'the trace'} has no runs of method '{name}' (it has: "
                f"{', '.join(self.methods) or 'none'})",
                "pass --method with one of those",
            )
        key = ("method", name)
        if key not in self._cache:
            m = self.events["method"].astype(str).to_numpy()
            keep = (m == name) | (self.events["iteration"].to_numpy() < 0)
            schedule = self.meta.run.schedule
            per = [x for x in schedule if x == name] if schedule else []
            meta = replace(
                self.meta,
                program=self.meta.program.for_method(name),
                run=replace(self.meta.run, schedule=tuple(per)),
            )
            self._cache[key] = replace(self, events=_rows(self.events, keep), meta=meta)
        return self._cache[key]  # type: ignore[return-value]

    @property
    def phases(self) -> tuple[str, ...]:
        """The LLM phases of the trace's Execute runs ("prefill", "decode"), in order of their
        first run; () for a trace of any other program."""

        def find() -> tuple[str, ...]:
            ev = self.events
            if "phase" not in ev:
                return ()
            p = ev.loc[ev["iteration"].to_numpy() >= 0, "phase"].astype(str)
            return tuple(str(x) for x in pd.unique(p) if x)

        return self.memo("phases", find)

    def for_phase(self, name: str) -> Trace:
        """The trace of one LLM phase: that phase's Execute runs (and the loading events),
        renumbered as iterations 0.. of their own, with the settings (runs per session, warm-up,
        schedule, phases) counted over that phase's runs, so every analysis of a trace works on
        a phase unchanged. Refused on a trace without that phase."""
        if name not in self.phases:
            have = ", ".join(self.phases) or "none: not an LLM run (`etprof run LLM.pte`)"
            raise InputError(
                f"{self.source or 'the trace'} has no {name} runs (phases: {have})",
                "pass --phase with one of those"
                if self.phases
                else "drop --phase, or record the LLM with `etprof run --prefill P --decode G`",
            )
        key = ("phase", name)
        if key not in self._cache:
            ev = self.events
            it = ev["iteration"].to_numpy()
            keep = (ev["phase"].astype(str).to_numpy() == name) | (it < 0)
            events = _rows(ev, keep)
            it = events["iteration"].to_numpy()
            runs = it >= 0
            renumbered = it.copy()
            renumbered[runs] = np.unique(it[runs], return_inverse=True)[1]
            events["iteration"] = renumbered.astype(np.int32)
            run = self.meta.run
            kept = [i for i, s in enumerate(run.phases) if s.phase == name]
            settings = replace(
                run,
                iters=len(kept),
                warmup=sum(i < run.warmup for i in kept),
                phases=tuple(run.phases[i] for i in kept),
                schedule=tuple(run.schedule[i] for i in kept) if run.schedule else (),
                untraced=_phase_timings(run.untraced, kept, run.warmup),
            )
            self._cache[key] = replace(self, events=events, meta=replace(self.meta, run=settings))
        return self._cache[key]  # type: ignore[return-value]

    def one_method(self) -> Trace:
        """This trace when it holds one method; else refused (never one blended mean)."""
        if len(self.methods) > 1:
            raise InputError(
                f"{self.source or 'the trace'} holds several methods ({', '.join(self.methods)})",
                "analyse one at a time: pass --method NAME",
            )
        return self

    @property
    def execute_runs(self) -> int:
        """How many Execute runs (of every method) the trace holds."""

        def count() -> int:
            ev = self.events
            return int(ev.loc[ev["iteration"].to_numpy() >= 0, "run"].nunique())

        return self.memo("execute_runs", count)

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

    def is_warmup(
        self, iteration: npt.ArrayLike, warmup: int | None = None
    ) -> npt.NDArray[np.bool_]:
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
        self.one_method()
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


def _phase_timings(
    untraced: tuple[UntracedTimes, ...], kept: list[int], warmup: int
) -> tuple[UntracedTimes, ...]:
    """Each session's untraced timings (one per measured run) of the runs `kept`."""
    mine = [i - warmup for i in kept if i >= warmup]
    return tuple(
        replace(
            u,
            traced_ms=tuple(u.traced_ms[j] for j in mine if j < len(u.traced_ms)),
            untraced_ms=tuple(u.untraced_ms[j] for j in mine if j < len(u.untraced_ms)),
        )
        for u in untraced
    )
