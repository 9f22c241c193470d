"""The `cel.expr` messages a checked AST comes in, declared here and built at run time in a pool of their own.

cel-expr-python hands the checked AST back as a serialised `cel.expr.CheckedExpr` but ships no Python classes for
it. The PyPI packages that do (xds-protos, which also carried google.api.expr.v1alpha1) ship stale copies of other
projects' protos as well, among them OpenTelemetry's, which overwrite opentelemetry-proto's files and break the OTLP
exporter. So the wire format of cel-spec's `cel/expr/syntax.proto` and `checked.proto` (the messages reachable from
CheckedExpr; field names, numbers and types as published) is written down below. The private pool never clashes
with another copy of these files that something else registers in protobuf's default pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    message_factory,
    struct_pb2,
    timestamp_pb2,
)

_F = descriptor_pb2.FieldDescriptorProto
_I64, _I32, _U64, _DBL = _F.TYPE_INT64, _F.TYPE_INT32, _F.TYPE_UINT64, _F.TYPE_DOUBLE
_STR, _BYTES, _BOOL, _MSG, _ENUM = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_BOOL, _F.TYPE_MESSAGE, _F.TYPE_ENUM

# (name, number, type, type name or "", repeated, oneof name or "")
_Field = tuple[str, int, int, str, bool, str]


def _f(name: str, number: int, kind: int, type_name: str = "", *, repeated: bool = False, oneof: str = "") -> _Field:
    return (name, number, kind, type_name, repeated, oneof)


def _msg(
    name: str,
    *fields: _Field,
    nested: tuple[descriptor_pb2.DescriptorProto, ...] = (),
    enums: tuple[descriptor_pb2.EnumDescriptorProto, ...] = (),
    map_entry: bool = False,
) -> descriptor_pb2.DescriptorProto:
    message = descriptor_pb2.DescriptorProto(name=name, nested_type=nested, enum_type=enums)
    if map_entry:
        message.options.map_entry = True
    oneofs: list[str] = []
    for field_name, number, kind, type_name, repeated, oneof in fields:
        field = message.field.add(name=field_name, number=number, type=kind)
        field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
        if type_name:
            field.type_name = type_name
        if oneof:
            if oneof not in oneofs:
                oneofs.append(oneof)
                message.oneof_decl.add(name=oneof)
            field.oneof_index = oneofs.index(oneof)
    return message


def _map(entry: str, key: int, value: int, value_type: str = "") -> descriptor_pb2.DescriptorProto:
    return _msg(entry, _f("key", 1, key), _f("value", 2, value, value_type), map_entry=True)


def _enum(name: str, *values: str) -> descriptor_pb2.EnumDescriptorProto:
    enum = descriptor_pb2.EnumDescriptorProto(name=name)
    for number, value in enumerate(values):
        enum.value.add(name=value, number=number)
    return enum


_EXPR, _TYPE, _CONST = ".cel.expr.Expr", ".cel.expr.Type", ".cel.expr.Constant"
_PRIMITIVES = ("BOOL", "INT64", "UINT64", "DOUBLE", "STRING", "BYTES")


def _syntax() -> descriptor_pb2.FileDescriptorProto:
    kind = "expr_kind"
    expr = _msg(
        "Expr",
        _f("id", 2, _I64),
        _f("const_expr", 3, _MSG, _CONST, oneof=kind),
        _f("ident_expr", 4, _MSG, f"{_EXPR}.Ident", oneof=kind),
        _f("select_expr", 5, _MSG, f"{_EXPR}.Select", oneof=kind),
        _f("call_expr", 6, _MSG, f"{_EXPR}.Call", oneof=kind),
        _f("list_expr", 7, _MSG, f"{_EXPR}.CreateList", oneof=kind),
        _f("struct_expr", 8, _MSG, f"{_EXPR}.CreateStruct", oneof=kind),
        _f("comprehension_expr", 9, _MSG, f"{_EXPR}.Comprehension", oneof=kind),
        nested=(
            _msg("Ident", _f("name", 1, _STR)),
            _msg("Select", _f("operand", 1, _MSG, _EXPR), _f("field", 2, _STR), _f("test_only", 3, _BOOL)),
            _msg(
                "Call", _f("target", 1, _MSG, _EXPR), _f("function", 2, _STR), _f("args", 3, _MSG, _EXPR, repeated=True)
            ),
            _msg(
                "CreateList",
                _f("elements", 1, _MSG, _EXPR, repeated=True),
                _f("optional_indices", 2, _I32, repeated=True),
            ),
            _msg(
                "CreateStruct",
                _f("message_name", 1, _STR),
                _f("entries", 2, _MSG, f"{_EXPR}.CreateStruct.Entry", repeated=True),
                nested=(
                    _msg(
                        "Entry",
                        _f("id", 1, _I64),
                        _f("field_key", 2, _STR, oneof="key_kind"),
                        _f("map_key", 3, _MSG, _EXPR, oneof="key_kind"),
                        _f("value", 4, _MSG, _EXPR),
                        _f("optional_entry", 5, _BOOL),
                    ),
                ),
            ),
            _msg(
                "Comprehension",
                _f("iter_var", 1, _STR),
                _f("iter_var2", 8, _STR),
                _f("iter_range", 2, _MSG, _EXPR),
                _f("accu_var", 3, _STR),
                _f("accu_init", 4, _MSG, _EXPR),
                _f("loop_condition", 5, _MSG, _EXPR),
                _f("loop_step", 6, _MSG, _EXPR),
                _f("result", 7, _MSG, _EXPR),
            ),
        ),
    )
    kind = "constant_kind"
    constant = _msg(
        "Constant",
        _f("null_value", 1, _ENUM, ".google.protobuf.NullValue", oneof=kind),
        _f("bool_value", 2, _BOOL, oneof=kind),
        _f("int64_value", 3, _I64, oneof=kind),
        _f("uint64_value", 4, _U64, oneof=kind),
        _f("double_value", 5, _DBL, oneof=kind),
        _f("string_value", 6, _STR, oneof=kind),
        _f("bytes_value", 7, _BYTES, oneof=kind),
        _f("duration_value", 8, _MSG, ".google.protobuf.Duration", oneof=kind),
        _f("timestamp_value", 9, _MSG, ".google.protobuf.Timestamp", oneof=kind),
    )
    extension = ".cel.expr.SourceInfo.Extension"
    source_info = _msg(
        "SourceInfo",
        _f("syntax_version", 1, _STR),
        _f("location", 2, _STR),
        _f("line_offsets", 3, _I32, repeated=True),
        _f("positions", 4, _MSG, ".cel.expr.SourceInfo.PositionsEntry", repeated=True),
        _f("macro_calls", 5, _MSG, ".cel.expr.SourceInfo.MacroCallsEntry", repeated=True),
        _f("extensions", 6, _MSG, extension, repeated=True),
        nested=(
            _map("PositionsEntry", _I64, _I32),
            _map("MacroCallsEntry", _I64, _MSG, _EXPR),
            _msg(
                "Extension",
                _f("id", 1, _STR),
                _f("affected_components", 2, _ENUM, f"{extension}.Component", repeated=True),
                _f("version", 3, _MSG, f"{extension}.Version"),
                nested=(_msg("Version", _f("major", 1, _I64), _f("minor", 2, _I64)),),
                enums=(
                    _enum(
                        "Component",
                        "COMPONENT_UNSPECIFIED",
                        "COMPONENT_PARSER",
                        "COMPONENT_TYPE_CHECKER",
                        "COMPONENT_RUNTIME",
                    ),
                ),
            ),
        ),
    )
    return descriptor_pb2.FileDescriptorProto(
        name="cel/expr/syntax.proto",
        package="cel.expr",
        syntax="proto3",
        dependency=[f"google/protobuf/{name}.proto" for name in ("duration", "struct", "timestamp")],
        message_type=[expr, constant, source_info],
    )


def _checked() -> descriptor_pb2.FileDescriptorProto:
    checked = _msg(
        "CheckedExpr",
        _f("reference_map", 2, _MSG, ".cel.expr.CheckedExpr.ReferenceMapEntry", repeated=True),
        _f("type_map", 3, _MSG, ".cel.expr.CheckedExpr.TypeMapEntry", repeated=True),
        _f("source_info", 5, _MSG, ".cel.expr.SourceInfo"),
        _f("expr_version", 6, _STR),
        _f("expr", 4, _MSG, _EXPR),
        nested=(
            _map("ReferenceMapEntry", _I64, _MSG, ".cel.expr.Reference"),
            _map("TypeMapEntry", _I64, _MSG, _TYPE),
        ),
    )
    kind = "type_kind"
    type_ = _msg(
        "Type",
        _f("dyn", 1, _MSG, ".google.protobuf.Empty", oneof=kind),
        _f("null", 2, _ENUM, ".google.protobuf.NullValue", oneof=kind),
        _f("primitive", 3, _ENUM, f"{_TYPE}.PrimitiveType", oneof=kind),
        _f("wrapper", 4, _ENUM, f"{_TYPE}.PrimitiveType", oneof=kind),
        _f("well_known", 5, _ENUM, f"{_TYPE}.WellKnownType", oneof=kind),
        _f("list_type", 6, _MSG, f"{_TYPE}.ListType", oneof=kind),
        _f("map_type", 7, _MSG, f"{_TYPE}.MapType", oneof=kind),
        _f("function", 8, _MSG, f"{_TYPE}.FunctionType", oneof=kind),
        _f("message_type", 9, _STR, oneof=kind),
        _f("type_param", 10, _STR, oneof=kind),
        _f("type", 11, _MSG, _TYPE, oneof=kind),
        _f("error", 12, _MSG, ".google.protobuf.Empty", oneof=kind),
        _f("abstract_type", 14, _MSG, f"{_TYPE}.AbstractType", oneof=kind),
        nested=(
            _msg("ListType", _f("elem_type", 1, _MSG, _TYPE)),
            _msg("MapType", _f("key_type", 1, _MSG, _TYPE), _f("value_type", 2, _MSG, _TYPE)),
            _msg("FunctionType", _f("result_type", 1, _MSG, _TYPE), _f("arg_types", 2, _MSG, _TYPE, repeated=True)),
            _msg("AbstractType", _f("name", 1, _STR), _f("parameter_types", 2, _MSG, _TYPE, repeated=True)),
        ),
        enums=(
            _enum("PrimitiveType", "PRIMITIVE_TYPE_UNSPECIFIED", *_PRIMITIVES),
            _enum("WellKnownType", "WELL_KNOWN_TYPE_UNSPECIFIED", "ANY", "TIMESTAMP", "DURATION"),
        ),
    )
    reference = _msg(
        "Reference", _f("name", 1, _STR), _f("overload_id", 3, _STR, repeated=True), _f("value", 4, _MSG, _CONST)
    )
    return descriptor_pb2.FileDescriptorProto(
        name="cel/expr/checked.proto",
        package="cel.expr",
        syntax="proto3",
        dependency=["cel/expr/syntax.proto", "google/protobuf/empty.proto", "google/protobuf/struct.proto"],
        message_type=[checked, type_, reference],
    )


def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for well_known in (duration_pb2, empty_pb2, struct_pb2, timestamp_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        well_known.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    pool.Add(_syntax())
    pool.Add(_checked())
    return pool


POOL = _pool()


def _class(name: str) -> Any:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"cel.expr.{name}"))


if TYPE_CHECKING:
    # Built at run time, so no static types: to mypy they are Any, as the untyped generated modules were.
    CheckedExpr: TypeAlias = Any
    Expr: TypeAlias = Any
    Comprehension: TypeAlias = Any
    Type: TypeAlias = Any
else:
    CheckedExpr = _class("CheckedExpr")
    Expr = _class("Expr")
    Comprehension = Expr.Comprehension
    Type = _class("Type")
