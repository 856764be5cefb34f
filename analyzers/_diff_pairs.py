"""Which operators of two lowerings of one model are the same work (a diff's "operator" match).

An operator is named per side as ``(lowering, op)``: ``lowering`` is its delegate's backend id,
or ``portable`` for a kernel. Names are paired in rounds, finest first, each round among the
names earlier rounds left unpaired:

0. the same name on both sides ("Convolution (NHWC, QC8) IGEMM" on both);
1. the same name once its backend drops the data types ("Convolution (NHWC) IGEMM": F32 on one
   side, QC8 on the other), then the next coarser form, down to the operator kind alone
   ("HardSwish": fp32's "HardSwish (NC)" and q8's resolved "Hardswish (Invalid Unary Op)").
   The forms are the backend's knowledge (:meth:`etprof.backends.Backend.op_forms`).

Before the rounds, a bare placeholder ("Invalid Unary Op": a trace read without its delegate's
graph) stands for the resolved name the other side gives that placeholder, when it gives one
("Hardswish (Invalid Unary Op)"). A name no round pairs keeps its own and is 0 on the other
side. Every operator of a group is keyed by the form that paired it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from etprof.backends import Backend

PORTABLE = "portable"
Name = tuple[str, str]  # (backend id or PORTABLE, operator as the event table names it)


def pair_operators(
    a: Iterable[Name], b: Iterable[Name], backend: Callable[[str], Backend]
) -> dict[Name, str]:
    """The name every operator of either side is keyed by (see the module docstring)."""
    sides = (set(a), set(b))
    stands = _placeholders(sides, backend)

    def forms(n: Name) -> tuple[str, ...]:
        op = stands.get(n, n[1])
        return (op, *(() if n[0] == PORTABLE else backend(n[0]).op_forms(op)))

    all_forms = {n: forms(n) for side in sides for n in side}
    depth = max((len(f) for f in all_forms.values()), default=1)
    out: dict[Name, str] = {}
    pending = [set(s) for s in sides]
    for level in range(depth):
        groups: dict[tuple[str, str], tuple[list[Name], list[Name]]] = {}
        for i, side in enumerate(pending):
            for n in side:
                f = all_forms[n]
                if level < len(f):
                    groups.setdefault((n[0], f[level]), ([], []))[i].append(n)
        for (_, form), (ga, gb) in groups.items():
            if ga and gb:
                for n in ga + gb:
                    out[n] = form
                pending[0].difference_update(ga)
                pending[1].difference_update(gb)
    for side in pending:
        for n in side:
            out[n] = all_forms[n][0]
    return out


def _placeholders(
    sides: tuple[set[Name], set[Name]], backend: Callable[[str], Backend]
) -> dict[Name, str]:
    """A bare placeholder of one side -> the one resolved name the other gives it."""
    out = {}
    for side, other in ((sides[0], sides[1]), (sides[1], sides[0])):
        for n in side:
            lowering, op = n
            if lowering == PORTABLE or n in other:
                continue
            judge = backend(lowering)
            if judge.placeholder(op) != op:
                continue
            named = {
                o for lw, o in other if lw == lowering and o != op and judge.placeholder(o) == op
            }
            if len(named) == 1:
                out[n] = named.pop()
    return out
