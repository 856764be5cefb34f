"""Durations and sizes as people read them: three significant digits, in a unit that fits.

A 0.77 ms program reads "770 µs", not "0 ms" (floored) or "0.770 ms"; 9.0 ms reads "9.00 ms".
The seed's own table keeps its floored whole milliseconds (etprof.jobs.bench); everything else that
prints a duration in prose goes through here.
"""

from __future__ import annotations

import math


def _sig3(value: float) -> str:
    """`value` with three significant digits, no exponent (12345 -> "12345", 1.234 -> "1.23")."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{digits}f}"
    if float(text) != 0 and len(text.lstrip("-").replace(".", "").lstrip("0")) > 3 and digits:
        text = f"{value:.{digits - 1}f}"  # 9.995 rounded up to 10.00: one digit fewer
    return text


def ms_text(ms: float | None) -> str:
    """A duration given in ms: "770 µs", "9.00 ms", "1234 ms"; "-" when unknown."""
    if ms is None or not math.isfinite(ms):
        return "-"
    if abs(ms) < 1e-3 and ms != 0:
        return f"{_sig3(ms * 1e6)} ns"
    if abs(ms) < 1.0 and abs(float(_sig3(ms * 1e3))) < 1000:
        return f"{_sig3(ms * 1e3)} µs"
    return f"{_sig3(ms)} ms"


def bytes_text(n: float | None) -> str:
    """A size in bytes: "2.64 MB", "61.0 kB", "512 B" (decimal units); "-" when unknown."""
    if n is None or not math.isfinite(n):
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{_sig3(n / scale)} {unit}"
    return f"{int(n)} B"


def pct_text(pct: float | None, signed: bool = False) -> str:
    if pct is None or not math.isfinite(pct):
        return "-"
    return f"{pct:+.1f}%" if signed else f"{pct:.1f}%"
