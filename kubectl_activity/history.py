"""`kubectl activity history`: one object's writes, oldest first, and with --diff how the object changed from
one version to the next (unified diffs of YAML dumps, like `kubectl diff`)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from rich.console import Console
from rich.text import Text

from auditlog.fields import BY_PATH
from kubectl_activity import redacted
from kubectl_activity.output import cell, print_table

COLUMNS = tuple(BY_PATH[p] for p in ("stageTimestamp", "verb", "user.username", "responseStatus.code"))
# Rewritten by the server on every write; showing them would make every diff look like a change.
VOLATILE_METADATA = ("managedFields",)


@dataclass(frozen=True)
class Change:
    event: Mapping[str, Any]
    state: dict[str, Any] | None  # the whole object after the change; None when the event does not carry it

    @property
    def verb(self) -> str:
        verb = str(self.event.get("verb", ""))
        subresource = (self.event.get("objectRef") or {}).get("subresource")
        return f"{verb} {subresource}" if subresource else verb

    @property
    def succeeded(self) -> bool:
        return 0 < int((self.event.get("responseStatus") or {}).get("code") or 0) < 400


def object_state(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The object as stored after the write: the response body, else (for create/update) the request body. A
    patch's request body is only the patch and a delete's answer a Status, so neither is a state."""
    for key in ("responseObject", "requestObject"):
        body = event.get(key)
        if key == "requestObject" and event.get("verb") not in ("create", "update"):
            return None
        if isinstance(body, dict) and body.get("kind") != "Status":
            return body
    return None


def changes(events_newest_first: Sequence[Mapping[str, Any]]) -> list[Change]:
    return [Change(e, object_state(e)) for e in reversed(events_newest_first)]


def _dump(state: Mapping[str, Any]) -> list[str]:
    state = redacted.masked(state)  # a credential's marker is not a value to show
    metadata = {k: v for k, v in (state.get("metadata") or {}).items() if k not in VOLATILE_METADATA}
    shown = {**state, "metadata": metadata} if "metadata" in state else dict(state)
    return yaml.safe_dump(shown, sort_keys=True, allow_unicode=True).splitlines()


def _without_metadata(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "metadata"}


def diff_lines(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return list(difflib.unified_diff(_dump(before), _dump(after), "before", "after", lineterm=""))


_DIFF_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


def _diff_text(lines: Sequence[str]) -> Text:
    text = Text()
    for line in lines:
        style = next((s for prefix, s in _DIFF_STYLES if line.startswith(prefix)), "")
        text.append(line + "\n", style=style)
    return text


def render_list(items: Sequence[Change], console: Console) -> None:
    rows = [[cell(c.event, f) if f.path != "verb" else c.verb for f in COLUMNS] for c in items]
    print_table(rows, [f.header for f in COLUMNS], console.file)


def render_diffs(items: Sequence[Change], console: Console) -> None:
    """Each change with the object's diff against the last known state; colour only if `console` is a terminal."""
    previous: dict[str, Any] | None = None
    for change in items:
        status = cell(change.event, BY_PATH["responseStatus.code"])
        user = cell(change.event, BY_PATH["user.username"])
        console.print(
            Text(f"── {cell(change.event, BY_PATH['stageTimestamp'])} {change.verb} by {user} ({status})", "bold")
        )
        if not change.succeeded:
            console.print("   failed: the object did not change")
        elif change.event.get("verb") in ("delete", "deletecollection"):
            console.print(Text("   deleted", "red"))
            previous = None
        elif change.state is None:
            console.print("   the event does not record the object (audit level Metadata, or a patch body only)")
        elif previous is None:
            console.print(Text("   Initial state", "green"))
            console.print(_diff_text(["+" + line for line in _dump(change.state)]), end="")
            previous = change.state
        else:
            lines, secrets = diff_lines(previous, change.state), redacted.changed(previous, change.state)
            if not lines and not secrets:
                console.print("   no change")
            else:
                if _without_metadata(previous) == _without_metadata(change.state):
                    console.print(Text("   metadata only", "yellow"))
                for line in secrets:
                    console.print(Text(f"   {line}", "yellow"))
                console.print(_diff_text(lines), end="")
            previous = change.state
        console.print()
