"""Checks of an AuditLogQuery spec that need no store and no CEL: each problem is a FieldError on its field."""

from __future__ import annotations

from apiserver.apis.activity.v1alpha1.defaults import DEFAULT_LIMIT
from apiserver.machinery.fielderrors import FieldError

LIMIT_FIELD = "spec.limit"


def validate_limit(requested: int | None, max_page_size: int) -> tuple[int | None, list[FieldError]]:
    """The page size to read (None when refused) and the errors; an omitted limit is the default, capped."""
    if requested is None:
        return min(DEFAULT_LIMIT, max_page_size), []
    if not 1 <= requested <= max_page_size:
        detail = f"must be between 1 and {max_page_size} (omit it for {DEFAULT_LIMIT})"
        return None, [FieldError(LIMIT_FIELD, "FieldValueInvalid", str(requested), detail)]
    return requested, []
