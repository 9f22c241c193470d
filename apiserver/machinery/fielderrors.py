"""Validation failures field by field (Kubernetes' field.Error): rendered as a 422 metav1.Status whose causes
kubectl prints as `* spec.filter: Invalid value: "...": detail`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


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


MAX_SHOWN_VALUE = 200  # characters of a wrongly typed value quoted back in the error


def wrong_type(path: str, expected: str, value: Any) -> FieldError:
    """A value of the wrong JSON type, quoted back (shortened) as kube-apiserver's decoder reports it."""
    # the stdlib encoder: orjson refuses integers beyond 64 bits, which JSON bodies may carry
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(shown) > MAX_SHOWN_VALUE:
        shown = shown[:MAX_SHOWN_VALUE] + "..."
    return FieldError(path, "FieldValueTypeInvalid", shown, f"{path} must be of type {expected}")
