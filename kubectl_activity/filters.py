"""Convenience flags → one CEL filter. Each flag is a clause; clauses and the user's own --filter are ANDed.
Values become CEL string literals with every special character escaped, so a value can never change the
meaning of the expression (a quote in a user name stays part of the name)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
SYSTEM_USER_PREFIX = "system:"

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def cel_string(value: str) -> str:
    """`value` as a double-quoted CEL string literal."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif not char.isprintable():  # control and separator characters, spelled out as code points
            out.append(f"\\U{ord(char):08x}" if ord(char) > 0xFFFF else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def cel_one_of(field: str, values: Sequence[str]) -> str:
    if len(values) == 1:
        return f"{field} == {cel_string(values[0])}"
    return f"{field} in [{', '.join(cel_string(v) for v in values)}]"


def split_values(given: Iterable[str]) -> list[str]:
    """Repeated flags and comma lists (`--verb create,update --verb patch`), in order, without duplicates."""
    values: list[str] = []
    for item in given:
        for value in item.split(","):
            if value.strip() and value.strip() not in values:
                values.append(value.strip())
    return values


@dataclass(frozen=True)
class Selection:
    """What the convenience flags ask for; empty fields select everything."""

    users: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    namespace: str | None = None
    resource: str | None = None
    name: str | None = None
    api_group: str | None = None
    exclude_system: bool = False
    writes_only: bool = False
    stage: str | None = None

    def clauses(self) -> list[str]:
        clauses = []
        if self.users:
            clauses.append(cel_one_of("user.username", self.users))
        if self.verbs:
            clauses.append(cel_one_of("verb", self.verbs))
        if self.writes_only:
            clauses.append(cel_one_of("verb", WRITE_VERBS))
        if self.exclude_system:
            clauses.append(f"!user.username.startsWith({cel_string(SYSTEM_USER_PREFIX)})")
        for field, value in (
            ("objectRef.namespace", self.namespace),
            ("objectRef.resource", self.resource),
            ("objectRef.name", self.name),
            ("objectRef.apiGroup", self.api_group),
            ("stage", self.stage),
        ):
            if value is not None:
                clauses.append(f"{field} == {cel_string(value)}")
        return clauses


def combine(selection: Selection, user_filter: str = "") -> str:
    """The filter to send: the flags' clauses and the user's --filter, ANDed (each parenthesised)."""
    clauses = selection.clauses()
    if user_filter.strip():
        clauses.append(user_filter.strip())
    if len(clauses) == 1:
        return clauses[0]
    return " && ".join(f"({c})" for c in clauses)
