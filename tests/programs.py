"""Real programs for tests, exported once and shared: one content-keyed, file-locked export cache.

    from programs import exported, program, program_copy

    program("mv3", "xnnpack_q8")                         # -> Path of the .pte
    program("etprof_tiny_models:lstm")                   # fp32, delegated to XNNPACK
    program("etprof_tiny_models:encoder_dq", quantize=True)
    program("llama", "dq8")                              # the zoo's Llama, dynamic 8-bit linears
    exported("etprof_tiny_models:tiny", "portable")      # .pte, .etrecord, export seconds
    program_copy(tmp_path, "etprof_tiny_models:tiny")    # a private copy to run beside

A variant is one of `etprof bench`'s (portable, xnnpack_fp32, xnnpack_q8, xnnpack_q8_quantonly)
or `dq8` (xnnpack_q8 for an LLM's dynamic linears); keyword options (quantize, delegate,
partitioner) override it. The key hashes the model spec, the export options, the
etprof/executorch/torch versions and the source of the model's module and of the export pipeline,
so an edited model or pipeline exports again and nothing else does. Entries live under the cache
root `etprof bench` uses (`$XDG_CACHE_HOME/etprof`, else ~/.cache/etprof): the zoo's MobileNets
in the standard variants are the bench's own entries (`etprof bench mv3` and the tests share
them), the others go to `tests/`. An exclusive `flock` per entry makes parallel pytest workers
and parallel checkouts export each program once; the manifest is written last, so an interrupted
export is redone. Never write beside a cached program (a run's trace would land in the shared
folder): run a copy (`program_copy`) or give `--out`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from etprof import zoo
from etprof.jobs import bench
from etprof.record.host import versions
from etprof.util.output import write_text
from etprof.zoo.export import STANDARD_VARIANTS, ExportOptions, export_model, output_paths

FORMAT = "etprof-test-programs"
VERSION = 1
# modules whose source decides what an export produces, besides the model's own
PIPELINE = (
    "etprof.zoo.export",
    "etprof.zoo.export_openvino",
    "etprof.zoo.registry",
    "etprof.zoo.recipe",
)
VARIANTS: dict[str, ExportOptions] = {**STANDARD_VARIANTS, "dq8": STANDARD_VARIANTS["xnnpack_q8"]}


@dataclass(frozen=True)
class Exported:
    pte: Path
    etrecord: Path | None
    export_s: float  # the export's own seconds, as recorded when it was made
    cached: bool  # True when this call found it in the cache


def cache_root() -> Path:
    return bench.default_cache_dir().parent


def options_of(variant: str | None, **overrides: Any) -> ExportOptions:
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
    base = VARIANTS[variant] if variant else ExportOptions()
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def exported(
    model: str,
    variant: str | None = None,
    *,
    quantize: bool | None = None,
    delegate: bool | None = None,
    partitioner: str | None = None,
    backend: str | None = None,
) -> Exported:
    """The program of `model` (a zoo name or `package.module:callable`) exported with `variant`
    and options, from the cache, exported into it first if absent."""
    spec = zoo.parse(model)
    options = options_of(
        variant, quantize=quantize, delegate=delegate, partitioner=partitioner, backend=backend
    )
    standard = next((v for v, o in STANDARD_VARIANTS.items() if o == options), None)
    if spec.builtin and not spec.llm and standard is not None:
        return _bench_entry(spec, standard)
    material = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"name": spec.name, "module": spec.module, "attr": spec.attr},
        "options": asdict(options),
        "versions": versions(),
        "sources": {m: bench.source_digest(m) for m in (spec.module, *PIPELINE)},
    }
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    pte_name = output_paths(Path(), spec.name, options, llm=spec.llm)[0].stem
    folder = cache_root() / "tests" / spec.name / f"{pte_name}-{key[:16]}"
    manifest = folder / "export.json"
    with _locked(folder):
        done = _manifest(manifest, key)
        cached = done is not None
        if done is None:
            if folder.exists():
                shutil.rmtree(folder)  # an interrupted export's leftovers
            folder.mkdir(parents=True)
            result = export_model(spec, options, folder)
            done = {
                "format": FORMAT,
                "version": VERSION,
                "key": key,
                "material": material,
                "pte": result.pte.name,
                "etrecord": result.etrecord.name if result.etrecord else None,
                "export_s": result.seconds,
            }
            write_text(manifest, json.dumps(done, indent=1) + "\n")  # last: marks it complete
    etrecord = done.get("etrecord")
    return Exported(
        folder / str(done["pte"]),
        folder / etrecord if etrecord else None,
        float(done["export_s"]),
        cached,
    )


def program(model: str, variant: str | None = None, **options: Any) -> Path:
    """The cached `.pte` (see `exported`)."""
    return exported(model, variant, **options).pte


def program_copy(folder: Path, model: str, variant: str | None = None, **options: Any) -> Path:
    """A copy of the cached `.pte` (and its `.etrecord` beside it) in `folder`, to run where its
    trace may be written beside it."""
    made = exported(model, variant, **options)
    folder.mkdir(parents=True, exist_ok=True)
    pte = Path(shutil.copy2(made.pte, folder / made.pte.name))
    if made.etrecord is not None and made.etrecord.is_file():
        shutil.copy2(made.etrecord, folder / made.etrecord.name)
    return pte


def _manifest(path: Path, key: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not (isinstance(doc, dict) and doc.get("key") == key and doc.get("version") == VERSION):
        return None
    if not (path.parent / str(doc.get("pte"))).is_file():
        return None
    return doc


def _bench_entry(spec: zoo.ModelSpec, variant: str) -> Exported:
    entry, material = bench.cache_entry(bench.default_cache_dir(), spec, variant)
    with _locked(entry.folder):
        started = time.perf_counter()
        seconds = bench.ensure_program(entry, material, spec, variant)
        if seconds is None:
            doc = json.loads(entry.manifest.read_text(encoding="utf-8"))
            seconds = float(doc.get("export_s", time.perf_counter() - started))
            cached = True
        else:
            cached = False
    return Exported(
        entry.pte, entry.etrecord if entry.etrecord.is_file() else None, seconds, cached
    )


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock beside `folder` (one lock file per entry, never removed)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
