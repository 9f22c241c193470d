"""Request bodies: JSON or YAML into plain values, then checked against the type's OpenAPI schema the way
kube-apiserver's strict decoder does (unknown fields, fields given twice, wrong JSON types).

Kubernetes names a problem by its dotted path (`spec.foo`, `metadata.finalizers[0]`); so do we, because the
fieldValidation error and Warning texts are built from those paths.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from apiserver.http.negotiation import JSON, YAML
from apiserver.http.status import bad_request

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


class _Loader(yaml.SafeLoader):
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


def decode(body: bytes, media: str) -> Any:
    """Parse the body; a syntax error is a 400 that says where."""
    if not body.strip():
        raise bad_request("the request body is empty: send an object")
    try:
        if media == YAML:
            return yaml.load(body, Loader=_Loader)  # _Loader is a SafeLoader
        return json.loads(body, object_pairs_hook=_json_object, parse_constant=_reject_constant)
    except (ValueError, yaml.YAMLError) as err:
        kind = "YAML" if media == YAML else "JSON"
        raise bad_request(f"the request body is not valid {kind}: {err}") from None
    except RecursionError:
        raise bad_request("the request body is nested too deeply") from None


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
