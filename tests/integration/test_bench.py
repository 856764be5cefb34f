"""`etprof bench`: the content-keyed export cache, the seed's figures, the result's formats, and
(slow) a real end-to-end run that a second call serves from the cache."""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from etprof import render, zoo
from etprof.errors import InputError
from etprof.jobs import bench
from etprof.jobs.bench import BenchResult, BenchRow, BenchSettings
from etprof.zoo.export import STANDARD_VARIANTS

from conftest import assert_one_line_error, run_cli

SEED_TEXT = Path(bench.seed_figures()["source"]["file"])

TINY_MODEL = """
import torch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = torch.nn.functional.relu(self.conv(x))
        return self.fc(y.mean((2, 3)))


def build():
    torch.manual_seed(0)
    return Tiny().eval(), (torch.randn(1, 3, 16, 16),)
"""


# ---------------------------------------------------------------- the seed's figures


def seed_tables(text: str) -> dict[tuple[str, str], int]:
    """(table title, backend) -> avg ms, read from the seed's markdown tables."""
    out: dict[tuple[str, str], int] = {}
    title = ""
    for line in text.splitlines():
        if re.match(r"^MobileNet V\d - ", line):
            title = line.strip()
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if title and line.startswith("|") and len(cells) >= 2 and cells[1].isdigit():
            out[(title, cells[0])] = int(cells[1])
    return out


@pytest.mark.skipif(not SEED_TEXT.is_file(), reason="the seed document is not on this machine")
def test_seed_figures_are_the_seeds_linux_x86_tables() -> None:
    published = seed_tables(SEED_TEXT.read_text())
    linux = {k: v for k, v in published.items() if k[0].endswith("Linux x86")}
    ours = {(f["table"], f["backend"]): f["avg_ms"] for f in bench.seed_figures()["figures"]}
    assert ours == linux
    assert len(ours) == 6


def test_seed_figures_name_standard_variants() -> None:
    doc = bench.seed_figures()
    assert doc["format"] == "etprof-seed-figures" and doc["version"] == 1
    assert doc["methodology"] == {
        "iterations": 60,
        "warmup": 10,
        "measured": 50,
        "threads": 1,
        "statistic": doc["methodology"]["statistic"],
    }
    for f in doc["figures"]:
        assert f["variant"] in STANDARD_VARIANTS and f["model"] in zoo.ZOO
    # the 2023 q8 figure goes beside the quant-only variant, and the mixed one has none
    assert bench.seed_figure("mv3", "xnnpack_q8_quantonly") == 323
    assert bench.seed_figure("mv3", "xnnpack_q8") is None


# ---------------------------------------------------------------- the cache key


def test_cache_key_is_stable_and_depends_on_variant() -> None:
    spec = zoo.parse("mv2")
    first = bench.cache_key(bench.cache_material(spec, "xnnpack_fp32"))
    assert first == bench.cache_key(bench.cache_material(spec, "xnnpack_fp32"))
    others = {bench.cache_key(bench.cache_material(spec, v)) for v in STANDARD_VARIANTS}
    assert len(others) == 4 and first in others
    assert first != bench.cache_key(bench.cache_material(zoo.parse("mv3"), "xnnpack_fp32"))


def test_cache_key_depends_on_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = zoo.parse("mv3")
    before = bench.cache_key(bench.cache_material(spec, "portable"))
    real = bench.versions()
    monkeypatch.setattr(bench, "versions", lambda: {**real, "torch": "9.9.9"})
    assert bench.cache_key(bench.cache_material(spec, "portable")) != before


def test_cache_key_depends_on_model_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "tinynet_key.py"
    source.write_text(TINY_MODEL)
    spec = zoo.parse("tinynet_key:build")
    before = bench.cache_material(spec, "portable")
    assert before["sources"]["tinynet_key"] == bench.source_digest("tinynet_key")
    source.write_text(TINY_MODEL.replace("Conv2d(3, 8, 3)", "Conv2d(3, 8, 5)"))
    after = bench.cache_material(spec, "portable")
    assert bench.cache_key(after) != bench.cache_key(before)


