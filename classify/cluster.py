"""Where `classify ablate` runs its rows: `--backend local` (joblib processes on this machine) or
`--backend dask[:ADDRESS]` (tasks on a Dask cluster through dask.distributed: a LocalCluster
started for the run, or the scheduler at ADDRESS, e.g. a dask-jobqueue SLURMCluster's). Each row
writes its own row file, so the row cache on disk stays the one source of reuse: a grid whose
cluster went away resumes with the rows it finished. No scheduling of our own: the cluster's."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from featx.ecosystem.extras import need
from featx.errors import FeatxError

BACKENDS = ("local", "dask")


def parse_backend(spec: str | None) -> tuple[str, str | None]:
    """'local', 'dask', 'dask:tcp://host:8786' -> (kind, address or None)."""
    kind, _, address = (spec or "local").partition(":")
    if kind not in BACKENDS or (kind == "local" and address):
        raise FeatxError(f"--backend {spec!r}: use local, dask (a LocalCluster) or "
                         f"dask:ADDRESS (a running scheduler, e.g. tcp://host:8786)")
    if kind == "dask":
        need("distributed")  # a missing extra fails before any work
    return kind, address or None


@contextmanager
def dask_client(address: str | None, workers: int):
    """A client of the scheduler at `address`, or of a LocalCluster of `workers` single-threaded
    processes started (and closed) here."""
    distributed = need("distributed")
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)  # its INFO lines are its business
    try:
        if address:
            client = distributed.Client(address, timeout="30s")
        else:
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                               processes=True, dashboard_address=":0")
            client = distributed.Client(cluster)
    except (OSError, TimeoutError) as e:
        raise FeatxError(f"--backend dask{':' + address if address else ''}: cannot reach the "
                         f"scheduler ({e})") from None
    try:
        yield client
    finally:
        client.close()
        if not address:
            cluster.close()


def run_calls(backend: str | None, workers: int, fn: Callable, calls: Sequence[tuple]
              ) -> Iterator:
    """fn(*args) for every args in `calls`, results yielded as they finish."""
    kind, address = parse_backend(backend)
    if kind == "local":
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=workers, return_as="generator_unordered")(
            delayed(fn)(*args) for args in calls)
        return
    from distributed import as_completed

    with dask_client(address, workers) as client:
        futures = [client.submit(fn, *args, pure=False) for args in calls]
        for future in as_completed(futures):
            yield future.result()
