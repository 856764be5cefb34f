"""The buckets of run-model time, by name (docs/attribution.md), in the order every table shows
them."""

from __future__ import annotations

BUCKETS = (
    "delegate_compute",
    "delegate_glue",
    "delegate_unresolved",
    "delegate_opaque",
    "delegate_overhead",
    "portable_kernels",
    "dispatch_overhead",
    "runtime_overhead",
)
DELEGATED = (
    "delegate_compute",
    "delegate_glue",
    "delegate_unresolved",
    "delegate_opaque",
    "delegate_overhead",
)
# an unresolved share at least this large, or larger than the operator time the backend did
# resolve, can change what the buckets say: warned about
UNRESOLVED_WARN_PCT = 10.0
PORTABLE = ("portable_kernels", "dispatch_overhead")
