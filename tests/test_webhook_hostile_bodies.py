"""Small bodies that cost a lot: many gzip members, millions of tiny items. Each is refused by a bound checked
before the work it bounds, in time linear in its size, off the event loop; other requests are served meanwhile."""

from __future__ import annotations

import asyncio
import gc
import gzip
import logging
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from webhook_support import JSON, Running, event_list, running_webhook

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from activity.devtools.natsd import NatsServer
from ingest.webhook.collector import collector_paused
from ingest.webhook.decoding import MAX_GZIP_MEMBERS, BadRequest, event_list_items, gunzip, plain_items

GZIP = {**JSON, "Content-Encoding": "gzip"}
PREFIX = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['


def _tiny_items(count: int, last: bytes = b"{}") -> bytes:
    return PREFIX + b"{}," * (count - 1) + last + b"]}"


# Three bodies of a few MB at most on the wire, each once costing seconds of a stalled loop and (the last two)
# hundreds of MB of Python objects before their 400.
EMPTY_MEMBERS = gzip.compress(b"") * 150_000
TINY_ITEMS = gzip.compress(_tiny_items(2_500_000))
TINY_ITEMS_ONE_NOT_UTF8 = gzip.compress(_tiny_items(2_500_000, last=b'"\xff"'))  # only the exact parser reads it


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=MAX_GZIP_MEMBERS), st.integers(0, 2))
@settings(max_examples=60, deadline=None)
def test_gunzip_reads_every_member_exactly(members: list[bytes], level: int) -> None:
    body = b"".join(gzip.compress(m, compresslevel=level) for m in members)
    assert gunzip(body, max_bytes=1 << 20) == b"".join(members)
    assert gunzip(body, max_bytes=len(b"".join(members))) == b"".join(members)
    if members != [b""] * len(members):
        with pytest.raises(BadRequest, match="decompressed body is over the limit"):
            gunzip(body, max_bytes=len(b"".join(members)) - 1)


def test_gzip_members_past_the_bound_are_refused_as_they_start() -> None:
    ok = gzip.compress(b"x") * MAX_GZIP_MEMBERS
    assert gunzip(ok, 1 << 20) == b"x" * MAX_GZIP_MEMBERS
    started = time.perf_counter()
    with pytest.raises(BadRequest, match=f"more than {MAX_GZIP_MEMBERS} members") as refused:
        gunzip(EMPTY_MEMBERS, 1 << 20)
    assert refused.value.status == 400
    assert time.perf_counter() - started < 1.0  # was seconds: each member copied the rest of the body


def test_gunzip_of_one_large_member_stays_linear() -> None:
    # Chunked input: a member that ends near the start of a large body must not copy the rest once per member.
    body = gzip.compress(b"a" * 100) + gzip.compress(bytes(range(256)) * 40_000, compresslevel=1)
    assert gunzip(body, 1 << 24) == b"a" * 100 + bytes(range(256)) * 40_000


@pytest.mark.parametrize("body", [_tiny_items(2_500_000), _tiny_items(2_500_000, last=b'"\xff"')], ids=["utf8", "not"])
def test_millions_of_tiny_items_are_counted_before_any_is_built(body: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(BadRequest, match="EventList has 2500000 items, at most 1000") as refused:
            plain = plain_items(body, 1000)
            event_list_items(body, 1000, counted=plain is not None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.status == 400
    assert peak < 8 * len(body)  # a few copies of the body, at most; built, the items took ~25x it


@pytest.fixture
async def webhook(nats_server: NatsServer) -> AsyncIterator[Running]:
    async with running_webhook(nats_server, max_body_bytes=8 * 1024 * 1024, max_items=1000) as running:
        yield running


async def _served_meanwhile(webhook: Running, attacked: asyncio.Future[Any]) -> list[float]:
    """How long each /healthz took while the attack ran, and that a real batch was stored meanwhile."""
    latencies = []
    batch = event_list(list(EventGenerator(GeneratorSettings(seed=5)).events(50)))
    posted = False
    while not attacked.done() or not posted:
        started = time.perf_counter()
        async with asyncio.timeout(30):
            async with webhook.http.get(webhook.handle.url + "/healthz") as response:
                assert response.status == 200
            if not posted:
                status, summary = await webhook.post(batch)
                assert (status, summary["accepted"]) == (200, 100)
                posted = True
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return latencies


ATTACKS = [
    (EMPTY_MEMBERS, GZIP, "more than 64 members"),
    (TINY_ITEMS, GZIP, "2500000 items, at most 1000"),
    (TINY_ITEMS_ONE_NOT_UTF8, GZIP, "2500000 items, at most 1000"),
    (_tiny_items(2_500_000), JSON, "2500000 items, at most 1000"),
]


async def test_hostile_bodies_get_400_while_other_requests_are_served(webhook: Running) -> None:
    async def attack() -> list[tuple[int, str]]:
        answers = []
        for body, headers, _ in ATTACKS * 2:
            status, answer = await webhook.post(body, headers)
            answers.append((status, answer["message"]))
        return answers

    attacking = asyncio.ensure_future(attack())
    latencies = await _served_meanwhile(webhook, attacking)
    answers = attacking.result()
    for (status, message), (_, _, words) in zip(answers, ATTACKS * 2, strict=True):
        assert status == 400 and words in message
    # Generous for a shared 2-core machine; these bodies used to stall the loop for seconds each.
    assert max(latencies) < 2.0, latencies


async def test_an_upload_aborted_midway_is_one_log_line(webhook: Running, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    host, port = webhook.handle.url.removeprefix("http://").rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + PREFIX
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    for _ in range(100):
        if any("body ended before it was complete" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    logged = [r for r in caplog.records if r.name.startswith(("ingest", "aiohttp"))]
    assert [r.getMessage() for r in logged if "body ended" in r.getMessage()] != []
    assert all(r.exc_info is None and "Traceback" not in r.getMessage() for r in logged)
    status, _ = await webhook.post(event_list([]))
    assert status == 200


def test_the_collector_comes_back_only_when_the_last_overlapping_sort_ends() -> None:
    assert gc.isenabled()
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()  # e.g. a heavy body in the worker while a small one is sorted on the loop
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()
