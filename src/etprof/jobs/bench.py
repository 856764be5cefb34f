"""Benchmark models in the standard export variants, the seed's way, beside the seed's figures.

For each model and variant: export it (or reuse the cached program), run it with ETDump on
(60 iterations, the first 10 dropped, 1 thread: the seed's methodology), and report the mean
run-model time floored to whole ms, as the seed's tables do, beside the seed's published Linux
x86 figure (src/etprof/data/seed_figures.json).

The cache is keyed by content: a hash of the model spec, the variant's export options, the
etprof/executorch/torch versions and the source of the model's module and of etprof's export
pipeline. A second run with the same key reuses the program; a changed model file or version
makes a new entry. Each entry's folder also keeps the latest trace, for `etprof breakdown`.
torch and executorch are imported only when something must be exported or run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from etprof import zoo
from etprof.errors import InputError
from etprof.record.host import versions
from etprof.result import records
from etprof.util import methodology
from etprof.util.output import write_text

SCHEMA = "etprof.bench"
CACHE_FORMAT = "etprof-bench-cache"
CACHE_VERSION = 1
MANIFEST = "export.json"
# The seed's backend names, and quant-only spelled out (the 2023 partitioner; see the notes).
BACKEND_LABELS = {
    "portable": "portable",
    "xnnpack_fp32": "xnnpack fp32",
    "xnnpack_q8": "xnnpack q8",
    "xnnpack_q8_quantonly": "xnnpack q8 quant-only",
}
DEFAULT_MODELS = ("mv2", "mv3")
# Module files whose source decides what an export produces, besides the model's own.
_PIPELINE_MODULES = ("etprof.zoo.export",)


@dataclass(frozen=True)
class BenchSettings:
    iters: int = methodology.ITERS
    warmup: int = methodology.WARMUP
    threads: int = 1
    cache: Path = Path()  # see default_cache_dir()
    verbose: bool = False


@dataclass(frozen=True)
class BenchEvent:
    """Progress for the caller to show: stage is export | cached | run | done."""

    stage: str
    model: str
    variant: str
    done: int = 0
    total: int = 0
    seconds: float = 0.0


Notify = Callable[[BenchEvent], None]


@dataclass(frozen=True)
class CacheEntry:
    key: str
    folder: Path
    stem: str  # file stem: mv2_xnnpack_fp32 ...

    @property
    def pte(self) -> Path:
        return self.folder / f"{self.stem}.pte"

    @property
    def etrecord(self) -> Path:
        return self.folder / f"{self.stem}.etrecord"

    @property
    def trace(self) -> Path:
        return self.folder / f"{self.stem}.etdp"

    @property
    def manifest(self) -> Path:
        return self.folder / MANIFEST

    def is_complete(self) -> bool:
        if not (self.pte.is_file() and self.manifest.is_file()):
            return False
        try:
            doc = json.loads(self.manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
        return (
            isinstance(doc, dict)
            and doc.get("format") == CACHE_FORMAT
            and doc.get("version") == CACHE_VERSION
            and doc.get("key") == self.key
        )


@dataclass(frozen=True)
class BenchRow:
    model: str
    variant: str
    mean_ms: float
    median_ms: float
    cv_pct: float
    measured: int
    seed_ms: int | None
    pte: str
    trace: str
    cached: bool
    export_s: float  # 0 when the program came from the cache


@dataclass(frozen=True)
class BenchResult:
    rows: tuple[BenchRow, ...]
    settings: BenchSettings
    seed_source: str

    schema = SCHEMA

    def table(self) -> pd.DataFrame:
        """The seed's table (model | backend | avg ms, floored) with the seed's figure beside."""
        cols = [
            "model",
            "backend",
            "avg_ms",
            "seed_linux_x86_ms",
            "mean_ms",
            "median_ms",
            "cv_pct",
            "measured",
        ]
        return pd.DataFrame(
            [
                {
                    "model": r.model,
                    "backend": BACKEND_LABELS.get(r.variant, r.variant),
                    "avg_ms": math.floor(r.mean_ms),
                    "seed_linux_x86_ms": pd.NA if r.seed_ms is None else r.seed_ms,
                    "mean_ms": r.mean_ms,
                    "median_ms": r.median_ms,
                    "cv_pct": r.cv_pct,
                    "measured": r.measured,
                }
                for r in self.rows
            ],
            columns=cols,
        ).astype({"seed_linux_x86_ms": "Int64"})

    def files(self) -> pd.DataFrame:
        cols = ["model", "variant", "cached", "export_s", "trace", "pte"]
        return pd.DataFrame(
            [
                {
                    "model": r.model,
                    "variant": r.variant,
                    "cached": r.cached,
                    "export_s": r.export_s,
                    "trace": r.trace,
                    "pte": r.pte,
                }
                for r in self.rows
            ],
            columns=cols,
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"bench": self.table(), "files": self.files()}

    def notes(self) -> list[str]:
        s = self.settings
        reused = sum(r.cached for r in self.rows)
        out = [
            (
                f"avg ms: mean run-model (Method::execute) time over iterations {s.warmup + 1}-"
                f"{s.iters}, floored, {s.threads} thread{'s' if s.threads != 1 else ''} (the seed: "
                "60 iterations, first 10 dropped, 1 thread)."
            ),
            (
                f"seed figures: the seed's Linux x86 tables ({self.seed_source}); its 'xnnpack q8' "
                "used the 2023 partitioner that delegated only quantized ops, today's quant-only."
            ),
            f"programs: {len(self.rows) - reused} exported, {reused} reused from {s.cache}.",
        ]
        if any(r.variant == "xnnpack_q8" for r in self.rows):
            out.append("xnnpack q8 (today's mixed partitioner) has no 2023 figure.")
        from etprof.analyzers.iterations import NOISY_CV_PCT

        noisy = [
            f"{r.model} {BACKEND_LABELS.get(r.variant, r.variant)} ({r.cv_pct:.0f}%)"
            for r in self.rows
            if r.cv_pct > NOISY_CV_PCT
        ]
        if noisy:
            out.append(
                f"noisy: run-to-run variation above {NOISY_CV_PCT:.0f}% for "
                f"{', '.join(noisy)}; the machine was busy or the runs unsteady, so "
                "compare those means with care (re-run on an idle machine; "
                "`etprof breakdown TRACE --by iteration` shows each run)."
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        return {
            "settings": {
                "iters": s.iters,
                "warmup": s.warmup,
                "threads": s.threads,
                "cache": str(s.cache),
            },
            "seed_source": self.seed_source,
            "rows": records(self.table()),
            "files": records(self.files()),
        }


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "etprof" / "bench"


def parse_variants(text: str) -> tuple[str, ...]:
    """'portable,xnnpack_fp32' -> ('portable', 'xnnpack_fp32'), checked against the standard 4."""
    from etprof.zoo.export import STANDARD_VARIANTS

    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in names if v not in STANDARD_VARIANTS]
    if unknown or not names:
        raise InputError(
            f"unknown variant '{unknown[0] if unknown else text}'",
            f"use a comma-separated list of: {', '.join(STANDARD_VARIANTS)}",
        )
    return tuple(dict.fromkeys(names))


@lru_cache(maxsize=1)
def seed_figures() -> dict[str, Any]:
    text = resources.files("etprof").joinpath("data/seed_figures.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def seed_figure(model: str, variant: str) -> int | None:
    for f in seed_figures()["figures"]:
        if f["model"] == model and f["variant"] == variant:
            return int(f["avg_ms"])
    return None


def source_digest(module: str) -> str:
    """sha256 of a module's source file, found without importing it (for zoo models: no torch)."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)  # as zoo imports users' models: from the current folder first
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    finally:
        if added:
            sys.path.remove(cwd)
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise InputError(
            f"cannot find the source of module '{module}'",
            "check the MODEL spec (package.module:callable) and the current folder",
        )
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


