"""The proof of the CEL filter: for every filter, the generated SQL run by the real ClickHouse engine selects
exactly the events that cel-python (an independent CEL implementation) selects, evaluating the filter on the
same events. cel-expr-python (Google's cel-cpp) is checked too, as a second reference.

The events (generated ones plus hand-made corner cases) are inserted once for the module into a store of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from cel_support import (
    SQL_INJECTION,
    CelCppFilter,
    CelpyFilter,
    Key,
    cel_cpp_activation,
    celpy_activation,
    edge_events,
    generated_events,
    key_of,
    selected,
)
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.filter import compile_filter
from auditlog.config import parse_store_dsn
from auditlog.schema import migrate
from auditlog.storage import Store

UNBOUNDED = 2**63


@dataclass(frozen=True)
class Dataset:
    store: Store = field(repr=False)
    events: tuple[dict[str, Any], ...] = field(repr=False)
    celpy: tuple[tuple[Key, Any], ...] = field(repr=False)
    cel_cpp: tuple[tuple[Key, Any], ...] = field(repr=False)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(f"Dataset({len(self.events)} events)")  # hypothesis prints arguments of failing examples

    def sql_selects(self, source: str) -> set[Key]:
        # Meaning, not cost: generated nests of comprehensions are over the cost limit (tests/test_cel_cost.py).
        compiled = compile_filter(source, max_cost=UNBOUNDED)
        sql = f"SELECT hex(audit_id), stage FROM events WHERE {compiled.where}"
        lines = asyncio.run(self.store.query_tsv(sql, compiled.params))
        rows = (line.split(b"\t") for line in lines)
        return {(bytes.fromhex(audit_id.decode()).decode(), stage.decode()) for audit_id, stage in rows}

    def check(self, source: str) -> set[Key]:
        """Assert SQL, cel-python and cel-cpp agree on `source`; return the selected keys."""
        by_sql = self.sql_selects(source)
        by_celpy = selected(CelpyFilter(source), self.celpy)
        assert by_sql == by_celpy, (source, compile_filter(source, max_cost=UNBOUNDED), by_sql ^ by_celpy)
        by_cel_cpp = selected(CelCppFilter(source), self.cel_cpp)
        comparable = {key for key, _ in self.cel_cpp}
        assert by_sql & comparable == by_cel_cpp, (
            source,
            compile_filter(source, max_cost=UNBOUNDED),
            (by_sql & comparable) ^ by_cel_cpp,
        )
        return by_sql


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    config = parse_store_dsn(f"chdb://{tmp_path_factory.mktemp('cel') / 'store'}")
    # No retention TTL: the corner events lie centuries away from the wall clock and must all stay stored.
    migrate(config, retention_days=0)
    store = Store(config)
    events = tuple(generated_events(40) + edge_events())
    try:
        asyncio.run(store.insert_events([orjson.dumps(e) for e in events]))
        assert asyncio.run(store.query_tsv("SELECT count() FROM events", {})) == [str(len(events)).encode()]
        yield Dataset(
            store,
            events,
            tuple((key_of(e), celpy_activation(e)) for e in events),
            # cel-expr-python cuts strings it is given as data at a NUL character: it cannot judge those events.
            tuple((key_of(e), cel_cpp_activation(e)) for e in events if b"\\u0000" not in orjson.dumps(e)),
        )
    finally:
        store.close()


CORPUS = [
    # equality and ordering on every kind of field
    "verb == 'get'",
    "verb != 'get'",
    "auditID == 'edge-quotes'",
    "stage == 'RequestReceived'",
    "level == 'RequestResponse'",
    "user.username == 'alice@example.com'",
    "user.uid != ''",
    "objectRef.apiGroup == 'apps'",
    "objectRef.apiVersion == 'v1'",
    "objectRef.resource == 'secrets' && objectRef.namespace == 'prod'",
    "objectRef.subresource == ''",
    f"objectRef.name == {SQL_INJECTION!r}",
    'verb == "\'; DROP TABLE events; --"',
    "user.username == 'o\\'brien\"the\\\\admin'",
    "user.username == 'zoë@例え.jp'",
    "objectRef.name == '名前-😀'",
    "objectRef.name > 'obj-5'",
    "objectRef.name <= 'obj-1'",
    "user.username < 'c'",
    "user.username >= 'é'",
    "userAgent > 'kubectl/ü'",
    "responseStatus.code >= 400",
    "responseStatus.code < 0",
    "responseStatus.code == 2147483647",
    "responseStatus.code > -9223372036854775808",
    "responseStatus.code != 200 && responseStatus.code != 0",
    "objectRef.name == user.username",
    # logic
    "verb == 'get' || verb == 'list'",
    "!(verb == 'get')",
    "!(verb == 'get' && responseStatus.code == 200) || level == 'Metadata'",
    "true",
    "false",
    "!false && (verb == 'watch' || false)",
    "(verb == 'create') == (responseStatus.code == 201)",
    "(verb == 'get') != (stage == 'RequestReceived')",
    # in
    "verb in ['create', 'update', 'patch', 'delete']",
    "!(verb in ['get'])",
    "responseStatus.code in [403, 404, 500]",
    "verb in []",
    "'system:masters' in user.groups",
    "'😀' in user.groups",
    "verb in [user.username, 'get']",
    "'authorization.k8s.io/decision' in annotations",
    "'' in annotations",
    "!('it\\'s' in annotations)",
    # string functions
    "requestURI.startsWith('/apis/apps')",
    "objectRef.name.endsWith('7')",
    "userAgent.contains('kubectl')",
    "userAgent.contains('')",
    "requestURI.contains('%')",
    "requestURI.contains('_')",
    "userAgent.contains('\\\\')",
    "userAgent.startsWith(user.username)",
    "user.username.matches('^system:serviceaccount:kube-')",
    "user.username.matches('example')",
    "userAgent.matches('one.line')",
    "userAgent.matches('(?s)one.line')",
    "userAgent.matches('two$')",
    "requestURI.matches('pods$')",
    "objectRef.name.matches('^obj-[0-9]$')",
    "objectRef.name.matches('^.{2}-😀$')",
    "user.username.matches('(?i)ALICE')",
    "matches(verb, 'e')",
    # size
    "size(objectRef.name) == 5",
    "size(user.username) > 20",
    "objectRef.name.size() <= 4",
    "size(user.groups) == 3",
    "size(sourceIPs) != 1",
    "size(annotations) >= 4",
    "size(objectRef.name) == 4 && objectRef.name.startsWith('名')",
    # has
    "has(objectRef.name)",
    "!has(objectRef.namespace)",
    "has(objectRef.apiGroup) || has(objectRef.subresource)",
    "has(user.groups)",
    "has(user.uid)",
    "has(responseStatus.code)",
    "has(annotations.k)",
    # comprehensions
    "user.groups.exists(g, g == 'system:masters')",
    "user.groups.exists(g, g.startsWith('system:serviceaccounts:'))",
    "user.groups.all(g, g.startsWith('system:'))",
    "!user.groups.all(g, g != 'a')",
    "sourceIPs.exists(ip, ip.startsWith('10.1.'))",
    "sourceIPs.all(ip, ip.matches('^10\\\\.'))",
    "user.groups.exists_one(g, g == 'a')",
    "user.groups.exists_one(g, g.startsWith('system:'))",
    "sourceIPs.exists_one(ip, ip == '10.0.0.1')",
    "user.groups.exists(g, sourceIPs.exists(ip, size(ip) > size(g)))",
    "user.groups.exists(verb, verb == 'a')",
    "annotations.exists(k, k.startsWith('platform.miloapis.com/'))",
    "annotations.all(k, annotations[k] != '')",
    "['get', 'list'].exists(v, v == verb)",
    "[200, 201].all(c, c != responseStatus.code)",
    # timestamps and durations
    "stageTimestamp > timestamp('2026-11-28T09:00:01Z')",
    "stageTimestamp <= timestamp('2026-11-28T09:00:00.5Z')",
    "stageTimestamp > timestamp('2026-11-28T09:00:01Z') - duration('1s')",
    "stageTimestamp >= timestamp('2026-11-28T10:00:00+01:00') + duration('500ms')",
    "stageTimestamp == timestamp('2026-11-28T09:00:30.000001Z')",
    "stageTimestamp != timestamp('2026-11-28T09:00:30.000001Z')",
    "stageTimestamp < timestamp('1970-01-01T00:00:00Z')",
    "stageTimestamp > timestamp('2299-12-31T23:59:59.999998Z')",
    "stageTimestamp == timestamp('1900-01-01T00:00:00Z')",
    "timestamp('2026-11-28T09:00:00.5Z') < stageTimestamp",
    "stageTimestamp - timestamp('2026-11-28T09:00:00Z') < duration('500ms')",
    "timestamp('2026-11-28T09:00:01Z') - stageTimestamp > duration('0.25s')",
    "stageTimestamp - duration('1h') > timestamp('2026-11-28T08:00:00.5Z')",
    "stageTimestamp > timestamp('0001-01-01T00:00:00Z')",
    "stageTimestamp < timestamp('9999-12-31T23:59:59Z')",
    "stageTimestamp > timestamp('2026-11-28T09:00:00.5Z') && stageTimestamp < timestamp('2026-11-28T09:00:01Z')",
    "timestamp('2026-01-01T00:00:00Z') < timestamp('2027-01-01T00:00:00Z') && verb == 'get'",
    "duration('1h') > duration('2h') || verb == 'get'",
    "stageTimestamp - stageTimestamp == duration('0s') && verb == 'list'",
    # annotations: index, errors for missing keys and how && / || / ! treat them
    "annotations['authorization.k8s.io/decision'] == 'forbid'",
    "annotations['authorization.k8s.io/decision'] != 'allow'",
    "!(annotations['authorization.k8s.io/decision'] == 'allow')",
    "annotations['authorization.k8s.io/decision'] == 'allow' || verb == 'get'",
    "annotations['authorization.k8s.io/decision'] == 'allow' && false",
    "!(annotations['authorization.k8s.io/decision'] == 'allow' && verb == 'list')",
    "annotations['it\\'s'] == 'a \"value\"'",
    "annotations['ключ'].startsWith('зна')",
    "annotations.k == ''",
    "size(annotations['authorization.k8s.io/reason']) == 0",
    "!('authorization.k8s.io/decision' in annotations) || annotations['authorization.k8s.io/decision'] != 'allow'",
    "user.groups.exists(g, annotations[g] == 'x') || true",
    "user.groups.exists(g, annotations[g] == '')",
    "user.groups.all(g, annotations[g] == '')",
    "!user.groups.exists(g, annotations[g] == '')",
    "annotations[user.username] == ''",
    "annotations['platform.miloapis.com/scope.type'] in ['Project', annotations['k']]",
    # list index
    "user.groups[0] == 'oidc:developers'",
    "user.groups[2] == 'system:authenticated' || verb == 'get'",
    "!(user.groups[1] == 'a')",
    "sourceIPs[0].startsWith('192.')",
    "user.groups == ['a', 'a', 'b']",
    "user.groups != []",
    "sourceIPs == user.groups",
    # errors inside comprehensions, bool equality and sizes
    "user.groups.exists(g, has(objectRef.name) && g != '')",
    "user.groups.exists_one(g, annotations[g] == '')",
    "sourceIPs.exists_one(ip, annotations[ip] == '' || ip == '::1')",
    "!sourceIPs.all(ip, annotations[ip] != 'x')",
    "annotations['k'] in user.groups",
    "user.groups[5] == 'a' || !(user.groups[5] == 'a')",
    "'a' in user.groups && user.groups.exists_one(g, g == 'b')",
    "(annotations['k'] == '') == (verb == 'get')",
    "(stageTimestamp > timestamp('2026-11-28T09:00:00.2Z')) != (verb == 'get')",
    "size(user.groups[0]) > 14",
    "user.groups.exists(g, g in ['system:masters', 'a'])",
    "sourceIPs.all(ip, !(ip in user.groups))",
    "user.groups.exists(g, g in [verb, annotations['k']])",
    "userAgent.contains('\\u0000')",
    "user.username == '\\x00'",
    "userAgent.matches('l.b')",
    # literal syntaxes: escapes, raw and triple-quoted strings
    "objectRef.name == '\\u540d\\u524d-\\U0001F600'",
    "userAgent.contains(r'\\ back\\slash')",
    'user.username == """o\'brien"the\\\\admin"""',
    "userAgent.contains('\\xfc') || userAgent.contains('\\374')",
    # regex corners
    "verb.matches('')",
    "objectRef.name.matches('^\\\\C')",
    "user.username.matches('(?i)ZOË')",
    "userAgent.matches('^line one$')",
    "userAgent.matches('(?m)^line one$')",
]


