"""The checked CEL AST → one parameterised ClickHouse condition with the same meaning, row by row.

CEL is three-valued where SQL over our NULL-free columns is two-valued: an expression can also *error* for an
event (a missing annotation key, a list index out of range). CEL's `&&`/`||` absorb an error when the other side
decides the result, `!` and comparisons pass it on, `exists`/`all` absorb it like `||`/`&&`, and an event whose
whole filter errors is not selected. So every condition is translated to a pair: the SQL for "certainly true"
and the SQL for "certainly false" (the event errors when neither holds); the WHERE clause is "certainly true".
Most conditions cannot error, and then "false" is simply NOT "true".

Timestamp and duration expressions fold into one bound on the column (temporal.py). Every literal travels as a
`{f_N:Type}` server-side parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NoReturn

from apiserver.registry.auditlogquery.filter.celexpr import CheckedExpr, Comprehension, Expr, Type
from apiserver.registry.auditlogquery.filter.literals import check_regex, duration_ns, timestamp_ns
from apiserver.registry.auditlogquery.filter.problem import FilterRejected, Problem, line_column
from apiserver.registry.auditlogquery.filter.schema import schema
from apiserver.registry.auditlogquery.filter.temporal import Bound, Linear, combine, compare, in_range
from auditlog.fields import Field, FieldKind

_SQL_OPERATORS = {"_==_": "=", "_!=_": "!=", "_<_": "<", "_<=_": "<=", "_>_": ">", "_>=_": ">="}
_STRING_FUNCTIONS = {
    "startsWith": "startsWith({0}, {1})",
    "endsWith": "endsWith({0}, {1})",
    "contains": "position({0}, {1}) > 0",
}
MAX_SQL_LENGTH = 100_000  # well inside ClickHouse's max_query_size (256 KiB) with the page query around it
_PARAM_TYPES = {"string": "String", "int": "Int64"}
_MACROS_ONLY = "only the exists(), all() and exists_one() macros are supported (not map() or filter())"
_EXAMPLES = {"timestamp": "2026-01-01T00:00:00Z", "duration": "1h"}


@dataclass(frozen=True)
class SqlFilter:
    where: str  # a SQL boolean over the catalogue's columns
    params: Mapping[str, object]  # its {f_N:Type} parameters


@dataclass(frozen=True)
class Cond:
    """A CEL bool: `true` is the SQL for "evaluates to true"; `false` for "evaluates to false", None when the
    expression cannot error (then it is exactly NOT true)."""

    true: str
    false: str | None = None

    @property
    def when_false(self) -> str:
        return self.false if self.false is not None else f"NOT ({self.true})"


@dataclass(frozen=True)
class Val:
    """A CEL string, int, list or map as SQL; it exists (does not error) where all of `requires` hold."""

    sql: str
    kind: str  # string | int | list | map
    requires: tuple[str, ...] = ()


_TRUE = Cond("1", "0")
_FALSE = Cond("0", "1")


def _all(conditions: Iterable[str]) -> str:
    unique = tuple(dict.fromkeys(conditions))
    return unique[0] if len(unique) == 1 else " AND ".join(f"({c})" for c in unique)


def _guarded(sql: str, requires: Iterable[str]) -> Cond:
    """A condition over values that exist only where `requires` hold (elsewhere it errors: neither true nor false)."""
    needed = tuple(requires)
    if not needed:
        return Cond(sql)
    ok = _all(needed)
    return Cond(f"{ok} AND ({sql})", f"{ok} AND NOT ({sql})")


def _constant(value: bool, requires: Iterable[str] = ()) -> Cond:
    return _guarded("1" if value else "0", requires)


def _display(function: str) -> str:
    """`_+_` → `+`, `@in` → `in`, `startsWith` → `startsWith()`."""
    if function == "_[_]":
        return "indexing with [ ] here"
    if function.startswith("@"):
        return function[1:]
    if "_" in function:
        return function.replace("_", " ").strip().replace("  ", " ")
    return f"{function}()"


class _Translator:
    def __init__(self, checked: CheckedExpr) -> None:
        self._checked = checked
        self._params: dict[str, object] = {}
        self._scopes: list[tuple[str, Val]] = []  # comprehension variables, innermost last
        self._schema = schema()

    # --- plumbing ---

    def translate(self) -> SqlFilter:
        return SqlFilter(self.condition(self._checked.expr).true, MappingProxyType(dict(self._params)))

    def _fail(self, expr: Expr, message: str) -> NoReturn:
        offset = self._checked.source_info.positions.get(expr.id)
        if offset is None:
            raise FilterRejected([Problem(message)])
        line, column = line_column(offset, self._checked.source_info.line_offsets)
        raise FilterRejected([Problem(message, line, column)])

    def _param(self, value: object, kind: str) -> str:
        name = f"f_{len(self._params)}"
        self._params[name] = value
        return f"{{{name}:{_PARAM_TYPES[kind]}}}"

    def _kind(self, expr: Expr) -> str:
        t = self._checked.type_map.get(expr.id)
        if t is None:
            return "unknown"
        which = t.WhichOneof("type_kind")
        if which == "primitive":
            return str(Type.PrimitiveType.Name(t.primitive)).lower().replace("int64", "int")
        if which == "well_known":
            return str(Type.WellKnownType.Name(t.well_known)).lower()
        if which == "list_type":
            return "list"
        if which == "map_type":
            return "map"
        if which == "message_type":
            return "message"
        return which or "unknown"

    def _field(self, expr: Expr) -> Field | None:
        """The catalogue field an identifier or a message field selection names (None for anything else)."""
        if expr.HasField("ident_expr"):
            if self._scoped(expr.ident_expr.name) is not None:
                return None
            return self._schema.columns.get((expr.ident_expr.name,))
        if expr.HasField("select_expr") and expr.select_expr.operand.HasField("ident_expr"):
            head = expr.select_expr.operand.ident_expr.name
            if self._scoped(head) is None:
                return self._schema.columns.get((head, expr.select_expr.field))
        return None

    def _scoped(self, name: str) -> Val | None:
        for scoped_name, value in reversed(self._scopes):
            if scoped_name == name:
                return value
        return None

    # --- conditions (CEL bools) ---

    def condition(self, expr: Expr) -> Cond:
        kind = expr.WhichOneof("expr_kind")
        if kind == "const_expr" and expr.const_expr.HasField("bool_value"):
            return _TRUE if expr.const_expr.bool_value else _FALSE
        if kind == "select_expr" and expr.select_expr.test_only:
            return self._has(expr)
        if kind == "comprehension_expr":
            return self._comprehension(expr)
        if kind == "call_expr":
            return self._call_condition(expr)
        self._fail(expr, "this expression is not a supported condition")

    def _call_condition(self, expr: Expr) -> Cond:
        call = expr.call_expr
        fn, args = call.function, list(call.args)
        if fn == "_&&_" or fn == "_||_":
            left, right = self.condition(args[0]), self.condition(args[1])
            joiner, other = (" AND ", " OR ") if fn == "_&&_" else (" OR ", " AND ")
            true = f"({left.true}){joiner}({right.true})"
            if left.false is None and right.false is None:
                return Cond(true)
            return Cond(true, f"({left.when_false}){other}({right.when_false})")
        if fn == "!_":
            inner = self.condition(args[0])
            return Cond(f"NOT ({inner.true})") if inner.false is None else Cond(inner.false, inner.true)
        if fn in _SQL_OPERATORS:
            return self._comparison(expr, fn, args[0], args[1])
        if fn == "@in":
            return self._in(expr, args[0], args[1])
        if fn in _STRING_FUNCTIONS or fn == "matches":
            target, argument = (call.target, args[0]) if call.HasField("target") else (args[0], args[1])
            return self._string_test(expr, fn, target, argument)
        if fn == "_?_:_":
            self._fail(expr, "the conditional operator ?: is not supported; combine conditions with && and ||")
        self._fail(expr, f"{_display(fn)} is not supported in a filter")

    def _has(self, expr: Expr) -> Cond:
        select = expr.select_expr
        field = self._field(expr)
        if field is not None and len(field.parts) == 2:
            # proto3: a field is present iff it holds a non-default value, which is what the column can tell.
            if field.kind is FieldKind.STRING:
                return Cond(f"{field.column} != ''")
            if field.kind is FieldKind.INT:
                return Cond(f"{field.column} != 0")
            if field.kind is FieldKind.STRING_LIST:
                return Cond(f"notEmpty({field.column})")
        if self._kind(select.operand) == "map":
            container = self.value(select.operand)
            return _guarded(f"mapContains({container.sql}, {self._param(select.field, 'string')})", container.requires)
        self._fail(expr, "has() is supported on fields of user, objectRef, responseStatus and on annotations")

    def _comparison(self, expr: Expr, fn: str, left: Expr, right: Expr) -> Cond:
        kinds = {self._kind(left), self._kind(right)}
        if kinds <= {"timestamp", "duration"}:
            return self._temporal_comparison(expr, fn, self.temporal(left), self.temporal(right))
        if kinds == {"bool"}:
            if fn not in ("_==_", "_!=_"):
                self._fail(expr, "true and false cannot be ordered with < <= > >=")
            p, q = self.condition(left), self.condition(right)
            same = Cond(
                f"(({p.true}) AND ({q.true})) OR (({p.when_false}) AND ({q.when_false}))",
                f"(({p.true}) AND ({q.when_false})) OR (({p.when_false}) AND ({q.true}))",
            )
            return same if fn == "_==_" else Cond(same.when_false, same.true)
        if not kinds <= {"string", "int", "list"}:
            described = " and ".join(sorted(kinds))
            self._fail(expr, f"{_display(fn)} is supported on strings, ints, lists, timestamps, not on {described}")
        if self._is_empty_list(left) or self._is_empty_list(right):
            other = self.value(right if self._is_empty_list(left) else left)
            return self._negated(_guarded(f"empty({other.sql})", other.requires), fn == "_!=_")
        a, b = self.value(left), self.value(right)
        return _guarded(f"{a.sql} {_SQL_OPERATORS[fn]} {b.sql}", a.requires + b.requires)

    @staticmethod
    def _negated(cond: Cond, negate: bool) -> Cond:
        if not negate:
            return cond
        return Cond(f"NOT ({cond.true})") if cond.false is None else Cond(cond.false, cond.true)

    @staticmethod
    def _is_empty_list(expr: Expr) -> bool:
        return expr.HasField("list_expr") and not expr.list_expr.elements

    def _in(self, expr: Expr, item_expr: Expr, container_expr: Expr) -> Cond:
        item = self.value(item_expr)
        if self._is_empty_list(container_expr):
            return _constant(False, item.requires)
        if container_expr.HasField("list_expr") and all(
            e.HasField("const_expr") for e in container_expr.list_expr.elements
        ):
            # A constant set: IN lets ClickHouse use the skip indexes.
            members = self._items(container_expr)
            return _guarded(f"{item.sql} IN ({', '.join(m.sql for m in members)})", item.requires)
        container = self.value(container_expr)
        requires = item.requires + container.requires
        if container.kind == "map":
            return _guarded(f"mapContains({container.sql}, {item.sql})", requires)
        return _guarded(f"has({container.sql}, {item.sql})", requires)

    def _string_test(self, expr: Expr, fn: str, target_expr: Expr, argument_expr: Expr) -> Cond:
        target = self.value(target_expr)
        if fn == "matches":
            if not (argument_expr.HasField("const_expr") and argument_expr.const_expr.HasField("string_value")):
                self._fail(argument_expr, "the pattern of matches() must be a string literal")
            pattern = argument_expr.const_expr.string_value
            try:
                check_regex(pattern)
            except ValueError as err:
                self._fail(argument_expr, f"the 'matches' pattern is not a valid RE2 regex: {err}")
            # ClickHouse's match() lets '.' match a newline unless told otherwise; CEL's RE2 does not.
            return _guarded(f"match({target.sql}, {self._param('(?-s)' + pattern, 'string')})", target.requires)
        argument = self.value(argument_expr)
        return _guarded(_STRING_FUNCTIONS[fn].format(target.sql, argument.sql), target.requires + argument.requires)

    def _comprehension(self, expr: Expr) -> Cond:
        comp = expr.comprehension_expr
        if comp.iter_var2:
            self._fail(expr, "two-variable comprehensions are not supported")
        macro, predicate = self._macro(comp)
        if macro is None or predicate is None:
            self._fail(expr, _MACROS_ONLY)
        source = self.value(comp.iter_range)
        if source.kind == "map":
            source = Val(f"mapKeys({source.sql})", "list", source.requires)
        if source.kind != "list":
            self._fail(comp.iter_range, f"{macro}() needs a list or a map")
        variable = f"x_{len(self._scopes)}"
        # A map iterates over its keys, strings (annotations is the only map).
        element = self._element_kind(comp.iter_range) if self._kind(comp.iter_range) == "list" else "string"
        self._scopes.append((comp.iter_var, Val(variable, element)))
        try:
            body = self.condition(predicate)
        finally:
            self._scopes.pop()

        def over(function: str, sql: str) -> str:
            return f"{function}({variable} -> {sql}, {source.sql})"

        if macro == "exists":
            result = Cond(over("arrayExists", body.true), None if body.false is None else over("arrayAll", body.false))
        elif macro == "all":
            result = Cond(over("arrayAll", body.true), None if body.false is None else over("arrayExists", body.false))
        else:
            count = over("arrayCount", body.true) + " = 1"
            if body.false is None:
                result = Cond(count)
            else:
                decided = over("arrayAll", f"({body.true}) OR ({body.false})")
                result = Cond(f"{count} AND {decided}", f"NOT ({count}) AND {decided}")
        if not source.requires:
            return result
        ok = _all(source.requires)
        return Cond(f"{ok} AND ({result.true})", f"{ok} AND ({result.when_false})")

    def _element_kind(self, list_expr: Expr) -> str:
        t = self._checked.type_map[list_expr.id].list_type.elem_type
        if t.WhichOneof("type_kind") == "primitive" and t.primitive == Type.STRING:
            return "string"
        if t.WhichOneof("type_kind") == "primitive" and t.primitive == Type.INT64:
            return "int"
        self._fail(list_expr, "a list must hold only strings or only ints")

    @staticmethod
    def _macro(comp: Comprehension) -> tuple[str | None, Expr | None]:
        """Recognise the expansion of exists / all / exists_one and return the macro's name and predicate."""

        def is_accu(e: Expr) -> bool:
            return bool(e.HasField("ident_expr") and e.ident_expr.name == comp.accu_var)

        def call(e: Expr, fn: str) -> list[Expr] | None:
            if e.HasField("call_expr") and e.call_expr.function == fn and not e.call_expr.HasField("target"):
                return list(e.call_expr.args)
            return None

        init = comp.accu_init.const_expr if comp.accu_init.HasField("const_expr") else None
        step_or, step_and = call(comp.loop_step, "_||_"), call(comp.loop_step, "_&&_")
        guard = call(comp.loop_condition, "@not_strictly_false")
        if init is not None and init.HasField("bool_value") and is_accu(comp.result) and guard:
            negated = call(guard[0], "!_")
            if not init.bool_value and step_or and is_accu(step_or[0]) and negated and is_accu(negated[0]):
                return "exists", step_or[1]
            if init.bool_value and step_and and is_accu(step_and[0]) and is_accu(guard[0]):
                return "all", step_and[1]
        step = call(comp.loop_step, "_?_:_")
        final = call(comp.result, "_==_")
        if init is not None and init.HasField("int64_value") and init.int64_value == 0 and step and final:
            plus = call(step[1], "_+_")
            one = final[1].const_expr if final[1].HasField("const_expr") else None
            if plus and is_accu(plus[0]) and is_accu(step[2]) and is_accu(final[0]) and one and one.int64_value == 1:
                return "exists_one", step[0]
        return None, None

    # --- values (strings, ints, lists, maps) ---

    def value(self, expr: Expr) -> Val:
        kind = expr.WhichOneof("expr_kind")
        if kind == "const_expr":
            const = expr.const_expr
            if const.HasField("string_value"):
                return Val(self._param(const.string_value, "string"), "string")
            if const.HasField("int64_value"):
                return Val(self._param(const.int64_value, "int"), "int")
            self._fail(expr, f"{const.WhichOneof('constant_kind')} literals are not supported; use strings and ints")
        if kind == "ident_expr":
            scoped = self._scoped(expr.ident_expr.name)
            if scoped is not None:
                return scoped
        if kind in ("ident_expr", "select_expr"):
            field = self._field(expr)
            if field is not None and field.kind is not FieldKind.TIMESTAMP:
                return Val(field.column, self._kind(expr))
            if kind == "select_expr" and self._kind(expr.select_expr.operand) == "map":
                return self._map_index(
                    self.value(expr.select_expr.operand), Val(self._param(expr.select_expr.field, "string"), "string")
                )
            name = expr.ident_expr.name if kind == "ident_expr" else expr.select_expr.field
            if self._kind(expr) == "message":
                self._fail(expr, f"{name} is an object; compare one of its fields, e.g. objectRef.name")
            self._fail(expr, f"{name} cannot be used here")
        if kind == "list_expr":
            return self._list(expr)
        if kind == "call_expr":
            return self._call_value(expr)
        if kind == "comprehension_expr":
            self._fail(expr, _MACROS_ONLY)
        if kind == "struct_expr":
            self._fail(expr, "map and object literals are not supported; use lists of strings or ints")
        self._fail(expr, "this expression is not supported here")

    def _items(self, expr: Expr) -> list[Val]:
        if expr.list_expr.elements:
            self._element_kind(expr)  # refuses mixed lists, whose CEL equality differs between implementations
        return [self.value(e) for e in expr.list_expr.elements]

    def _list(self, expr: Expr) -> Val:
        items = self._items(expr)
        requires = tuple(r for item in items for r in item.requires)
        return Val(f"[{', '.join(item.sql for item in items)}]", "list", requires)

    def _map_index(self, container: Val, key: Val) -> Val:
        present = f"mapContains({container.sql}, {key.sql})"
        return Val(f"{container.sql}[{key.sql}]", "string", (*container.requires, *key.requires, present))

    def _call_value(self, expr: Expr) -> Val:
        call = expr.call_expr
        fn, args = call.function, list(call.args)
        if fn == "_[_]":
            container, index = self.value(args[0]), self.value(args[1])
            if container.kind == "map":
                return self._map_index(container, index)
            if container.kind == "list" and index.kind == "int":
                inside = f"{index.sql} >= 0 AND {index.sql} < length({container.sql})"
                requires = (*container.requires, *index.requires, inside)
                return Val(f"arrayElement({container.sql}, {index.sql} + 1)", self._kind(expr), requires)
        if fn == "size":
            sized = self.value(call.target if call.HasField("target") else args[0])
            length = "lengthUTF8" if sized.kind == "string" else "length"
            return Val(f"toInt64({length}({sized.sql}))", "int", sized.requires)
        if fn in ("_+_", "_-_", "_*_", "_/_", "_%_", "-_"):
            self._fail(expr, f"arithmetic ({_display(fn)}) is supported only on timestamps and durations")
        self._fail(expr, f"{_display(fn)} is not supported in a filter")

    # --- timestamps and durations ---

    def temporal(self, expr: Expr) -> Linear:
        kind = self._kind(expr)
        field = self._field(expr)
        if field is not None and field.kind is FieldKind.TIMESTAMP:
            return Linear("timestamp", 0, field.column, 1)
        if not expr.HasField("call_expr"):
            self._fail(expr, f"this {kind} is not supported here")
        call = expr.call_expr
        fn, args = call.function, list(call.args)
        if fn in ("timestamp", "duration") and len(args) == 1 and not call.HasField("target"):
            literal = args[0]
            if not (literal.HasField("const_expr") and literal.const_expr.HasField("string_value")):
                self._fail(expr, f"{fn}() needs a string literal, e.g. {fn}('{_EXAMPLES[fn]}')")
            parse = timestamp_ns if fn == "timestamp" else duration_ns
            try:
                value = parse(literal.const_expr.string_value)
            except ValueError as err:
                self._fail(literal, f"invalid {fn}: {err}")
            try:
                return in_range(Linear(fn, value))
            except ValueError as err:
                self._fail(expr, str(err))
        if fn in ("_+_", "_-_") and len(args) == 2:
            left, right = self.temporal(args[0]), self.temporal(args[1])
            try:
                return combine(kind, left, right, 1 if fn == "_+_" else -1)
            except ValueError as err:
                self._fail(expr, str(err))
        self._fail(expr, f"{_display(fn)} is not supported on {kind}s")

    def _temporal_comparison(self, expr: Expr, fn: str, left: Linear, right: Linear) -> Cond:
        try:
            result = compare(fn, left, right)
        except ValueError as err:
            self._fail(expr, str(err))
        if isinstance(result, Bound):
            micros = self._param(result.micros, "int")
            return Cond(f"{result.column} {_SQL_OPERATORS[result.operator]} fromUnixTimestamp64Micro({micros}, 'UTC')")
        return _constant(result)


def translate(checked: CheckedExpr) -> SqlFilter:
    """Raises FilterRejected naming the construct and its line:column when it has no SQL equivalent."""
    try:
        translated = _Translator(checked).translate()
    except RecursionError:
        raise FilterRejected([Problem("the filter is nested too deeply; flatten it")]) from None
    if len(translated.where) > MAX_SQL_LENGTH:
        # Conditions that can error (annotations[k], l[i]) are spelt twice (true and false) under ! and
        # exists_one, so nesting them can double the SQL per level.
        size = len(translated.where)
        message = f"the filter makes a {size}-character SQL condition (limit {MAX_SQL_LENGTH}); simplify it"
        raise FilterRejected([Problem(message)])
    return translated
