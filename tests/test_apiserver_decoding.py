"""Body decoding and strict field checks against the AuditLogQuery schema, content negotiation, and the request
filters that turn failures into Status answers."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler
from hypothesis import given
from hypothesis import strategies as st

from apiserver.apis.activity.v1alpha1.openapi import AUDIT_LOG_QUERY, schemas
from apiserver.machinery.decoding import MAX_YAML_BODY_BYTES, conform, decode
from apiserver.machinery.middlewares import max_in_flight, recover, request_timeout
from apiserver.machinery.negotiation import JSON, YAML, accepts_with_params, negotiate
from apiserver.machinery.request import USER_KEY, UserInfo
from apiserver.machinery.status import ApiError

SCHEMAS = schemas(lambda name: name, max_page_size=1000, max_window=timedelta(days=30))
SPEC_FIELDS = ("startTime", "endTime", "filter", "limit", "continue")

keys = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=8))


def _check(document: Any) -> tuple[Any, Any]:
    return conform(document, SCHEMAS[AUDIT_LOG_QUERY], SCHEMAS)


@given(st.lists(st.tuples(st.one_of(st.sampled_from(SPEC_FIELDS), keys), st.text(max_size=8)), max_size=12))
def test_unknown_and_duplicate_spec_fields_are_named_exactly(pairs: list[tuple[str, str]]) -> None:
    """Raw JSON text with any keys, repeated or not: unknown keys and every repeat are reported by path."""
    members = ",".join(f"{json.dumps(k)}:{json.dumps('2026' if k != 'limit' else 1)}" for k, _ in pairs)
    document = decode(('{"spec":{' + members + "}}").encode(), JSON)
    obj, problems = _check(document)
    names = [k for k, _ in pairs]
    assert sorted(problems.unknown) == sorted({f"spec.{k}" for k in names if k not in SPEC_FIELDS})
    expected_repeats = [f"spec.{k}" for i, k in enumerate(names) if k in names[:i]]
    assert sorted(problems.duplicate) == sorted(expected_repeats)
    assert set(obj["spec"]) == {k for k in names if k in SPEC_FIELDS}


@given(st.dictionaries(st.sampled_from(SPEC_FIELDS), scalars, max_size=5))
def test_wrong_types_are_reported_and_nulls_are_absent(spec: dict[str, Any]) -> None:
    obj, problems = _check({"spec": spec})
    expected_wrong = set()
    for name, value in spec.items():
        if value is None:
            continue
        fits = isinstance(value, int) and not isinstance(value, bool) if name == "limit" else isinstance(value, str)
        if not fits:
            expected_wrong.add(f"spec.{name}")
    assert {path for path, _, _ in problems.wrong_type} == expected_wrong
    assert set(obj["spec"]) == {k for k, v in spec.items() if v is not None}


def test_nested_unknown_paths_and_free_form_parts() -> None:
    document = {
        "metadata": {"name": "q", "labels": {"any": "thing"}, "finalizers": ["a", 3], "colour": "red"},
        "spec": {"limit": True},
        "status": {"results": [{"verb": "get", "requestObject": {"anything": 1}}]},
    }
    _, problems = _check(document)
    assert problems.unknown == ["metadata.colour"]
    assert [(p, t) for p, t, _ in problems.wrong_type] == [
        ("metadata.finalizers[1]", "string"),
        ("spec.limit", "integer"),
    ]


def test_yaml_keeps_timestamps_as_strings_and_sees_repeated_keys() -> None:
    document = decode(b"spec:\n  startTime: 2026-11-28T09:00:00Z\n  limit: 3\n  limit: 4\n", YAML)
    obj, problems = _check(document)
    assert obj["spec"] == {"startTime": "2026-11-28T09:00:00Z", "limit": 4}
    assert problems.duplicate == ["spec.limit"]


@pytest.mark.parametrize(
    ("body", "media", "message"),
    [
        (b"{", JSON, "the request body is not valid JSON"),
        (b"[1", JSON, "the request body is not valid JSON"),
        (b'{"a": Infinity}', JSON, "the request body is not valid JSON"),
        (b"a: [", YAML, "the request body is not valid YAML"),
        (b'{"spec":' * 100_000, JSON, "the request body is nested too deeply"),
        (b"- " * 50_000, YAML, "the request body is nested too deeply"),
    ],
)
def test_malformed_bodies_are_400(body: bytes, media: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode(body, media)
    assert caught.value.code == 400
    assert caught.value.message.startswith(message)


# --- hostile YAML ----------------------------------------------------------------------------------------------

BILLION_LAUGHS = b"a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + b"".join(
    b"%s: &%s [%s]\n" % (name, name, b",".join([b"*" + previous] * 9))
    for previous, name in zip([bytes([c]) for c in b"abcdefgh"], [bytes([c]) for c in b"bcdefghi"], strict=True)
)


def _labels_aliasing_one_anchor(keys: int, anchor_bytes: int) -> bytes:
    lines = [b"metadata:", b"  annotations:", b"    big: &big " + b"x" * anchor_bytes, b"  labels:"]
    lines += [b"    k%d: *big" % i for i in range(keys)]
    return b"\n".join(lines) + b"\nspec: {}\n"


@pytest.mark.parametrize(
    ("body", "alias"),
    [
        (BILLION_LAUGHS, "*a"),
        (_labels_aliasing_one_anchor(2000, 100_000), "*big"),
        (b"base: &b {limit: 1}\nspec:\n  <<: *b\n", "*b"),  # a merge key needs an alias too
        (b"&loop [*loop]", "*loop"),  # a cycle
    ],
)
def test_yaml_aliases_are_refused_before_anything_is_built(body: bytes, alias: str) -> None:
    """Any alias is a 400 naming it: one is enough to build gigabytes from a few hundred bytes."""
    with pytest.raises(ApiError) as caught:
        decode(body, YAML)
    assert caught.value.code == 400
    assert "not valid YAML" in caught.value.message and f"aliases ({alias}) are not allowed" in caught.value.message


def test_an_anchor_without_alias_is_fine() -> None:
    assert decode(b"spec: &s {limit: 3}\n", YAML) == {"spec": {"limit": 3}}


@pytest.mark.parametrize("body", [b"- " * 200_000, b"[" * 200_000, b"a: {" * 100_000])
def test_deep_yaml_is_a_400_not_a_crash(body: bytes) -> None:
    """libyaml's composer recurses in C per level: this depth used to end the process with a segfault."""
    with pytest.raises(ApiError) as caught:
        decode(body, YAML)
    assert (caught.value.code, caught.value.message) == (
        400,
        "the request body is nested too deeply (more than 100 levels)",
    )


