"""The CEL environment filters are checked against, declared from the field catalogue.

A dotted catalogue path (`objectRef.name`) becomes a field of a proto3 message type (`ObjectReference`) built at
run time, so the checker rejects a typo like `objectRef.nme` (a `map(string, dyn)` would let it through) and
`has()` has proto3 meaning: true iff the field holds a non-default value, which is what the SQL columns can tell
(an absent JSON field and an empty one both become '' / 0 / []). Top-level catalogue fields are plain variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from cel_expr_python import cel
from google.protobuf import descriptor_pb2, descriptor_pool

from auditlog.fields import FIELDS, Field, FieldKind

PACKAGE = "activity.filter.v1"
_PROTO = descriptor_pb2.FieldDescriptorProto

# The message type of each catalogue object, by its name in the event (named like the audit.k8s.io/v1 Go types).
MESSAGE_NAMES: Mapping[str, str] = {
    "user": "UserInfo",
    "objectRef": "ObjectReference",
    "responseStatus": "Status",
}

_PROTO_TYPES = {
    FieldKind.STRING: _PROTO.TYPE_STRING,
    FieldKind.INT: _PROTO.TYPE_INT32,
    FieldKind.STRING_LIST: _PROTO.TYPE_STRING,
}


def _cel_type(kind: FieldKind) -> cel.Type:
    return {
        FieldKind.STRING: cel.Type.STRING,
        FieldKind.INT: cel.Type.INT,
        FieldKind.TIMESTAMP: cel.Type.TIMESTAMP,
        FieldKind.STRING_LIST: cel.Type.List(cel.Type.STRING),
        FieldKind.STRING_MAP: cel.Type.Map(cel.Type.STRING, cel.Type.STRING),
    }[kind]


@dataclass(frozen=True)
class Schema:
    pool: descriptor_pool.DescriptorPool
    variables: Mapping[str, cel.Type]  # CEL variable name -> declared type
    columns: Mapping[tuple[str, ...], Field]  # (variable,) or (variable, field) -> catalogue field


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="activity/filter/v1/event.proto", package=PACKAGE, syntax="proto3")
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}
    for field in FIELDS:
        if len(field.parts) != 2:
            continue
        parent, name = field.parts
        if parent not in messages:
            messages[parent] = proto.message_type.add(name=MESSAGE_NAMES[parent])
        message = messages[parent]
        label = _PROTO.LABEL_REPEATED if field.kind is FieldKind.STRING_LIST else _PROTO.LABEL_OPTIONAL
        message.field.add(
            name=name, json_name=name, number=len(message.field) + 1, type=_PROTO_TYPES[field.kind], label=label
        )
    return proto


@cache
def schema() -> Schema:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    variables: dict[str, cel.Type] = {}
    for field in FIELDS:
        head = field.parts[0]
        if len(field.parts) == 1:
            variables[head] = _cel_type(field.kind)
        elif len(field.parts) == 2:
            variables[head] = cel.Type(f"{PACKAGE}.{MESSAGE_NAMES[head]}")
        else:
            raise ValueError(f"catalogue path {field.path} is nested deeper than one message")
    return Schema(pool, variables, {field.parts: field for field in FIELDS})


@cache
def environment() -> cel.Env:
    """Built once per process (about a millisecond), then shared by every compile."""
    s = schema()
    return cel.NewEnv(descriptor_pool=s.pool, variables=dict(s.variables))
