"""Properties of redaction over generated events: no value at a redacted path survives anywhere in what is
published (whatever the shape that carries it, escaped or not; by the redactor and by the webhook on a real
nats-server), redacting twice changes nothing more, and an event that holds no credential is published byte for
byte."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redaction_support import KEY, audit_event, b64, event_key, leaks, secret
from webhook_support import Running, running_webhook, stored

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from activity.devtools.natsd import NatsServer
from ingest.jetstream import STREAM
from ingest.redaction import RedactionSettings, Redactor

REDACTOR = Redactor(RedactionSettings(key=KEY))
SECRET_KEYS = st.from_regex(r"[A-Za-z0-9._-]{1,24}", fullmatch=True)
# Unique by construction (a random prefix), so finding one anywhere can only be a leak; any text after it.
VALUES = st.builds(lambda tag, text: f"cred-{tag.hex}-{text}", st.uuids(), st.text(max_size=40))
DATA = st.dictionaries(SECRET_KEYS, VALUES, min_size=1, max_size=5)


def _plain(data: dict[str, str]) -> list[str]:
    return list(data.values())


def _with_b64(data: dict[str, str]) -> list[str]:
    return [form for v in data.values() for form in (v, b64(v))]


Shape = Callable[[dict[str, str], st.DrawFn], tuple[dict[str, Any], list[str]]]


def _written(data: dict[str, str], draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    verb = draw(st.sampled_from(["create", "update", "get", "delete"]))
    obj = secret(data)
    return audit_event(verb, "secrets", request=obj if verb in ("create", "update") else None, response=obj), (
        _with_b64(data)
    )


def _string_data(data: dict[str, str], draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    applied = json.dumps({"kind": "Secret", "apiVersion": "v1", "stringData": data})
    obj = secret(string_data=data, annotations={"kubectl.kubernetes.io/last-applied-configuration": applied})
    stage = draw(st.sampled_from(["RequestReceived", "ResponseComplete"]))
    return audit_event("create", "secrets", request=obj, stage=stage), _plain(data)


def _merge_patch(data: dict[str, str], draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    field = draw(st.sampled_from(["data", "stringData"]))
    patch: dict[str, Any] = {field: dict(data), "metadata": {"labels": {"x": "y"}}}
    if draw(st.booleans()):
        patch |= {"apiVersion": "v1", "kind": "Secret"}  # an apply configuration
    return audit_event("patch", "secrets", request=patch), _plain(data)


def _json_patch(data: dict[str, str], draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    ops: list[dict[str, Any]] = []
    for key, value in data.items():
        escaped = key.replace("~", "~0").replace("/", "~1")
        form = draw(st.sampled_from(["key", "field", "root", "test"]))
        field = draw(st.sampled_from(["data", "stringData"]))
        if form == "key":
            ops.append({"op": draw(st.sampled_from(["add", "replace"])), "path": f"/{field}/{escaped}", "value": value})
        elif form == "test":
            ops.append({"op": "test", "path": f"/{field}/{escaped}", "value": value})
        elif form == "field":
            ops.append({"op": "add", "path": f"/{field}", "value": {key: value}})
        else:
            ops.append({"op": "replace", "path": "", "value": {"kind": "Secret", field: {key: value}}})
    ops.insert(draw(st.integers(0, len(ops))), {"op": "remove", "path": "/data/gone"})
    return audit_event("patch", "secrets", request=ops), _plain(data)


def _listed(data: dict[str, str], draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    if draw(st.booleans()):
        body = {"kind": "SecretList", "apiVersion": "v1", "items": [secret(data, type_meta=False)]}
        return audit_event("list", "secrets", name=None, response=body), _with_b64(data)
    body = {"kind": "List", "apiVersion": "v1", "items": [{"kind": "ConfigMap", "apiVersion": "v1"}, secret(data)]}
    return audit_event("create", "bundles", group="example.com", request=body), _with_b64(data)


def _tokens(data: dict[str, str], draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    token = next(iter(data.values()))
    if draw(st.booleans()):
        answer = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "status": {"token": token}}
        return audit_event("create", "serviceaccounts", subresource="token", response=answer), [token]
    review = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "spec": {"token": token}}
    event = audit_event("create", "tokenreviews", group="authentication.k8s.io", request=review, response=review)
    return event, [token]


SHAPES: list[Shape] = [_written, _string_data, _merge_patch, _json_patch, _listed, _tokens]
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')  # a JSON string token, quotes included


def _escape_letters(sent: bytes, every: int) -> bytes:
    """Every `every`th letter inside JSON strings (keys included) written as a \\u escape."""

    def letters(token: re.Match[bytes]) -> bytes:
        text = json.loads(token[0])
        out = (f"\\u{ord(c):04x}" if c.isascii() and c.isalpha() and i % every == 0 else json.dumps(c)[1:-1]
               for i, c in enumerate(text))  # fmt: skip
        return ('"' + "".join(out) + '"').encode()

    return _STRING.sub(letters, sent)


@st.composite
def sensitive(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """(an event's bytes as sent, the credentials in it); sometimes with letters sent as \\u escapes."""
    event, credentials = draw(st.sampled_from(SHAPES))(draw(DATA), draw)
    sent = orjson.dumps(event)
    if draw(st.booleans()):  # JSON allows any character escaped: the byte check must not be fooled by it
        sent = _escape_letters(sent, draw(st.integers(1, 9)))
        assert orjson.loads(sent) == event
    return sent, credentials


@settings(max_examples=300, deadline=None)
@given(drawn=sensitive())
def test_no_value_of_a_redacted_path_survives(drawn: tuple[bytes, list[str]]) -> None:
    sent, credentials = drawn
    assert leaks(sent, credentials), "the generated event carries its credentials"
    published = REDACTOR.redact(sent)
    assert leaks(published, credentials) == []
    assert REDACTOR.redact(published) == published, "redacting again changes nothing"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
HARMLESS = ["pods", "configmaps", "deployments", "services", "leases", "serviceaccounts", "events"]


@settings(max_examples=300, deadline=None)
@given(
    resource=st.sampled_from(HARMLESS),
    group=st.sampled_from(["", "apps", "coordination.k8s.io"]),
    request=JSON_VALUES,
    response=JSON_VALUES,
)
def test_events_without_credentials_are_published_byte_for_byte(
    resource: str, group: str, request: Any, response: Any
) -> None:
    sent = orjson.dumps(audit_event("update", resource, group=group, request=request, response=response))
    assert REDACTOR.redact(sent) == sent


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_generated_traffic_is_published_as_the_same_bytes(seed: int) -> None:
    for event in EventGenerator(GeneratorSettings(seed=seed)).events(50):
        sent = orjson.dumps(event)
        assert REDACTOR.redact(sent) is sent


@pytest.fixture
async def webhook(nats_server: NatsServer) -> AsyncIterator[Running]:
    async with running_webhook(nats_server, redaction=RedactionSettings(key=KEY)) as running:
        yield running


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(sensitive(), min_size=1, max_size=6), seed=st.integers(0, 2**32))
async def test_what_the_webhook_publishes_holds_no_credential(
    webhook: Running, batch: list[tuple[bytes, list[str]]], seed: int
) -> None:
    plain = [orjson.dumps(e) for e in EventGenerator(GeneratorSettings(seed=seed)).events(3)]
    items = [sent for sent, _ in batch] + plain
    body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + b",".join(items) + b"]}"
    status, summary = await webhook.post(body)
    assert (status, summary["accepted"]) == (200, len(items))
    published = {event_key(orjson.loads(m.data)): m.data for m in await stored(webhook.nc, STREAM)}
    for sent, credentials in batch:
        assert leaks(published[event_key(orjson.loads(sent))], credentials) == []
    for sent in plain:
        assert published[event_key(orjson.loads(sent))] == sent
