"""Replacing the values at given paths of a parsed JSON document, in place: in an object (or each item of a list
response), inside a JSON patch's operations, and in the objects of a body that name their kind.

Every walk keeps its own stack rather than recursing: an event nested deeper than the interpreter's recursion limit
is still walked whole. A value that is null (a merge patch deleting a key) or already a marker is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from auditlog.redaction import is_marker
from ingest.redaction.paths import WILDCARD, Path

Mark = Callable[[Any], str]  # a value -> its marker


def _replace(container: Any, slot: Any, mark: Mark) -> int:
    value = container[slot]
    if value is None or is_marker(value):
        return 0
    container[slot] = mark(value)
    return 1


def _slots(node: Any, segment: str) -> Iterator[Any]:
    if isinstance(node, dict):
        if segment == WILDCARD:
            yield from list(node)
        elif segment in node:
            yield segment
    elif isinstance(node, list) and segment == WILDCARD:
        yield from range(len(node))


def redact_path(document: Any, path: Path, mark: Mark) -> int:
    """Every value at `path` under `document` replaced by its marker; how many were."""
    count = 0
    stack: list[tuple[Any, Path]] = [(document, path)]
    while stack:
        node, rest = stack.pop()
        head, tail = rest[0], rest[1:]
        for slot in _slots(node, head):
            if not tail or isinstance(node[slot], str):  # text where the path goes on may hold it anywhere
                count += _replace(node, slot, mark)
            else:
                stack.append((node[slot], tail))
    return count


def redact_object(body: Any, paths: tuple[Path, ...], mark: Mark) -> int:
    """The values at `paths` of an object (and of each item, when it is a list response), or of each operation
    when it is a JSON patch."""
    if isinstance(body, dict):
        count = sum(redact_path(body, p, mark) for p in paths)
        if isinstance(body.get("items"), list):
            count += sum(redact_path(body, ("items", WILDCARD, *p), mark) for p in paths)
        return count
    if isinstance(body, list):
        return sum(redact_json_patch(body, p, mark) for p in paths)
    return 0


def redact_body(event: dict[str, Any], field: str, paths: tuple[Path, ...], mark: Mark) -> int:
    """`event[field]` (requestObject, responseObject) as `redact_object` does; a body that is not JSON structure
    (text kube-apiserver could not decode, e.g. a YAML patch) may hold the values anywhere, so it goes whole."""
    body = event.get(field)
    if isinstance(body, dict | list):
        return redact_object(body, paths, mark)
    return _replace(event, field, mark) if isinstance(body, str) else 0


def _pointer(text: str) -> Path:
    """A JSON pointer's keys (RFC 6901). Lenient about the leading '/': kube-apiserver logs the patch as sent,
    before it refuses a malformed one, so a value behind a malformed pointer is still in the event."""
    if not text:
        return ()
    keys = text[1:] if text.startswith("/") else text
    return tuple(k.replace("~1", "/").replace("~0", "~") for k in keys.split("/"))


def _covers(pointer: Path, path: Path) -> bool:
    return all(p in (WILDCARD, k) for k, p in zip(pointer, path, strict=False))


def redact_json_patch(operations: list[Any], path: Path, mark: Mark) -> int:
    """The `value` of each operation at or under `path` replaced; above it (`/data`, or `` replacing the whole
    object) the rest of the path is redacted inside the value. `test` operations carry values too."""
    count = 0
    for op in operations:
        if not isinstance(op, dict) or "value" not in op or not isinstance(op.get("path"), str):
            continue
        pointer = _pointer(op["path"])
        if not _covers(pointer, path):
            continue
        if len(pointer) >= len(path):
            count += _replace(op, "value", mark)
        elif isinstance(op["value"], dict | list):
            count += redact_object(op["value"], (path[len(pointer) :],), mark)
        elif isinstance(op["value"], str):  # text where the path goes on: what it holds is unknown
            count += _replace(op, "value", mark)
    return count


def _with_items(node: Any) -> list[Any]:
    items = node.get("items") if isinstance(node, dict) else None
    return [node, *items] if isinstance(items, list) else [node]


def embedded(body: Any, kinds: Mapping[tuple[str, str], Any]) -> Iterator[tuple[dict[str, Any], tuple[str, str]]]:
    """The objects of `body` that name an (API group, kind) in `kinds`, with that pair: the body itself, each item
    of a list body (a `List` of mixed kinds), the value of each JSON patch operation (and its items)."""
    if isinstance(body, list):
        candidates = [c for op in body if isinstance(op, dict) for c in _with_items(op.get("value"))]
    else:
        candidates = _with_items(body)
    for node in candidates:
        if isinstance(node, dict):
            kind, version = node.get("kind"), node.get("apiVersion")
            if isinstance(kind, str) and isinstance(version, str) and (group_of(version), kind) in kinds:
                yield node, (group_of(version), kind)


def group_of(api_version: str) -> str:
    """`v1` -> "" (core), `authentication.k8s.io/v1` -> `authentication.k8s.io`."""
    group, _, _ = api_version.rpartition("/")
    return group
