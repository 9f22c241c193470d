"""CEL filters of AuditLogQuery: checked by Google's CEL against the field catalogue, run as parameterised SQL."""

from __future__ import annotations

from types import MappingProxyType

from apiserver.machinery.fielderrors import FieldError
from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.filter.compile import check
from apiserver.registry.auditlogquery.filter.cost import MAX_FILTER_COST, check_cost
from apiserver.registry.auditlogquery.filter.problem import FilterRejected
from apiserver.registry.auditlogquery.filter.translate import SqlFilter, translate

FILTER_FIELD = "spec.filter"
MATCH_ALL = SqlFilter("1", MappingProxyType({}))

__all__ = ["FILTER_FIELD", "MATCH_ALL", "MAX_FILTER_COST", "SqlFilter", "compile_filter"]


def compile_filter(source: str, *, max_cost: int = MAX_FILTER_COST) -> SqlFilter:
    """The SQL condition selecting exactly the events for which the CEL filter `source` is true.

    A blank filter selects everything. Raises InvalidQuery (a 422 on spec.filter) naming each problem with its
    line:column: syntax and type errors, a non-bool result, an invalid regex or timestamp, an unsupported construct,
    an estimated cost over the limit (nested comprehensions over large fields).
    """
    if not source.strip():
        return MATCH_ALL
    try:
        checked = check(source)
        check_cost(checked, max_cost)
        return translate(checked)
    except FilterRejected as rejected:
        raise InvalidQuery(
            [FieldError(FILTER_FIELD, "FieldValueInvalid", source, p.detail) for p in rejected.problems]
        ) from None
