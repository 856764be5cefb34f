"""MobileNetV3-small programs for tests, exported once and cached by content.

The cache is `etprof bench`'s (keyed by model, variant, export options, versions and sources), so
a test run reuses what an earlier run or `etprof bench mv3` exported. An export takes about a
minute per variant on this project's machine.
"""

from __future__ import annotations

from pathlib import Path

from etprof import zoo
from etprof.bench import cache_entry, default_cache_dir, ensure_program


def cached_program(variant: str, model: str = "mv3") -> Path:
    """The `.pte` of `model` exported as `variant` (portable, xnnpack_fp32, xnnpack_q8, ...)."""
    spec = zoo.parse(model)
    entry, material = cache_entry(default_cache_dir(), spec, variant)
    ensure_program(entry, material, spec, variant)
    return entry.pte
