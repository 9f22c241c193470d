"""Every way a filter is refused: a 422 on spec.filter whose detail names the construct and its line:column."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.apis.activity.v1alpha1.filterdocs import FILTER_DESCRIPTION
from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.filter import MATCH_ALL, compile_filter
from apiserver.registry.auditlogquery.filter.compile import MAX_FILTER_LENGTH
from apiserver.registry.auditlogquery.filter.translate import MAX_SQL_LENGTH
from auditlog.fields import FIELDS


def rejection(source: str) -> list[str]:
    with pytest.raises(InvalidQuery) as caught:
        compile_filter(source)
    for error in caught.value.errors:
        assert (error.field, error.reason, error.value) == ("spec.filter", "FieldValueInvalid", source)
    return [error.detail for error in caught.value.errors]


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        # the checker: names, fields, types, syntax
        ("verbb == 'get'", "1:1: undeclared reference to 'verbb' (did you mean 'verb'?)"),
        ("objectRef.nme == 'x'", "1:10: objectRef has no field 'nme' (did you mean 'name'?)"),
        ("user.zzz == 'x'", "1:5: user has no field 'zzz' (its fields: groups, uid, username)"),
        ("verb == 1", "1:6: found no matching overload for '==' applied to '(string, int)'"),
        ("responseStatus.code == '200'", "1:21: found no matching overload for '==' applied to '(int, string)'"),
        ("verb in 5", "1:6: found no matching overload for 'in' applied to '(string, int)'"),
        ("!verb", "1:1: found no matching overload for '!' applied to '(string)'"),
        ("verb ==", "1:8: Syntax error"),
        ("verb = 'get'", "1:6: Syntax error: token recognition error at: '= ' (did you mean '=='?)"),
        ("verb=='a' || verb='x'", "1:18: Syntax error: token recognition error at: '='' (did you mean '=='?)"),
        ("has(objectRef)", "1:5: has() argument must be a field selection"),
        # not a condition
        ("verb", "1:1: the filter must be a condition (true or false for each event), not a string"),
        ("size(verb)", "not a int"),
        ("annotations", "not a map"),
        # regexes
        ("objectRef.name.matches('[')", "1:24: the 'matches' pattern is not a valid RE2 regex: missing ]: ["),
        ("verb.matches('(?=x)')", "1:14: the 'matches' pattern is not a valid RE2 regex: invalid perl operator"),
        ("verb.matches('a\\x00')", "1:14: the 'matches' pattern is not a valid RE2 regex: it contains a NUL"),
        ("verb.matches(stage)", "1:14: the pattern of matches() must be a string literal"),
        # timestamps and durations
        ("stageTimestamp > timestamp('yesterday')", "1:28: invalid timestamp: String to Timestamp conversion failed"),
        ("stageTimestamp > timestamp(verb)", "1:27: timestamp() needs a string literal"),
        ("stageTimestamp > timestamp('2026-01-01T00:00:00Z\\x00junk')", "1:28: invalid timestamp: it contains a NUL"),
        ("stageTimestamp > timestamp('2026-01-01T00:00:00Z') - duration('1d')", "1:63: invalid duration"),
        ("stageTimestamp < timestamp('2026-01-01T00:00:00Z') + duration('0.5ns')", "nanosecond precision"),
        ("timestamp('9999-12-31T23:59:59Z') + duration('1s') > stageTimestamp", "1:35: this timestamp is outside"),
        (
            "stageTimestamp + duration('87000000h') > timestamp('2026-01-01T00:00:00Z')",
            "1:16: this timestamp is outside",
        ),
        (
            "(stageTimestamp - timestamp('2026-01-01T00:00:00Z'))"
            " + (stageTimestamp - timestamp('2026-01-01T00:00:00Z')) > duration('1h')",
            "compare stageTimestamp itself",
        ),
        # constructs without a SQL equivalent
        ("verb == 'a' ? true : false", "1:13: the conditional operator ?: is not supported"),
        ("responseStatus.code + 1 > 2", "1:21: arithmetic (+) is supported only on timestamps and durations"),
        ("'a' + 'b' == verb", "1:5: arithmetic (+)"),
        ("-(responseStatus.code) < 0", "1:1: arithmetic (-)"),
        ("verb in ['a', 1]", "1:9: a list must hold only strings or only ints"),
        ("user.groups.map(g, g.size()).size() > 0", "only the exists(), all() and exists_one() macros"),
        ("user.groups.filter(g, g == 'a').size() > 0", "only the exists(), all() and exists_one() macros"),
        ("stageTimestamp.getHours() == 3", "1:24: getHours() is not supported in a filter"),
        ("int(verb) == 3", "1:4: int() is not supported in a filter"),
        ("objectRef == null", "1:11: == is supported on strings, ints, lists, timestamps, not on message and null"),
        ("1.5 < 2.0", "not on double"),
        ("5u == 5u", "not on uint"),
        ("b'x' == b'x'", "not on bytes"),
        ("(verb == 'a') < true", "true and false cannot be ordered"),
        ("verb in {'a': 1}", "1:9: map and object literals are not supported"),
        ("[true][0]", "1:7: indexing with [ ] here is not supported"),
        ("[stageTimestamp].size() > 0", "1:1: a list must hold only strings or only ints"),
        ("duration('87600000h') + duration('87600000h') > duration('1h')", "1:23: this duration is outside"),
    ],
)
def test_rejected_filters_say_what_and_where(source: str, detail: str) -> None:
    [message] = rejection(source)
    assert detail in message


def test_every_problem_the_checker_finds_is_reported() -> None:
    assert rejection("verbb == 'a' &&\n  stagee == 'b'") == [
        "1:1: undeclared reference to 'verbb' (did you mean 'verb'?)",
        "2:3: undeclared reference to 'stagee' (did you mean 'stage'?)",
    ]


def test_columns_count_characters_not_bytes() -> None:
    source = "objectRef.name == '😀é' && verb.matches('(')"
    [message] = rejection(source)
    column = source.index("'(") + 1
    assert message.startswith(f"1:{column}: the 'matches' pattern")


def test_lines_and_columns_of_translator_errors_on_later_lines() -> None:
    [message] = rejection("verb == 'get' &&\n   (responseStatus.code == 1 ? true : false)")
    assert message.startswith("2:30: the conditional operator")


def test_unknown_names_without_a_close_match_list_the_fields() -> None:
    [message] = rejection("zzz == 'x'")
    assert "fields: annotations, auditID" in message


def test_size_and_depth_limits() -> None:
    long = " || ".join(["verb == 'get'"] * (MAX_FILTER_LENGTH // 10))
    [message] = rejection(long)
    assert f"the limit is {MAX_FILTER_LENGTH}" in message
    [message] = rejection("(" * 40 + "verb == 'a'" + ")" * 40)
    assert "too deeply" in message


def test_filters_that_would_make_an_oversized_query_are_refused() -> None:
    # Conditions that can error are spelt twice (true and false) under a comparison of bools: 2x per level.
    nested = "annotations['k'] == ''"
    for level in range(14):
        nested = f"(({nested}) == (annotations['k{level}'] == ''))"
    [message] = rejection(nested)
    assert f"SQL condition (limit {MAX_SQL_LENGTH}); simplify it" in message


def test_blank_filter_selects_everything() -> None:
    assert compile_filter("") == MATCH_ALL
    assert compile_filter(" \n\t") == MATCH_ALL
    assert MATCH_ALL.where == "1"


def test_documented_examples_compile() -> None:
    examples = [f.example for f in FIELDS] + [
        line.removeprefix("- ") for line in FILTER_DESCRIPTION.split("Examples:\n")[1].splitlines()
    ]
    for example in examples:
        assert compile_filter(example).where != MATCH_ALL.where, example


def test_description_documents_every_field() -> None:
    for field in FIELDS:
        assert f"- {field.path} (" in FILTER_DESCRIPTION
        assert field.description in FILTER_DESCRIPTION


_TOKENS = st.sampled_from(
    [
        *(f.path for f in FIELDS),
        *"()[]{}.,:?!<>=+-*/%",
        *("==", "!=", "<=", ">=", "&&", "||", " in ", "true", "false", "null", "1", "-1", "2.5", "3u", "b'x'"),
        *("'a'", '"b"', "r'\\d'", "'''t'''", "has(", "size(", "timestamp(", "duration(", "dyn(", "int(", "string("),
        *(".exists(x, ", ".all(x, ", ".exists_one(x, ", ".map(x, ", ".filter(x, ", "x", ".startsWith(", ".matches("),
        *("'2026-01-01T00:00:00Z'", "'1h'", "'['", "annotations['k']", "user.groups[0]", " ? ", " : "),
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_TOKENS, max_size=14).map("".join), st.text(max_size=40)))
def test_any_text_compiles_or_is_refused_with_a_position(source: str) -> None:
    """Whatever a user sends, the answer is SQL or a 422 detail, never another exception (a 500)."""
    try:
        compiled = compile_filter(source)
    except InvalidQuery as err:
        assert err.errors and all(e.detail for e in err.errors)
        return
    assert compiled.where
    assert all(name.startswith("f_") for name in compiled.params)


@given(st.sampled_from(["verb", "objectRef.name", "user.username", "responseStatus.code"]), st.sampled_from(["", " "]))
def test_a_lone_equals_suggests_the_comparison(field: str, space: str) -> None:
    details = rejection(f"{field}{space}={space}'x'")
    assert any(d.endswith("(did you mean '=='?)") for d in details), details


@pytest.mark.parametrize("source", ["verb == 'a' == true", "verb != 'a'", "responseStatus.code >= 200"])
def test_no_equals_hint_where_the_operators_are_right(source: str) -> None:
    try:
        compile_filter(source)
    except InvalidQuery as err:
        assert not any("did you mean '=='" in e.detail for e in err.errors)
