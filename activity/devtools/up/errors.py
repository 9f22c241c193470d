"""The one error type `activity up` shows its user: a sentence saying what is wrong and how to fix it."""

from __future__ import annotations


class UpError(Exception):
    """Printed as `error: <message>` (no traceback); the process exits non-zero."""
