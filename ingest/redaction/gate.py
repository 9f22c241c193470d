"""Whether an event needs a closer look, read without building it: msgspec decodes its objectRef and the kind of its
bodies (and of their list items), skipping everything else in place. JSON escapes are decoded, so a name spelled
with `\\u` escapes is seen for what it is. An event of an unusual form (a field of another type) gets the look."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ingest.redaction.walk import group_of


class _ObjectRef(msgspec.Struct):
    resource: str = ""
    apiGroup: str = ""


class _Typed(msgspec.Struct):
    kind: str = ""
    apiVersion: str = ""


class _Body(msgspec.Struct):
    kind: str = ""
    apiVersion: str = ""
    items: list[_Typed] | None = None


class _Event(msgspec.Struct):
    objectRef: _ObjectRef | None = None
    # A list is a JSON patch, text a body kube-apiserver could not decode: both get the look.
    requestObject: _Body | list[msgspec.Raw] | str | None = None
    responseObject: _Body | list[msgspec.Raw] | str | None = None


_DECODER = msgspec.json.Decoder(_Event)


class Gate:
    def __init__(self, resources: Iterable[tuple[str, str]], kinds: Iterable[tuple[str, str]]) -> None:
        self._resources = frozenset(resources)  # (API group, resource) of the objectRefs rules are about
        self._kinds = frozenset(kinds)  # (API group, kind) of the objects recognised in any body

    def _known(self, typed: _Typed | _Body) -> bool:
        return bool(typed.kind) and (group_of(typed.apiVersion), typed.kind) in self._kinds

    def needs_look(self, data: bytes | msgspec.Raw) -> bool:
        try:
            event = _DECODER.decode(data)
        except (msgspec.DecodeError, RecursionError):
            return True
        bodies = [b for b in (event.requestObject, event.responseObject) if b is not None]
        if not bodies:
            return False  # every rule is about the request and response bodies
        ref = event.objectRef
        if ref is None or (ref.apiGroup, ref.resource) in self._resources:
            return True  # without an objectRef, what the bodies are is unknown
        for body in bodies:
            if not isinstance(body, _Body) or self._known(body):
                return True
            if body.items and any(self._known(item) for item in body.items):
                return True
        return False
