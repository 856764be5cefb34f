"""MobileNetV3-small programs for tests: the shared export cache's (tests/programs.py).

The zoo's MobileNets in the standard variants are `etprof bench`'s own cache entries, so a test
run reuses what an earlier run or `etprof bench mv3` exported (about a minute per variant).
"""

from __future__ import annotations

from pathlib import Path

from programs import program


def cached_program(variant: str, model: str = "mv3") -> Path:
    """The `.pte` of `model` exported as `variant` (portable, xnnpack_fp32, xnnpack_q8, ...)."""
    return program(model, variant)
