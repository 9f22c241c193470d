"""The one dead-letter vocabulary of the webhook and the consumer: the reason is the `reason` label of both
dead-lettered metrics and the first word of the `Activity-Reason` header (`<reason>: <what to fix>`)."""

from __future__ import annotations

from typing import Final

OVERSIZE: Final = "oversize"  # over the event size limit, or over what NATS takes in one message
NOT_JSON: Final = "not-json"  # the payload does not parse as JSON
NOT_AUDIT_EVENT: Final = "not-audit-event"  # JSON, but not an audit.k8s.io/v1 Event the store can hold
UNENCODABLE: Final = "unencodable"  # an event whose text is not valid Unicode, or nested too deep to re-encode
DUPLICATE_KEY: Final = "duplicate-key"  # an object gives a key twice: the store would read one value, readers another
INSERT_REJECTED: Final = "insert-rejected"  # passed our checks, refused by the store for its content
REASONS: Final = (OVERSIZE, NOT_JSON, NOT_AUDIT_EVENT, UNENCODABLE, DUPLICATE_KEY, INSERT_REJECTED)


def reason_header(reason: str, detail: str) -> str:
    """The `Activity-Reason` header value: the reason, then what to fix."""
    return f"{reason}: {detail}"
