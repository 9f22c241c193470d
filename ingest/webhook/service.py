"""Hosting the receiver in a running event loop: streams checked or set up, publisher and HTTP server started,
and a handle that stops them in order. `activity webhook` and the all-in-one `activity up` both go through here."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

from aiohttp import web
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from auditlog.listener import GuardedSite
from ingest.jetstream import DEAD_LETTER_SETTINGS, ensure_stream
from ingest.webhook import metrics
from ingest.webhook.publisher import PipelinedPublisher
from ingest.webhook.receiver import build_app
from ingest.webhook.settings import WebhookSettings

log = logging.getLogger(__name__)


@dataclass
class WebhookHandle:
    """A running receiver: `url` is where it listens (the real port when asked for port 0)."""

    settings: WebhookSettings
    url: str
    runner: web.AppRunner
    publisher: PipelinedPublisher

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (their PubAcks come back), then stop publishing."""
        await self.runner.cleanup()
        await self.publisher.stop()
        for gauge in (metrics.IN_FLIGHT, metrics.NATS_CONNECTED):
            gauge.set_function(lambda: 0.0)


@dataclass(frozen=True)
class _Streams:
    summary: str  # for the start-up line
    max_msg_size: int  # the events stream's own message limit, -1 when it has none (or is not there yet)


async def _prepare_streams(settings: WebhookSettings, nc: NATS) -> _Streams:
    js = nc.jetstream()
    if settings.manage_streams:
        summary = ", ".join([await ensure_stream(js, s) for s in (settings.stream, DEAD_LETTER_SETTINGS)])
    else:
        summary = "streams left to their owner"
    max_msg_size, missing = -1, []
    for name in (settings.stream.name, DEAD_LETTER_SETTINGS.name):
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            missing.append(name)
            continue
        if name == settings.stream.name:
            max_msg_size = info.config.max_msg_size or -1
    if missing:
        log.warning("streams %s not found: batches will get 503 until they exist", ", ".join(missing))
    return _Streams(summary, max_msg_size)


async def start_webhook(settings: WebhookSettings, nc: NATS) -> WebhookHandle:
    """Host the receiver in the running event loop on `nc` (connected, reconnecting); stop it with `.stop()`."""
    streams = await _prepare_streams(settings, nc)
    publisher = PipelinedPublisher(nc, batch_timeout_s=settings.publish_timeout_s, max_in_flight=settings.max_in_flight)
    await publisher.start()
    app = build_app(settings, nc, publisher, streams.max_msg_size)
    # In-flight requests get their publish timeout plus a margin to finish before shutdown cuts them.
    runner = web.AppRunner(
        app,
        auto_decompress=False,  # decoding.read_body gunzips with a bound on the output
        shutdown_timeout=settings.publish_timeout_s + 5,
        access_log=None,
        # After an early 4xx (body over the limit) aiohttp drains the unread body so the client can read the answer;
        # 2 s instead of 10 keeps a stalled client from holding up a shutdown.
        lingering_time=2.0,
    )
    await runner.setup()
    try:
        await GuardedSite(runner, settings.host, settings.port, limits=settings.listener).start()
    except BaseException:  # e.g. the port is taken: leave nothing running behind
        await runner.cleanup()
        await publisher.stop()
        raise
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    # What start-up allocated lives as long as the process: frozen, the collector's full passes stop walking it
    # while requests churn through short-lived objects.
    gc.freeze()
    metrics.NATS_CONNECTED.set_function(lambda: float(nc.is_connected))
    metrics.IN_FLIGHT.set_function(lambda: float(publisher.in_flight))
    log.info(
        "webhook listening on %s/events, publishing to stream %s subject %s (dead letters: %s); %s",
        url,
        settings.stream.name,
        settings.subject,
        settings.dead_letter_subject,
        streams.summary,
    )
    return WebhookHandle(settings, url, runner, publisher)