def test_zoo_models_hash_the_zoo_module_without_importing_torch() -> None:
    material = bench.cache_material(zoo.parse("mv2"), "portable")
    assert set(material["sources"]) == {"etprof.zoo.mobilenet", "etprof.zoo.export"}
    zoo_file = Path(zoo.__file__).parent / "mobilenet.py"
    import hashlib

    assert (
        material["sources"]["etprof.zoo.mobilenet"]
        == hashlib.sha256(zoo_file.read_bytes()).hexdigest()
    )


def test_complete_entry_is_reused_and_a_stale_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = zoo.parse("mv2")
    entry, material = bench.cache_entry(tmp_path, spec, "xnnpack_fp32")
    assert entry.folder.parent == tmp_path / "mv2" and entry.stem == "mv2_xnnpack_fp32"
    calls: list[Path] = []

    def fake_export(model: object, options: object, out_dir: Path, **_: object) -> object:
        calls.append(out_dir)
        (out_dir / "mv2_xnnpack_fp32.pte").write_bytes(b"not really")

        class Done:
            seconds = 1.5

        return Done()

    import etprof.zoo.export

    monkeypatch.setattr(etprof.zoo.export, "export_model", fake_export)
    assert bench.ensure_program(entry, material, spec, "xnnpack_fp32") == 1.5
    assert entry.is_complete() and len(calls) == 1
    manifest = json.loads(entry.manifest.read_text())
    assert manifest["material"] == material and manifest["key"] == entry.key
    assert (manifest["format"], manifest["version"]) == ("etprof-bench-cache", 1)
    assert bench.ensure_program(entry, material, spec, "xnnpack_fp32") is None
    assert len(calls) == 1, "a second run does not re-export"
    # a manifest written for another key (e.g. by an interrupted, older run) is not trusted
    entry.manifest.write_text(json.dumps({"key": "0" * 64}))
    assert bench.ensure_program(entry, material, spec, "xnnpack_fp32") == 1.5
    assert len(calls) == 2


# ---------------------------------------------------------------- the result


def row(model: str, variant: str, mean: float) -> BenchRow:
    return BenchRow(
        model=model,
        variant=variant,
        mean_ms=mean,
        median_ms=mean * 0.99,
        cv_pct=1.25,
        measured=50,
        seed_ms=bench.seed_figure(model, variant),
        pte=f"/c/{model}_{variant}.pte",
        trace=f"/c/{model}_{variant}.etdp",
        cached=variant == "portable",
        export_s=0.0 if variant == "portable" else 12.5,
    )


RESULT = BenchResult(
    rows=(
        row("mv2", "portable", 412.987),
        row("mv2", "xnnpack_fp32", 9.999),
        row("mv3", "xnnpack_q8", 3.5),
        row("mv3", "xnnpack_q8_quantonly", 33.01),
    ),
    settings=BenchSettings(cache=Path("/c")),
    seed_source="seed.txt",
)


def test_table_is_the_seeds_floored_with_seed_figures_beside() -> None:
    t = RESULT.table()
    assert list(t.columns[:4]) == ["model", "backend", "avg_ms", "seed_linux_x86_ms"]
    assert t["avg_ms"].tolist() == [math.floor(r.mean_ms) for r in RESULT.rows] == [412, 9, 3, 33]
    assert t["backend"].tolist() == [
        "portable",
        "xnnpack fp32",
        "xnnpack q8",
        "xnnpack q8 quant-only",
    ]
    assert t["seed_linux_x86_ms"].tolist()[:2] == [25480, 10]
    assert pd.isna(t["seed_linux_x86_ms"].iloc[2]) and t["seed_linux_x86_ms"].iloc[3] == 323
    notes = " ".join(RESULT.notes())
    assert "1 reused" in notes and "no 2023 figure" in notes
    assert "noisy" not in notes  # every row's cv is 1.25%
    noisy = BenchResult(
        (RESULT.rows[0], replace(RESULT.rows[1], cv_pct=23.7)), RESULT.settings, "seed.txt"
    )
    assert "noisy: run-to-run variation above 10% for mv2 xnnpack fp32 (24%)" in " ".join(
        noisy.notes()
    )


