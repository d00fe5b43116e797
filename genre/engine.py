"""Where batch work runs: joblib on this machine, Dask on a cluster.

Work is a list of *batches* (lists of items, e.g. file paths) and one *task*, a plain function
``task(batch, **kwargs) -> list`` importable on every worker. Both engines run the same task and
yield ``(batch, results, error)`` as batches finish; ``error`` (a message) replaces ``results``
when a batch could not run at all (for Dask: its worker died ``allowed-failures`` times, 3 by
default, so a poisonous batch is never retried forever). Dask counts a death against every task
the dead worker held, so such a batch is tried once more at the end, item by item, each alone:
a file that only shared a worker with a poisonous one still completes, and a poisonous file does
not take its batch's other files down; only an item that kills its worker on its own is given
up. Tasks are expected to report per-item failures (an unreadable file) inside their results
instead of raising.

``open_engine(cluster=...)`` picks the engine: None = joblib (loky processes); ``"local"`` or
``"local:N"`` = a ``dask.distributed.LocalCluster`` of N single-threaded worker processes;
``"tcp://HOST:8786"`` (or ``"env"``: ``$GENRE_DASK_SCHEDULER``) = a running Dask scheduler.
Dask is imported only for those, so the dashboard never needs it.
"""
from __future__ import annotations

import logging
import math
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

SCHEDULER_ENV = "GENRE_DASK_SCHEDULER"
Outcome = tuple[list, list | None, str | None]
"""(batch, task results or None, error message or None)"""


class Engine(Protocol):
    workers: int
    description: str

    def run(self, task: Callable[..., list], batches: Sequence[list], **kwargs) -> Iterator[Outcome]: ...


def batches_of(items: Sequence, *, workers: int, size: int | None = None, per_worker: int = 8,
               largest: int = 16) -> list[list]:
    """Split ``items`` into batches: ``size`` each if given, else enough for ``per_worker``
    batches per worker (load balance, and little work lost with a dead worker), at most ``largest``."""
    items = list(items)
    if size is None:
        size = min(largest, max(1, math.ceil(len(items) / (max(1, workers) * per_worker))))
    return [items[i:i + size] for i in range(0, len(items), size)]


class LocalEngine:
    """joblib on this machine: ``n_jobs`` loky processes (-1 = all cores), or in this process
    when that is one. Batches run in whole chunks of ``4 x workers``, so a caller that stops
    between results (a page left mid-way) never abandons a running pool."""

    def __init__(self, *, n_jobs: int = -1):
        from joblib import effective_n_jobs

        self.workers = effective_n_jobs(n_jobs)
        self.description = f"joblib, {self.workers} process(es)"

    def run(self, task: Callable[..., list], batches: Sequence[list], **kwargs) -> Iterator[Outcome]:
        batches = list(batches)
        if self.workers == 1 or len(batches) == 1:
            for batch in batches:
                yield batch, task(batch, **kwargs), None
            return
        from joblib import Parallel, delayed

        chunk = 4 * self.workers
        for start in range(0, len(batches), chunk):
            part = batches[start:start + chunk]
            results = Parallel(n_jobs=self.workers, batch_size=1)(delayed(task)(b, **kwargs) for b in part)
            yield from ((batch, result, None) for batch, result in zip(part, results))


class DaskEngine:
    """A ``dask.distributed`` client: of a LocalCluster it started (closed with the engine) or of
    a running scheduler. Every worker must have this Python environment and see the paths the
    tasks get (dataset and feature cache on a shared filesystem)."""

    def __init__(self, client, *, cluster=None):
        self.client, self.cluster = client, cluster
        self.workers = max(1, sum(client.nthreads().values()))
        where = f"LocalCluster of {len(client.nthreads())} worker(s)" if cluster is not None else client.scheduler.address
        self.description = f"Dask, {where}, {self.workers} thread(s)"

    @classmethod
    def start(cls, spec: str) -> "DaskEngine":
        """``spec``: 'local', 'local:N', a scheduler address ('tcp://host:8786') or 'env'."""
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")  # no INFO lines on a CLI (workers inherit it)
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:
            raise ValueError("--cluster needs Dask: pip install 'dask[distributed]' "
                             "(the [cluster] extra: pip install 'genre-dashboard[cluster]')") from err
        if spec == "env":
            spec = os.environ.get(SCHEDULER_ENV, "")
            if not spec:
                raise ValueError(f"--cluster without an address needs ${SCHEDULER_ENV} (e.g. tcp://host:8786)")
        if spec == "local" or spec.startswith("local:"):
            n = spec.partition(":")[2]
            if n and (not n.isdigit() or int(n) < 1):
                raise ValueError(f"--cluster {spec}: N must be a whole number >= 1 (e.g. local:2)")
            cluster = LocalCluster(n_workers=int(n) if n else os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, dashboard_address=":0")
            return cls(Client(cluster), cluster=cluster)
        if "://" not in spec:
            raise ValueError(f"--cluster {spec!r}: use local, local:N or a scheduler address like tcp://host:8786")
        try:
            return cls(Client(spec, timeout="20s"))
        except (OSError, TimeoutError) as err:
            raise ValueError(f"cannot reach the Dask scheduler at {spec}: {err}") from err

    def run(self, task: Callable[..., list], batches: Sequence[list], **kwargs) -> Iterator[Outcome]:
        run_id = uuid.uuid4().hex[:8]
        killed = []
        for batch, result, err in self._submit(task, batches, f"{run_id}-", **kwargs):
            if _killed(err):
                killed.append(batch)
            else:
                yield batch, result, err and _failure(err)
        for i, item in enumerate(item for batch in killed for item in batch):  # alone, one after another
            for batch, result, err in self._submit(task, [[item]], f"{run_id}-alone{i}-", **kwargs):
                yield batch, result, err and _failure(err)

    def _submit(self, task: Callable[..., list], batches: Sequence[list], prefix: str,
                **kwargs) -> Iterator[tuple[list, list | None, Exception | None]]:
        """``(batch, results, None)`` or ``(batch, None, exception)`` as the batches finish."""
        from distributed import as_completed

        futures = {self.client.submit(task, batch, key=f"{task.__name__}-{prefix}{i}", pure=False, **kwargs): batch
                   for i, batch in enumerate(batches)}
        try:
            for future in as_completed(futures):
                batch = futures[future]
                try:
                    yield batch, future.result(), None
                except Exception as err:  # noqa: BLE001 - KilledWorker or a task bug: reported per item
                    yield batch, None, err
                finally:
                    future.release()
        finally:  # Ctrl-C or an abandoned generator: nothing keeps running for nobody
            self.client.cancel([f for f in futures if not f.done()], force=True)

    def close(self) -> None:
        """Disconnect; shut down the LocalCluster this engine started. What distributed logs while
        shutting down (after Ctrl-C its nannies race to close) is not news: it is silenced."""
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _killed(err: Exception | None) -> bool:
    """Whether a batch was given up because workers died running it (distributed.KilledWorker)."""
    return type(err).__name__ == "KilledWorker"


def _failure(err: Exception) -> str:
    if _killed(err):
        return ("its worker died while processing it, on every retry and alone "
                "(out of memory or a crash in a native library?)")
    return f"{type(err).__name__}: {err}"


@contextmanager
def open_engine(*, cluster: str | None = None, n_jobs: int = -1) -> Iterator[Engine]:
    """The engine for ``cluster`` (see the module docstring); closed (cluster shut down) on exit."""
    if cluster is None:
        yield LocalEngine(n_jobs=n_jobs)
        return
    engine = DaskEngine.start(cluster)
    try:
        yield engine
    finally:
        engine.close()
