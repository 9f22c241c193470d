"""The timestamp bound of a filter: rounding nanoseconds to the column's microseconds never changes an answer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from apiserver.registry.auditlogquery.filter.literals import MAX_TIMESTAMP_NS, MIN_TIMESTAMP_NS
from apiserver.registry.auditlogquery.filter.temporal import COLUMN_MAX_US, COLUMN_MIN_US, COMPARE, Linear, compare

COLUMN = Linear("timestamp", 0, "timestamp", 1)
_stored = st.integers(COLUMN_MIN_US, COLUMN_MAX_US)


@given(
    stored_us=_stored,
    bound_ns=st.one_of(
        st.integers(MIN_TIMESTAMP_NS, MAX_TIMESTAMP_NS),
        # close to the stored value, where rounding matters
        st.tuples(_stored, st.integers(-2001, 2001)).map(lambda t: t[0] * 1000 + t[1]),
    ),
    operator=st.sampled_from(sorted(COMPARE)),
    column_on_the_left=st.booleans(),
)
def test_bound_gives_the_nanosecond_answer_for_every_stored_value(
    stored_us: int, bound_ns: int, operator: str, column_on_the_left: bool
) -> None:
    constant = Linear("timestamp", bound_ns)
    if column_on_the_left:
        result = compare(operator, COLUMN, constant)
        expected = COMPARE[operator](stored_us * 1000, bound_ns)
    else:
        result = compare(operator, constant, COLUMN)
        expected = COMPARE[operator](bound_ns, stored_us * 1000)
    if isinstance(result, bool):
        assert result == expected
    else:
        assert COLUMN_MIN_US <= result.micros <= COLUMN_MAX_US
        assert COMPARE[result.operator](stored_us, result.micros) == expected


@given(offset_ns=st.integers(-(10**15), 10**15), operator=st.sampled_from(sorted(COMPARE)))
def test_column_minus_column_is_a_constant_duration(offset_ns: int, operator: str) -> None:
    """stageTimestamp - stageTimestamp OP duration: the column cancels out, the answer is the same for all."""
    difference = Linear("duration", 0, "timestamp", 0)
    assert compare(operator, difference, Linear("duration", offset_ns)) == COMPARE[operator](0, offset_ns)
