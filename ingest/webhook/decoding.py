"""From an HTTP request body to the items of an `audit.k8s.io/v1 EventList`, or a 4xx that says what to fix.

Every bound is checked before the work it bounds is paid for: decompressed bytes are counted as they are produced
(a small gzip bomb is refused after at most `max_bytes + 1` bytes of output), gzip members are counted as they
start, and the items of a body are counted on simdjson's tape before any of them becomes a Python object (a body of
millions of `{}` is refused for what it is, not after it has filled memory). The cost of each step is linear in the
body size; `Body.heavy` tells the receiver when to pay it off the event loop.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any, NoReturn

import msgspec
import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from auditlog.duplicatekeys import first_duplicate, render_path, unique_keys
from auditlog.eventjson import (
    ARRAY_LENGTH_SATURATES,
    DuplicateKey,
    Judged,
    array_length,
    loads_exact,
    parse_exactly_keeping_pairs,
)
from auditlog.events import MAX_EVENT_BYTES, duplicate_key_problem

API_VERSION = "audit.k8s.io/v1"
KIND = "EventList"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# kube-apiserver, and every gzip writer we know of, sends one member; each member costs a decompressor.
MAX_GZIP_MEMBERS = 64
# Input is fed to the decompressor this much at a time: what follows a member's end is copied once per member, so
# this bounds that copy and keeps gunzip linear in the body size (feeding the whole rest made it quadratic).
_GZIP_CHUNK = 64 * 1024
# Plain bodies up to this size are decoded on the event loop (a kube-apiserver batch of 400 events is ~0.5 MB):
# the hop to a worker thread would cost more than it saves.
INLINE_BYTES = 1 << 20


class BadRequest(Exception):
    """A request the sender must change; `reason` is the metrics label, the message tells the sender what to fix."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class Aborted(BadRequest):
    """The sender went away before its body was in: nobody reads the answer, a log line is enough."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, "aborted", f"the body ended before it was complete: {detail}")


@dataclass(frozen=True)
class Body:
    data: bytes  # as received
    gzipped: bool

    @property
    def heavy(self) -> bool:
        """Worth decoding off the event loop: zlib and simdjson release the GIL while they work."""
        return self.gzipped or len(self.data) > INLINE_BYTES


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


async def read_body(request: web.Request, max_bytes: int) -> Body:
    """The body as sent, never more than `max_bytes` read; `decoded` gunzips it."""
    encoding = _encoding(request)
    if request.content_length is not None and request.content_length > max_bytes:
        _too_large(max_bytes, f"body of {request.content_length} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_any():
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                _too_large(max_bytes, "body")
    except ConnectionError as err:
        raise Aborted(f"{err or type(err).__name__} after {size} bytes") from None
    except HttpProcessingError as err:  # e.g. a broken chunked encoding
        raise BadRequest(400, "bad_body", f"the body could not be read: {err.message}") from None
    # one copy: growing a bytearray copies a ~1 MB body several times, then once more
    return Body(b"".join(chunks), gzipped=encoding == "gzip")


def decoded(body: Body, max_bytes: int) -> bytes:
    return gunzip(body.data, max_bytes) if body.gzipped else body.data


def gunzip(data: bytes, max_bytes: int, max_members: int = MAX_GZIP_MEMBERS) -> bytes:
    """Every gzip member of `data`, stopping as soon as the output passes `max_bytes` or a member past
    `max_members` starts."""
    out = bytearray()
    view = memoryview(data)
    position, members = 0, 0
    while position < len(view):
        members += 1
        if members > max_members:
            raise BadRequest(
                400, "gzip_members", f"gzip body has more than {max_members} members; send one gzip stream"
            )
        inflater = zlib.decompressobj(_GZIP_WBITS)
        while not inflater.eof:
            if position >= len(view):
                raise BadRequest(400, "bad_gzip", "gzip body is truncated")
            pending: bytes | memoryview = view[position : position + _GZIP_CHUNK]
            position += len(pending)
            while pending and not inflater.eof:
                try:
                    # max_length bounds the output; at least 1 because out never exceeds max_bytes here.
                    out += inflater.decompress(pending, max_bytes + 1 - len(out))
                except zlib.error as err:
                    raise BadRequest(400, "bad_gzip", f"body is not valid gzip: {err}") from None
                if len(out) > max_bytes:
                    _too_large(max_bytes, "decompressed body")
                pending = inflater.unconsumed_tail
        position -= len(inflater.unused_data)  # the next member starts inside the chunk this one ended in
    return bytes(out)


def _loads(body: bytes) -> Any:
    """orjson first; only when it refuses, the standard parser, which keeps bad UTF-8 and lone surrogates as
    surrogate escapes: the items holding them are then dead-lettered alone instead of sinking the whole batch."""
    if _LONG_DIGITS.search(body) is None:  # orjson reads integers beyond 64 bits as floats: digits would be lost
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


def _array_length(body: bytes) -> int | None:
    try:
        return array_length(body, "items")
    except DuplicateKey as err:  # e.g. `items` twice: the count would be of one list and the build of the other
        raise BadRequest(
            400, "duplicate_key", f"the EventList gives key {render_path([err.key])} more than once; send it once"
        ) from None


def _check_item_count(count: int, max_items: int) -> None:
    if count > max_items:
        at_least = "at least " if count >= ARRAY_LENGTH_SATURATES else ""
        raise BadRequest(
            400,
            "too_many_items",
            f"EventList has {at_least}{count} items, at most {max_items} are accepted per request; "
            "lower kube-apiserver's --audit-webhook-batch-max-size",
        )


def plain_items(body: bytes, max_items: int) -> list[tuple[msgspec.Raw, Any]] | None:
    """(bytes as sent, `Judged` fields) of each item when the body is plainly a valid EventList of objects with
    those fields: the common case, read without building the items. None when `event_list_items` must decide (a
    400 it will word, or a form not judged here). Too many items: BadRequest, before any is built."""
    count = _array_length(body)  # also what says the body is valid JSON
    if count is None:
        return None
    _check_item_count(count, max_items)
    try:
        doc = _EVENT_LIST.decode(body)
        raws = doc.items or []
        if doc.kind != KIND or doc.apiVersion != API_VERSION:
            return None
        judged = _JUDGED_ITEMS.decode(body).items or []  # type: ignore[attr-defined]
    except (msgspec.DecodeError, RecursionError):
        return None
    # An item giving a key twice goes the full path, where `item_key_problems` says where. One item at a time, and
    # only those the size limit lets through, so that what the check builds stays bounded by the limit (an item of
    # megabytes of `{},` would be millions of dicts) and is freed before the next.
    if any(len(raw) <= MAX_EVENT_BYTES and not unique_keys(bytes(raw)) for raw in raws):
        return None
    return list(zip(raws, judged, strict=True))


# What makes simdjson refuse a body that the exact parser takes: lone surrogate escapes and integers beyond 64 bits
# (invalid UTF-8 is replaced). Swapped for plain stand-ins of the same shape, the body counts the same items.
_LONE_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONG_DIGITS = re.compile(rb"[0-9]{19,}")


def _count_exactly_parsed_items(body: bytes, max_items: int) -> None:
    """The item bound for a body only the exact parser takes, checked before that parser builds every item."""
    countable = body.decode("utf-8", "replace").encode()
    countable = _LONG_DIGITS.sub(b"0", _LONE_SURROGATE_ESCAPE.sub(rb"\\u0041", countable))
    count = _array_length(countable)
    if count is not None:
        _check_item_count(count, max_items)
    elif len(body) > INLINE_BYTES:
        # Not JSON even so: refused without building what comes before the error (small bodies get the parser's
        # own wording).
        raise BadRequest(400, "not_json", "body is not JSON")


def event_list_items(body: bytes, max_items: int, *, counted: bool = False) -> list[Any]:
    """The `items` of an audit.k8s.io/v1 EventList; each item is judged later, on its own. `counted`: the body's
    items were counted already (`plain_items` took it)."""
    if not counted:
        _count_exactly_parsed_items(body, max_items)
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


def item_key_problems(body: bytes) -> list[str | None]:
    """For each item `event_list_items` returned for `body`, why it cannot be stored for its keys (as
    `eventjson.key_problem` says it of one event), or None; an empty list when no item has such a problem (the
    common case, told without keeping anything built)."""
    if unique_keys(body):
        return []
    try:
        pairs = parse_exactly_keeping_pairs(body)
    except (ValueError, RecursionError):
        # Not JSON: event_list_items has refused it. Too deep for the exact parser: some item is nested over
        # ~1000 levels, refused for that (messages.MAX_NESTING); the others are published re-encoded from their
        # parsed form, which holds one value per key, so nothing ambiguous is stored.
        return []
    # event_list_items has checked the envelope: an object giving each key once
    items = next((value for key, value in pairs if key == "items"), None)
    paths = (first_duplicate(item) for item in items or ())
    return [None if path is None else duplicate_key_problem(render_path(path)) for path in paths]
