"""From an HTTP request body to the items of an `audit.k8s.io/v1 EventList`, or a 4xx that says what to fix.

Every size check counts decompressed bytes as they are produced, so a small gzip bomb is refused after at most
`max_bytes + 1` bytes of output rather than after it has filled memory.
"""

from __future__ import annotations

import zlib
from typing import Any, NoReturn

import msgspec
import orjson
from aiohttp import web

from auditlog.eventjson import Judged, loads_exact, valid_json

API_VERSION = "audit.k8s.io/v1"
KIND = "EventList"
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class BadRequest(Exception):
    """A request the sender must change; `reason` is the metrics label, the message tells the sender what to fix."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def _too_large(max_bytes: int, what: str) -> NoReturn:
    raise BadRequest(400, "too_large", f"{what} is over the limit of {max_bytes} bytes; send smaller batches")


def check_content_type(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise BadRequest(
            415, "content_type", f"Content-Type {request.content_type!r} is not supported; send application/json"
        )


def _encoding(request: web.Request) -> str:
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower() or "identity"
    if encoding not in ("identity", "gzip"):
        raise BadRequest(
            415, "content_encoding", f"Content-Encoding {encoding!r} is not supported; send identity or gzip"
        )
    return encoding


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The body, gunzipped if it says so, never more than `max_bytes` read or produced."""
    encoding = _encoding(request)
    if request.content_length is not None and request.content_length > max_bytes:
        _too_large(max_bytes, f"body of {request.content_length} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            _too_large(max_bytes, "body")
    raw = b"".join(chunks)  # one copy: growing a bytearray copies a ~1 MB body several times, then once more
    return gunzip(raw, max_bytes) if encoding == "gzip" else raw


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Every gzip member of `data`, stopping as soon as the output passes `max_bytes`."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            # max_length bounds the output; at least 1 because out never exceeds max_bytes here.
            out += inflater.decompress(data, max_bytes + 1 - len(out))
        except zlib.error as err:
            raise BadRequest(400, "bad_gzip", f"body is not valid gzip: {err}") from None
        if len(out) > max_bytes:
            _too_large(max_bytes, "decompressed body")
        if not inflater.eof:
            raise BadRequest(400, "bad_gzip", "gzip body is truncated")
        data = inflater.unused_data
    return bytes(out)


def _loads(body: bytes) -> Any:
    """orjson first; only when it refuses, the standard parser, which keeps bad UTF-8 and lone surrogates as
    surrogate escapes: the items holding them are then dead-lettered alone instead of sinking the whole batch."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return loads_exact(body.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError) as err:
        detail = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise BadRequest(400, "not_json", f"body is not JSON: {detail[:300]}") from None


class _EventList(msgspec.Struct):
    kind: str
    apiVersion: str
    items: list[msgspec.Raw] | None = None  # each item's bytes as sent, not decoded


_EVENT_LIST = msgspec.json.Decoder(_EventList)
# The same items again, only the fields an event is judged by: one pass over the body rather than one per item.
_JUDGED_ITEMS = msgspec.json.Decoder(
    msgspec.defstruct("_JudgedItems", [("items", list[Judged] | None, None)])  # type: ignore[valid-type]
)


def plain_items(body: bytes, max_items: int) -> list[tuple[msgspec.Raw, Any]] | None:
    """(bytes as sent, `Judged` fields) of each item when the body is plainly a valid EventList of objects with
    those fields: the common case, read without building the items. None when `event_list_items` must decide (a
    400 it will word, or a form not judged here)."""
    if not valid_json(body):
        return None
    try:
        doc = _EVENT_LIST.decode(body)
        raws = doc.items or []
        if doc.kind != KIND or doc.apiVersion != API_VERSION or len(raws) > max_items:
            return None
        judged = _JUDGED_ITEMS.decode(body).items or []  # type: ignore[attr-defined]
    except (msgspec.DecodeError, RecursionError):
        return None
    return list(zip(raws, judged, strict=True))


def event_list_items(body: bytes, max_items: int) -> list[Any]:
    """The `items` of an audit.k8s.io/v1 EventList; each item is judged later, on its own."""
    doc = _loads(body)
    if not isinstance(doc, dict):
        raise BadRequest(
            400, "not_eventlist", f"body is a JSON {type(doc).__name__}, not an {API_VERSION} {KIND} object"
        )
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    if kind != KIND or api_version != API_VERSION:
        raise BadRequest(
            400,
            "not_eventlist",
            f"body has kind {str(kind)[:64]!r} and apiVersion {str(api_version)[:64]!r}; "
            f"expected kind {KIND!r} and apiVersion {API_VERSION!r}",
        )
    items = doc.get("items")
    if items is None:  # Go encodes an empty slice as null
        return []
    if not isinstance(items, list):
        raise BadRequest(400, "items_not_list", f"items is a JSON {type(items).__name__}; it must be a list")
    if len(items) > max_items:
        raise BadRequest(
            400,
            "too_many_items",
            f"EventList has {len(items)} items, at most {max_items} are accepted per request; "
            "lower kube-apiserver's --audit-webhook-batch-max-size",
        )
    return items
