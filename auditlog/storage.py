"""The storage client: every SQL statement of the project goes through here, for both engines.

clickhouse-connect's async client refuses the chdb backend, so the asyncio services call the sync client in a
small thread pool (chdb and the HTTP transport both release the GIL while they wait). Each worker thread has its
own client: a clickhouse-connect client serialises calls on its handle, and chdb lets many handles share the one
engine a process may host.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from auditlog.config import StoreConfig

T = TypeVar("T")

EVENTS_TABLE = "events"


class StoreError(RuntimeError):
    """The store could not run a statement (down, timing out, or rejecting it)."""


def connect(config: StoreConfig, *, with_database: bool = True) -> Client:
    """A new sync client for the store. `with_database=False` connects before the database exists."""
    database = config.database if with_database else None
    if config.embedded:
        config.path.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        return clickhouse_connect.get_client(interface="chdb", path=str(config.path), database=database)
    return clickhouse_connect.get_client(
        host=config.host,
        port=config.port,
        username=config.username,
        password=config.password,
        database=database or "default",
        secure=config.secure,
        # Inserts are already compressed as ZSTD columns server-side; compressing the HTTP body costs CPU here.
        compress=False,
        autogenerate_session_id=False,
    )


class Store:
    """Async facade over thread-local sync clients."""

    def __init__(self, config: StoreConfig, *, workers: int = 4) -> None:
        self.config = config
        self._local = threading.local()
        self._clients: list[Client] = []
        self._clients_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="store")

    def client(self) -> Client:
        """This thread's client (created on first use)."""
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = connect(self.config)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    async def run(self, fn: Callable[[Client], T]) -> T:
        """Run `fn(client)` on a worker thread; any driver failure becomes a StoreError."""
        loop = asyncio.get_running_loop()

        def call() -> T:
            try:
                return fn(self.client())
            except StoreError:
                raise
            except Exception as err:  # the drivers raise many types; callers only need "the store failed"
                failure = f"{type(err).__name__}: {err}"
                # Driver exceptions sit in reference cycles through their tracebacks, whose frames hold the
                # statement's data (a whole insert batch): clear them so it is freed now, not at the next full
                # GC pass (a consumer retrying against a dead store otherwise grows by a batch per attempt).
                traceback.clear_frames(err.__traceback__)
            raise StoreError(failure)

        return await loop.run_in_executor(self._pool, call)

    async def insert_events(self, rows: Sequence[bytes]) -> None:
        """Insert compact one-line JSON events; ClickHouse derives every other column."""
        # Joined on the worker thread: the batch-sized block then lives only in frames the failure path clears.
        await self.run(
            lambda c: c.raw_insert(
                EVENTS_TABLE, column_names=["event_json"], insert_block=b"\n".join(rows), fmt="LineAsString"
            )
        )

    async def query_tsv(self, sql: str, params: Mapping[str, Any]) -> list[bytes]:
        """Run a SELECT with server-side `{name:Type}` parameters; return its TabSeparatedRaw lines."""
        raw = await self.run(lambda c: c.raw_query(sql, parameters=dict(params), fmt="TabSeparatedRaw"))
        return raw.splitlines()

    async def ping(self) -> bool:
        try:
            return bool(await self.run(lambda c: c.command("SELECT 1") == 1))
        except StoreError:
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._clients_lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
