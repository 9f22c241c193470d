"""Values the ingest replaced by markers (`auditlog.redaction`), as `history --diff` shows them: never the marker
itself, only that the value is there and, between two versions, whether it changed."""

from __future__ import annotations

import re
from typing import Any

from auditlog.redaction import is_marker

SHOWN = "(redacted)"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def masked(value: Any) -> Any:
    """`value` with every marker shown as "(redacted)"."""
    if is_marker(value):
        return SHOWN
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def _markers(value: Any, path: str = "") -> dict[str, str]:
    if is_marker(value):
        return {path: value}
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for key, child in value.items():
            name = str(key)
            step = f".{name}" if _PLAIN_KEY.fullmatch(name) else f"[{name}]"
            found |= _markers(child, (path + step).lstrip("."))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found |= _markers(child, f"{path}[{index}]")
    return found


def changed(before: Any, after: Any) -> list[str]:
    """One line per redacted value present in both versions whose marker differs: what a diff of the masked
    versions cannot show (one that appears or goes shows there as "(redacted)" added or removed)."""
    old, new = _markers(before), _markers(after)
    return [f"{path}: changed (redacted)" for path in sorted(old.keys() & new.keys()) if old[path] != new[path]]
