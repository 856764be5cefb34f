"""Chrome trace JSON checked against the format's rules, independently of etprof's own layout
code: shared by the timeline tests and the real-program tests."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np


def check_chrome_trace(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Assert `doc` is a valid Chrome trace (JSON object form) whose slices nest per track.

    Returns its complete ("X") events.
    """
    assert isinstance(doc["traceEvents"], list)
    slices, processes, threads = [], set(), set()
    for e in doc["traceEvents"]:
        assert e["ph"] in ("X", "M"), e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name", "thread_sort_index"), e
            if e["name"] == "process_name":
                assert isinstance(e["args"]["name"], str) and e["args"]["name"]
                processes.add(e["pid"])
            elif e["name"] == "thread_name":
                assert isinstance(e["args"]["name"], str) and e["args"]["name"]
                threads.add((e["pid"], e["tid"]))
            continue
        for key in ("name", "cat"):
            assert isinstance(e[key], str) and e[key], e
        for key in ("ts", "dur"):
            assert isinstance(e[key], (int, float)) and e[key] >= 0, e
            # µs with at most ns precision
            assert abs(e[key] * 1000 - round(e[key] * 1000)) < 1e-6, e
        assert isinstance(e["args"], dict)
        slices.append(e)
    for e in slices:
        assert e["pid"] in processes, "every process is named"
        assert (e["pid"], e["tid"]) in threads, "every track is named"
    by_track: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for e in slices:
        by_track[(e["pid"], e["tid"])].append((ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])))
    for track, spans in by_track.items():
        assert_nests(spans, track)
    return slices


def assert_nests(spans: list[tuple[int, int]], track: object) -> None:
    """Any two slices are disjoint or one contains the other (pairwise; sweep for big inputs)."""
    spans = sorted(spans, key=lambda s: (s[0], -s[1]))
    if len(spans) <= 2000:
        a = np.array(spans)
        s, e = a[:, 0][:, None], a[:, 1][:, None]
        overlap = (s < e.T) & (e > s.T)
        nested = ((s <= s.T) & (e >= e.T)) | ((s >= s.T) & (e <= e.T))
        bad = np.argwhere(overlap & ~nested)
        assert not len(bad), f"track {track}: {spans[bad[0][0]]} and {spans[bad[0][1]]} overlap"
        return
    open_ends: list[int] = []
    for start, end in spans:
        while open_ends and open_ends[-1] <= start:
            open_ends.pop()
        assert not open_ends or end <= open_ends[-1], f"track {track}: ({start}, {end}) overlaps"
        open_ends.append(end)


def ns(us: float) -> int:
    return round(us * 1000)
