"""The plain-text table renderer: formats by column, fits the width, wraps text not numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etprof.render.table import format_table


def test_columns_are_formatted_by_kind() -> None:
    frame = pd.DataFrame(
        {
            "op": ["Convert (NC)", "div.out"],
            "count": [58.0, 28.0],  # an average of whole counts reads as a count
            "mean_ms": [1.0, 0.0113],  # a unit keeps decimals; 3 significant digits below 0.1
            "glue": [True, False],
            "p_value": [1.3e-16, 0.5],
            "instruction": np.array([56, 60], dtype=np.int64),
            "share_pct": [np.nan, 12.5],
        }
    )
    lines = format_table("t", frame).splitlines()
    assert lines[0] == "t"
    assert lines[1].split() == [
        "op",
        "count",
        "mean",
        "ms",
        "glue",
        "p",
        "value",
        "instruction",
        "share",
        "pct",
    ]
    assert set(lines[2].strip()) == {"─", " "}
    assert lines[3].split() == ["Convert", "(NC)", "58", "1.000", "yes", "1.3e-16", "56", "-"]
    assert lines[4].split() == ["div.out", "28", "0.0113", "no", "0.5", "60", "12.500"]


def test_fractional_counts_keep_decimals() -> None:
    out = format_table("t", pd.DataFrame({"count": [1.5, 2.0]}))
    assert "1.500" in out and "2.000" in out


@pytest.mark.parametrize("width", [60, 80, 100])
def test_long_text_wraps_within_the_width(width: int) -> None:
    text = ", ".join(f"Convolution (NHWC, QC8) DWConv x{i}" for i in range(4))
    frame = pd.DataFrame(
        {"instruction": [1, 2], "main_ops": [text, "Add (ND) x1"], "call_ms": [1.25, 0.5]}
    )
    lines = format_table("blocks", frame, width).splitlines()
    assert all(len(line) <= width for line in lines)
    body = " ".join(" ".join(line.split()) for line in lines[3:])
    for piece in ("Convolution (NHWC, QC8) DWConv x3", "1.250", "Add (ND) x1", "0.500"):
        assert piece in body  # wrapped, not cut


def test_numbers_are_never_cut_even_when_too_wide() -> None:
    frame = pd.DataFrame({f"c{i}": [123456.789] for i in range(12)})
    out = format_table("wide", frame, 40)
    assert out.count("123,456.789") == 12


def test_empty_table_says_so() -> None:
    out = format_table("none", pd.DataFrame({"op": pd.Series([], dtype=object)}))
    assert "(no rows)" in out
