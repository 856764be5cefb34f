"""Whether two traces can be compared: the settings a diff checks (model, threads, warm-up,
sessions), how their operators are matched, and how the two sides are labelled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from etprof.analyzers._diff_model import same_model
from etprof.analyzers._diff_rows import same_program
from etprof.errors import InputError
from etprof.trace.model import Trace

# What each breakdown bucket is called when it explains a change ({backend}: the delegate's
# label, "XNNPACK"; the glue and overhead classes name it only when the sides hold several).

if TYPE_CHECKING:
    from etprof.analyzers.diff import DiffOptions


@dataclass(frozen=True)
class Check:
    """One setting compared between the sides, as pyperf checks metadata."""

    setting: str
    a: str
    b: str
    status: str  # "same" | "differs" | "unknown"
    blocking: bool  # a difference refuses the diff unless forced
    basis: str = ""  # what the status was judged on ("they share 7% of their module paths")

    def sentence(self) -> str:
        why = f" ({self.basis})" if self.basis else ""
        return f"{self.setting} differs: {self.a} (A) vs {self.b} (B){why}"


def check_settings(a: Trace, b: Trace, options: DiffOptions) -> list[Check]:
    """Compare the settings that must agree (blocking) and those worth a warning."""
    checks = [_model_check(a, b, options)]
    ta = a.meta.run.threads if a.has_meta else None
    tb = b.meta.run.threads if b.has_meta else None
    checks.append(_check("threads", ta, tb, blocking=True))
    if options.warmup is None:
        wa = a.meta.run.warmup if a.has_meta else None
        wb = b.meta.run.warmup if b.has_meta else None
        checks.append(_check("warm-up", wa, wb, blocking=True))
    ha = a.meta.host.cpu if a.has_meta else None
    hb = b.meta.host.cpu if b.has_meta else None
    checks.append(_check("host CPU", ha or None, hb or None, blocking=False))
    for pkg in ("executorch",):
        va = a.meta.versions.get(pkg) if a.has_meta else None
        vb = b.meta.versions.get(pkg) if b.has_meta else None
        checks.append(_check(f"{pkg} version", va, vb, blocking=False))
    return checks


def _model_check(a: Trace, b: Trace, options: DiffOptions) -> Check:
    """Same model by what the user says or the programs share (analyzers/_diff_model.py);
    blocking only under a CI gate (--fail-if-*), which would judge unrelated programs."""
    status, basis = same_model(a, b, options.same_model)
    gate = options.fail_if_slower is not None or options.fail_if_faster is not None
    return Check("model", a.model, b.model, status, gate, basis)


def _check(setting: str, a: object, b: object, *, blocking: bool) -> Check:
    status = "unknown" if a is None or b is None else "same" if a == b else "differs"
    return Check(
        setting, "?" if a is None else str(a), "?" if b is None else str(b), status, blocking
    )


def match_mode(a: Trace, b: Trace, wanted: str) -> str:
    same = same_program(a, b)
    if wanted == "instruction" and not same:
        raise InputError(
            "--match instruction needs two traces of the same program (same "
            "sha256 or instruction table)",
            "use --match operator or auto",
        )
    if wanted == "auto":
        return "instruction" if same else "operator"
    return wanted


def labels(a: Trace, b: Trace) -> tuple[str, str]:
    if a.model != b.model:
        return a.model, b.model
    sa, sb = Path(a.source).name, Path(b.source).name
    if sa and sb and sa != sb:
        return sa, sb
    if a.source and Path(a.source).resolve() != Path(b.source).resolve():
        return a.source, b.source
    return f"{a.model} (A)", f"{b.model} (B)"
