"""Dask: run the parallel head of each batch on a Dask cluster through its concurrent.futures executor."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

from .._optional import import_optional

__all__ = ['open_dask_executor']


def open_dask_executor(address: str | None) -> tuple[Executor, Callable[[], None]]:
    """A Dask executor on the cluster at `address` (a new local cluster if None) and a function closing it."""
    distributed = import_optional('distributed', extra='dask')
    if address is None:
        cluster = distributed.LocalCluster(processes=True, dashboard_address=None)
        client = distributed.Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()
    else:
        client = distributed.Client(address)
        close = client.close
    return client.get_executor(), close
