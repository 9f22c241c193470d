"""One event's bytes in, the bytes to publish out: credentials replaced by markers, everything else as it was.

Most events hold no credential, and those are returned as the very same bytes, unparsed: `gate.Gate` reads the
few fields that decide it. Only the rest is parsed, and re-encoded only when a value was replaced.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import orjson

from auditlog.eventjson import loads_exact
from auditlog.redaction import marker
from ingest.redaction.gate import Gate
from ingest.redaction.rules import EMBEDDED_KINDS, Rules
from ingest.redaction.settings import RedactionSettings

log = logging.getLogger(__name__)
J = TypeVar("J")


def _no_count(label: str) -> None:
    pass


def _parse(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return loads_exact(data.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError) as err:
        raise ValueError(f"the event may hold a credential but is not JSON that can be redacted: {err}") from None


def _encode(event: Any) -> bytes:
    try:
        return orjson.dumps(event)
    except orjson.JSONEncodeError:  # nesting over 255 levels, or text that is not valid UTF-8
        pass
    try:
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogateescape")
    except RecursionError:
        raise ValueError("the event is nested too deeply to encode after redaction") from None


class Redactor:
    """`redact(bytes)` for events as received (the webhook's fast path, an import), `redact_item(parsed)` for
    events already parsed. `on_redacted(label)` is called once per event a rule changed."""

    def __init__(self, settings: RedactionSettings, on_redacted: Callable[[str], None] = _no_count) -> None:
        self.enabled = settings.enabled
        self._rules = Rules.with_extra(settings.extra)
        self._gate = Gate(self._rules.resources, EMBEDDED_KINDS)
        self._on_redacted = on_redacted
        if not self.enabled:
            log.warning(
                "redaction is OFF: Secret data, service account tokens and TokenReview tokens are stored as "
                "received, and anyone allowed to query audit events can read them"
            )
            self._key = b""
        elif settings.key is None:
            log.warning(
                "no redaction key given: using a random one for this process, so a redacted value's marker "
                "changes on restart and differs between replicas; give every replica the same --redaction-key-file"
            )
            self._key = secrets.token_bytes(32)
        else:
            self._key = settings.key

    def mark(self, value: Any) -> str:
        return marker(self._key, value)

    def may_hold_credentials(self, data: bytes) -> bool:
        """False only when no rule can apply to the event `data` is (the fast path: publish it as it is)."""
        return self._gate.needs_look(data)

    def redact(self, data: bytes) -> bytes:
        """`data` itself when it holds no credential, else the event re-encoded with each credential replaced by
        its marker. ValueError when `data` may hold one but is not a JSON event that can be redacted: such bytes
        must not be published."""
        if not self.enabled or not self.may_hold_credentials(data):
            return data
        return self._looked_at(data)

    def _looked_at(self, data: bytes, count: Callable[[str], None] | None = None) -> bytes:
        event = _parse(data)
        if not isinstance(event, dict) or not self._apply(event, count or self._on_redacted):
            return data
        return _encode(event)

    def redact_plain(
        self, items: list[tuple[msgspec.Raw, J]] | None
    ) -> tuple[list[tuple[msgspec.Raw, J]] | None, list[str]]:
        """Items as sent (the webhook's fast path), each redacted; None when one cannot be re-encoded after its
        redaction (the full path then judges them all), or when `items` is. With the labels of what was redacted,
        for `count()` once the fast path publishes them (else the full path redacts and counts them again); returned
        rather than kept, since bodies are sorted on the loop and in a worker at once."""
        pending: list[str] = []
        if items is None or not self.enabled:
            return items, pending
        out = []
        for raw, judged in items:
            if not self._gate.needs_look(raw):  # read in place: most events are never copied
                out.append((raw, judged))
                continue
            data = bytes(raw)
            try:
                redacted = self._looked_at(data, pending.append)
            except ValueError:
                return None, pending
            out.append((raw if redacted is data else msgspec.Raw(redacted), judged))
        return out, pending

    def count(self, labels: list[str]) -> None:
        for label in labels:
            self._on_redacted(label)

    def redact_item(self, item: Any) -> Any:
        """A parsed event (any JSON value: an item bound for a dead letter may be a list of events), redacted in
        place and returned."""
        if self.enabled:
            for event in item if isinstance(item, list) else [item]:
                if isinstance(event, dict):
                    self._apply(event, self._on_redacted)
        return item

    def _apply(self, event: dict[str, Any], count: Callable[[str], None]) -> bool:
        label = self._rules.apply(event, self.mark)
        if label is None:
            return False
        count(label)
        return True
