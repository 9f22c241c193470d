"""The HTTP surface: `POST /events` (kube-apiserver's audit webhook), `/healthz`, `/readyz`, `/metrics`.

kube-apiserver retries a batch on any non-2xx and drops it after its retries, so: 200 only when every message of
the batch is durably in JetStream, 503 only when JetStream is unavailable (a retry can help), 4xx when the body
itself is wrong (a retry cannot), and a bad item is dead-lettered rather than failing its batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from aiohttp import web
from nats.aio.client import Client as NATS

from auditlog.probes import add_probe_routes
from ingest.redaction import Redactor
from ingest.webhook import metrics
from ingest.webhook.collector import collector_paused
from ingest.webhook.decoding import (
    Aborted,
    BadRequest,
    Body,
    check_content_type,
    decoded,
    event_list_items,
    item_key_problems,
    plain_items,
    read_body,
)
from ingest.webhook.messages import Sorted, sort_items, sort_plain
from ingest.webhook.publisher import JetStreamUnavailable, PipelinedPublisher
from ingest.webhook.settings import WebhookSettings

log = logging.getLogger(__name__)

_SETTINGS = web.AppKey("settings", WebhookSettings)
_NC = web.AppKey("nc", NATS)
_PUBLISHER = web.AppKey("publisher", PipelinedPublisher)
_REDACTOR = web.AppKey("redactor", Redactor)
_STREAM_MAX_MSG_SIZE = web.AppKey("stream_max_msg_size", int)
_DECODING = web.AppKey("decoding", ThreadPoolExecutor)
_REASONS = {400: "BadRequest", 405: "MethodNotAllowed", 415: "UnsupportedMediaType", 503: "ServiceUnavailable"}


def _status(code: int, message: str, **headers: str) -> web.Response:
    """A Kubernetes-style Status body, the error shape kube-apiserver and kubectl users know."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown"),
        "code": code,
    }
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json", headers=headers)


def _reject(code: int, reason: str, message: str, **headers: str) -> web.Response:
    metrics.REJECTED.labels(reason).inc()
    return _status(code, message, **headers)


async def _events(request: web.Request) -> web.Response:
    started = time.perf_counter()
    response = await _answer_events(request)
    metrics.REQUESTS.labels(str(response.status)).inc()
    metrics.REQUEST_SECONDS.observe(time.perf_counter() - started)
    metrics.observe_answered(response.status, time.perf_counter() - started)
    return response


def _message_limit(max_payload: int, stream_max_msg_size: int) -> int:
    return min(max_payload, stream_max_msg_size) if stream_max_msg_size > 0 else max_payload


def _sort_body(body: Body, settings: WebhookSettings, max_payload: int, redactor: Redactor) -> tuple[int, Sorted]:
    """(items received, what to publish): without building the items when all are storable (the common case),
    else parsed whole. Parsed items die here, freed by reference counting, so that the garbage collector never
    walks them while the batch waits for its PubAcks (nor runs while they are built: `collector`)."""
    where = {"subject": settings.subject, "dead_letter_subject": settings.dead_letter_subject}
    with collector_paused():
        data = decoded(body, settings.max_body_bytes)
        plain, redacted = redactor.redact_plain(plain_items(data, settings.max_items))  # before publishing
        if plain is not None:
            fast = sort_plain(plain, **where, max_payload=max_payload)
            if fast is not None:
                redactor.count(redacted)
                return len(plain), fast
        items = event_list_items(data, settings.max_items, counted=plain is not None)
        items = [redactor.redact_item(item) for item in items]
        key_problems = item_key_problems(data)
        return len(items), sort_items(items, **where, max_payload=max_payload, key_problems=key_problems)


async def _answer_events(request: web.Request) -> web.Response:
    if request.method != "POST":
        return _reject(405, "method", f"{request.method} is not allowed on /events; POST an EventList", Allow="POST")
    settings, nc = request.app[_SETTINGS], request.app[_NC]
    try:
        check_content_type(request)
        body = await read_body(request, settings.max_body_bytes)
        limit = _message_limit(nc.max_payload, request.app[_STREAM_MAX_MSG_SIZE])
        redactor = request.app[_REDACTOR]
        if body.heavy:  # the loop keeps serving other requests meanwhile
            work = asyncio.get_running_loop().run_in_executor(
                request.app[_DECODING], _sort_body, body, settings, limit, redactor
            )
            received, sorted_items = await work
        else:
            received, sorted_items = _sort_body(body, settings, limit, redactor)
    except BadRequest as err:
        if isinstance(err, Aborted):
            log.info("request from %s: %s", request.remote, err.message)
        return _reject(err.status, err.reason, err.message)
    metrics.RECEIVED.inc(received)
    publisher = request.app[_PUBLISHER]
    started = time.perf_counter()
    try:
        outcome = await publisher.publish(sorted_items.events)
        await publisher.publish(sorted_items.dead_letters)  # rare: after the events, to count their duplicates apart
    except JetStreamUnavailable as err:
        log.warning("answering 503 to a batch of %d items: %s", received, err)
        return _reject(
            503, "jetstream_unavailable", f"JetStream is unavailable, retry the batch: {err}", **{"Retry-After": "1"}
        )
    metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
    metrics.PUBLISHED.inc(len(sorted_items.events))
    metrics.DUPLICATES.inc(outcome.duplicates)
    for reason, count in sorted_items.dead_letter_reasons.items():
        metrics.DEAD_LETTERED.labels(reason).inc(count)
    summary: dict[str, Any] = {
        "accepted": len(sorted_items.events),
        "deadLettered": len(sorted_items.dead_letters),
        "duplicates": outcome.duplicates,
    }
    return web.Response(body=orjson.dumps(summary), content_type="application/json")


async def _stop_decoding(app: web.Application) -> None:
    app[_DECODING].shutdown(wait=False, cancel_futures=True)


def build_app(
    settings: WebhookSettings, nc: NATS, publisher: PipelinedPublisher, stream_max_msg_size: int
) -> web.Application:
    app = web.Application()  # the body limit is enforced by decoding.read_body, on decompressed bytes
    app[_SETTINGS], app[_NC], app[_PUBLISHER] = settings, nc, publisher
    app[_STREAM_MAX_MSG_SIZE] = stream_max_msg_size
    # Heavy bodies (gzip, over 1 MiB) are decoded here, one at a time: the loop is left free, and memory holds one
    # decoding at most (simdjson's tape of a hostile 64 MiB body of `{},` is ~6x its size). One worker loses little:
    # the GIL lets only zlib and simdjson run beside the loop anyway.
    app[_DECODING] = ThreadPoolExecutor(1, thread_name_prefix="webhook-decode")
    app.on_cleanup.append(_stop_decoding)
    app[_REDACTOR] = Redactor(settings.redaction, on_redacted=lambda resource: metrics.REDACTED.labels(resource).inc())
    app.router.add_route("*", "/events", _events)

    async def unready_reason() -> str | None:
        return None if nc.is_connected else "not connected to NATS"

    add_probe_routes(app, unready_reason)  # the default registry, which holds the webhook's metrics
    return app
