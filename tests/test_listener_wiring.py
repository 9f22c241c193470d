"""Every listener serves through the guarded site, with its limits from the command's flags: the webhook, the
consumer's probes and the API server (TLS). Real sockets, small numbers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from aiohttp import web
from apiserver_support import running_apiserver
from consumer_support import FAST
from polling import eventually
from webhook_support import event_list, running_webhook

from activity.cli import build_parser
from activity.devtools.natsd import NatsServer
from apiserver.server.options import settings_from_args
from auditlog.listener import GuardedSite, ListenerLimits, listener_limits
from auditlog.storage import Store
from ingest.consumer.consumer import Consumer
from ingest.consumer.probes import start_probes
from ingest.jetstream import connect
from ingest.webhook.command import settings_from

SMALL = ListenerLimits(max_connections=20, header_timeout_s=1.0, body_timeout_s=1.0, tls_handshake_timeout_s=1.0)
FLAGS = ["--max-connections=20", "--header-timeout=1.5s", "--body-timeout=2s"]


async def _crowd(port: int, count: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
    return writers


def _site(sites: Iterable[web.BaseSite]) -> GuardedSite:
    (site,) = sites
    assert isinstance(site, GuardedSite)
    return site


async def test_the_webhook_holds_its_cap_against_an_idle_crowd_and_still_stores_a_batch(
    nats_server: NatsServer,
) -> None:
    async with running_webhook(nats_server, listener=SMALL) as webhook:
        site = _site(webhook.handle.runner.sites)
        crowd = await _crowd(int(webhook.handle.url.rsplit(":", 1)[1]), 60)
        await eventually(lambda: site.connections <= SMALL.max_connections, "the webhook to hold its cap")
        assert (await webhook.post(event_list([])))[0] == 200
        await eventually(lambda: site.connections <= 1, "the idle crowd to be closed at the header timeout")
        for writer in crowd:
            writer.close()


async def test_the_consumer_probes_hold_their_cap(nats_server: NatsServer, store: Store) -> None:
    nc = await connect(nats_server.url, "probe-test")
    runner = await start_probes(Consumer(FAST, nc, store), "127.0.0.1", 0, SMALL)
    try:
        site = _site(runner.sites)
        port = int(runner.addresses[0][1])
        crowd = await _crowd(port, 60)
        await eventually(lambda: site.connections <= SMALL.max_connections, "the probes to hold their cap")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 200")
        for other in (*crowd, writer):
            other.close()
    finally:
        await runner.cleanup()
        await nc.close()


def test_the_api_server_drops_a_client_that_never_handshakes(tmp_path: Path, store_dsn: str) -> None:
    with running_apiserver(tmp_path, store_dsn, listener=SMALL) as env:
        silent = socket.create_connection(("127.0.0.1", env.handle.port))
        silent.settimeout(15)
        started = time.monotonic()
        assert silent.recv(1) == b""  # closed by the server, not answered
        assert time.monotonic() - started < SMALL.tls_handshake_timeout_s + 10
        silent.close()
        assert env.request("GET", "/readyz").status == 200


def test_each_command_takes_the_connection_flags() -> None:
    webhook = settings_from(build_parser("webhook").parse_args(["webhook", *FLAGS]))
    consume = listener_limits(build_parser("consume").parse_args(["consume", "--store=chdb:///x", *FLAGS]))
    apiserver = settings_from_args(
        build_parser("apiserver").parse_args(
            ["apiserver", "--store=chdb:///x", "--tls-handshake-timeout=3s", "--authorization-mode=AlwaysAllow", *FLAGS]
        )
    )
    expected = ListenerLimits(max_connections=20, header_timeout_s=1.5, body_timeout_s=2.0)
    assert webhook.listener == consume == expected
    assert apiserver.listener == ListenerLimits(20, 1.5, 2.0, tls_handshake_timeout_s=3.0)
    with pytest.raises(ValueError, match="max-connections"):
        settings_from(build_parser("webhook").parse_args(["webhook", "--max-connections=0"]))
