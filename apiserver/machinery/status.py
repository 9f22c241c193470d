"""metav1.Status: the one shape every error of the API server takes, so kubectl and client-go print it well.

Each builder returns an `ApiError` carrying the Status body; handlers and middlewares raise it, and
`status_response` renders it. Messages follow kube-apiserver's wording, because users (and kubectl's error
printer) know those texts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

from apiserver.machinery.fielderrors import FieldError
from apiserver.machinery.negotiation import JSON
from auditlog.durations import SECOND, format_ns


class ApiError(Exception):
    """An error answer: HTTP code plus the metav1.Status body (and extra headers, e.g. Retry-After)."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details) if details is not None else None
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            status["details"] = self.details
        status["code"] = self.code
        return status


def status_response(error: ApiError) -> web.Response:
    return web.Response(
        status=error.code,
        body=orjson.dumps(error.body()),
        content_type=JSON,
        headers=error.headers,
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> ApiError:
    return ApiError(401, "Unauthorized", message)


def forbidden(user: str, verb: str, resource: str, group: str, reason: str = "") -> ApiError:
    """kube-apiserver's text: `auditlogqueries.activity.miloapis.com is forbidden: User "u" cannot create ...`."""
    qualified = f"{resource}.{group}" if group else resource
    message = (
        f'{qualified} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}" at the cluster scope'
    )
    if reason:
        message += f": {reason}"
    return ApiError(403, "Forbidden", message, {"group": group, "kind": resource})


def forbidden_path(user: str, verb: str, path: str) -> ApiError:
    """Forbidden for a non-resource URL such as /openapi/v3."""
    return ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot {verb} path "{path}"', {})


def not_found(message: str = "the server could not find the requested resource") -> ApiError:
    return ApiError(404, "NotFound", message, {})


def method_not_allowed(method: str, allowed: Sequence[str]) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource: {method} is not supported, "
        f"use {', '.join(allowed)}",
        {},
        {"Allow": ", ".join(allowed)},
    )


def not_acceptable(supported: Sequence[str]) -> ApiError:
    return ApiError(406, "NotAcceptable", f"only the following media types are accepted: {', '.join(supported)}", {})


def request_entity_too_large(limit: str) -> ApiError:
    """413, worded like apimachinery's NewRequestEntityTooLargeError."""
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: {limit}", {})


def unsupported_media_type(content_type: str, supported: Sequence[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format ({content_type}) - "
        f"accepted media types include: {', '.join(supported)}",
        {},
    )


def invalid(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> ApiError:
    """422 Invalid, worded like apimachinery's NewInvalid so kubectl prints `The KIND "NAME" is invalid:` and one
    `* field: message` line per cause."""
    qualified_kind = f"{kind}.{group}" if group else kind
    joined = ", ".join(f"{e.field}: {e.message}" for e in errors)
    if len(errors) > 1:
        joined = f"[{joined}]"
    details: dict[str, Any] = {
        "name": name,
        "group": group,
        "kind": kind,
        "causes": [{"reason": e.reason, "message": e.message, "field": e.field} for e in errors],
    }
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {joined}', details)


def too_many_requests(retry_after_seconds: int) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": retry_after_seconds},
        {"Retry-After": str(retry_after_seconds)},
    )


def internal_error(message: str) -> ApiError:
    """500: `message` must say what failed without internals (no stack trace, no SQL)."""
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def service_unavailable(message: str, retry_after_seconds: int) -> ApiError:
    return ApiError(
        503,
        "ServiceUnavailable",
        message,
        {"retryAfterSeconds": retry_after_seconds},
        {"Retry-After": str(retry_after_seconds)},
    )


def timeout(seconds: float) -> ApiError:
    allotted = format_ns(round(seconds * SECOND))
    return ApiError(
        504,
        "Timeout",
        f"Timeout: request did not complete within the allotted timeout of {allotted}",
        {},
    )