def test_csv_reads_back_to_the_same_values() -> None:
    for name, frame in RESULT.tables().items():
        back = pd.read_csv(io.StringIO(render.render(RESULT, "csv", table=name)))
        pd.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_json_is_versioned_and_complete() -> None:
    doc = json.loads(render.render(RESULT, "json"))
    assert doc["schema"] == "etprof.bench" and doc["version"] == 2
    assert doc["settings"] == {"iters": 60, "warmup": 10, "threads": 1, "cache": "/c"}
    assert [r["avg_ms"] for r in doc["rows"]] == [412, 9, 3, 33]
    assert doc["rows"][2]["seed_linux_x86_ms"] is None
    assert [f["trace"] for f in doc["files"]] == [r.trace for r in RESULT.rows]


def test_markdown_and_table_show_the_comparison() -> None:
    md = render.render(RESULT, "markdown")
    assert "| mv2 | portable | 412 | 25480 |" in md
    assert "| mv3 | xnnpack q8 | 3 | - |" in md
    table = render.render(RESULT, "table", width=120)
    assert "25480" in table and "412" in table and "/c/mv2_portable.etdp" in table
    assert "<NA>" not in table


# ---------------------------------------------------------------- bad input


def test_parse_variants() -> None:
    assert bench.parse_variants("portable, xnnpack_fp32,portable") == ("portable", "xnnpack_fp32")
    with pytest.raises(InputError, match="unknown variant 'xnnpack_q4'"):
        bench.parse_variants("portable,xnnpack_q4")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["mv2", "--variants", "fp16"], "unknown variant 'fp16'"),
        (["resnet"], "unknown model 'resnet'"),
        (["mv2", "--iters", "10", "--warmup", "10"], "--iters 10 is not greater than --warmup 10"),
        (["mv2", "--threads", "0"], "--threads 0"),
        (["mv2", "--format", "xml"], "unknown format 'xml'"),
    ],
)
def test_cli_bad_input_is_one_line_and_quick(tmp_path: Path, args: list[str], needle: str) -> None:
    result = run_cli("bench", *args, "--cache", tmp_path / "cache", timeout=120)
    assert_one_line_error(result, needle)
    assert not list((tmp_path / "cache").rglob("*.pte")), "refused before any export"


def test_cache_that_is_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot create the cache folder"):
        bench.check_settings(BenchSettings(cache=blocker / "sub"))


# ---------------------------------------------------------------- for real


@pytest.mark.slow
def test_bench_end_to_end_then_from_cache(tmp_path: Path) -> None:
    (tmp_path / "tinynet.py").write_text(TINY_MODEL)
    cache = tmp_path / "cache"
    args = [
        "bench",
        "tinynet:build",
        "--variants",
        "portable,xnnpack_fp32",
        "--iters",
        "12",
        "--warmup",
        "2",
        "--cache",
        cache,
        "--format",
        "json",
    ]
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert [f["cached"] for f in doc["files"]] == [False, False]
    ptes = [Path(f["pte"]) for f in doc["files"]]
    stamps = [p.stat().st_mtime_ns for p in ptes]
    for f, r in zip(doc["files"], doc["rows"], strict=False):
        assert f"trace: {f['trace']}" in first.stderr
        # the kept trace is a real trace whose run-model mean is the row's
        from etprof import analyzers
        from etprof.trace.loading import load_trace

        stats = analyzers.run("runmodel", load_trace(f["trace"]))
        assert stats.n == 10 and r["measured"] == 10
        assert r["mean_ms"] == pytest.approx(stats.mean_ms)
        assert r["avg_ms"] == math.floor(stats.mean_ms)
        assert r["seed_linux_x86_ms"] is None
    second = run_cli(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert [f["cached"] for f in again["files"]] == [True, True]
    assert [Path(f["pte"]) for f in again["files"]] == ptes
    assert [p.stat().st_mtime_ns for p in ptes] == stamps, "not re-exported"
    assert "reused from the cache" in second.stderr
