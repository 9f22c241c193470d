"""kubectl's `--request-timeout`: a Go duration (the project's one parser) or, as kubectl also takes, a bare
integer of seconds; 0 means no timeout."""

from __future__ import annotations

from auditlog.durations import SECOND, DurationError, parse_ns

__all__ = ["DurationError", "parse_request_timeout"]


def parse_request_timeout(text: str) -> int:
    """The timeout in nanoseconds."""
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in ("+", "-") else stripped
    is_integer = digits.isascii() and digits.isdigit()  # strconv.Atoi: ASCII digits only
    nanoseconds = int(stripped) * SECOND if is_integer else parse_ns(stripped)
    if nanoseconds < 0:
        raise DurationError(f"invalid timeout {text!r}: it must not be negative (0 means no timeout)")
    return nanoseconds
