"""Listening sockets that a crowd of idle or slow clients cannot exhaust; every HTTP server of the project (webhook,
consumer probes, API server and its metrics) serves through `GuardedSite`.

aiohttp reads headers and bodies without a deadline and accepts connections without a bound, so a crowd of idle
sockets can use up the process's file descriptors and stop every listener at once. Here each listener:
- holds at most `max_connections`; past it the connection idle the longest (no request in progress: just accepted,
  in its TLS handshake, waiting for headers, or kept alive between requests) is closed to make room, and when every
  one is busy with a request the newcomer is answered 503 and closed. Idle crowds cannot lock out a real request;
  a real request still needs no headroom reserved for it.
- closes a connection whose request headers are not all in `header_timeout_s` after it was accepted (or after the
  first byte of its next request), whose body is not all in `body_timeout_s` after its headers, or (TLS) whose
  handshake is not done in `tls_handshake_timeout_s`. A keep-alive connection with nothing in flight waits for
  aiohttp's keep-alive timeout (or eviction).
The accept loop is ours (not `loop.create_server`) so that a connection counts from the moment it is accepted,
through its TLS handshake, until its socket is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import resource
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from auditlog.durations import duration_flag, flag_default

log = logging.getLogger(__name__)

_REFUSAL_LOG_INTERVAL_S = 10.0
# A pause after accept() fails for want of descriptors, so the loop does not spin while none are free.
_ACCEPT_RETRY_S = 0.1
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
)
_REFUSAL_BODY = (
    b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503,'
    b'"message":"too many connections: every one is busy with a request; retry shortly"}'
)


@dataclass(frozen=True)
class ListenerLimits:
    max_connections: int = 1000
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    tls_handshake_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("--max-connections must be at least 1")
        if min(self.header_timeout_s, self.body_timeout_s, self.tls_handshake_timeout_s) <= 0:
            raise ValueError("--header-timeout, --body-timeout and --tls-handshake-timeout must be positive")


DEFAULT_LIMITS = ListenerLimits()


def add_listener_arguments(parser: argparse.ArgumentParser, *, tls: bool = False) -> None:
    defaults = DEFAULT_LIMITS
    group = parser.add_argument_group("connections (each listener)")
    group.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help="connections held at most; past it the one idle longest is closed, or when all are busy the new one "
        "is answered 503",
    )
    group.add_argument(
        "--header-timeout",
        type=duration_flag,
        default=flag_default(defaults.header_timeout_s),
        help="a request's headers must be in within this, from the connection's accept or the request's first byte",
    )
    group.add_argument(
        "--body-timeout",
        type=duration_flag,
        default=flag_default(defaults.body_timeout_s),
        help="a request's body must be in within this after its headers",
    )
    if tls:
        group.add_argument(
            "--tls-handshake-timeout",
            type=duration_flag,
            default=flag_default(defaults.tls_handshake_timeout_s),
            help="a TLS handshake must be done within this after the connection is accepted",
        )


def listener_limits(args: argparse.Namespace) -> ListenerLimits:
    return ListenerLimits(
        max_connections=args.max_connections,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        tls_handshake_timeout_s=getattr(args, "tls_handshake_timeout", DEFAULT_LIMITS.tls_handshake_timeout_s),
    )


def raise_open_file_limit() -> None:
    """Soft descriptor limit up to the hard one (as Go programs do at start): the caps are meant to be what binds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class _Tracker:
    """Wraps the aiohttp server's request handler: tells each connection when its request starts and ends."""

    def __init__(self, handler: _Handler) -> None:
        self.handler = handler
        self.connections: dict[RequestHandler, _Connection] = {}

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        connection = self.connections.get(request.protocol)
        if connection is None:
            return await self.handler(request)
        connection.request_started(request)
        try:
            return await self.handler(request)
        finally:
            connection.request_done()


