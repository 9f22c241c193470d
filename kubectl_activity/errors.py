"""What goes wrong, worded as kubectl words it, so users recognise it (and scripts that grep kubectl's texts work).

kubectl's error printer (k8s.io/kubectl/pkg/cmd/util.CheckErr): a 422 with causes is `The KIND "NAME" is
invalid: field: message` for one cause and a `* field: message` block for several; a 401 is `error: You must be
logged in to the server (...)`; any other Status is `Error from server (Reason): message`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PluginError(Exception):
    """A failure to report on stderr (the text is complete, no prefix added) and exit 1."""


def status_message(status: Mapping[str, Any], http_code: int) -> str:
    """The text kubectl prints for a metav1.Status answer."""
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    details = status.get("details") or {}
    if reason == "Invalid" and isinstance(details, Mapping):
        return _invalid_message(details) or f"Error from server (Invalid): {message}"
    if http_code == 401 or reason == "Unauthorized":
        return f"error: You must be logged in to the server ({message or 'Unauthorized'})"
    if not reason:
        return f"Error from server: {message or f'the server answered HTTP {http_code}'}"
    return f"Error from server ({reason}): {message}"


def _invalid_message(details: Mapping[str, Any]) -> str:
    kind, name = str(details.get("kind") or ""), str(details.get("name") or "")
    causes = [c for c in details.get("causes") or [] if isinstance(c, Mapping)]
    if not causes:
        return ""
    head = f'The {kind} "{name}" is invalid:'
    lines = [f"{c.get('field', '')}: {c.get('message', '')}" for c in causes]
    if len(lines) == 1:
        return f"{head} {lines[0]}"
    return "\n".join([head, *(f"* {line}" for line in lines)])
