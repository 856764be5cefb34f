"""A small declarative checker for the JSON documents etprof reads back (the trace metadata).

A schema is a tree of specs: `Int`, `Num`, `Str`, `Bool`, `Nullable`, `ListOf`, `MapOf`, `Obj`
(and `Json` for a part another module checks). `check(spec, value, "run")` walks the document
once and raises :class:`SchemaViolation` naming the first field that breaks it, as a dotted
path (`run.warmup`, `program.instructions[3].id`). Keys a schema does not name are left for
the reader to accept or refuse.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

INT64_MAX = 2**63 - 1


class SchemaViolation(ValueError):
    """`path` is the offending field; the message says what it is and what it must be."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path} {problem}")
        self.path = path


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


class Spec:
    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Int(Spec):
    min: int = 0
    max: int = INT64_MAX

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaViolation(path, f"is {_shown(value)}, must be a whole number")
        if not self.min <= value <= self.max:
            raise SchemaViolation(path, f"is {value}, must be from {self.min} to {self.max}")


@dataclass(frozen=True)
class Num(Spec):
    min: float = 0.0
    max: float = math.inf

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaViolation(path, f"is {_shown(value)}, must be a number")
        if not math.isfinite(value) or not self.min <= value <= self.max:
            raise SchemaViolation(
                path, f"is {value}, must be a finite number from {self.min:g} to {self.max:g}"
            )


@dataclass(frozen=True)
class Str(Spec):
    choices: tuple[str, ...] = ()
    test: Callable[[str], bool] | None = None
    what: str = ""  # what `test` wants, for the message

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise SchemaViolation(path, f"is {_shown(value)}, must be a string")
        if self.choices and value not in self.choices:
            raise SchemaViolation(path, f"is {value!r}, must be one of: {', '.join(self.choices)}")
        if self.test is not None and not self.test(value):
            raise SchemaViolation(path, f"is {_shown(value)}, must be {self.what}")


@dataclass(frozen=True)
class Bool(Spec):
    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise SchemaViolation(path, f"is {_shown(value)}, must be true or false")


@dataclass(frozen=True)
class Json(Spec):
    """Any JSON object: checked by the reader of that part (e.g. PlannedMemory.from_dict)."""

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise SchemaViolation(path, f"is {_shown(value)}, must be an object")


@dataclass(frozen=True)
class Nullable(Spec):
    inner: Spec

    def check(self, value: Any, path: str) -> None:
        if value is not None:
            self.inner.check(value, path)


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec
    max_len: int = 10_000_000

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise SchemaViolation(path, f"is {_shown(value)}, must be a list")
        if len(value) > self.max_len:
            raise SchemaViolation(path, f"has {len(value)} entries, at most {self.max_len}")
        for i, item in enumerate(value):
            self.item.check(item, f"{path}[{i}]")


@dataclass(frozen=True)
class MapOf(Spec):
    value: Spec

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise SchemaViolation(path, f"is {_shown(value)}, must be an object")
        for key, item in value.items():
            self.value.check(item, f"{path}.{key}")


@dataclass(frozen=True)
class Obj(Spec):
    """An object whose named fields follow their specs; `required` ones must be present."""

    fields: Mapping[str, Spec]
    required: frozenset[str] = field(default_factory=frozenset)
    test: Callable[[dict[str, Any]], str | None] | None = None  # a cross-field rule: a problem

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise SchemaViolation(path, f"is {_shown(value)}, must be an object")
        for name in sorted(self.required - value.keys()):
            raise SchemaViolation(f"{path}.{name}" if path else name, "is missing")
        for name, spec in self.fields.items():
            if name in value:
                spec.check(value[name], f"{path}.{name}" if path else name)
        if self.test is not None and (problem := self.test(value)) is not None:
            raise SchemaViolation(path or "document", problem)


def check(spec: Spec, value: Any, path: str = "") -> None:
    spec.check(value, path)


def known(cls: type, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of `doc` that the dataclass `cls` has: a later etprof may add fields to a
    document without changing its version, and this one reads what it knows of it."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in doc.items() if k in names}