def test_corpus_covers_enough_filters() -> None:
    assert len(CORPUS) >= 60


@pytest.mark.parametrize("source", CORPUS)
def test_sql_selects_what_cel_selects(dataset: Dataset, source: str) -> None:
    dataset.check(source)


def test_corpus_filters_discriminate(dataset: Dataset) -> None:
    """The corpus is only a proof if its filters split the events: most select some but not all of them."""
    proper = sum(0 < len(dataset.sql_selects(source)) < len(dataset.events) for source in CORPUS)
    assert proper >= 0.8 * len(CORPUS)


# Where cel-python 0.5 departs from the CEL spec, cel-cpp (which passes the spec's conformance tests) is the
# reference. Each filter still has to split the events, so that it proves something.
CEL_CPP_IS_THE_REFERENCE = [
    # CEL timestamps have nanoseconds, the column microseconds: the bound is rounded so that the answer is
    # unchanged. cel-python holds timestamps as Python datetimes and truncates such literals.
    *(
        ("sub-microsecond literal", source)
        for source in (
            "stageTimestamp > timestamp('2026-11-28T09:00:30.0000005Z')",
            "stageTimestamp >= timestamp('2026-11-28T09:00:30.000001001Z')",
            "stageTimestamp < timestamp('2026-11-28T09:00:30.000001001Z')",
            "stageTimestamp <= timestamp('2026-11-28T09:00:30.000000999Z')",
            "stageTimestamp == timestamp('2026-11-28T09:00:30.000001001Z') || verb == 'get'",
            "stageTimestamp != timestamp('2026-11-28T09:00:30.000001001Z') && verb == 'list'",
            "stageTimestamp - duration('1ns') < timestamp('2026-11-28T09:00:30.000001Z')",
            "stageTimestamp + duration('999ns') <= timestamp('2026-11-28T09:00:30.000001998Z')",
        )
    ),
    # An exists_one() whose predicate errors is an error, which && and || absorb like any other. cel-python
    # raises out of its exists_one instead; the generated filters give exists_one() only certain predicates.
    *(
        ("exists_one error absorbed", source)
        for source in (
            "!(verb == 'list' && user.groups.exists_one(g, annotations[g] == ''))",
            "!('system:masters' in user.groups && user.groups.exists_one(g, annotations[g] == ''))",
            "verb == 'get' || sourceIPs.exists_one(ip, annotations[ip] == 'x')",
        )
    ),
    # A negative list index is an error in CEL; cel-python indexes from the end like Python.
    ("negative index", "user.groups[-1] == 'system:authenticated' || verb == 'watch'"),
    ("negative index", "!(user.groups[-1] == 'x') || verb == 'list'"),
]


