"""What a filter may cost, estimated from its checked AST before any SQL runs, as Kubernetes bounds CEL.

kube-apiserver's estimator charges every node of the checked expression and multiplies the body of a comprehension
by the size its list or map may reach (maxItems / maxProperties in the schema). Here the sizes come from the field
catalogue (`Field.assumed_size`), and the unit is the same: one per node visited per event. One thing is ours: a
comprehension becomes a ClickHouse lambda, which copies every column its body refers to once per item, so inside a
comprehension a list or map field costs its size (docs/benchmarks.md, "Filter cost"). A filter whose worst case
exceeds MAX_FILTER_COST is a 422 naming the comprehensions instead of a query that eats the machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from apiserver.registry.auditlogquery.filter.celexpr import CheckedExpr, Comprehension, Expr
from apiserver.registry.auditlogquery.filter.problem import FilterRejected, Problem, line_column
from apiserver.registry.auditlogquery.filter.schema import schema
from auditlog.fields import FIELDS, Field

# Kubernetes' per-expression limit for CRD validation rules (PerCallLimit); with the catalogue's assumed sizes it
# admits any single comprehension that tests its item, and nests of small fields; it refuses nests over annotations.
MAX_FILTER_COST = 1_000_000
UNKNOWN_SIZE = max(f.assumed_size for f in FIELDS)  # no better guess than the largest


@dataclass(frozen=True)
class Loop:
    """One comprehension on the costliest path: where it is, what it iterates, how often its body runs."""

    macro: str  # exists, all, exists_one
    over: str  # what it iterates, as the user wrote it (a field path, or "a list of N")
    size: int  # iterations assumed per run
    offset: int  # where it starts in the source, in characters
    captured: tuple[str, ...] = ()  # list and map fields its condition refers to (copied per item)


@dataclass(frozen=True)
class Estimate:
    cost: int
    loops: tuple[Loop, ...] = ()  # the comprehensions of the costliest nest, outermost first
    captured: tuple[str, ...] = ()  # list and map fields referred to inside a comprehension


class _Estimator:
    def __init__(self, checked: CheckedExpr) -> None:
        self._checked = checked
        self._columns = schema().columns
        self._variables: list[str] = []  # comprehension variables in scope (they shadow field names)

    def estimate(self, expr: Expr) -> Estimate:
        kind = expr.WhichOneof("expr_kind")
        if kind == "comprehension_expr":
            return self._comprehension(expr)
        captured = self._captured(expr)
        if captured is not None:
            return captured
        parts: list[Expr] = []
        if kind == "select_expr":
            parts = [expr.select_expr.operand]
        elif kind == "call_expr":
            parts = ([expr.call_expr.target] if expr.call_expr.HasField("target") else []) + list(expr.call_expr.args)
        elif kind == "list_expr":
            parts = list(expr.list_expr.elements)
        elif kind == "struct_expr":
            parts = [p for e in expr.struct_expr.entries for p in (e.map_key, e.value) if p.ByteSize()]
        return self._sum(1, [self.estimate(p) for p in parts])

    @staticmethod
    def _sum(own: int, children: list[Estimate]) -> Estimate:
        loops = max(children, key=lambda c: c.cost).loops if children else ()
        captured = tuple(dict.fromkeys(path for c in children for path in c.captured))
        return Estimate(own + sum(c.cost for c in children), loops, captured)

    def _captured(self, expr: Expr) -> Estimate | None:
        """A list or map field named inside a comprehension: the lambda copies it for every item."""
        field = self._field(expr)
        if field is None or not field.assumed_size or not self._variables:
            return None
        return Estimate(field.assumed_size, (), (field.path,))

    def _comprehension(self, expr: Expr) -> Estimate:
        comp = expr.comprehension_expr
        size, over = self._size(comp.iter_range)
        once = self._sum(0, [self.estimate(comp.iter_range), self.estimate(comp.accu_init), self.estimate(comp.result)])
        self._variables += [comp.iter_var, comp.accu_var]
        try:
            body = self._sum(1, [self.estimate(comp.loop_condition), self.estimate(comp.loop_step)])
        finally:
            del self._variables[-2:]
        loop = Loop(_macro_name(comp), over, size, self._start(comp.iter_range), body.captured)
        return Estimate(1 + once.cost + size * body.cost, (loop, *body.loops), once.captured)

    def _field(self, expr: Expr) -> Field | None:
        """The catalogue field an identifier or a selection names (not a comprehension variable)."""
        path: tuple[str, ...] = ()
        if expr.HasField("ident_expr"):
            path = (expr.ident_expr.name,)
        elif expr.HasField("select_expr") and expr.select_expr.operand.HasField("ident_expr"):
            path = (expr.select_expr.operand.ident_expr.name, expr.select_expr.field)
        if not path or path[0] in self._variables:
            return None
        return self._columns.get(path)

    def _size(self, expr: Expr) -> tuple[int, str]:
        """Iterations assumed for a comprehension over `expr`, and how to name it."""
        if expr.HasField("list_expr"):
            count = len(expr.list_expr.elements)
            return count, f"a list of {count}"
        field = self._field(expr)
        if field is not None and field.assumed_size:
            return field.assumed_size, field.path
        return UNKNOWN_SIZE, "a list"

    def _start(self, expr: Expr) -> int:
        """The leftmost source offset of `expr` (a selection is positioned at its dot, its operand further left)."""
        positions = self._checked.source_info.positions
        offsets = [positions[e.id] for e in _nodes(expr) if e.id in positions]
        return min(offsets, default=0)


def _nodes(expr: Expr) -> list[Expr]:
    found, pending = [], [expr]
    while pending:
        node = pending.pop()
        found.append(node)
        if node.HasField("select_expr"):
            pending.append(node.select_expr.operand)
        elif node.HasField("call_expr"):
            pending += ([node.call_expr.target] if node.call_expr.HasField("target") else []) + list(
                node.call_expr.args
            )
        elif node.HasField("list_expr"):
            pending += list(node.list_expr.elements)
    return found


def _macro_name(comp: Comprehension) -> str:
    """exists/all/exists_one, told apart by the accumulator's start (false / true / 0) as the macros expand."""
    init = comp.accu_init.const_expr
    if init.HasField("bool_value"):
        return "all" if init.bool_value else "exists"
    return "exists_one" if init.HasField("int64_value") else "a comprehension"


