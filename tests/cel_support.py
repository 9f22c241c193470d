"""Test helpers of the CEL filter: the events of the differential test and two reference evaluators.

cel-python (celpy) is the independent reference: a pure-Python CEL implementation that shares no code with
cel-expr-python (the checker and translator use) nor with ClickHouse. Its activation holds every catalogue field,
with the proto3 default ('' / 0 / [] / {}) where the event has none, because that is what the declared message
types mean. celpy has no protobuf messages, so the objects are celpy MessageType maps, and `has()` on them gets
proto3 field semantics (true iff non-default) through a small evaluator subclass; on maps (annotations) it keeps
celpy's key-presence test. cel-expr-python (Google's cel-cpp) evaluates the same filters as a second reference,
with real proto messages from the filter schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import celpy
import lark
from cel_expr_python import cel
from celpy import celtypes
from celpy.evaluation import CELEvalError, Evaluator
from google.protobuf import message_factory

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from apiserver.registry.auditlogquery.filter.schema import MESSAGE_NAMES, PACKAGE, environment, schema
from auditlog.events import parse_timestamp, problem
from auditlog.fields import FIELDS, Field, FieldKind

Key = tuple[str, str]  # (auditID, stage)


def key_of(event: Mapping[str, Any]) -> Key:
    return event["auditID"], event["stage"]


def generated_events(requests: int, seed: int = 7) -> list[dict[str, Any]]:
    return list(EventGenerator(GeneratorSettings(seed=seed)).events(requests))


def _edge(audit_id: str, stage: str = "ResponseComplete", **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": audit_id,
        "stage": stage,
        "stageTimestamp": "2026-11-28T09:00:30.000001Z",
        "level": "Metadata",
        "verb": "get",
    }
    for name, value in fields.items():
        if value is _ABSENT:
            event.pop(name, None)
        else:
            event[name] = value
    return event


_ABSENT = object()
SQL_INJECTION = "'; DROP TABLE events; --"


def edge_events() -> list[dict[str, Any]]:
    """Hand-made events at the corners: unicode, quotes, backslashes, empty and missing parts, extreme times."""
    events = [
        _edge(
            "edge-unicode-ü",
            user={"username": "zoë@例え.jp", "uid": "ü-1", "groups": ["grüppe", "😀", "system:authenticated"]},
            objectRef={"resource": "pods", "namespace": "ns-é", "name": "名前-😀", "apiVersion": "v1"},
            responseStatus={"code": 200},
            userAgent="kubectl/ünïcödé",
            annotations={"ключ": "значение", "emoji/😀": "✓"},
        ),
        _edge(
            "edge-quotes",
            user={"username": "o'brien\"the\\admin", "groups": ["it's", 'say "hi"', "back\\slash"]},
            objectRef={"resource": "configmaps", "name": SQL_INJECTION, "namespace": "default"},
            requestURI="/api/v1/namespaces/default/configmaps?labelSelector=a%3Db&x=_%",
            userAgent="agent \"quoted\" \\ back\\slash 'single'",
            responseStatus={"code": 403},
            annotations={"it's": 'a "value"', "authorization.k8s.io/decision": "forbid", "back\\slash": "\\"},
        ),
        _edge(
            "edge-newline\tand-tab",
            userAgent="line one\nline two",
            requestURI="/api/v1/pods\r\n",
            user={"username": "multi\nline", "groups": []},
            objectRef={"resource": "pods", "name": "a.b"},
            responseStatus={"code": 200},
        ),
        _edge("edge-empty", verb="", level="", requestURI="", userAgent="", user={}, objectRef={}, annotations={}),
        _edge("edge-missing-parts", user=_ABSENT, objectRef=_ABSENT, responseStatus=_ABSENT, annotations=_ABSENT),
        _edge("edge-nulls", objectRef=None, responseStatus=None, annotations=None, user=None, sourceIPs=None),
        _edge(
            "edge-duplicates",
            stage="Panic",
            user={"username": "dup", "groups": ["a", "a", "b"]},
            sourceIPs=["10.0.0.1", "10.0.0.1", "::1"],
            responseStatus={"code": 500},
            annotations={"": "", "k": ""},
        ),
        _edge(
            "edge-offset-time",
            stageTimestamp="2026-11-28T10:00:30.5+01:00",
            responseStatus={"code": -1},
            sourceIPs=["192.168.0.1"],
        ),
        _edge("edge-1900", stageTimestamp="1900-01-01T00:00:00Z", responseStatus={"code": 2147483647}),
        _edge("edge-2299", stageTimestamp="2299-12-31T23:59:59.999999Z", verb="deletecollection"),
        _edge("edge-1950", stageTimestamp="1950-06-01T12:00:00.123456Z", level="Request"),
        _edge("edge-pre-epoch", stageTimestamp="1969-12-31T23:59:59.999999Z", level="Request"),
        _edge("edge-sql", verb=SQL_INJECTION, userAgent="1' OR '1'='1", requestURI="%_\\%"),
        _edge("edge-long", userAgent="x" * 3000, objectRef={"name": "ab" * 200}),
        _edge("edge-nul", userAgent="nul\u0000byte", user={"username": "\u0000", "groups": ["\u0000"]}),
    ]
    for event in events:
        # Times before 1970 or from 2100 are no longer stored (the retention TTL cannot hold them), but a store
        # written by an earlier version may have them: the read side is still tested on them.
        why = problem(event)
        assert why is None or "is outside 1970-01-01 to 2100-01-01" in why, (event["auditID"], why)
    return events


def _at(event: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    value: Any = event
    for part in parts:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _default(field: Field, value: Any) -> Any:
    """The field's value as the declared (proto3) type sees it: absent or null is the type's zero value."""
    if field.kind is FieldKind.TIMESTAMP:
        return parse_timestamp(value)
    if value is not None:
        return value
    return {
        FieldKind.STRING: "",
        FieldKind.INT: 0,
        FieldKind.STRING_LIST: [],
        FieldKind.STRING_MAP: {},
    }[field.kind]


class ProtoMessage(celtypes.MessageType):
    """A proto3 message as celpy sees it: every declared field present, unset ones at their default."""


class _ProtoEvaluator(Evaluator):
    def macro_has_eval(self, exprlist: lark.Tree) -> celtypes.BoolType:
        """has(m.f) on a proto3 message: true iff the field is not its default (CEL spec, field selection)."""
        node: Any = exprlist
        while isinstance(node, lark.Tree) and node.data != "member_dot" and len(node.children) == 1:
            node = node.children[0]
        if isinstance(node, lark.Tree) and node.data == "member_dot":
            member = self.visit(node.children[0])
            if isinstance(member, ProtoMessage):
                value = member.get(celtypes.StringType(node.children[1].value))
                return celtypes.BoolType(not isinstance(value, CELEvalError) and bool(value))
        return super().macro_has_eval(exprlist)

    def sub_evaluator(self, ast: lark.Tree) -> Evaluator:
        return _ProtoEvaluator(ast, activation=self.activation)


class _ProtoRunner(celpy.InterpretedRunner):
    """Evaluates with the proto3-aware evaluator, built once per filter (building one costs more than a run)."""

    def evaluate(self, context: Any) -> Any:
        evaluator = getattr(self, "_evaluator", None)
        if evaluator is None:
            evaluator = self._evaluator = _ProtoEvaluator(ast=self.ast, activation=self.new_activation())
        return evaluator.evaluate(context)


def _celpy_value(field: Field, value: Any) -> Any:
    if field.kind is FieldKind.STRING:
        return celtypes.StringType(value)
    if field.kind is FieldKind.INT:
        return celtypes.IntType(value)
    if field.kind is FieldKind.TIMESTAMP:
        return celtypes.TimestampType(value)
    if field.kind is FieldKind.STRING_LIST:
        return celtypes.ListType([celtypes.StringType(v) for v in value])
    return celtypes.MapType({celtypes.StringType(k): celtypes.StringType(v) for k, v in value.items()})


def celpy_activation(event: Mapping[str, Any]) -> dict[str, Any]:
    activation: dict[str, Any] = {}
    for field in FIELDS:
        value = _celpy_value(field, _default(field, _at(event, field.parts)))
        if len(field.parts) == 1:
            activation[field.path] = value
        else:
            message = activation.setdefault(field.parts[0], ProtoMessage({}))
            message[celtypes.StringType(field.parts[1])] = value
    return activation


class CelpyFilter:
    """A filter compiled by cel-python; `selects(activation)` is False when the filter errors for the event."""

    _env = celpy.Environment(runner_class=_ProtoRunner)

    def __init__(self, source: str) -> None:
        self._program = self._env.program(self._env.compile(source))

    def selects(self, activation: Mapping[str, Any]) -> bool:
        try:
            result = self._program.evaluate(dict(activation))
        except CELEvalError:
            return False
        assert isinstance(result, celtypes.BoolType), result
        return bool(result)


def cel_cpp_activation(event: Mapping[str, Any]) -> dict[str, Any]:
    pool = schema().pool
    messages: dict[str, Any] = {}
    data: dict[str, Any] = {}
    for field in FIELDS:
        value = _default(field, _at(event, field.parts))
        if len(field.parts) == 1:
            data[field.path] = value
            continue
        head, name = field.parts
        if head not in messages:
            descriptor = pool.FindMessageTypeByName(f"{PACKAGE}.{MESSAGE_NAMES[head]}")
            messages[head] = message_factory.GetMessageClass(descriptor)()
        target = messages[head]
        if field.kind is FieldKind.STRING_LIST:
            getattr(target, name).extend(value)
        else:
            setattr(target, name, value)
    return data | messages


class CelCppFilter:
    """The same filter evaluated by cel-expr-python (Google's cel-cpp) with real proto messages."""

    def __init__(self, source: str) -> None:
        self._expression = environment().compile(source)

    def selects(self, data: Mapping[str, Any]) -> bool:
        value = self._expression.eval(data=dict(data))
        if value.type() == cel.Type.ERROR:
            return False
        return bool(value.value())


def selected(reference: CelpyFilter | CelCppFilter, activations: Iterable[tuple[Key, Any]]) -> set[Key]:
    return {key for key, activation in activations if reference.selects(activation)}
