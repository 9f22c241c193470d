"""`activity consume` as a real process: SIGKILL mid-batch loses nothing and shows nothing twice; SIGTERM
flushes the held batch and exits 0; the probes answer. The store directory is read only after the process
exited (one chdb engine per directory)."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import aiohttp
from consumer_support import (
    FAST_FLAGS,
    drained,
    durable_info,
    events_stream,
    eventually,
    generated,
    keys,
    publish,
    spawn_consumer,
    stored_keys,
    stored_rows,
)
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from activity.devtools.bench.processes import sample_value
from activity.devtools.natsd import NatsServer, free_port
from auditlog.config import parse_store_dsn
from auditlog.storage import Store
from ingest.jetstream import DURABLE, STREAM, connect


async def _exited(process: subprocess.Popen[bytes], within: float = 30.0) -> int:
    await eventually(lambda: process.poll() is not None, within=within, what="the consumer to exit")
    return process.returncode


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


async def _some_acked_some_not(nc: NATS) -> bool:
    try:
        info = await durable_info(nc)
    except NotFoundError:
        return False
    return info.ack_floor.stream_seq > 0 and info.num_ack_pending > 0  # some stored, a batch held


async def test_sigkill_mid_batch_then_restart_loses_nothing_and_shows_nothing_twice(
    nats_server: NatsServer, store_dsn: str
) -> None:
    events = generated(600)
    nc = await connect(nats_server.url, "test")
    flags = [*FAST_FLAGS, "--ack-wait", "2s"]  # what the killed process held comes back after 2 s
    first = spawn_consumer(nats_server.url, store_dsn, *flags)
    second: subprocess.Popen[bytes] | None = None
    try:
        await events_stream(nc)
        await publish(nc, events)
        await eventually(lambda: _some_acked_some_not(nc), what="the consumer midway")
        first.kill()
        assert await _exited(first) == -signal.SIGKILL
        assert not await drained(nc)

        second = spawn_consumer(nats_server.url, store_dsn, *flags)
        await eventually(lambda: drained(nc), what="every message acked after the restart", within=60)
        second.send_signal(signal.SIGTERM)
        assert await _exited(second) == 0
    finally:
        _stop(first)
        if second is not None:
            _stop(second)
        await nc.close()
    store = Store(parse_store_dsn(store_dsn))
    try:
        shown = await stored_keys(store)
        assert Counter(shown) == Counter(keys(events))  # each once
        assert await stored_rows(store) >= len(shown)  # redelivered copies may exist on disk, never in reads
    finally:
        store.close()


async def test_sigterm_flushes_the_held_batch_acks_and_exits_0_and_probes_answer(
    nats_server: NatsServer, store_dsn: str
) -> None:
    events = generated(150)
    port = free_port()
    nc = await connect(nats_server.url, "test")
    # A batch that neither fills nor ages during the test: only the SIGTERM flush can store it.
    process = spawn_consumer(
        nats_server.url,
        store_dsn,
        "--batch-events",
        "5000",
        "--batch-age",
        "2m",
        "--listen",
        f"127.0.0.1:{port}",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await events_stream(nc)
        await publish(nc, events)
        await eventually(lambda: _all_held(nc, len(events)), what="every message pulled and held")
        async with aiohttp.ClientSession() as http:
            await eventually(lambda: _status(http, base + "/readyz", 200), what="ready")
            assert await _status(http, base + "/healthz", 200)
            async with http.get(base + "/metrics") as response:
                metrics = await response.text()
        assert sample_value(metrics, "activity_consumer_events_inserted_total") == 0  # held, not stored, until SIGTERM
        assert sample_value(metrics, "activity_consumer_messages_dead_lettered_total", reason="not-json") == 0

        process.send_signal(signal.SIGTERM)
        assert await _exited(process) == 0
        assert await drained(nc)
    finally:
        _stop(process)
        await nc.close()
    store = Store(parse_store_dsn(store_dsn))
    try:
        assert Counter(await stored_keys(store)) == Counter(keys(events))
    finally:
        store.close()


async def test_bad_flags_exit_2_with_a_message(nats_server: NatsServer, store_dsn: str) -> None:
    process = spawn_consumer(nats_server.url, store_dsn, "--batch-events", "500", "--max-ack-pending", "100")
    assert await _exited(process) == 2
    assert process.stderr is not None
    assert b"max_ack_pending (100) must be at least batch_events (500)" in process.stderr.read()


async def _all_held(nc: NATS, count: int) -> bool:
    try:
        info = await durable_info(nc)
    except NotFoundError:
        return False
    return info.num_ack_pending == count


async def _status(http: aiohttp.ClientSession, url: str, status: int) -> bool:
    try:
        async with http.get(url) as response:
            return response.status == status
    except aiohttp.ClientConnectionError:
        return False


async def test_sigterm_with_the_store_down_hands_the_batch_back_and_exits_1(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    events = generated(50)
    nc = await connect(nats_server.url, "test")
    never_migrated = f"chdb://{tmp_path / 'empty'}"
    process = spawn_consumer(nats_server.url, never_migrated, *FAST_FLAGS, "--shutdown-grace", "1s")
    try:
        await events_stream(nc)
        await publish(nc, events)
        await eventually(lambda: _all_held(nc, len(events)), what="every message pulled and held")
        process.send_signal(signal.SIGTERM)
        assert await _exited(process) == 1
        assert process.stderr is not None
        assert b"will be redelivered" in process.stderr.read()
        assert (await durable_info(nc)).ack_floor.stream_seq == 0  # nothing acked
        # Handed back with -NAK: the next puller gets them at once, not after ack_wait (30 s).
        puller = await nc.jetstream().pull_subscribe_bind(DURABLE, STREAM)
        again: list[Msg] = []
        while len(again) < len(events):
            again += await puller.fetch(len(events) - len(again), timeout=10)
        assert {m.metadata.num_delivered for m in again} == {2}
    finally:
        _stop(process)
        await nc.close()