@pytest.mark.parametrize(("why", "source"), CEL_CPP_IS_THE_REFERENCE)
def test_sql_selects_what_cel_cpp_selects_where_cel_python_departs_from_the_spec(
    dataset: Dataset, why: str, source: str
) -> None:
    by_sql = dataset.sql_selects(source)
    assert by_sql & {key for key, _ in dataset.cel_cpp} == selected(CelCppFilter(source), dataset.cel_cpp), why
    assert 0 < len(by_sql) < len(dataset.events)


# --- generated filters ---

_STRING_FIELDS = (
    "verb",
    "stage",
    "level",
    "auditID",
    "requestURI",
    "userAgent",
    "user.username",
    "user.uid",
    "objectRef.apiGroup",
    "objectRef.apiVersion",
    "objectRef.resource",
    "objectRef.subresource",
    "objectRef.namespace",
    "objectRef.name",
)
_SEEN = (
    "get",
    "list",
    "create",
    "ResponseComplete",
    "Metadata",
    "pods",
    "apps",
    "v1",
    "prod",
    "obj-1",
    "obj-12",
    "alice@example.com",
    "system:serviceaccount:kube-system:replicaset-controller",
    "kubectl",
    "/api/v1",
    "10.1.",
    "system:masters",
    "system:authenticated",
    "authorization.k8s.io/decision",
    "forbid",
    "allow",
    "名前-😀",
    "zoë",
    "o'brien",
    '"',
    "\\",
    "'",
    SQL_INJECTION,
    "1' OR '1'='1",
    "%",
    "_",
    "",
    "\n",
    "\t",
)
_REGEXES = ("^obj-1", "e$", "^$", "[0-9]{2}", "(?i)KUBE", "a|b", "^.{4}$", "\\.", "😀", "line.two", "^[^:]*$")


