"""The guarded listener with real sockets: a cap that idle crowds cannot lock real requests out of, a 503 when every
connection is busy, slowloris headers and stalled bodies cut at their deadlines, TLS handshakes that never come
dropped. Small numbers, short timeouts: each test takes a few seconds."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from polling import eventually

from apiserver.machinery.certs import self_signed_serving
from auditlog.listener import GuardedSite, ListenerLimits

CAP = 20
LIMITS = ListenerLimits(max_connections=CAP, header_timeout_s=1.0, body_timeout_s=1.0, tls_handshake_timeout_s=1.0)
# Deadlines far beyond the tests: what they see of the cap is the cap's doing, not a timeout's.
PATIENT = ListenerLimits(max_connections=CAP, header_timeout_s=300, body_timeout_s=300, tls_handshake_timeout_s=300)


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text=f"read {len(await request.read())} bytes")


BIG = 32 * 1024 * 1024  # more than the kernel buffers hold: the answer waits in the transport for a slow reader


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * BIG)


@dataclass
class Served:
    site: GuardedSite
    port: int
    tls: ssl.SSLContext | None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/"

    async def get(self) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.post(self.url, data=b"x" * 10, ssl=False) as response:
            return response.status, await response.text()


def _serving_context() -> ssl.SSLContext:
    pair = self_signed_serving(("127.0.0.1",))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
        cert.write(pair.cert_pem)
        key.write(pair.key_pem)
        cert.flush()
        key.flush()
        context.load_cert_chain(cert.name, key.name)
    return context


async def _serve(tls: bool, limits: ListenerLimits = LIMITS) -> AsyncIterator[Served]:
    app = web.Application()
    app.router.add_route("*", "/", _hello)
    app.router.add_get("/big", _big)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    context = _serving_context() if tls else None
    site = GuardedSite(runner, "127.0.0.1", 0, limits=limits, ssl_context=context)
    await site.start()
    try:
        yield Served(site, int(runner.addresses[0][1]), context)
    finally:
        await runner.cleanup()


@pytest.fixture
async def plain() -> AsyncIterator[Served]:
    async for served in _serve(tls=False):
        yield served


@pytest.fixture
async def tls() -> AsyncIterator[Served]:
    async for served in _serve(tls=True):
        yield served


@pytest.fixture
async def patient() -> AsyncIterator[Served]:
    async for served in _serve(tls=False, limits=PATIENT):
        yield served


@pytest.fixture
async def patient_tls() -> AsyncIterator[Served]:
    async for served in _serve(tls=True, limits=PATIENT):
        yield served


async def _connect(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", served.port)


async def _closed_by_server(reader: asyncio.StreamReader, within: float = 10.0) -> bytes:
    """Everything the server sent until it closed the connection (fails if it does not within `within`)."""
    async with asyncio.timeout(within):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def test_idle_connections_past_the_cap_never_hold_more_and_a_request_still_succeeds(patient: Served) -> None:
    idle = [await _connect(patient) for _ in range(3 * CAP)]
    await eventually(lambda: patient.site.connections <= CAP, "the listener to hold no more than its cap")
    # The oldest idle ones were closed to make room.
    assert await _closed_by_server(idle[0][0]) == b""
    assert patient.site.connections <= CAP
    assert await patient.get() == (200, "read 10 bytes")
    for _, writer in idle:
        writer.close()


async def test_a_connection_still_sending_its_answer_is_not_closed_to_make_room(patient: Served) -> None:
    plain = patient
    reader, writer = await _connect(plain)
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")  # and not read yet
    await eventually(lambda: len(plain.site._idle) == 1, "the handler to have answered")
    crowd = [await _connect(plain) for _ in range(3 * CAP)]
    await eventually(lambda: plain.site.connections <= CAP, "the listener to hold no more than its cap")
    async with asyncio.timeout(30):
        await reader.readuntil(b"\r\n\r\n")
        assert len(await reader.readexactly(BIG)) == BIG
    for _, other in (*crowd, (reader, writer)):
        other.close()


async def test_when_every_connection_is_busy_the_next_one_gets_503_then_is_served_once_bodies_time_out(
    plain: Served,
) -> None:
    stalled = []
    for _ in range(CAP):  # each sends its headers and a tenth of its body, then stalls
        reader, writer = await _connect(plain)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        stalled.append((reader, writer))
    await eventually(lambda: len(plain.site._active) == CAP, "every connection to be busy with its request")

    reader, writer = await _connect(plain)
    refused = await _closed_by_server(reader)
    assert refused.startswith(b"HTTP/1.1 503 ") and b"too many connections" in refused
    writer.close()

    for reader, _ in stalled:  # cut at the body timeout
        await _closed_by_server(reader)
    assert await plain.get() == (200, "read 10 bytes")


async def test_a_slowloris_is_cut_at_the_header_timeout(plain: Served) -> None:
    reader, writer = await _connect(plain)
    started = time.monotonic()
    trickled = b"POST / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: y\r\n" * 1000

    async def trickle() -> None:
        for byte in trickled:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)

    trickling = asyncio.ensure_future(trickle())
    await _closed_by_server(reader)
    elapsed = time.monotonic() - started
    assert not trickling.done() or trickling.exception() is not None  # cut while still sending
    trickling.cancel()
    assert LIMITS.header_timeout_s * 0.9 <= elapsed < LIMITS.header_timeout_s + 8
    assert await plain.get() == (200, "read 10 bytes")


async def test_a_client_that_never_sends_a_request_is_closed_at_the_header_timeout(plain: Served) -> None:
    reader, _ = await _connect(plain)
    started = time.monotonic()
    assert await _closed_by_server(reader) == b""  # closed without an answer
    assert time.monotonic() - started >= LIMITS.header_timeout_s * 0.9  # by the header timeout, not at once
    await eventually(lambda: plain.site.connections == 0, "the listener to let go of it")


async def test_a_tls_client_that_never_handshakes_is_dropped(tls: Served) -> None:
    silent = [await _connect(tls) for _ in range(5)]
    started = time.monotonic()
    for reader, _ in silent:
        await _closed_by_server(reader)
    assert time.monotonic() - started < LIMITS.tls_handshake_timeout_s + 8
    await eventually(lambda: tls.site.connections == 0, "the listener to let go of them")
    assert await tls.get() == (200, "read 10 bytes")


async def test_tls_handshakes_that_never_come_count_against_the_cap_and_yield_to_real_clients(
    patient_tls: Served,
) -> None:
    tls = patient_tls
    silent = [await _connect(tls) for _ in range(3 * CAP)]
    await eventually(lambda: tls.site.connections <= CAP, "the listener to hold no more than its cap")
    assert await tls.get() == (200, "read 10 bytes")
    for _, writer in silent:
        writer.close()


async def test_a_taken_port_is_an_error_naming_it(plain: Served) -> None:
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        with pytest.raises(OSError, match=f"127.0.0.1:{plain.port}"):
            await GuardedSite(runner, "127.0.0.1", plain.port, limits=LIMITS).start()
    finally:
        await runner.cleanup()


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max-connections"):
        ListenerLimits(max_connections=0)
    with pytest.raises(ValueError, match="header-timeout"):
        ListenerLimits(header_timeout_s=0)
