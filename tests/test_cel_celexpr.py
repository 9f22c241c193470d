"""The cel.expr classes the translator reads the checked AST with are our own, and read all of it.

They are declared in apiserver/auditlogquery/filter/celexpr.py (no third-party package ships them without stale
copies of other projects' protos). Every field cel-expr-python writes must be one they know: an unknown field would
be a construct the translator silently never sees.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import any_pb2, descriptor_pool, unknown_fields
from google.protobuf.message import Message
from test_cel_differential import CORPUS

from apiserver.registry.auditlogquery.filter import compile_filter
from apiserver.registry.auditlogquery.filter.celexpr import CheckedExpr, Expr, Type
from apiserver.registry.auditlogquery.filter.schema import environment

# Constructs beyond the filter corpus, so every kind of node, type and constant cel-cpp writes is read.
MORE = [
    "verb == 'get' && 1u == 1u && 1.5 > 1.0 && b'x' == b'x' && null == null",
    "{'a': 1}['a'] == 1 && [1, 2][0] == 1",
    "user.groups.map(g, g + '!').exists(g, g == 'x!')",
    "user.groups.filter(g, g.startsWith('a')).size() == 0",
    "annotations.exists(k, annotations[k] == 'v')",
    "type(verb) == string && dyn(responseStatus.code) == 200",
    "has(objectRef.name) ? objectRef.name == 'x' : verb == 'list'",
    "stageTimestamp > timestamp('2026-01-01T00:00:00Z') - duration('1h')",
]


def _unknown(message: Message, path: str = "") -> list[str]:
    found = [path or "<root>"] if len(unknown_fields.UnknownFieldSet(message)) else []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items: Any = value.values() if field.message_type.fields_by_name["value"].message_type else []
        else:
            items = [value] if isinstance(value, Message) else value
        for index, item in enumerate(items):
            found += _unknown(item, f"{path}.{field.name}[{index}]")
    return found


def _checked(source: str) -> Any:
    wrapped = any_pb2.Any.FromString(environment().compile(source).serialize())
    checked = CheckedExpr()
    assert wrapped.Unpack(checked), wrapped.type_url
    return checked


@pytest.mark.parametrize("source", CORPUS + MORE)
def test_every_field_cel_cpp_writes_is_one_we_read(source: str) -> None:
    checked = _checked(source)
    assert checked.expr.id != 0
    assert checked.type_map and checked.source_info.positions
    assert _unknown(checked) == []


def test_the_classes_live_in_a_pool_of_their_own() -> None:
    # Another copy of cel/expr/*.proto registered in the default pool (as xds-protos does) can never clash.
    for cls in (CheckedExpr, Expr, Type):
        assert cls.DESCRIPTOR.file.pool is not descriptor_pool.Default()
    assert Type.PrimitiveType.Name(Type.STRING) == "STRING"
    assert [f.name for f in Expr.Comprehension.DESCRIPTOR.fields if f.name.startswith("iter_var")] == [
        "iter_var",
        "iter_var2",
    ]


def test_a_filter_still_becomes_sql() -> None:
    sql = compile_filter("verb == 'delete' && objectRef.namespace.startsWith('prod')")
    assert "{f_" in sql.where and "delete" in sql.params.values()
