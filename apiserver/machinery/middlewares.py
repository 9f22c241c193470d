"""Request filters around every handler: turn any failure into a metav1.Status, and bound how long a request may
take (kube-apiserver's `?timeout=` is honoured up to the server's own limit) and how many may run at once."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from aiohttp import ClientPayloadError, web
from aiohttp.typedefs import Handler, Middleware

from apiserver.machinery.request import MASTERS_GROUP, USER_KEY
from apiserver.machinery.status import (
    ApiError,
    bad_request,
    internal_error,
    method_not_allowed,
    not_found,
    status_response,
    too_many_requests,
)
from apiserver.machinery.status import timeout as timeout_error
from auditlog.durations import DurationError, parse_seconds

log = logging.getLogger(__name__)

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_AFTER_SECONDS = 1
# time.monotonic() by which the request must be answered: handlers hand it to the store, so that the engine stops
# a statement when its request is answered 504 instead of running on for nobody.
DEADLINE_KEY: web.RequestKey[float] = web.RequestKey("deadline", float)


def _http_error(request: web.Request, err: web.HTTPException) -> ApiError:
    """aiohttp's own routing errors, in Status form."""
    if isinstance(err, web.HTTPMethodNotAllowed):
        return method_not_allowed(request.method, sorted(err.allowed_methods))
    if err.status == 404:
        return not_found()
    return ApiError(err.status, err.reason.replace(" ", ""), err.text or err.reason, {})


@web.middleware
async def recover(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error becomes a Status; an unexpected one is logged with an ID the user can quote, and its details
    (stack, SQL) stay in the log."""
    try:
        return await handler(request)
    except ApiError as err:
        return status_response(err)
    except web.HTTPException as err:
        if err.status < 400:  # redirects are answers, not errors
            raise
        return status_response(_http_error(request, err))
    except (ClientPayloadError, ConnectionResetError) as err:
        # The client went away or its body stopped short (an abort, the body timeout): nobody reads a traceback.
        log.info("the body of %s %s ended before it was complete: %s", request.method, request.path, err)
        return status_response(bad_request(f"the body ended before it was complete: {err}"))
    except Exception:
        incident = uuid.uuid4().hex[:12]
        log.exception("unexpected error serving %s %s (incident %s)", request.method, request.path, incident)
        return status_response(internal_error(f"unexpected server error (incident {incident}; see the server log)"))


def request_timeout(seconds: float) -> Middleware:
    """`?timeout=` is a Go duration (client-go writes `1m30s`, `500ms`); as in kube-apiserver, 0 or a negative one
    means the server's limit, and a longer one is cut to it."""

    @web.middleware
    async def bounded(request: web.Request, handler: Handler) -> web.StreamResponse:
        limit = seconds
        asked = request.query.get("timeout")
        if asked:
            try:
                wanted = parse_seconds(asked)
            except DurationError as err:
                raise bad_request(f"invalid timeout in the URL: {err}") from None
            if wanted > 0:
                limit = min(limit, wanted)
        request[DEADLINE_KEY] = time.monotonic() + limit
        try:
            async with asyncio.timeout(limit):
                return await handler(request)
        except TimeoutError:
            raise timeout_error(limit) from None

    return bounded


def max_in_flight(read_only: int, mutating: int) -> Middleware:
    """kube-apiserver's --max-requests-inflight / --max-mutating-requests-inflight: beyond the limit a request is
    answered 429 at once rather than queued without bound. system:masters (the aggregator's availability probes)
    is never refused. A limit of 0 means unlimited. Runs after authentication, so the caller is known."""
    limits = {True: read_only, False: mutating}
    running = {True: 0, False: 0}

    @web.middleware
    async def limited(request: web.Request, handler: Handler) -> web.StreamResponse:
        kind = request.method in READ_ONLY_METHODS
        user = request.get(USER_KEY)
        exempt = user is not None and MASTERS_GROUP in user.groups
        if limits[kind] and not exempt and running[kind] >= limits[kind]:
            raise too_many_requests(RETRY_AFTER_SECONDS)
        running[kind] += 1
        try:
            return await handler(request)
        finally:
            running[kind] -= 1

    return limited
