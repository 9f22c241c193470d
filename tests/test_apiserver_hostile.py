"""Hostile callers of a running API server (real HTTPS, real chdb engine): YAML bombs, filters and pages over the
store's limits, and readiness while every query worker is busy."""

from __future__ import annotations

import http.client
import ssl
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from apiserver_support import (
    ADMIN,
    ADMIN_GROUPS,
    ApiServerEnv,
    Response,
    apiserver,
)

__all__ = ["apiserver"]  # the fixture, imported for pytest

COLLECTION = "/apis/activity.miloapis.com/v1alpha1/auditlogqueries"
YAML_HEADERS = {"Content-Type": "application/yaml"}
STALL_BOUND_S = 10.0  # generous: a 2-core CI machine shared with other work


def _post_yaml(env: ApiServerEnv, body: bytes) -> Response:
    return env.request("POST", COLLECTION, body, YAML_HEADERS)


def _concurrent_post_yaml(env: ApiServerEnv, body: bytes, context: ssl.SSLContext) -> Response:
    """A POST on its own connection with a context loaded once (`env.request` rewrites the key files per call,
    which concurrent callers would race on)."""
    connection = http.client.HTTPSConnection("127.0.0.1", env.handle.port, context=context, timeout=300)
    try:
        connection.request("POST", COLLECTION, body, YAML_HEADERS)
        answer = connection.getresponse()
        return Response(answer.status, dict(answer.getheaders()), answer.read())
    finally:
        connection.close()


def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# --- YAML bombs ------------------------------------------------------------------------------------------------


def test_billion_laughs_is_refused_at_once(apiserver: ApiServerEnv) -> None:
    """587 bytes that expand to 9^9 strings: a 400 naming the alias, long before anything is built."""
    lines = [b"a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]".encode())
    answer, took = _timed(lambda: _post_yaml(apiserver, b"\n".join(lines) + b"\nspec: {}\n"))
    assert answer.status == 400, answer.body
    assert answer.json()["reason"] == "BadRequest"
    assert "aliases (*a) are not allowed" in answer.json()["message"]
    assert took < STALL_BOUND_S


def test_labels_aliasing_one_big_anchor_are_refused(apiserver: ApiServerEnv) -> None:
    """Before: every label key an alias of one 100 KB anchor, and the answer echoed each copy (2000 x 1 MB built
    a 2 GB answer). Now the first alias is a 400."""
    lines = [b"metadata:", b"  annotations:", b"    big: &big " + b"x" * 100_000, b"  labels:"]
    lines += [b"    k%d: *big" % i for i in range(500)]
    answer = _post_yaml(apiserver, b"\n".join(lines) + b"\nspec: {limit: 1}\n")
    assert answer.status == 400, answer.body[:300]
    assert "aliases (*big) are not allowed" in answer.json()["message"]
    assert len(answer.body) < 1000


def test_other_requests_are_served_while_large_yaml_bodies_decode(apiserver: ApiServerEnv) -> None:
    """Large (legal) YAML bodies are decoded off the event loop: a probe and a small query are answered while
    they are in flight. Before, each ~1 MB body held the loop for seconds in the pure-Python parser."""
    annotations = b"".join(b"    key-%06d: value-%06d\n" % (i, i) for i in range(34_000))
    body = b"metadata:\n  annotations:\n" + annotations + b"spec:\n  limit: 1\n"
    assert 900_000 < len(body) < 1024 * 1024
    context = ssl.create_default_context(cafile=str(apiserver.ca_file))
    context.load_cert_chain(*apiserver.client_pair(ADMIN, ADMIN_GROUPS))
    with ThreadPoolExecutor(max_workers=6) as pool:
        heavy: list[Future[Response]] = [pool.submit(_concurrent_post_yaml, apiserver, body, context) for _ in range(6)]
        time.sleep(0.3)  # let them reach the server
        ready, ready_took = _timed(lambda: apiserver.request("GET", "/readyz"))
        query, query_took = _timed(lambda: apiserver.create({"limit": 1}))
        still_running = sum(not f.done() for f in heavy)
        answers = [f.result(timeout=300) for f in heavy]
    assert (ready.status, query.status) == (200, 201)
    assert ready_took < STALL_BOUND_S and query_took < STALL_BOUND_S, (ready_took, query_took, still_running)
    assert [a.status for a in answers] == [201] * 6  # and the large bodies themselves are served


def test_oversized_yaml_bodies_are_413(apiserver: ApiServerEnv) -> None:
    body = b"metadata:\n  annotations:\n" + b"".join(b"    k%07d: v\n" % i for i in range(80_000)) + b"spec: {}\n"
    answer = _post_yaml(apiserver, body)
    assert answer.status == 413, answer.body[:300]
    status = answer.json()
    assert status["reason"] == "RequestEntityTooLarge" and "send it as JSON" in status["message"]


# --- filters and pages over the store's limits -----------------------------------------------------------------


def test_a_costly_filter_is_a_422_naming_its_cost(apiserver: ApiServerEnv) -> None:
    source = "annotations.exists(a, annotations.exists(b, a.contains(b) && b != a))"
    answer, took = _timed(lambda: apiserver.create({"filter": source}))
    assert answer.status == 422, answer.body
    [cause] = answer.json()["details"]["causes"]
    assert cause["field"] == "spec.filter"
    assert "estimated cost is" in cause["message"] and "over the limit of 1,000,000" in cause["message"]
    assert "annotations.exists() (up to 1,000 items assumed)" in cause["message"]
    assert took < STALL_BOUND_S