def cel_string(value: str) -> str:
    """A CEL string literal for any text (double-quoted, escapes for quote, backslash and control characters)."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_text = st.one_of(
    st.sampled_from(_SEEN),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6),
    st.sampled_from(_SEEN).flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),
)
_literal = _text.map(cel_string)
_field = st.sampled_from(_STRING_FIELDS)
_int = st.sampled_from((0, 200, 201, 403, 404, 500, -1, 2147483647, -9223372036854775808, 9223372036854775807))
_compare = st.sampled_from(("==", "!=", "<", "<=", ">", ">="))
_stamp = st.sampled_from(
    (
        "2026-11-28T09:00:00Z",
        "2026-11-28T09:00:00.5Z",
        "2026-11-28T09:00:01.000001Z",
        "2026-11-28T10:00:00.25+01:00",
        "1900-01-01T00:00:00Z",
        "2299-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
    )
)
_duration = st.sampled_from(("0s", "1s", "250ms", "1h", "-2s", "1us", "1h30m"))


_certain_predicate = st.one_of(
    _literal.map(lambda lit: f"x == {lit}"),
    st.tuples(st.sampled_from(("startsWith", "endsWith", "contains")), _literal).map(lambda t: f"x.{t[0]}({t[1]})"),
    st.lists(_literal, max_size=2).map(lambda lits: f"x in [{', '.join(lits)}]"),
    st.tuples(_compare, st.integers(0, 12)).map(lambda t: f"size(x) {t[0]} {t[1]}"),
    _field.map(lambda f: f"x == {f}"),
    st.tuples(_field, _literal).map(lambda t: f"x == {t[1]} || {t[0]} == {t[1]}"),
)
# annotations[x] errors for elements that are not annotation keys.
_element_predicate = st.one_of(_certain_predicate, _literal.map(lambda lit: f"annotations[x] == {lit}"))
_ranges = st.sampled_from(("user.groups", "sourceIPs", "annotations"))


def _atoms() -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(_field, _compare, _literal).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(_field, st.sampled_from(("startsWith", "endsWith", "contains")), _literal).map(
            lambda t: f"{t[0]}.{t[1]}({t[2]})"
        ),
        st.tuples(_field, st.sampled_from(_REGEXES)).map(lambda t: f"{t[0]}.matches({cel_string(t[1])})"),
        st.tuples(_field, st.lists(_literal, max_size=3)).map(lambda t: f"{t[0]} in [{', '.join(t[1])}]"),
        _literal.map(lambda lit: f"{lit} in user.groups"),
        _literal.map(lambda lit: f"{lit} in annotations"),
        st.tuples(_compare, _int).map(lambda t: f"responseStatus.code {t[0]} {t[1]}"),
        st.tuples(_field, _compare, st.integers(0, 12)).map(lambda t: f"size({t[0]}) {t[1]} {t[2]}"),
        st.sampled_from(
            [f"has(objectRef.{f.split('.')[1]})" for f in _STRING_FIELDS if f.startswith("objectRef.")]
            + ["has(user.groups)", "has(responseStatus.code)", "has(user.uid)"]
        ),
        st.tuples(_literal, _compare, _literal).map(lambda t: f"annotations[{t[0]}] {t[1]} {t[2]}"),
        st.tuples(_ranges, st.sampled_from(("exists", "all")), _element_predicate).map(
            lambda t: f"{t[0]}.{t[1]}(x, {t[2]})"
        ),
        # exists_one only over predicates that cannot error: see test_exists_one_errors_are_absorbed_by_and_or.
        st.tuples(_ranges, _certain_predicate).map(lambda t: f"{t[0]}.exists_one(x, {t[1]})"),
        st.tuples(st.integers(0, 3), _literal).map(lambda t: f"user.groups[{t[0]}] == {t[1]}"),
        st.sampled_from(("k", "a", "authorization", "x")).map(lambda k: f"has(annotations.{k})"),
        st.lists(_int, max_size=3).map(lambda ints: f"responseStatus.code in [{', '.join(map(str, ints))}]"),
        st.tuples(_compare, _stamp, st.sampled_from(("+", "-")), _duration).map(
            lambda t: f"stageTimestamp {t[0]} timestamp('{t[1]}') {t[2]} duration('{t[3]}')"
        ),
        st.sampled_from(("true", "false")),
    )


_filters = st.recursive(
    _atoms(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(("&&", "||")), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda f: f"!({f})"),
        st.tuples(inner, st.sampled_from(("==", "!=")), inner).map(lambda t: f"(({t[0]}) {t[1]} ({t[2]}))"),
        # A condition inside a comprehension: outer columns and errors seen from within a lambda.
        st.tuples(_ranges, st.sampled_from(("exists", "all")), inner).map(lambda t: f"{t[0]}.{t[1]}(y, {t[2]})"),
    ),
    max_leaves=6,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=_filters)
def test_generated_filters_select_what_cel_selects(dataset: Dataset, source: str) -> None:
    try:
        dataset.check(source)
    except InvalidQuery as err:
        # The one refusal generated filters can meet: timestamp arithmetic leaving CEL's range, which CEL
        # itself would answer with an error.
        assert "outside CEL's range" in str(err), source
        reject()


def test_generated_literals_are_never_spliced_into_sql() -> None:
    for text in _SEEN:
        compiled = compile_filter(f"objectRef.name == {cel_string(text)}")
        assert compiled.where == "name = {f_0:String}"
        assert compiled.params == {"f_0": text}