def estimate(checked: CheckedExpr) -> Estimate:
    """The worst-case cost of evaluating the filter for one event."""
    return _Estimator(checked).estimate(checked.expr)


def check_cost(checked: CheckedExpr, limit: int = MAX_FILTER_COST) -> None:
    """Raises FilterRejected naming the costliest nest of comprehensions when the estimate exceeds `limit`."""
    try:
        found = estimate(checked)
    except RecursionError:
        raise FilterRejected([Problem("the filter is nested too deeply; flatten it")]) from None
    if found.cost <= limit:
        return
    message = f"the filter's estimated cost is {found.cost:,}, over the limit of {limit:,}"
    if not found.loops:
        raise FilterRejected([Problem(f"{message}; simplify it")])
    described = ", in it ".join(_describe(loop) for loop in found.loops)
    advice = (
        "the work multiplies per item: test the item itself (e.g. k.startsWith('...')), index maps outside "
        "comprehensions (annotations['key'] == '...'), and do not nest comprehensions over large fields"
    )
    line, column = line_column(found.loops[0].offset, checked.source_info.line_offsets)
    raise FilterRejected([Problem(f"{message}: {described}; {advice}", line, column)])


def _describe(loop: Loop) -> str:
    text = f"{loop.over}.{loop.macro}() (up to {loop.size:,} items assumed)"
    if loop.captured:
        text += f" whose condition refers to {' and '.join(loop.captured)} (copied for each item)"
    return text
