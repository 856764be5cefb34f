"""Whether two traces are of one model (diff's blocking "model" check), never from file names.

In order, the first that applies decides:

1. the user says so: ``--same-model`` (DiffOptions.same_model);
2. both traces record the model they were exported from (``program.source_model``, written
   by ``etprof run --model NAME``): the same name or not;
3. one program (same sha256 or content): the same model;
4. both know module paths (an ETRecord): the same model when they share at least
   ``MODULE_SHARE`` of the smaller set (MobileNetV3's fp32, q8 and portable programs share 99% or
   more; MobileNetV2 and V3 share 10% or less);
5. both ran operators: the same model when their operator sequences (an iteration's operators,
   each as its coarsest kind, without glue and quantize/dequantize kernels) agree to at least
   ``STRUCTURE_SHARE`` (difflib's ratio: fp32 and q8 of one model 1.0, two models 0.4 or less);
   otherwise not.

"Differs" refuses the diff only under a CI gate (diff's `_model_check`); otherwise the traces
are compared and :func:`structure_line` says why they look like different models: MobileNetV3
q8 lowered with the quant-only partitioner (29 partitions, the hardswish pieces on portable
kernels) and with the default one (1 partition) agree to 51% by operator sequence.
"""

from __future__ import annotations

import difflib

from etprof.backends import resolve
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, KERNEL, OPERATOR_CALL, Trace

MODULE_SHARE = 0.8
STRUCTURE_SHARE = 0.9


def same_model(a: Trace, b: Trace, said: bool) -> tuple[str, str]:
    """("same" | "differs", on what basis) for traces `a` and `b`."""
    if said:
        return "same", "said with --same-model"
    ma, mb = a.meta.program.source_model, b.meta.program.source_model
    if ma and mb:
        return (
            "same" if ma == mb else "differs",
            f"recorded as models {ma!r} and {mb!r} (etprof run --model)",
        )
    pa, pb = a.meta.program, b.meta.program
    if (pa.sha256 and pa.sha256 == pb.sha256) or (
        pa.content is not None and pa.content == pb.content
    ):
        return "same", "one program"
    mods_a, mods_b = _modules(a), _modules(b)
    if mods_a and mods_b:
        share = len(mods_a & mods_b) / min(len(mods_a), len(mods_b))
        return (
            "same" if share >= MODULE_SHARE else "differs",
            f"they share {share:.0%} of their module paths",
        )
    sa, sb = _structure(a), _structure(b)
    ratio = difflib.SequenceMatcher(None, sa, sb, autojunk=False).ratio() if sa and sb else 0.0
    return (
        "same" if ratio >= STRUCTURE_SHARE else "differs",
        f"their operator sequences agree to {ratio:.0%} and no ETRecord gave module paths",
    )


def _modules(t: Trace) -> set[str]:
    return {m for i in t.meta.program.instructions for m in i.modules}


def _structure(t: Trace) -> list[str]:
    """The operators of the trace's last iteration, in order, each as its coarsest kind."""
    ev = t.events
    if not len(ev) or int(ev["iteration"].max()) < 0:
        return []
    last = ev[(ev["iteration"] == ev["iteration"].max()) & ev["kind"].isin([DELEGATE_OP, KERNEL])]
    out = []
    for kind, bid, op in zip(
        last["kind"].astype(str), last["backend"].astype(str), last["op"].astype(str), strict=False
    ):
        if kind == DELEGATE_OP:
            backend = resolve(bid)
            if backend.is_glue(op):
                continue
            forms = backend.op_forms(op)
            out.append(forms[-1] if forms else op)
        elif "quantize" not in op:  # quantize/dequantize kernels: a precision, not the model
            out.append(op)
    return out


def structure_line(basis: str, a: Trace, b: Trace) -> str:
    """The note of a diff whose sides may be different models, compared anyway (no gate)."""
    calls = f"{_calls(a)} (A) against {_calls(b)} (B); " if _calls(a) != _calls(b) else ""
    return (
        f"the programs differ in structure: {calls}{basis}. Compared as two lowerings of "
        "one model; if they are different models, the per-bucket and per-operator deltas "
        "compare unrelated work (a --fail-if-* gate refuses them unless --same-model)"
    )


def _calls(t: Trace) -> str:
    """ "29 delegate calls and 84 operator calls per run": one iteration's calls."""
    ev = t.events
    if not len(ev) or int(ev["iteration"].max()) < 0:
        return "no run"
    last = ev[ev["iteration"] == ev["iteration"].max()]
    kinds = last["kind"].astype(str)
    d, o = int((kinds == DELEGATE_CALL).sum()), int((kinds == OPERATOR_CALL).sum())
    return (
        f"{d} delegate call{'' if d == 1 else 's'} and {o} operator "
        f"call{'' if o == 1 else 's'} per run"
    )