class _Connection(asyncio.Protocol):
    """Sits between the transport and aiohttp's protocol, forwarding everything, keeping the deadlines."""

    def __init__(self, site: GuardedSite, inner: RequestHandler, opening: asyncio.Task[None] | None) -> None:
        self.site = site
        self.inner = inner
        self.opening = opening  # the task that accepted it, until the connection is made
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.closing = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.site._made(self)
        self._arm(self.site.limits.header_timeout_s, "headers")
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.busy and self._timer is None:  # the first byte of the next request on a kept-alive connection
            self._arm(self.site.limits.header_timeout_s, "headers")
        self.inner.data_received(data)

    def eof_received(self) -> None:
        self.inner.eof_received()  # aiohttp keeps nothing half-open: the transport closes itself

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.site._lost(self)
        self.inner.connection_lost(exc)

    def request_started(self, request: web.BaseRequest) -> None:
        self.busy = True
        self.site._started(self)
        self._disarm()
        if not request.content.is_eof():
            self._arm(self.site.limits.body_timeout_s, "body", request)

    def request_done(self) -> None:
        self.busy = False
        self._disarm()
        self.site._done(self)

    def close(self) -> None:
        self.closing = True
        self._disarm()
        if self.transport is not None:
            self.transport.abort()  # not close(): a TLS close would wait for the peer's close_notify

    @property
    def peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return str(peer[0]) if isinstance(peer, tuple) else "?"

    def _arm(self, seconds: float, what: str, request: web.BaseRequest | None = None) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._late, seconds, what, request)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _late(self, seconds: float, what: str, request: web.BaseRequest | None) -> None:
        self._timer = None
        if request is not None and request.content.is_eof():
            return  # the body is in; how long the handler takes is its own business
        # A body cut short is a request lost: worth a line. Headers never sent are what idle clients and port scans
        # do all day.
        level = logging.INFO if request is not None else logging.DEBUG
        log.log(level, "closing connection from %s: request %s not received within %gs", self.peer, what, seconds)
        self.close()


