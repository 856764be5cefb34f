"""The Parquet lake: append-only, hive-partitioned, published batch by batch (docs/store.md).

Layout (every path below DIR)::

    <table>/model=<m>/device=<d>/date=<YYYY-MM-DD>/part-<batch>.parquet
    _etprof/batches/<batch>.json      the marker: the batch's run ids and files, written last
    _etprof/staging/...               a batch being written (never read)

A batch is the runs of one `etprof store` call (or one cluster task) not in the lake yet; its id
is the sha256 of their run ids. Its files are written in a staging folder, moved into their
partitions, and only then is its marker written (one atomic rename): a run is in the lake when a
marker names it, and readers read only the files of marked batches. A store killed at any point
(kill -9, a full disk) leaves a batch without a marker: storing the same traces again writes the
same batch id, so the same file names, replaced whole, then the marker; files of a batch that
never got its marker and whose runs are all marked since are removed by the next store.

Partition values are escaped as Hive does (``%2F`` for ``/``); the partition columns (model,
device, date) live in the path, so a runs file holds the other columns of the schema. Every file
carries the store schema version in its Parquet key-value metadata (``etprof.schema_version``).
Writers need no lock: two machines writing the same trace write the same names, and a run found
in two batches (lakes pooled by copying) is read from the first batch by name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from etprof.errors import InputError
from etprof.store._fault import fault
from etprof.store.batch import batch_frame
from etprof.store.rows import StoredTrace
from etprof.store.schema import SCHEMA_VERSION, TABLES, column_names, ddl
from etprof.util.version import __version__

if TYPE_CHECKING:
    import duckdb

PARTITIONS = ("model", "device", "date")
META = "_etprof"
VERSION_KEY = "etprof.schema_version"
_PART = re.compile(r"part-([0-9a-f]{32})\.parquet$")
_STALE_STAGING_S = 6 * 3600.0
_HOST = (
    re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
)  # a staging folder this old belongs to a writer that died


def write(folder: Path, traces: Sequence[StoredTrace]) -> set[str]:
    """Publish the traces whose runs are not in the lake yet as one batch; their run ids."""
    import duckdb

    _prepare(folder)
    marked = marked_runs(folder)
    new, seen = [], set(marked)
    for t in traces:
        if t.run_id not in seen:
            seen.add(t.run_id)
            new.append(t)
    if new:
        batch = hashlib.sha256("".join(sorted(t.run_id for t in new)).encode()).hexdigest()[:32]
        staging = (
            folder / META / "staging" / f"{batch}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        )
        con = duckdb.connect(":memory:")
        try:
            staging.mkdir(parents=True)
            files = _stage(con, staging, new)
            published = [_publish(folder, staging, f, batch) for f in files]
            fault("lake:before-marker")
            _mark(folder, batch, [t.run_id for t in new], published)
        except (OSError, duckdb.Error) as exc:
            text = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
            raise InputError(
                f"cannot write {folder} ({text})",
                "free space or choose a folder you can write; storing the same "
                "traces again completes the batch",
            ) from None
        finally:
            con.close()
            shutil.rmtree(staging, ignore_errors=True)
    _sweep(folder, marked | {t.run_id for t in new})
    return {t.run_id for t in new}


def _prepare(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--parquet {folder} is a file", "give a folder")
    if folder.is_dir() and not (folder / META).is_dir() and (folder / "runs").is_dir():
        raise InputError(
            f"{folder} holds Parquet files of an older etprof layout (no {META}/ folder)",
            "store into a new --parquet folder",
        )
    try:
        (folder / META / "batches").mkdir(parents=True, exist_ok=True)
        (folder / META / "staging").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create {folder} ({exc.strerror})", "choose a folder you can write"
        ) from None


def _stage(
    con: duckdb.DuckDBPyConnection, staging: Path, traces: Sequence[StoredTrace]
) -> list[Path]:
    """Write every table's rows of `traces` under `staging`, partitioned; the files."""
    runs = batch_frame(traces, "runs")
    when = runs["started"].where(runs["started"].notna(), runs["stored_at"])
    keys = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "model": runs["model"],
            "device": runs["device"],
            "date": when.dt.strftime("%Y-%m-%d"),
        }
    ).drop_duplicates("run_id")
    meta = f"{{'{VERSION_KEY}': '{SCHEMA_VERSION}', 'etprof.created_by': 'etprof {__version__}'}}"
    for table in TABLES:
        frame = batch_frame(traces, table)
        if frame.empty:
            continue
        if table != "runs":
            frame = frame.merge(keys, on="run_id", how="left")
        else:
            frame["date"] = keys.set_index("run_id").loc[frame["run_id"], "date"].to_numpy()
        frame = frame.fillna({k: "" for k in PARTITIONS})
        con.register("_rows", frame)
        try:
            names = column_names(table)
            cols = ", ".join(f'"{c}"' for c in [*names, *(p for p in PARTITIONS if p not in names)])
            target = _quote(staging / table)
            con.execute(
                f"COPY (SELECT {cols} FROM _rows) TO '{target}' (FORMAT parquet, "
                f"PARTITION_BY ({', '.join(PARTITIONS)}), FILENAME_PATTERN 'part', "
                f"KV_METADATA {meta})"
            )
        finally:
            con.unregister("_rows")
        fault(f"lake:staged:{table}")
    return sorted(staging.rglob("*.parquet"))


