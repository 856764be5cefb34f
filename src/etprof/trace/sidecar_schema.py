"""The sidecar document's schema (docs/trace-metadata.md): every field with its type and range,
checked when a sidecar is read (etprof.util.jsonspec). A new field goes here and into its
dataclass in etprof.trace.sidecar."""

from __future__ import annotations

from typing import Any

from etprof.program.llm import PHASES
from etprof.util.jsonspec import (
    Bool,
    Int,
    ListOf,
    MapOf,
    Nullable,
    Num,
    Obj,
    Str,
)


def _unique_ids(table: dict[str, Any]) -> str | None:
    ids = [i["id"] for i in table.get("instructions", ())]
    if len(set(ids)) < len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        return f"has instruction id {twice} more than once"
    return None


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


_INSTRUCTIONS = ListOf(
    Obj(
        {
            "id": Int(),
            "kind": Str(("operator", "delegate", "move", "jump", "free", "unknown")),
            "name": Str(),
            "delegate_index": Int(min=-1),
            "modules": ListOf(Str()),
            "graph": ListOf(Str()),  # a delegate's operators, in execution order
            "graph_handles": ListOf(Int(min=0)),  # the debug handle of each of them (v4)
            "graph_modules": ListOf(Str()),  # the nn.Module path of each of them (v4)
        },
        required=frozenset({"id", "kind", "name"}),
    )
)
_BYTES = Nullable(Int())
_MS = ListOf(Num())
# The document, field by field (docs/trace-metadata.md). Fields a version does not have are
# simply absent; the dataclasses' defaults fill them in.
SCHEMA = Obj(
    {
        "format": Str(),
        "version": Int(),
        "program": Obj(
            {
                "path": Str(),
                "sha256": Str(),
                "method": Str(),
                "model": Str(),
                "instructions": _INSTRUCTIONS,
                "delegates": ListOf(Str()),
                "methods": ListOf(
                    Obj(
                        {  # every method, each with its own table (MethodInfo)
                            "name": Str(),
                            "instructions": _INSTRUCTIONS,
                            "delegates": ListOf(Str()),
                        },
                        required=frozenset({"name"}),
                        test=_unique_ids,
                    )
                ),
                "etrecord": Str(),
                "memory": Nullable(
                    Obj(
                        {  # etprof.program.memory.PlannedMemory
                            "methods": ListOf(
                                Obj(
                                    {"name": Str(), "arenas_bytes": ListOf(Int())},
                                    required=frozenset({"name", "arenas_bytes"}),
                                )
                            ),
                            "constant_bytes": Int(),
                            "named_data_bytes": Int(),
                            "delegates": ListOf(
                                Obj(
                                    {
                                        "method": Str(),
                                        "index": Int(),
                                        "backend": Str(),
                                        "location": Str(),
                                        "size_bytes": Int(),
                                    },
                                    required=frozenset(
                                        {"method", "index", "backend", "location", "size_bytes"}
                                    ),
                                )
                            ),
                            "file_bytes": Int(),
                        }
                    )
                ),
                "llm": Nullable(
                    Obj(
                        {  # etprof.program.llm.LlmInfo
                            "vocab_size": Int(min=1),
                            "max_seq_len": Int(min=1),
                            "max_context_len": Nullable(Int(min=1)),
                            "use_kv_cache": Bool(),
                            "dynamic_shape": Bool(),
                            "max_prompt": Int(min=1),
                            "bos_id": Nullable(Int()),
                            "eos_ids": ListOf(Int()),
                            "metadata_methods": ListOf(Str()),
                            "takes_position": Bool(),
                        },
                        required=frozenset({"vocab_size", "max_seq_len"}),
                    )
                ),
                "content": Nullable(
                    Obj(
                        {  # ProgramContent
                            "instructions_sha256": Str(
                                test=_is_sha256, what="64 lowercase hex digits"
                            ),
                            "delegates": ListOf(
                                Obj(
                                    {
                                        "method": Str(),
                                        "index": Int(min=0),
                                        "backend": Str(),
                                        "size": Int(min=0),
                                        "sha256": Str(
                                            test=_is_sha256, what="64 lowercase hex digits"
                                        ),
                                    },
                                    required=frozenset(
                                        {"method", "index", "backend", "size", "sha256"}
                                    ),
                                )
                            ),
                        },
                        required=frozenset({"instructions_sha256"}),
                    )
                ),
                "source_model": Str(),
            },
            test=_unique_ids,
        ),
        "run": Obj(
            {
                "iters": Int(),
                "warmup": Int(),
                "threads": Int(min=1),
                "inputs": Str(),
                "started": Str(),
                "cpu_share_pct": Nullable(Num(max=100.0)),
                "load_average": Nullable(Num()),
                "sessions": Int(min=1),
                "spread_s": Num(),
                "interleaved_with": ListOf(Str()),
                "schedule": ListOf(Str()),  # the method of each Execute run of one session
                "phases": ListOf(
                    Obj(
                        {"phase": Str(PHASES), "position": Int(), "tokens": Int(min=1)},
                        required=frozenset({"phase", "position", "tokens"}),
                    )
                ),
                "memory": ListOf(
                    Obj(
                        {
                            "before_load_bytes": _BYTES,
                            "after_load_bytes": _BYTES,
                            "untraced_copy_bytes": _BYTES,
                            "warmup_peak_bytes": _BYTES,
                            "measured_start_bytes": _BYTES,
                            "measured_peak_bytes": _BYTES,
                            "peak_reset": Bool(),
                        }
                    )
                ),
                "untraced": ListOf(
                    Obj(
                        {"traced_ms": _MS, "untraced_ms": _MS},
                        required=frozenset({"traced_ms", "untraced_ms"}),
                    )
                ),
            }
        ),
        "host": Obj({"cpu": Str(), "cores": Int(), "platform": Str(), "python": Str()}),
        "versions": MapOf(Str()),
        "trace": Nullable(
            Obj(
                {"size": Int(), "sha256": Str(test=_is_sha256, what="64 lowercase hex digits")},
                required=frozenset({"size", "sha256"}),
            )
        ),
    },
    required=frozenset({"format", "version", "program", "run", "host"}),
)
