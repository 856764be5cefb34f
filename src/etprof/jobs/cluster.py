"""Dask distributed for what outgrows one machine: ingest into the lake and history's
judgments on a cluster's workers (`--cluster ADDRESS` or `--cluster local:N`; docs/store.md).

Dask is an optional extra (``pip install 'etprof[cluster]'``), imported only here and only when
``--cluster`` is given. ``local:N`` starts a LocalCluster of N worker processes (one thread
each) for this command; any other value is a scheduler address (``tcp://host:8786``) of a
cluster whose workers have etprof installed and can read the traces and write the lake (a
shared file system, as ``DIR`` and the traces name them on the client).

- Ingest: the traces are split into one task per worker and a half (so a slow trace does not
  hold the others up); each task loads its traces, reduces them to their store rows
  (etprof.store.rows.trace_rows, as `etprof store` does) and publishes them to the lake as a
  batch of its own (etprof.store.lake: writers need no lock). With ``--db`` the rows come back
  and the client stores them in one transaction.
- History: the comparisons of whole series go to the workers in chunks, each judged with
  etprof's own statistics (analyzers/stats/significance_batch.compare_many), and come back in
  order: the same numbers as in one process (a run's comparison does not depend on the others
  judged with it), tests/integration/test_cluster.py checks it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from etprof.analyzers.history import Judge
from etprof.analyzers.stats.significance import Comparison
from etprof.analyzers.stats.significance_batch import Pair, compare_many
from etprof.errors import InputError
from etprof.store import lake
from etprof.store.rows import StoredTrace, content_id, trace_rows

LOCAL = "local:"


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """A Dask client of the cluster at `address` (``local:N``: a LocalCluster started here)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(
            "--cluster needs Dask distributed, which is not installed",
            "pip install 'etprof[cluster]'",
        ) from None
    if address.startswith(LOCAL):
        workers = address[len(LOCAL) :]
        if not workers.isdigit() or int(workers) < 1:
            raise InputError(
                f"--cluster {address}: N of local:N is not a number of workers",
                "use e.g. --cluster local:2",
            )
        with (
            LocalCluster(  # type: ignore[no-untyped-call]  # distributed has no annotations here
                n_workers=int(workers),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            yield client
        return
    try:
        client = Client(address, timeout="20s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {address} ({exc})",
            "give its address (tcp://host:8786) or local:N",
        ) from None
    with client:
        yield client


def _workers(client: Any) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def _chunks(items: Sequence[Any], parts: int) -> list[list[Any]]:
    size = max(1, math.ceil(len(items) / max(1, parts)))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def ingest_task(
    paths: list[str], tags: dict[str, str], pte: str | None, folder: str | None, rows: bool
) -> tuple[list[tuple[str, str, bool]], list[StoredTrace]]:
    """On a worker: the traces' rows, published to the lake at `folder` as one batch; each
    trace's (run id, source, newly stored), and the rows themselves when `rows`."""
    from etprof.trace.loading import load_trace

    made = []
    for p in paths:
        path = Path(p)
        made.append(
            trace_rows(
                load_trace(path, pte=Path(pte) if pte else None),
                path,
                tags,
                run_id=content_id(path),
            )
        )
    new = lake.write(Path(folder), made) if folder else set()
    return [(t.run_id, t.source, t.run_id in new) for t in made], made if rows else []


def ingest(
    client: Any,
    paths: Sequence[Path],
    tags: dict[str, str],
    pte: Path | None,
    folder: Path | None,
    want_rows: bool,
) -> tuple[list[tuple[str, str, bool]], list[StoredTrace]]:
    """Load, reduce and publish `paths` on the workers; outcomes and rows in `paths` order."""
    parts = _chunks([str(os.path.abspath(p)) for p in paths], math.ceil(_workers(client) * 1.5))
    futures = client.map(
        ingest_task,
        parts,
        tags=dict(tags),
        pte=str(pte.resolve()) if pte else None,
        folder=str(folder.resolve()) if folder else None,
        rows=want_rows,
        pure=False,
    )
    outcomes: list[tuple[str, str, bool]] = []
    rows: list[StoredTrace] = []
    for done, made in client.gather(futures):
        outcomes += done
        rows += made
    return outcomes, rows


def judge_on(client: Any) -> Judge:
    """History's judge on the cluster: whole series per task, about two tasks per worker."""

    def judge(pairs: Sequence[Pair], series: Sequence[int]) -> list[Comparison]:
        if not pairs:
            return []
        bounds = [0] + [i for i in range(1, len(series)) if series[i] != series[i - 1]]
        bounds.append(len(series))
        target = max(1, math.ceil(len(pairs) / (2 * _workers(client))))
        cuts = [0]
        for b in bounds[1:]:
            if b - cuts[-1] >= target or b == len(series):
                cuts.append(b)
        chunks = [list(pairs[a:b]) for a, b in itertools.pairwise(cuts)]
        futures = client.map(compare_many, chunks, pure=False)
        return [c for part in client.gather(futures) for c in part]

    return judge
