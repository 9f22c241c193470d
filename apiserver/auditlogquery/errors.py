"""Validation failures of an AuditLogQuery, field by field: rendered as a 422 metav1.Status whose causes kubectl
prints as `* spec.filter: Invalid value: "...": detail`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str  # e.g. "spec.filter", "spec.continue"
    reason: str  # metav1 CauseType: FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
    value: str | None  # the offending value as the user wrote it (None for a required field)
    detail: str  # what is wrong and how to fix it

    @property
    def message(self) -> str:
        """The Kubernetes field.Error text: `Invalid value: "x": detail` / `Required value: detail`."""
        if self.reason == "FieldValueRequired":
            return f"Required value: {self.detail}"
        quoted = '"' + (self.value or "").replace("\\", "\\\\").replace('"', '\\"') + '"'
        if self.reason == "FieldValueNotSupported":
            return f"Unsupported value: {quoted}: {self.detail}"
        if self.reason == "FieldValueTooLong":
            return f"Too long: {self.detail}"
        return f"Invalid value: {quoted}: {self.detail}"


class InvalidQuery(Exception):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = tuple(errors)