def cache_material(spec: zoo.ModelSpec, variant: str) -> dict[str, Any]:
    """Everything the exported program depends on; its hash is the cache key."""
    from etprof.zoo.export import STANDARD_VARIANTS

    return {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "model": {"name": spec.name, "module": spec.module, "attr": spec.attr},
        "variant": variant,
        "options": asdict(STANDARD_VARIANTS[variant]),
        "versions": versions(),
        "sources": {m: source_digest(m) for m in (spec.module, *_PIPELINE_MODULES)},
    }


def cache_key(material: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def cache_entry(
    cache: Path, spec: zoo.ModelSpec, variant: str
) -> tuple[CacheEntry, dict[str, Any]]:
    from etprof.zoo.export import STANDARD_VARIANTS, variant_name

    material = cache_material(spec, variant)
    key = cache_key(material)
    o = STANDARD_VARIANTS[variant]
    stem = variant_name(spec.name, o.quantize, o.delegate, o.partitioner)
    return CacheEntry(key, cache / spec.name / f"{variant}-{key[:16]}", stem), material


def ensure_program(
    entry: CacheEntry,
    material: dict[str, Any],
    spec: zoo.ModelSpec,
    variant: str,
    verbose: bool = False,
) -> float | None:
    """Export into the entry unless it is complete; returns the export's seconds, None if cached."""
    if entry.is_complete():
        return None
    from etprof.zoo.export import STANDARD_VARIANTS, export_model

    entry.folder.mkdir(parents=True, exist_ok=True)
    result = export_model(spec, STANDARD_VARIANTS[variant], entry.folder, verbose=verbose)
    # written last: an interrupted export leaves no manifest, so the next run exports again
    manifest = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "key": entry.key,
        "material": material,
        "export_s": result.seconds,
    }
    write_text(entry.manifest, json.dumps(manifest, indent=1) + "\n")
    return result.seconds


