"""Printing events: kubectl-style tables (columns from the field catalogue), json/yaml as a kubectl `List`,
`-o name` and `-o jsonpath=TEMPLATE` (kubectl's template syntax over that List)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from auditlog.fields import Field, FieldKind, table_fields
from kubectl_activity.errors import PluginError

# yaml and jsonpath are imported where used: each costs start-up time a command may not need.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

FORMATS = ("table", "wide", "json", "yaml", "name", "jsonpath=TEMPLATE")
MISSING = "<none>"  # what kubectl's custom columns show for an absent value
COLUMN_GAP = 3  # spaces between columns, as kubectl's tabwriter


@dataclass(frozen=True)
class OutputFormat:
    kind: str  # table, wide, json, yaml, name, jsonpath
    template: str = ""  # for jsonpath

    @classmethod
    def parse(cls, text: str) -> OutputFormat:
        kind, _, template = text.partition("=")
        if kind in ("table", "wide", "json", "yaml", "name") and not template:
            return cls(kind)
        if kind == "jsonpath" and template:
            from kubectl_activity import jsonpath_template

            jsonpath_template.compile_template(template)  # a bad template fails before any request
            return cls(kind, template)
        raise PluginError(
            f'error: unable to match a printer suitable for the output format "{text}", allowed '
            f"formats are: {', '.join(FORMATS)}"
        )


def value_at(event: Mapping[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def cell(event: Mapping[str, Any], field: Field) -> str:
    value = value_at(event, field.path)
    if value is None or value == "" or value == []:
        return MISSING
    if field.kind is FieldKind.TIMESTAMP:
        return str(value)[:19] + "Z"  # seconds are enough to read; -o json keeps the microseconds
    if field.kind is FieldKind.STRING_LIST:
        return ",".join(str(v) for v in value)
    if field.kind is FieldKind.INT and value == 0:
        return MISSING  # stages before the response have no status
    return str(value)


def printable(text: str) -> str:
    """`text` with control characters written as escapes (\\n, \\t, \\x1b): a stored value can neither break a
    row in two nor send the terminal an escape sequence."""
    return _CONTROL.sub(lambda found: repr(found.group())[1:-1], text)


def print_table(
    rows: Sequence[Sequence[str]], headers: Sequence[str], out: IO[str], *, show_headers: bool = True
) -> None:
    """Left-aligned columns, COLUMN_GAP apart, never wrapped or cut (pipe it into grep/awk as kubectl's). Widths
    are terminal cells (a CJK character or an emoji takes two)."""
    from rich.cells import cell_len  # the width table alone: rich's console would cost ~40 ms of start-up

    def width(text: str) -> int:
        return len(text) if text.isascii() else cell_len(text)  # printable ASCII: one cell a character

    lines = [list(headers)] if show_headers else []
    lines += [[printable(value) for value in row] for row in rows]
    widths = [max(width(line[i]) for line in lines) for i in range(len(headers))]
    text = []
    for line in lines:
        padded = [value + " " * (size - width(value) + COLUMN_GAP) for value, size in zip(line, widths, strict=True)]
        text.append("".join(padded).rstrip() + "\n")
    out.write("".join(text))  # one write: a page is one system call, not one a row


def event_table(events: Sequence[Mapping[str, Any]], wide: bool, out: IO[str], *, show_headers: bool = True) -> None:
    fields = table_fields(wide)
    print_table(
        [[cell(e, f) for f in fields] for e in events], [f.header for f in fields], out, show_headers=show_headers
    )


def object_name(event: Mapping[str, Any]) -> str | None:
    """`resource[.group]/name` of the event's object, as `kubectl get -o name` prints it; None without a name."""
    ref = event.get("objectRef") or {}
    if not ref.get("name") or not ref.get("resource"):
        return None
    group = f".{ref['apiGroup']}" if ref.get("apiGroup") else ""
    return f"{ref['resource']}{group}/{ref['name']}"


def as_list(events: Iterable[Mapping[str, Any]], continue_token: str = "") -> dict[str, Any]:
    """The events as kubectl prints a list (`kubectl get -o json`): `items`, and `metadata.continue` if more."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"continue": continue_token} if continue_token else {},
        "items": list(events),
    }


class EventPrinter:
    """Prints events in one output format, page by page (json/yaml/jsonpath: all at `finish`)."""

    def __init__(self, output: OutputFormat, out: IO[str] | None = None) -> None:
        self.output = output
        self.out = out or sys.stdout
        self.printed = 0
        self._held: list[Mapping[str, Any]] = []

    def page(self, events: Sequence[Mapping[str, Any]]) -> None:
        kind = self.output.kind
        if kind in ("table", "wide"):
            if events:
                event_table(events, kind == "wide", self.out, show_headers=self.printed == 0)
        elif kind == "name":
            for event in events:
                name = object_name(event)
                if name:
                    self.out.write(name + "\n")
        else:
            self._held.extend(events)
        self.printed += len(events)

    def finish(self, continue_token: str = "") -> None:
        kind = self.output.kind
        if kind == "json":
            self.out.write(json.dumps(as_list(self._held, continue_token), indent=4, ensure_ascii=False) + "\n")
        elif kind == "yaml":
            import yaml

            self.out.write(yaml.safe_dump(as_list(self._held, continue_token), sort_keys=False, allow_unicode=True))
        elif kind == "jsonpath":
            from kubectl_activity import jsonpath_template

            self.out.write(jsonpath_template.render(self.output.template, as_list(self._held, continue_token)))
        elif kind in ("table", "wide") and self.printed == 0:
            sys.stderr.write("No resources found\n")
        self.out.flush()
