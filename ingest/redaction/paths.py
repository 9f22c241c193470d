"""Where credentials sit in an object: paths like `data.*`, and the `--redact-path` rules that name them per resource.

A path is a sequence of object keys from the object's root; `*` stands for every member of an object or every
element of a list. Written with dots, a key that holds dots (or brackets) goes in brackets:
`metadata.annotations[example.com/token]`. A rule is `GROUP/RESOURCE[/SUBRESOURCE]:PATH`, the group `core` for
Kubernetes' core group: `core/configmaps:data.password`, `example.com/widgets:spec.apiKey`,
`core/serviceaccounts/token:status.token`. Metrics name a rule the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WILDCARD = "*"
Path = tuple[str, ...]

_TOKEN = re.compile(r"\[(?P<bracket>[^\]]+)\]|(?P<plain>[^.\[\]]+)")
_RESOURCE = re.compile(r"(?P<group>[a-z0-9][a-z0-9.-]*)/(?P<resource>[a-z0-9][a-z0-9-]*)(?:/(?P<sub>[a-z0-9-]+))?")
CORE = "core"
RULE_FORM = "GROUP/RESOURCE[/SUBRESOURCE]:PATH, e.g. core/configmaps:data.password or example.com/widgets:spec.apiKey"


def parse_path(text: str) -> Path:
    segments: list[str] = []
    pos = 0
    while True:
        token = _TOKEN.match(text, pos)
        if token is None:
            raise ValueError(f"path {text!r}: expected a key at character {pos + 1} (keys joined by '.', [key] quoted)")
        segments.append(token["bracket"] or token["plain"])
        pos = token.end()
        if pos == len(text):
            return tuple(segments)
        if text[pos] == ".":
            pos += 1
        elif text[pos] != "[":
            raise ValueError(f"path {text!r}: unexpected {text[pos]!r} at character {pos + 1}")


@dataclass(frozen=True)
class PathRule:
    """Values at `paths` of the request and response objects of `group`/`resource` events are redacted."""

    group: str  # "" for the core group
    resource: str
    subresource: str | None  # None: the resource and all its subresources
    paths: tuple[Path, ...]

    @property
    def label(self) -> str:
        """How metrics name the rule: as --redact-path does."""
        name = f"{self.group or CORE}/{self.resource}"
        return f"{name}/{self.subresource}" if self.subresource else name

    def matches(self, group: str, resource: str, subresource: str | None) -> bool:
        return (
            resource == self.resource
            and group == self.group
            and (self.subresource is None or subresource == self.subresource)
        )


def parse_rule(spec: str) -> PathRule:
    """`GROUP/RESOURCE[/SUBRESOURCE]:PATH` (see the module doc); ValueError says what to write instead."""
    target, sep, path = spec.strip().partition(":")
    named = _RESOURCE.fullmatch(target)
    if not sep or named is None or not path:
        raise ValueError(f"--redact-path {spec!r} is not {RULE_FORM}")
    group = "" if named["group"] == CORE else named["group"]
    return PathRule(group, named["resource"], named["sub"], (parse_path(path),))
