"""What a redacted value looks like in a stored audit event: the string `redacted:hmac-sha256:<16 hex digits>`.

The digits are the first 64 bits of HMAC-SHA256(installation key, value): the same value under the same key gives
the same marker, so two versions of an object tell whether a Secret key changed without either value being kept.
The key is secret and per installation, so a marker cannot be checked against guessed values (a plain hash of a
low-entropy password could). Writers: `ingest.redaction`; readers (the plugin's `history --diff`) only recognise it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

MARKER_PREFIX = "redacted:hmac-sha256:"
MARKER_HEX_DIGITS = 16
_MARKER = re.compile(re.escape(MARKER_PREFIX) + f"[0-9a-f]{{{MARKER_HEX_DIGITS}}}")


def is_marker(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(MARKER_PREFIX) and _MARKER.fullmatch(value) is not None


def _canonical(value: Any) -> bytes:
    """The bytes a value is keyed on: a string as its UTF-8 (the common case), anything else as sorted JSON; the
    first byte keeps the string "1" and the number 1 apart. Lone surrogates (text that was not valid UTF-8) pass."""
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:  # only a hostile event nests this deep; its marker need not tell such values apart
        text = "nested too deeply"
    return b"j" + text.encode("utf-8", "surrogatepass")


def marker(key: bytes, value: Any) -> str:
    digest = hmac.digest(key, _canonical(value), hashlib.sha256)
    return MARKER_PREFIX + digest[: MARKER_HEX_DIGITS // 2].hex()
