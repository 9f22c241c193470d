"""The filter cost estimate: nests of comprehensions over large fields are refused at check time, naming the
comprehensions, their cost and the limit; single comprehensions over any field pass."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.filter import compile_filter
from apiserver.registry.auditlogquery.filter.compile import check
from apiserver.registry.auditlogquery.filter.cost import MAX_FILTER_COST, estimate
from auditlog.fields import FIELDS, Field, FieldKind

COLLECTIONS = [f for f in FIELDS if f.kind in (FieldKind.STRING_LIST, FieldKind.STRING_MAP)]


def _rejection(source: str) -> str:
    with pytest.raises(InvalidQuery) as caught:
        compile_filter(source)
    [error] = caught.value.errors
    assert (error.field, error.reason, error.value) == ("spec.filter", "FieldValueInvalid", source)
    return error.detail


def test_every_list_and_map_field_has_a_size_assumption() -> None:
    for field in FIELDS:
        assert (field.assumed_size > 0) == (field in COLLECTIONS), field.path


@pytest.mark.parametrize(
    "source",
    [
        "annotations.exists(a, annotations.exists(b, a.contains(b) && b != a))",  # 10k keys: 4.2 s, +2.5 GB
        "annotations.exists(a, annotations.exists(b, annotations.exists(c, a == b && b == c)))",  # wanted 201 GiB
        "annotations.exists(k, annotations[k] == 'zz')",  # 10k keys: 28 s and 3.6 GB for one event
        "annotations.all(k, user.groups.exists(g, g == k))",
        "user.groups.exists(a, user.groups.exists(b, user.groups.exists(c, a == c)))",
    ],
)
def test_hostile_nests_are_refused_naming_cost_limit_and_comprehensions(source: str) -> None:
    detail = _rejection(source)
    cost = estimate(check(source)).cost
    assert cost > MAX_FILTER_COST
    assert detail.startswith(f"1:1: the filter's estimated cost is {cost:,}, over the limit of {MAX_FILTER_COST:,}: ")
    outer = source.split("(")[0]  # e.g. annotations.exists
    assert f"{outer}() (up to " in detail and "items assumed)" in detail
    assert "do not nest comprehensions over large fields" in detail


def test_the_position_points_at_the_costly_comprehension() -> None:
    source = "verb == 'get' ||\n  (user.username != '' && annotations.all(a, annotations.exists(b, a == b)))"
    assert _rejection(source).startswith("2:27: the filter's estimated cost is ")


@pytest.mark.parametrize("field", COLLECTIONS, ids=lambda f: f.path)
def test_one_comprehension_over_any_field_passes(field: Field) -> None:
    path = field.path
    body = "x.startsWith('a') && (x.endsWith('b') || x.contains('c')) && x.matches('^[a-z]+$') && size(x) > 3"
    for macro in ("exists", "all", "exists_one"):
        source = f"verb == 'get' && {path}.{macro}(x, {body})"
        assert estimate(check(source)).cost <= MAX_FILTER_COST
        assert compile_filter(source).where  # translated, not refused
    nest = "user.groups.exists(g, sourceIPs.exists(ip, ip == g))"  # a nest of small fields
    assert estimate(check(nest)).cost <= MAX_FILTER_COST and compile_filter(nest).where


_ranges = st.sampled_from([f.path for f in COLLECTIONS] + ["['a', 'b', 'c']"])
_conditions = st.recursive(
    st.sampled_from(["verb == 'get'", "x.startsWith('a')", "size(x) > 2", "objectRef.name != ''"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda c: f"!({c})"),
    ),
    max_leaves=8,
)


@given(_ranges, st.sampled_from(["exists", "all", "exists_one"]), _conditions)
def test_a_comprehension_costs_its_condition_times_its_size(over: str, macro: str, condition: str) -> None:
    """The estimate is monotone in the way Kubernetes' is: a comprehension costs at least its body per item, so
    each level of nesting multiplies."""
    size = next((f.assumed_size for f in COLLECTIONS if f.path == over), 3)
    wrapped = f"{over}.{macro}(x, {condition})"
    # the body alone, its item written as a literal (which costs no more than the bound variable does)
    inner = estimate(check(condition.replace("x.", "'v'.").replace("size(x)", "size('v')"))).cost
    outer = estimate(check(wrapped)).cost
    assert outer >= size * inner
    assert estimate(check(f"{over}.{macro}(y, {wrapped})")).cost >= size * outer
