"""spec.continue / status.continue: an opaque, HMAC-SHA256-signed token carrying where the next page starts and
everything the first page fixed (the absolute window, the filter, the limit, the caller's scope).

The signature makes the token unforgeable, so the server can trust the window and position it carries; the
binding makes a token useless for any other query or any other tenant: a mismatch is a 422 on spec.continue,
never a silently different page. The filter and the spec's time texts are bound by digest, which keeps tokens
short and lets a relative `now-1h` page 2 reuse page 1's absolute window instead of drifting.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import orjson

from apiserver.machinery.fielderrors import FieldError
from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.timerange import TimeWindow, format_time
from auditlog.reading import Position, Scope

log = logging.getLogger(__name__)

CONTINUE_FIELD = "spec.continue"
VERSION = 2  # 2: the position ends with the event's identity (migration 0002)
MIN_KEY_BYTES = 16
_RESTART = "drop spec.continue to start again from the first page"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def digest(text: str) -> str:
    """A short stable fingerprint of a spec value the token binds without carrying it."""
    return _b64(hashlib.sha256(text.encode()).digest()[:16])


@dataclass(frozen=True)
class Cursor:
    """What a continue token says. `window_digest` fingerprints the spec's startTime/endTime texts."""

    expires_s: int  # unix seconds
    scope: Scope | None
    filter_digest: str
    window_digest: str
    limit: int
    window: TimeWindow
    after: Position


def window_digest(start_text: str, end_text: str) -> str:
    return digest(f"{start_text}\x00{end_text}")


def load_cursor_key(path: str | None) -> bytes:
    """The signing key from --cursor-key-file, or a random one for this process only (with a warning)."""
    if not path:
        log.warning(
            "no --cursor-key-file: continue tokens are signed with a random key of this process; they stop working "
            "after a restart and on other replicas (give every replica the same key file)"
        )
        return secrets.token_bytes(32)
    key = Path(path).read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"--cursor-key-file {path} holds {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes")
    return key


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def encode(self, cursor: Cursor) -> str:
        scope = [cursor.scope.type, cursor.scope.name] if cursor.scope else None
        after = cursor.after
        payload = orjson.dumps(
            [
                VERSION,
                cursor.expires_s,
                scope,
                cursor.filter_digest,
                cursor.window_digest,
                cursor.limit,
                cursor.window.start_us,
                cursor.window.end_us,
                after.timestamp_us,
                after.audit_id,
                after.stage,
                after.event_id,
            ]
        )
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, token: str) -> Cursor:
        """The cursor a token carries if this server signed it; InvalidQuery on spec.continue otherwise."""
        try:
            payload_b64, signature_b64 = token.split(".")
            payload, signature = _unb64(payload_b64), _unb64(signature_b64)
        except (ValueError, binascii.Error):
            payload = signature = b""
        # Only the canonical spelling is accepted, so any changed character is refused (base64's spare bits).
        if not payload or f"{_b64(payload)}.{_b64(signature)}" != token:
            raise _invalid(
                token, f"not a continue token this server issued; pass status.continue unchanged, or {_RESTART}"
            )
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise _invalid(
                token,
                "the continue token's signature does not match: it was altered, or signed by a server with another "
                f"cursor key; {_RESTART}",
            )
        try:
            (version, expires_s, scope, filter_d, window_d, limit, start_us, end_us, ts, audit_id, stage, event_id) = (
                orjson.loads(payload)
            )
            if version != VERSION:
                raise ValueError(version)
            return Cursor(
                int(expires_s),
                Scope(str(scope[0]), str(scope[1])) if scope else None,
                str(filter_d),
                str(window_d),
                int(limit),
                TimeWindow(int(start_us), int(end_us)),
                Position(int(ts), str(audit_id), str(stage), str(event_id)),
            )
        except (ValueError, TypeError, IndexError):
            # Signed by us but unreadable: a token of another version of this server.
            raise _invalid(token, f"the continue token comes from an incompatible server version; {_RESTART}") from None


def check_binding(
    cursor: Cursor,
    token: str,
    *,
    now_s: int,
    scope: Scope | None,
    filter_digest: str,
    window_digest: str,
    limit: int | None,
) -> None:
    """Refuse a genuine token that is expired or belongs to another query or another caller scope.
    `limit` None: the spec's limit is itself invalid (reported on spec.limit), so it is not compared."""
    if now_s >= cursor.expires_s:
        raise _invalid(token, f"the continue token expired at {format_time(cursor.expires_s * 1_000_000)}; {_RESTART}")
    if cursor.scope != scope:
        # Do not say whose scope it was: that would leak another tenant's name.
        raise _invalid(token, f"the continue token was issued to a caller with another tenant scope; {_RESTART}")
    mismatched = [
        name
        for name, same in (
            ("spec.filter", cursor.filter_digest == filter_digest),
            ("spec.startTime/spec.endTime", cursor.window_digest == window_digest),
            ("spec.limit", limit is None or cursor.limit == limit),
        )
        if not same
    ]
    if mismatched:
        raise _invalid(
            token,
            f"the continue token belongs to a query with a different {' and '.join(mismatched)}: send the same values "
            f"as for the first page, or {_RESTART}",
        )


def _invalid(token: str, detail: str) -> InvalidQuery:
    return InvalidQuery([FieldError(CONTINUE_FIELD, "FieldValueInvalid", token, detail)])