def _ran(say: Notify, model: str, variant: str, done: int, total: int) -> None:
    say(BenchEvent("run", model, variant, done, total))


def check_settings(settings: BenchSettings) -> None:
    if settings.warmup < 0 or settings.iters <= settings.warmup:
        raise InputError(
            f"--iters {settings.iters} must be greater than --warmup "
            f"{settings.warmup} (and --warmup at least 0)",
            "use e.g. --iters 60 --warmup 10 (the seed's)",
        )
    if settings.threads < 1:
        raise InputError(f"--threads {settings.threads} must be at least 1", "use --threads 1")
    try:
        settings.cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the cache folder {settings.cache} ({exc.strerror})",
            "choose another with --cache",
        ) from None
    if not os.access(settings.cache, os.W_OK | os.X_OK):
        raise InputError(
            f"cannot write in the cache folder {settings.cache}", "choose another with --cache"
        )


def bench(
    models: Sequence[str],
    variants: Sequence[str],
    settings: BenchSettings,
    notify: Notify | None = None,
) -> BenchResult:
    """Export (or reuse), run and measure every model in every variant, in that order."""
    from etprof import analyzers
    from etprof.record.request import RunRequest
    from etprof.record.runner import run_program
    from etprof.trace.loading import load_trace

    say = notify or (lambda event: None)
    specs = {m: zoo.parse(m) for m in models}  # a bad name fails before any slow work
    check_settings(settings)
    planned = [
        (m, spec, v, *cache_entry(settings.cache, spec, v))
        for m, spec in specs.items()
        for v in variants
    ]
    rows = []
    for model, spec, variant, entry, material in planned:
        say(BenchEvent("export", model, variant))
        seconds = ensure_program(entry, material, spec, variant, settings.verbose)
        say(
            BenchEvent(
                "cached" if seconds is None else "exported", model, variant, seconds=seconds or 0.0
            )
        )
        req = RunRequest(
            pte=entry.pte,
            out=entry.trace,
            iters=settings.iters,
            warmup=settings.warmup,
            threads=settings.threads,
            etrecord=entry.etrecord if entry.etrecord.is_file() else None,
            verbose=settings.verbose,
        )
        run_program(req, partial(_ran, say, model, variant))
        stats = analyzers.run("runmodel", load_trace(entry.trace))
        summary = stats.summary()
        say(BenchEvent("done", model, variant, seconds=stats.mean_ms / 1e3))
        rows.append(
            BenchRow(
                model=model,
                variant=variant,
                mean_ms=stats.mean_ms,
                median_ms=summary["median_ms"],
                cv_pct=summary["cv_pct"],
                measured=stats.n,
                seed_ms=seed_figure(spec.name, variant) if spec.builtin else None,
                pte=str(entry.pte),
                trace=str(entry.trace),
                cached=seconds is None,
                export_s=seconds or 0.0,
            )
        )
    return BenchResult(tuple(rows), settings, seed_figures()["source"]["file"])
