"""An event giving a key twice in one object is refused by the webhook and the consumer alike, on the fast and the
full path, with the key's path in the reason: ClickHouse derives the columns from the first value, every other
reader shows the last, so `{"verb":"get",...,"verb":"delete"}` would be stored as a get and shown as a delete.
Events without duplicates are stored byte for byte as before."""

from __future__ import annotations

import json
import re
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from consumer_support import CLUSTER, dead_letters, drained, publish, running, stored_keys
from hypothesis import given, settings
from hypothesis import strategies as st
from polling import eventually
from webhook_support import running_webhook, stored

from activity.devtools.loadgen.events import EventGenerator
from activity.devtools.natsd import NatsServer
from auditlog.config import parse_store_dsn
from auditlog.eventjson import DEEPER_THAN_CHECKED, key_problem, storable, valid_json
from auditlog.fields import SCOPE_NAME_ANNOTATION, SCOPE_TYPE_ANNOTATION, STAGES
from auditlog.schema import migrate
from auditlog.storage import Store
from ingest.consumer.screening import Poison, Row, screen
from ingest.deadletter import DUPLICATE_KEY
from ingest.jetstream import REASON_HEADER, STREAM
from ingest.jetstream import connect as nats_connect
from ingest.redaction.redactor import Redactor
from ingest.redaction.settings import RedactionSettings
from ingest.webhook.decoding import BadRequest, event_list_items, item_key_problems, plain_items
from ingest.webhook.messages import Sorted, sort_items, sort_plain

ALL_STAGES = frozenset(STAGES)
# Every level, so that request and response bodies nest objects several levels deep.
EVENTS = [e for e in EventGenerator().events(150) if e["stage"] == "ResponseComplete"]
WHERE = {"subject": "audit.k8s.test", "dead_letter_subject": "audit.deadletter.webhook.test"}
MAX_PAYLOAD = 8 << 20
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4,
)
# The paths the columns are derived from, which an attacker would aim at.
AIMED = [
    ("verb",),
    ("auditID",),
    ("stage",),
    ("stageTimestamp",),
    ("objectRef", "name"),
    ("objectRef", "namespace"),
    ("user", "username"),
    ("user", "groups"),
    ("responseStatus", "code"),
    ("annotations", SCOPE_TYPE_ANNOTATION),
    ("annotations", SCOPE_NAME_ANNOTATION),
]


class Pairs(list[tuple[str, Any]]):
    """An object as (key, value) pairs, so that a key can be given twice."""


