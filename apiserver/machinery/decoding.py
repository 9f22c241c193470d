"""Request bodies: JSON or YAML into plain values, then checked against the type's OpenAPI schema the way
kube-apiserver's strict decoder does (unknown fields, fields given twice, wrong JSON types).

Kubernetes names a problem by its dotted path (`spec.foo`, `metadata.finalizers[0]`); so do we, because the
fieldValidation error and Warning texts are built from those paths.

YAML is hostile-input territory: aliases turn a few hundred bytes into gigabytes (billion laughs), deep nesting
overflows libyaml's recursive composer (a segfault, not an exception) and the pure-Python parser needs seconds per
megabyte. So a YAML body is bounded in size, scanned event by event first (aliases refused, depth bounded, in
constant stack), and only then built by the C-accelerated safe loader; large bodies are decoded off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

from apiserver.machinery.negotiation import JSON, YAML
from apiserver.machinery.status import bad_request, request_entity_too_large

T = TypeVar("T")

MEDIA_TYPES = (JSON, YAML)

Schemas = Mapping[str, Mapping[str, Any]]


class DecodedObject(dict[str, Any]):
    """A mapping from the body that remembers which keys it saw more than once (the last value wins)."""

    def __init__(self) -> None:
        super().__init__()
        self.repeated: list[str] = []

    def put(self, key: str, value: Any) -> None:
        if key in self:
            self.repeated.append(key)
        self[key] = value


def _json_object(pairs: list[tuple[str, Any]]) -> DecodedObject:
    obj = DecodedObject()
    for key, value in pairs:
        obj.put(key, value)
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# An AuditLogQuery is a few KiB; 1 MiB leaves room for large labels and annotations (256 KiB each in Kubernetes)
# and bounds the YAML constructors' work (~1 s per MiB even with libyaml: the node objects are Python).
MAX_YAML_BODY_BYTES = 1024 * 1024
MAX_NESTING_DEPTH = 100  # no AuditLogQuery comes near; libyaml's composer recurses in C per level
OFF_LOOP_BYTES = 16 * 1024  # smaller bodies (every usual query) decode within milliseconds: no thread hop
# Two threads: a burst of large bodies queues here instead of multiplying the memory of concurrent parses.
_DECODER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_NESTING = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_UNNESTING = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]
    """Safe YAML that keeps timestamps as strings (as Kubernetes' YAML decoder does) and records repeated keys."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_mapping(loader: _Loader, node: yaml.MappingNode) -> DecodedObject:
    loader.flatten_mapping(node)
    obj = DecodedObject()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        obj.put(key if isinstance(key, str) else str(key), loader.construct_object(value_node, deep=True))
    return obj


_Loader.add_constructor("tag:yaml.org,2002:map", _yaml_mapping)


class _Refused(Exception):
    """The YAML is well-formed but will not be built (an alias, too deep): a 400 saying so."""


def _scan(body: bytes) -> None:
    """Refuse aliases and deep nesting from the event stream, before any node exists. Every alias is refused, as
    one alias can be enough for a bomb; an anchor alone is harmless and allowed."""
    scanner = _SafeLoader(body)
    depth = 0
    try:
        while not isinstance(event := scanner.get_event(), yaml.StreamEndEvent):  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
                raise _Refused(
                    f"the request body is not valid YAML: {where}aliases (*{event.anchor}) are not allowed; "
                    "write the value out in full"
                )
            if isinstance(event, _NESTING):
                depth += 1
                if depth > MAX_NESTING_DEPTH:
                    raise _Refused(f"the request body is nested too deeply (more than {MAX_NESTING_DEPTH} levels)")
            elif isinstance(event, _UNNESTING):
                depth -= 1
    except yaml.MarkedYAMLError as err:
        # libyaml (PyYAML >= 6.0.4) scans ahead and stops deep flow collections itself, before the events say so
        if err.problem == "exceeded maximum nesting depth":
            raise _Refused(f"the request body is nested too deeply (more than {MAX_NESTING_DEPTH} levels)") from None
        raise
    finally:
        scanner.dispose()


def _load_yaml(body: bytes) -> Any:
    _scan(body)
    loader = _Loader(body)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def dump_yaml(value: Any) -> bytes:
    """YAML for an answer, by libyaml when installed (the pure-Python emitter needs seconds for a full page)."""
    return yaml.dump(value, Dumper=_SafeDumper, sort_keys=False, allow_unicode=False).encode()


def decode(body: bytes, media: str) -> Any:
    """Parse the body; a syntax error is a 400 that says where, an oversized YAML body a 413."""
    if not body.strip():
        raise bad_request("the request body is empty: send an object")
    if media == YAML and len(body) > MAX_YAML_BODY_BYTES:
        raise request_entity_too_large(
            f"a YAML body may be at most {MAX_YAML_BODY_BYTES} bytes, this one is {len(body)}; send it as JSON"
        )
    try:
        if media == YAML:
            return _load_yaml(body)
        return json.loads(body, object_pairs_hook=_json_object, parse_constant=_reject_constant)
    except _Refused as refused:
        raise bad_request(str(refused)) from None
    except (ValueError, yaml.YAMLError) as err:
        kind = "YAML" if media == YAML else "JSON"
        raise bad_request(f"the request body is not valid {kind}: {err}") from None
    except RecursionError:
        raise bad_request("the request body is nested too deeply") from None


async def off_loop(size: int, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` for a body of `size` bytes: inline when small, else on a decoder thread so that one large body
    does not hold up every other request on the event loop."""
    if size < OFF_LOOP_BYTES:
        return fn(*args)
    return await asyncio.get_running_loop().run_in_executor(_DECODER, fn, *args)


@dataclass
class Problems:
    unknown: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    wrong_type: list[tuple[str, str, Any]] = field(default_factory=list)  # (path, expected type, value)

    def field_messages(self) -> list[str]:
        """kube-apiserver's texts for the fieldValidation directive."""
        return [f'unknown field "{p}"' for p in self.unknown] + [f'duplicate field "{p}"' for p in self.duplicate]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _resolve(schema: Mapping[str, Any], schemas: Schemas) -> Mapping[str, Any]:
    if "$ref" in schema:
        return schemas[schema["$ref"]]
    return schema


_SCALAR_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool}


def conform(value: Any, schema: Mapping[str, Any], schemas: Schemas, path: str = "") -> tuple[Any, Problems]:
    """`value` with unknown fields dropped and nulls treated as absent, plus what was wrong with it.
    `$ref`s in `schema` name entries of `schemas` directly."""
    problems = Problems()
    return _conform(value, schema, schemas, path, problems), problems


def _conform(value: Any, schema: Mapping[str, Any], schemas: Schemas, path: str, problems: Problems) -> Any:
    schema = _resolve(schema, schemas)
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            problems.wrong_type.append((path, "object", value))
            return None
        problems.duplicate.extend(_join(path, k) for k in getattr(value, "repeated", ()))
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            if key in properties:
                kept[key] = _conform(item, properties[key], schemas, _join(path, key), problems)
            elif additional is not None:
                kept[key] = _conform(item, additional, schemas, _join(path, key), problems)
            elif schema.get("x-kubernetes-preserve-unknown-fields"):
                kept[key] = item
            else:
                problems.unknown.append(_join(path, key))
        return kept
    if kind == "array":
        if not isinstance(value, list):
            problems.wrong_type.append((path, "array", value))
            return None
        items = schema.get("items", {})
        return [_conform(item, items, schemas, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    expected = _SCALAR_TYPES.get(kind or "")
    if expected is None:
        return value
    if not isinstance(value, expected) or (kind == "integer" and isinstance(value, bool)):
        problems.wrong_type.append((path, kind or "", value))
        return None
    return value
