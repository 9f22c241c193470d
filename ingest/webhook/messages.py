"""Items → what to publish: each storable event as its own message keyed for JetStream's dedupe, everything else
as a dead letter carrying the reason. One bad item never decides the fate of the others."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec
import orjson

from auditlog.eventjson import identity
from auditlog.events import MAX_EVENT_BYTES, problem
from ingest.deadletter import DUPLICATE_KEY, NOT_AUDIT_EVENT, OVERSIZE, UNENCODABLE, reason_header
from ingest.jetstream import MSG_ID_HEADER, dead_letter
from ingest.msgid import dead_letter_msg_id, event_msg_id
from ingest.webhook.settings import SOURCE

# Bytes a message needs besides its body: the `NATS/1.0` line, the Nats-Msg-Id header (a 64-digit hash and the
# stage), separators. nats-server counts headers + body against max_payload.
_HEADER_OVERHEAD = 128


class Outgoing(NamedTuple):  # one per event: a tuple is half the cost of a frozen dataclass to make
    subject: str
    data: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Sorted:
    events: list[Outgoing] = field(default_factory=list)
    dead_letters: list[Outgoing] = field(default_factory=list)
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)


# Deeper than any real object: what the full path, which must re-encode an item, refuses to try (an explicit count
# keeps the standard encoder well inside the interpreter's recursion limit). The fast path publishes an item as sent
# at any depth msgspec reaches, which varies with that limit; between the two an event nested this deep is either
# stored or dead-lettered, never lost. kube-apiserver writes nothing near it.
MAX_NESTING = 500


def _deeper_than(item: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(item, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _encode(item: Any) -> bytes:
    """Compact JSON; the standard encoder takes over where orjson stops (nesting over 255 levels)."""
    try:
        return orjson.dumps(item)
    except orjson.JSONEncodeError:
        if _deeper_than(item, MAX_NESTING):
            raise ValueError(f"nested more than {MAX_NESTING} levels deep") from None
        return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()


def _dump_any(item: Any) -> bytes:
    """Any parsed item as JSON bytes for a dead letter: undecodable text comes out \\u-escaped, never refused."""
    try:
        return orjson.dumps(item)
    except orjson.JSONEncodeError:
        pass
    try:
        return json.dumps(item, ensure_ascii=True).encode()
    except RecursionError:
        return orjson.dumps({"unencodable": "nested too deeply to encode", "type": type(item).__name__})


def _dead_letter(out: Sorted, payload: bytes, reason: str, detail: str, *, subject: str, original_subject: str) -> None:
    header = reason_header(reason, detail)
    data, headers = dead_letter(payload, reason=header, source=SOURCE, original_subject=original_subject)
    headers[MSG_ID_HEADER] = dead_letter_msg_id(payload, header)
    out.dead_letters.append(Outgoing(subject, data, headers))
    out.dead_letter_reasons[reason] += 1


def _route(
    out: Sorted, payload: bytes, stage: str, *, subject: str, dead_letter_subject: str, max_payload: int
) -> None:
    """A storable event to publish, unless it is over the event size limit or NATS could not take its size."""
    if len(payload) > MAX_EVENT_BYTES:  # the store's rule, the consumer's too: refused here, where first seen
        why = f"event of {len(payload)} bytes is over the {MAX_EVENT_BYTES}-byte event limit"
    elif len(payload) + _HEADER_OVERHEAD > max_payload:
        why = f"event of {len(payload)} bytes is over the {max_payload}-byte message limit of NATS"
    else:
        out.events.append(Outgoing(subject, payload, {MSG_ID_HEADER: event_msg_id(payload, stage)}))
        return
    _dead_letter(out, payload, OVERSIZE, why, subject=dead_letter_subject, original_subject=subject)


def sort_plain(
    items: list[tuple[msgspec.Raw, Any]], *, subject: str, dead_letter_subject: str, max_payload: int
) -> Sorted | None:
    """Items as sent with their judged fields (`decoding.plain_items`), published as they are when every one is a
    storable event; None when one is not, for `sort_items` to judge them all and word the reasons."""
    out = Sorted()
    for raw, judged in items:
        storable = identity(judged)
        if storable is None:
            return None
        _route(
            out,
            bytes(raw),
            storable[1],
            subject=subject,
            dead_letter_subject=dead_letter_subject,
            max_payload=max_payload,
        )
    return out


def sort_items(
    items: list[Any],
    *,
    subject: str,
    dead_letter_subject: str,
    max_payload: int,
    key_problems: Sequence[str | None] = (),
) -> Sorted:
    """`max_payload`: the largest message (body and headers) that NATS and the stream accept. `key_problems`: why
    each item as sent cannot be stored for its keys (`decoding.item_key_problems`), which its parsed form, holding
    only the last of a key's values, no longer shows."""
    out = Sorted()
    for index, item in enumerate(items):
        why = key_problems[index] if index < len(key_problems) else None
        code = DUPLICATE_KEY
        if why is None:
            why, code = problem(item), NOT_AUDIT_EVENT
        if why is not None:
            payload = _dump_any(item)
        else:
            try:
                payload = _encode(item)
            except (ValueError, RecursionError) as err:  # text that is not valid UTF-8, nesting too deep
                code, payload = UNENCODABLE, _dump_any(item)
                why = f"event cannot be encoded as JSON: {type(err).__name__}: {str(err)[:200]}"
            else:
                _route(
                    out,
                    payload,
                    item["stage"],
                    subject=subject,
                    dead_letter_subject=dead_letter_subject,
                    max_payload=max_payload,
                )
                continue
        _dead_letter(out, payload, code, why, subject=dead_letter_subject, original_subject=subject)
    return out