def test_yaml_bodies_are_bounded_in_size() -> None:
    body = b"spec: {}\nmetadata:\n  annotations:\n" + b"".join(b"    k%d: v\n" % i for i in range(100_000))
    assert len(body) > MAX_YAML_BODY_BYTES
    with pytest.raises(ApiError) as caught:
        decode(body, YAML)
    assert (caught.value.code, caught.value.reason) == (413, "RequestEntityTooLarge")
    assert f"at most {MAX_YAML_BODY_BYTES} bytes" in caught.value.message and "send it as JSON" in caught.value.message


yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**62), 2**62), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20,
)


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


@given(yaml_values)
def test_alias_free_yaml_round_trips(value: Any) -> None:
    """Whatever a YAML emitter writes without aliases comes back as the same value."""
    assert decode(yaml.dump({"v": value}, Dumper=_NoAliasDumper).encode(), YAML) == {"v": value}


@given(st.one_of(st.lists(yaml_values, min_size=1, max_size=3), st.dictionaries(st.text(max_size=4), yaml_values)))
def test_any_shared_value_is_refused(shared: Any) -> None:
    """An emitter writes a value used twice as an anchor and an alias: always a 400, never built."""
    with pytest.raises(ApiError) as caught:
        decode(yaml.safe_dump({"first": shared, "second": shared}).encode(), YAML)
    assert caught.value.code == 400 and "are not allowed" in caught.value.message


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("application/yaml", "application/yaml"),
        ("application/yaml;q=0.5, application/json", "application/json"),
        ("application/json;q=0, application/yaml", "application/yaml"),
        ("application/vnd.kubernetes.protobuf", None),
        ("application/json;as=Table;v=v1;g=meta.k8s.io", None),
        ("application/json;as=Table;v=v1;g=meta.k8s.io, application/json", "application/json"),
        ("text/html, */*;q=0.1", "application/json"),
    ],
)
def test_negotiation(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept, ["application/json", "application/yaml"]) == expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", True),
        ("application/json; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io; q=0.9", True),
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0", False),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", False),
        ("application/json", False),
        (None, False),
    ],
)
def test_aggregated_discovery_is_recognised_exactly(accept: str | None, expected: bool) -> None:
    params = {"g": "apidiscovery.k8s.io", "v": "v2", "as": "APIGroupDiscoveryList"}
    assert accepts_with_params(accept, "application/json", params) is expected