def _publish(folder: Path, staging: Path, file: Path, batch: str) -> str:
    rel = file.relative_to(staging).parent / f"part-{batch}.parquet"
    target = folder / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(file, target)
    fault(f"lake:published:{rel.parts[0]}")
    return rel.as_posix()


def _mark(folder: Path, batch: str, run_ids: list[str], files: list[str]) -> None:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "created_by": f"etprof {__version__}",
        "runs": sorted(run_ids),
        "files": files,
    }
    target = folder / META / "batches" / f"{batch}.json"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    with tmp.open("w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)


def markers(folder: Path) -> dict[str, list[str]]:
    """Every published batch of the lake (by id, in name order) with its run ids."""
    out: dict[str, list[str]] = {}
    for path in sorted((folder / META / "batches").glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            raise InputError(
                f"{path} is not an etprof batch marker", "restore it or remove the batch's files"
            ) from None
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InputError(
                f"{folder} has a batch of store schema version {version}, this "
                f"etprof reads {SCHEMA_VERSION}",
                "keep lakes of different schema versions in different folders",
            )
        out[path.stem] = [str(r) for r in doc.get("runs", [])]
    return out


def marked_runs(folder: Path) -> set[str]:
    return {r for runs in markers(folder).values() for r in runs}


def _sweep(folder: Path, marked: set[str]) -> None:
    """Clean up after writers that died: a staging folder left by a process that no longer
    runs (or untouched for hours) names its batch; that batch's published files are removed
    once every run in them is marked (by that batch or another), and then the folder. Without
    such a folder nothing is scanned, so a store costs no walk of the whole lake."""
    batches = set(markers(folder))
    now = time.time()
    for staging in (folder / META / "staging").glob("*"):
        with contextlib.suppress(OSError):
            if not (_gone(staging.name) or now - staging.stat().st_mtime > _STALE_STAGING_S):
                continue
            batch = staging.name.split(".")[0]
            if batch not in batches and _orphans_left(folder, batch, marked):
                continue  # keep the evidence until the orphans' runs are stored again
            shutil.rmtree(staging, ignore_errors=True)


def _orphans_left(folder: Path, batch: str, marked: set[str]) -> bool:
    """Remove the unmarked batch's files whose runs are all marked; whether any remain."""
    import duckdb

    left = False
    con = duckdb.connect(":memory:")
    try:
        for f in (f for t in TABLES for f in (folder / t).rglob(f"part-{batch}.parquet")):
            rows = con.execute(f"SELECT DISTINCT run_id FROM read_parquet('{_quote(f)}')")
            if {r[0] for r in rows.fetchall()} <= marked:
                f.unlink()
            else:
                left = True
    finally:
        con.close()
    return left


def _gone(staging: str) -> bool:
    """Whether the writer of a staging folder (``<batch>.<host>.<pid>.<nonce>``) was a process
    of this machine that no longer runs."""
    parts = staging.split(".")
    if len(parts) != 4 or parts[1] != _HOST or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def read(folder: Path, tables: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The lake's tables as DataFrames, each run once (from the first batch by name that has
    it), the schema's columns in order."""
    import duckdb

    if not (folder / META / "batches").is_dir():
        raise InputError(
            f"{folder} holds no etprof Parquet lake (no {META}/ folder)",
            "write one with etprof store TRACE --parquet DIR",
        )
    owner: dict[str, str] = {}
    for batch, runs in markers(folder).items():
        for r in runs:
            owner.setdefault(r, batch)
    owners = pd.DataFrame({"run_id": list(owner), "batch": list(owner.values())})
    con = duckdb.connect(":memory:")
    try:
        con.register("_owner", owners)
        return {t: _read_table(con, folder, t, set(owner.values())) for t in tables}
    finally:
        con.close()


def _read_table(
    con: duckdb.DuckDBPyConnection, folder: Path, table: str, batches: set[str]
) -> pd.DataFrame:
    files = [
        f
        for f in sorted((folder / table).rglob("part-*.parquet"))
        if (m := _PART.search(f.name)) and m.group(1) in batches
    ]
    if not files:
        con.execute(f'DROP TABLE IF EXISTS "{table}"')
        con.execute(ddl(table))
        return con.execute(f'SELECT * FROM "{table}"').df()
    listing = ", ".join(f"'{_quote(f)}'" for f in files)
    versions = {
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT decode(value) FROM parquet_kv_metadata([{listing}]) "
            f"WHERE decode(key) = '{VERSION_KEY}'"
        ).fetchall()
    }
    if versions != {str(SCHEMA_VERSION)}:
        raise InputError(
            f"{folder / table} holds files of store schema version(s) "
            f"{', '.join(sorted(versions)) or 'none'}, this etprof reads "
            f"{SCHEMA_VERSION}",
            "keep lakes of different schema versions apart",
        )
    cols = ", ".join(f't."{c}"::{kind} AS "{c}"' for c, kind in TABLES[table])
    sql = (
        f"SELECT {cols} FROM read_parquet([{listing}], hive_partitioning = true, "
        "hive_types_autocast = false, filename = true) t JOIN _owner o ON "
        "t.run_id = o.run_id AND regexp_extract(t.filename, 'part-([0-9a-f]+)', 1) = o.batch"
    )
    return con.execute(sql).df()


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")