class GuardedSite(web.BaseSite):
    """`web.TCPSite` with a connection cap and header, body and TLS-handshake deadlines (see the module doc)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limits: ListenerLimits,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self.limits = limits
        self._host, self._port = host, port
        self._sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        # Every socket accepted and not yet closed is in exactly one of these. The two dicts are ordered oldest
        # first: their fronts are the next to close when the cap is reached.
        self._opening: dict[asyncio.Task[None], None] = {}  # accepted; connection (TLS handshake) not made yet
        self._idle: dict[_Connection, None] = {}  # no request in progress
        self._active: set[_Connection] = set()  # a request in progress, or closing
        self._tracker: _Tracker | None = None
        self._refused = 0
        self._next_refusal_log = 0.0

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    @property
    def connections(self) -> int:
        """Sockets this listener holds open now, in any state."""
        return len(self._opening) + len(self._idle) + len(self._active)

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None  # BaseSite checked that runner.setup() was called
        if not isinstance(server.request_handler, _Tracker):  # once per server, before its first connection
            server.request_handler = _Tracker(server.request_handler)
        self._tracker = server.request_handler
        raise_open_file_limit()
        try:
            for family, kind, proto, _, address in await asyncio.get_running_loop().getaddrinfo(
                self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            ):
                sock = socket.socket(family, kind, proto)
                self._sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:  # as asyncio does: each family its own socket
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(self._backlog)
                sock.setblocking(False)
        except OSError as err:
            self._close_sockets()
            where = f"{self._host}:{self._port}"
            raise OSError(err.errno, f"error while attempting to bind on address {where}: {err.strerror}") from None
        self._server = _Sockets(self._sockets)  # type: ignore[assignment]  # what runner.addresses reads
        self._accepting = [asyncio.ensure_future(self._accept(sock)) for sock in self._sockets]

    async def stop(self) -> None:
        for task in [*self._accepting, *self._opening]:
            task.cancel()
        await asyncio.gather(*self._accepting, *self._opening, return_exceptions=True)
        self._accepting = []
        self._close_sockets()
        await super().stop()

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()

    async def _accept(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listening)
            except OSError as err:
                if err.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                log.warning("cannot accept on %s: %s; retrying", self.name, err.strerror)
                await asyncio.sleep(_ACCEPT_RETRY_S)
                continue
            if self.connections >= self.limits.max_connections and not self._close_idlest():
                _refuse(sock, tls=self._ssl_context is not None)
                self._refused += 1
                if loop.time() >= self._next_refusal_log:  # a line now and then, not one per connection
                    self._next_refusal_log = loop.time() + _REFUSAL_LOG_INTERVAL_S
                    log.warning(
                        "%s: all %d connections are busy with requests; refused %d so far (--max-connections)",
                        self.name,
                        self.limits.max_connections,
                        self._refused,
                    )
                continue
            opening = asyncio.ensure_future(self._open(sock))
            self._opening[opening] = None
            opening.add_done_callback(self._opened)

    async def _open(self, sock: socket.socket) -> None:
        server, opening = self._runner.server, asyncio.current_task()
        assert server is not None and opening is not None
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: _Connection(self, server(), opening),
                sock,
                ssl=self._ssl_context,
                ssl_handshake_timeout=self.limits.tls_handshake_timeout_s if self._ssl_context else None,
            )
        except (OSError, ssl.SSLError, TimeoutError) as err:  # a failed or timed-out handshake, a reset
            log.debug("connection on %s dropped before it opened: %s", self.name, err)
            sock.close()
        except asyncio.CancelledError:
            sock.close()
            raise

    def _opened(self, task: asyncio.Task[None]) -> None:
        self._opening.pop(task, None)

    def _close_idlest(self) -> bool:
        """Make room by closing the connection idle the longest: one still opening first, then one with no request."""
        for task in self._opening:
            del self._opening[task]
            task.cancel()  # its socket is closed as the task ends
            return True
        for connection in self._idle:
            assert connection.transport is not None
            if connection.transport.get_write_buffer_size():
                continue  # still sending the answer to its last request
            del self._idle[connection]
            self._active.add(connection)  # still holds its socket until `_lost`
            log.debug("closing connection from %s: idle the longest at the connection cap", connection.peer)
            connection.close()
            return True
        return False

    # Called by _Connection as its state changes.
    def _made(self, connection: _Connection) -> None:
        assert self._tracker is not None
        if connection.opening is not None:
            self._opening.pop(connection.opening, None)
            connection.opening = None
        self._tracker.connections[connection.inner] = connection
        self._idle[connection] = None

    def _started(self, connection: _Connection) -> None:
        self._idle.pop(connection, None)
        self._active.add(connection)

    def _done(self, connection: _Connection) -> None:
        if connection in self._active and not connection.closing:
            self._active.discard(connection)
            self._idle[connection] = None

    def _lost(self, connection: _Connection) -> None:
        assert self._tracker is not None
        self._tracker.connections.pop(connection.inner, None)
        self._idle.pop(connection, None)
        self._active.discard(connection)


class _Sockets:
    """What aiohttp's runner reads of a site's server: its sockets, and a close."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self.sockets = sockets

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _refuse(sock: socket.socket, *, tls: bool) -> None:
    """503 and close; over TLS nothing can be said before a handshake, so only the close."""
    with contextlib.suppress(OSError):
        if not tls:
            sock.send(_REFUSAL % (len(_REFUSAL_BODY), _REFUSAL_BODY))
            sock.shutdown(socket.SHUT_WR)
            # What the client sent already is read and dropped: unread data would turn the close into a reset,
            # which may discard the 503 before the client reads it.
            with contextlib.suppress(BlockingIOError):
                while sock.recv(65536):
                    pass
    sock.close()
