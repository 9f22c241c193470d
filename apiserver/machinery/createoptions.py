"""CreateOptions (dryRun, fieldManager, fieldValidation), checked as kube-apiserver's ValidateCreateOptions does,
and the Warning header the fieldValidation directive asks for."""

from __future__ import annotations

from collections.abc import Sequence

from multidict import MultiMapping

from apiserver.machinery.fielderrors import FieldError
from apiserver.machinery.status import invalid

FIELD_VALIDATIONS = ("", "Ignore", "Strict", "Warn")
MAX_FIELD_MANAGER_LENGTH = 128


def field_validation(query: MultiMapping[str]) -> str:
    """The fieldValidation directive (422 on CreateOptions when any option is wrong). dryRun and fieldManager
    change nothing here, as nothing is stored."""
    errors = []
    for value in query.getall("dryRun", []):
        if value != "All":
            errors.append(FieldError("dryRun", "FieldValueNotSupported", value, 'supported values: "All"'))
    manager = query.get("fieldManager", "")
    if len(manager) > MAX_FIELD_MANAGER_LENGTH:
        detail = f"may not be longer than {MAX_FIELD_MANAGER_LENGTH}"
        errors.append(FieldError("fieldManager", "FieldValueTooLong", None, detail))
    elif not manager.isprintable():
        errors.append(
            FieldError("fieldManager", "FieldValueInvalid", manager, "must only contain printable characters")
        )
    validation = query.get("fieldValidation", "")
    if validation not in FIELD_VALIDATIONS:
        supported = ", ".join(f'"{v}"' for v in FIELD_VALIDATIONS)
        errors.append(
            FieldError("fieldValidation", "FieldValueNotSupported", validation, f"supported values: {supported}")
        )
    if errors:
        raise invalid("CreateOptions", "meta.k8s.io", "", errors)
    return validation


def warning_header(messages: Sequence[str]) -> str:
    """RFC 7234 warnings as kube-apiserver writes them: code 299, agent '-', quoted text."""
    return ", ".join('299 - "' + m.replace("\\", "\\\\").replace('"', '\\"') + '"' for m in messages)