@given(st.lists(st.sampled_from(["text/plain", "application/xml", "image/png"]), max_size=3), st.integers(0, 3))
def test_an_acceptable_offer_is_always_found(others: list[str], position: int) -> None:
    ranges = list(others)
    ranges.insert(min(position, len(ranges)), "application/yaml")
    assert negotiate(", ".join(ranges), ["application/json", "application/yaml"]) == "application/yaml"


# --- request filters -------------------------------------------------------------------------------------------


async def _client(*routes: web.RouteDef) -> TestClient[web.Request, web.Application]:
    app = web.Application(middlewares=[recover, request_timeout(60)])
    app.add_routes(routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_a_body_cut_short_is_one_log_line_and_a_400(caplog: pytest.LogCaptureFixture) -> None:
    """A client that goes away mid-upload (or hits the body timeout) is not a server error: no traceback, no 500.
    A plain runner, as the server runs (aiohttp's test server cancels the handler instead)."""

    async def reads(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    app = web.Application(middlewares=[recover, request_timeout(60)])
    app.add_routes([web.post("/cut", reads)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert runner.server is not None and site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        with caplog.at_level(logging.INFO, logger="apiserver.machinery.middlewares"):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"{" * 10)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            for _ in range(200):
                if any("ended before it was complete" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    cut = [r for r in caplog.records if "ended before it was complete" in r.getMessage()]
    assert len(cut) == 1 and cut[0].levelno == logging.INFO and cut[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_unexpected_errors_are_a_500_status_without_internals(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(_: web.Request) -> web.Response:
        raise RuntimeError("SELECT secret FROM events WHERE password = 'hunter2'")

    client = await _client(web.get("/broken", broken))
    try:
        with caplog.at_level(logging.ERROR):
            answer = await client.get("/broken")
            body = await answer.json()
    finally:
        await client.close()
    assert answer.status == 500
    assert body["kind"] == "Status" and body["reason"] == "InternalError"
    assert "SELECT" not in json.dumps(body) and "Traceback" not in json.dumps(body)
    incident = body["message"].split("incident ")[1].split(";")[0]
    assert any(incident in r.getMessage() and r.exc_info for r in caplog.records)  # the log has the details


async def test_requests_past_their_timeout_are_a_504_status() -> None:
    never = asyncio.Event()

    async def stuck(_: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    client = await _client(web.get("/stuck", stuck))
    try:
        answer = await client.get("/stuck", params={"timeout": "10ms"})
        body = await answer.json()
    finally:
        await client.close()
    assert answer.status == 504
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Timeout", 504)


async def test_a_malformed_timeout_parameter_is_a_400_status() -> None:
    async def fine(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    client = await _client(web.get("/fine", fine))
    try:
        answer = await client.get("/fine", params={"timeout": "soon"})
        body = await answer.json()
    finally:
        await client.close()
    assert (answer.status, body["reason"]) == (400, "BadRequest")
    assert "invalid timeout in the URL: 'soon' is not a duration" in body["message"]


async def test_requests_beyond_the_in_flight_limit_are_429_except_for_masters() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def busy(_: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.Response(text="done")

    @web.middleware
    async def user_from_test_header(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Stands in for authentication: the X-Test-Groups header says the caller's groups."""
        request[USER_KEY] = UserInfo("u", groups=tuple(request.headers.get("X-Test-Groups", "").split(",")))
        return await handler(request)

    app = web.Application(middlewares=[recover, user_from_test_header, max_in_flight(5, 1)])
    app.add_routes([web.post("/busy", busy), web.get("/busy", busy)])
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        first = asyncio.create_task(client.post("/busy"))
        await entered.wait()
        refused = await client.post("/busy")
        body = await refused.json()
        assert refused.status == 429 and refused.headers["Retry-After"] == "1"
        assert (body["reason"], body["details"]["retryAfterSeconds"]) == ("TooManyRequests", 1)
        release.set()
        masters = await client.post("/busy", headers={"X-Test-Groups": "system:masters"})
        assert masters.status == 200
        assert (await first).status == 200
        assert (await client.get("/busy")).status == 200  # read-only requests have their own limit
    finally:
        release.set()
        await client.close()


@given(st.binary(max_size=200), st.sampled_from([JSON, YAML]))
def test_any_body_decodes_or_is_a_400(body: bytes, media: str) -> None:
    try:
        decode(body, media)
    except ApiError as err:
        assert err.code == 400
