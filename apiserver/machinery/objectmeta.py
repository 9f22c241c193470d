"""metadata of a created object: the name (given, or generated from generateName as apiserver's
names.SimpleNameGenerator does), labels and annotations echoed, the creation time."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from apiserver.machinery.fielderrors import FieldError

# 5 characters from an alphabet without vowels or look-alikes, as names.SimpleNameGenerator picks them.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LENGTH = 5
MAX_GENERATE_NAME_PREFIX = 63 - GENERATED_SUFFIX_LENGTH
MAX_NAME_LENGTH = 253
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com')"
)


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_name(prefix: str) -> str:
    return prefix[:MAX_GENERATE_NAME_PREFIX] + "".join(
        secrets.choice(NAME_ALPHABET) for _ in range(GENERATED_SUFFIX_LENGTH)
    )


def created_metadata(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """The metadata of the answer (a name given, generated or none) and what is wrong with the one asked for."""
    errors = []
    name = meta.get("name", "")
    prefix = meta.get("generateName", "")
    if not name and prefix:
        name = generate_name(prefix)
        if not _DNS1123_SUBDOMAIN.match(name):
            errors.append(FieldError("metadata.generateName", "FieldValueInvalid", prefix, _SUBDOMAIN_HELP))
    elif name and (len(name) > MAX_NAME_LENGTH or not _DNS1123_SUBDOMAIN.match(name)):
        errors.append(FieldError("metadata.name", "FieldValueInvalid", name, _SUBDOMAIN_HELP))
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if prefix:
        out["generateName"] = prefix
    for key in ("labels", "annotations"):
        if meta.get(key):
            out[key] = meta[key]
    out["creationTimestamp"] = _now_rfc3339()
    return out, errors