def _as_pairs(value: Any) -> Any:
    if isinstance(value, dict):
        return Pairs((k, _as_pairs(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_as_pairs(v) for v in value]
    return value


def _dump(value: Any) -> str:
    """Compact JSON as Go writes it, duplicates and all."""
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_dump(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _objects(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], Pairs]]:
    """Every object of a pairs tree, with its path."""
    found: list[tuple[tuple[str | int, ...], Pairs]] = []
    if isinstance(value, Pairs):
        found.append((path, value))
        for key, child in value:
            found += _objects(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _objects(child, (*path, index))
    return found


def _shown(path: tuple[str | int, ...]) -> str:
    """The path as the reason must show it: `objectRef.name`, `annotations["a/b"]`, `spec.containers[0].name`."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            out += f".{key}" if out else key
        else:
            out += f"[{json.dumps(key)}]"
    return out


@st.composite
def duplicated(draw: st.DrawFn) -> tuple[dict[str, Any], bytes, str]:
    """(a storable event, its bytes with one key given a second time at a random path, that path as shown)."""
    event = dict(draw(st.sampled_from(EVENTS)))
    event.update(draw(st.dictionaries(st.sampled_from(["requestObject", "x-extra"]), JSON_VALUES)))  # any shape
    tree = _as_pairs(event)
    if draw(st.booleans()):  # a path a column is derived from
        *parents, key = draw(st.sampled_from([p for p in AIMED if _has_parent(event, p)]))
        where: tuple[str | int, ...] = tuple(parents)
        target = dict(_objects(tree))[where]
    else:  # anywhere: an object at any depth, any of its keys
        where, target = draw(st.sampled_from([(p, o) for p, o in _objects(tree) if o]))
        key = draw(st.sampled_from([k for k, _ in target]))
    if all(k != key for k, _ in target):
        target.append((key, "first"))  # absent here: given once, then again
    old = next(v for k, v in target if k == key)
    second = draw(st.sampled_from([old, "delete"]) | JSON_VALUES.map(_as_pairs))  # the same value, or another
    target.insert(draw(st.integers(0, len(target))), (key, second))
    return event, _dump(tree).encode(), _shown((*where, key))


def _has_parent(event: dict[str, Any], path: tuple[str, ...]) -> bool:
    return len(path) == 1 or isinstance(event.get(path[0]), dict)


def _body(payloads: list[bytes]) -> bytes:
    return b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + b",".join(payloads) + b"]}"


def _webhook(body: bytes) -> Sorted:
    """What the receiver makes of a body: the fast path, else the full one (ingest.webhook.receiver._sort_body)."""
    plain = plain_items(body, 100)
    if plain is not None and (fast := sort_plain(plain, **WHERE, max_payload=MAX_PAYLOAD)) is not None:
        return fast
    items = event_list_items(body, 100, counted=plain is not None)
    return sort_items(items, **WHERE, max_payload=MAX_PAYLOAD, key_problems=item_key_problems(body))


@settings(max_examples=300, deadline=None)
@given(duplicated())
def test_a_key_given_twice_anywhere_is_refused_by_webhook_and_consumer_naming_its_path(
    case: tuple[dict[str, Any], bytes, str],
) -> None:
    event, payload, path = case
    good = orjson.dumps(event)
    assert valid_json(payload)
    # Fast and full verdicts agree: the fast path leaves it to the full one, which words the reason.
    assert storable(good) is not None and storable(payload) is None
    why = key_problem(payload)
    assert why is not None and f"key {path} is given more than once" in why
    # The consumer, whether or not the message names its stage.
    for msg_id in (None, f"{'0' * 64}-{event['stage']}"):
        assert screen(payload, ALL_STAGES, 1 << 20, msg_id) == Poison(DUPLICATE_KEY, why)
    # The webhook: dead-lettered with the same reason, its neighbours published as sent.
    sorted_items = _webhook(_body([good, payload, good]))
    assert [m.data for m in sorted_items.events] == [good, good]
    assert sorted_items.dead_letter_reasons == {DUPLICATE_KEY: 1}
    assert [m.headers[REASON_HEADER] for m in sorted_items.dead_letters] == [f"{DUPLICATE_KEY}: {why}"]


@pytest.mark.parametrize("event", EVENTS, ids=[f"{e['level']}-{e['verb']}-{n}" for n, e in enumerate(EVENTS)])
def test_an_event_without_duplicates_is_stored_and_published_byte_for_byte(event: dict[str, Any]) -> None:
    payload = orjson.dumps(event)
    assert key_problem(payload) is None
    assert screen(payload, ALL_STAGES, 1 << 20) == Row(payload, event["stageTimestamp"][:10])
    body = _body([payload] * 3)
    plain = plain_items(body, 10)
    assert plain is not None  # the fast path takes it
    fast = sort_plain(plain, **WHERE, max_payload=MAX_PAYLOAD)
    assert fast is not None and [m.data for m in fast.events] == [payload] * 3
    assert item_key_problems(body) == []


def test_the_same_key_in_different_objects_is_no_duplicate() -> None:
    payload = b'{"name":"a","objectRef":{"name":"a"},"requestObject":{"metadata":{"name":"a"},"items":[{"name":1}]}}'
    assert key_problem(payload) is None


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        (b'{"a":[{"b":1},{"c":{"d":1,"d":2}}]}', "a[1].c.d"),
        (b'{"a":{"x":1},"b":{"x":1,"x":1}}', "b.x"),
        (b'{"a b":{"":1,"":2}}', '["a b"][""]'),
        (b'{"a":{"\\u0064":1,"d":2}}', "a.d"),  # an escaped key is the same key
        (b'{"n":' + b"9" * 30 + b',"n":1}', "n"),  # JSON only the exact parser reads
        (b'{"a":{"b":1,"b":2},"a":3}', "a"),  # the outer object comes first
        (b'{"k\\n":1,"k\\n":2}', '["k\\n"]'),  # no raw line break reaches a header
    ],
)
def test_the_first_duplicate_is_named_by_its_path(payload: bytes, path: str) -> None:
    why = key_problem(payload)
    assert why is not None and f"key {path} is given" in why
    assert "\n" not in why and "\r" not in why


def test_a_long_path_is_shown_by_its_end() -> None:
    payload = ('{"a":' * 200 + '{"' + "k" * 300 + '":1,"' + "k" * 300 + '":2}' + "}" * 200).encode()
    why = key_problem(payload)
    assert why is not None and "..." in why and len(why) < 500


def test_an_envelope_giving_items_twice_is_refused_before_any_item_is_built() -> None:
    # simdjson counted the first `items`, orjson built the second: the item bound did not hold.
    body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[],"items":[' + b",".join([b"{}"] * 50) + b"]}"
    for attempt in (lambda: plain_items(body, 10), lambda: event_list_items(body, 10)):
        with pytest.raises(BadRequest) as refused:
            attempt()
        assert refused.value.status == 400 and refused.value.reason == "duplicate_key"
        assert "items" in refused.value.message


def test_a_credential_hidden_behind_a_second_data_key_is_never_published() -> None:
    # The redactor judged the Secret by its last `data` (empty, nothing to redact) and returned the bytes as sent,
    # the first `data` and its password in them.
    event = dict(
        EVENTS[0],
        objectRef={"resource": "secrets", "namespace": "default", "name": "s", "apiVersion": "v1"},
        requestObject={"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"}, "data": {"password": "c2Vj"}},
    )
    payload = orjson.dumps(event).replace(b'"data":{"password":"c2Vj"}', b'"data":{"password":"c2Vj"},"data":{}')
    redactor = Redactor(RedactionSettings(key=b"k" * 32))
    body = _body([payload])
    plain, _ = redactor.redact_plain(plain_items(body, 10))
    assert plain is None  # left to the full path
    items = [redactor.redact_item(item) for item in event_list_items(body, 10)]
    sorted_items = sort_items(items, **WHERE, max_payload=MAX_PAYLOAD, key_problems=item_key_problems(body))
    assert not sorted_items.events
    assert [m.headers[REASON_HEADER] for m in sorted_items.dead_letters] == [
        f"{DUPLICATE_KEY}: {key_problem(payload)}"
    ] and "requestObject.data" in str(key_problem(payload))
    assert b"c2Vj" not in sorted_items.dead_letters[0].data


async def test_a_delete_hidden_as_a_get_is_dead_lettered_end_to_end_and_its_neighbours_stored(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """webhook -> NATS -> consumer -> ClickHouse, and a message published to NATS directly, past the webhook."""
    good = [dict(e, auditID=f"good-{n}") for n, e in enumerate(EVENTS[:4])]
    get = dict(EVENTS[4], auditID="hidden-delete", verb="get")
    hidden = orjson.dumps(get)[:-1] + b',"verb":"delete"}'
    published_directly = orjson.dumps(dict(get, auditID="hidden-delete-2"))[:-1] + b',"verb":"delete"}'
    async with running_webhook(nats_server, cluster=CLUSTER) as webhook:
        status, answer = await webhook.post(_body([orjson.dumps(good[0]), hidden, orjson.dumps(good[1])]))
        assert status == 200, answer
        assert (answer["accepted"], answer["deadLettered"]) == (2, 1)
        published = [m.data for m in await stored(webhook.nc, STREAM)]
        assert published == [orjson.dumps(good[0]), orjson.dumps(good[1])]  # as sent, byte for byte
    nc = await nats_connect(nats_server.url, "test")
    await publish(nc, [good[2], published_directly, good[3]])
    config = parse_store_dsn(f"chdb://{tmp_path / 'store'}")
    migrate(config, retention_days=0)
    store = Store(config)
    try:
        async with running(nc, store):
            await eventually(lambda: drained(nc), what="every message acked")
        assert sorted(await stored_keys(store)) == sorted((e["auditID"], e["stage"]) for e in good)
        hidden_rows = await store.query_tsv("SELECT count() FROM events WHERE startsWith(audit_id, 'hidden')", {})
        assert int(hidden_rows[0]) == 0  # no row at all, whatever its verb column says
        reasons = [(m.headers or {}).get(REASON_HEADER, "") for m in await dead_letters(nc)]
        assert len(reasons) == 2 and all("key verb is given more than once" in r for r in reasons), reasons
        assert reasons[1].startswith(f"{DUPLICATE_KEY}: ")  # the consumer's, for the message it refused
    finally:
        store.close()
        await nc.close()


def test_the_fast_check_builds_nothing_for_an_item_over_the_size_limit() -> None:
    # 4 MB of `{},` would be ~1.3M dicts (~100 MB) if built to look for duplicates: the item is refused for its
    # size anyway, so it is never checked, and the body still takes the fast path.
    huge = dict(EVENTS[0], requestObject=[{}] * ((4 << 20) // 3))
    body = _body([orjson.dumps(EVENTS[1]), orjson.dumps(huge)])
    tracemalloc.start()
    try:
        plain = plain_items(body, 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert plain is not None and len(plain) == 2
    assert peak < 4 * len(body), peak


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    """The exact parser's reach follows the interpreter's recursion limit, which cel-python (a test dependency, never
    loaded by the services) raises when imported: the services run at Python's default."""
    kept = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(kept)


@pytest.mark.parametrize("depth", [150, 300, 900, 1010])
@pytest.mark.usefixtures("default_recursion_limit")
def test_keys_are_checked_at_any_depth_the_store_takes(depth: int) -> None:
    # jiter stops at 200 levels, the exact parser near 1000, simdjson and orjson at 1024: past the first the exact
    # parser decides, past the second the event is refused as unchecked rather than stored unchecked.
    nested = "[" * depth + "]" * depth
    good = orjson.dumps(EVENTS[0])[:-1] + f',"requestObject":{nested}}}'.encode()
    twice = good[:-1] + b',"requestObject":1}'
    verdict = screen(good, ALL_STAGES, 1 << 20)
    if depth < 1000:
        assert verdict == Row(good, EVENTS[0]["stageTimestamp"][:10])
        assert screen(twice, ALL_STAGES, 1 << 20) == Poison(DUPLICATE_KEY, str(key_problem(twice)))
        assert "key requestObject is given more than once" in str(key_problem(twice))
    else:
        assert verdict == Poison(DUPLICATE_KEY, DEEPER_THAN_CHECKED)
