"""An AuditLogQuery the user must fix: every field error found at once, answered as one 422."""

from __future__ import annotations

from collections.abc import Sequence

from apiserver.machinery.fielderrors import FieldError


class InvalidQuery(Exception):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = tuple(errors)
