"""The Kubernetes HTTP surface over real HTTPS: discovery, OpenAPI caching, create semantics, Status errors."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import yaml
from apiserver_support import ApiServerEnv, apiserver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

__all__ = ["apiserver"]  # the fixture, imported for pytest

GV = "activity.miloapis.com/v1alpha1"
COLLECTION = f"/apis/{GV}/auditlogqueries"
JSON_HEADERS = {"Content-Type": "application/json"}
GVK = {"group": "activity.miloapis.com", "version": "v1alpha1", "kind": "AuditLogQuery"}


def _body(spec: dict[str, Any] | None = None, **top: Any) -> str:
    return json.dumps({"apiVersion": GV, "kind": "AuditLogQuery", "spec": spec or {}, **top})


def _assert_status(answer: Any, code: int, reason: str) -> dict[str, Any]:
    assert answer.status == code, answer.body
    assert answer.headers["Content-Type"].startswith("application/json")
    status: dict[str, Any] = answer.json()
    assert status["kind"] == "Status" and status["apiVersion"] == "v1" and status["status"] == "Failure"
    assert (status["code"], status["reason"]) == (code, reason)
    return status


# --- discovery -------------------------------------------------------------------------------------------------


def test_discovery_documents(apiserver: ApiServerEnv) -> None:
    version = {"groupVersion": GV, "version": "v1alpha1"}
    group = {"name": "activity.miloapis.com", "versions": [version], "preferredVersion": version}
    assert apiserver.request("GET", "/apis?timeout=32s").json() == {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [group],
    }
    assert apiserver.request("GET", "/apis/activity.miloapis.com").json() == {
        "kind": "APIGroup",
        "apiVersion": "v1",
        **group,
    }
    assert apiserver.request("GET", f"/apis/{GV}").json() == {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GV,
        "resources": [
            {
                "name": "auditlogqueries",
                "singularName": "auditlogquery",
                "namespaced": False,
                "kind": "AuditLogQuery",
                "verbs": ["create"],
            }
        ],
    }


def test_aggregated_discovery_v2(apiserver: ApiServerEnv) -> None:
    v2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    # client-go's Accept: v2, then v2beta1, then legacy JSON
    accept = f"{v2},application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
    answer = apiserver.request("GET", "/apis", headers={"Accept": accept})
    assert answer.status == 200
    assert answer.headers["Content-Type"] == v2
    assert answer.json() == {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": "activity.miloapis.com"},
                "versions": [
                    {
                        "version": "v1alpha1",
                        "resources": [
                            {
                                "resource": "auditlogqueries",
                                "responseKind": GVK,
                                "scope": "Cluster",
                                "singularResource": "auditlogquery",
                                "verbs": ["create"],
                            }
                        ],
                        "freshness": "Current",
                    }
                ],
            }
        ],
    }
    cached = apiserver.request("GET", "/apis", headers={"Accept": v2, "If-None-Match": answer.headers["ETag"]})
    assert (cached.status, cached.headers["Content-Type"]) == (304, v2)


def test_discovery_without_v2_in_accept_is_legacy_never_503(apiserver: ApiServerEnv) -> None:
    for accept in ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", "application/json"):
        answer = apiserver.request("GET", "/apis", headers={"Accept": accept})
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("application/json")
        assert "g=apidiscovery.k8s.io" not in answer.headers["Content-Type"]
        assert answer.json()["kind"] == "APIGroupList"


def test_legacy_api_and_unknown_paths_are_404_status(apiserver: ApiServerEnv) -> None:
    for path in ("/api", "/apis/other.example.com/v1", "/nothing/here"):
        _assert_status(apiserver.request("GET", path), 404, "NotFound")


# --- OpenAPI ---------------------------------------------------------------------------------------------------


def test_openapi_v2_json_with_etag_and_406_for_protobuf_only(apiserver: ApiServerEnv) -> None:
    answer = apiserver.request("GET", "/openapi/v2", headers={"Accept": "application/json"})
    assert answer.status == 200
    document = answer.json()
    assert document["swagger"] == "2.0"
    assert list(document["paths"]) == [COLLECTION]
    assert document["paths"][COLLECTION]["post"]["x-kubernetes-group-version-kind"] == GVK
    assert (
        GVK
        in document["definitions"]["com.miloapis.activity.v1alpha1.AuditLogQuery"]["x-kubernetes-group-version-kind"]
    )
    etag = answer.headers["ETag"]
    cached = apiserver.request("GET", "/openapi/v2", headers={"If-None-Match": etag})
    assert (cached.status, cached.body) == (304, b"")

    protobuf = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    _assert_status(apiserver.request("GET", "/openapi/v2", headers={"Accept": protobuf}), 406, "NotAcceptable")
    # protobuf preferred but JSON acceptable: JSON
    either = apiserver.request("GET", "/openapi/v2", headers={"Accept": f"{protobuf}, application/json;q=0.5"})
    assert either.status == 200 and either.json()["swagger"] == "2.0"


def test_openapi_v3_root_lists_only_our_group_version_with_the_document_hash(apiserver: ApiServerEnv) -> None:
    root = apiserver.request("GET", "/openapi/v3").json()
    assert list(root["paths"]) == [f"apis/{GV}"]
    url = root["paths"][f"apis/{GV}"]["serverRelativeURL"]
    path, _, query = url.partition("?")
    assert path == f"/openapi/v3/apis/{GV}"
    digest = query.removeprefix("hash=")

    plain = apiserver.request("GET", path)
    assert digest == hashlib.sha512(plain.body).hexdigest().upper()

    pinned = apiserver.request("GET", url)
    assert pinned.status == 200 and pinned.body == plain.body
    assert pinned.headers["Cache-Control"] == "public, immutable"
    assert pinned.headers["ETag"] == f'"{digest}"'
    assert apiserver.request("GET", url, headers={"If-None-Match": f'"{digest}"'}).status == 304

    stale = apiserver.request("GET", f"{path}?hash=0123ABCD")
    assert stale.status == 301
    assert stale.headers["Location"] == url
    assert "immutable" not in stale.headers.get("Cache-Control", "")


def test_openapi_v3_carries_what_kubectl_explain_and_field_validation_need(apiserver: ApiServerEnv) -> None:
    document = apiserver.request("GET", f"/openapi/v3/apis/{GV}").json()
    operations = document["paths"][COLLECTION]
    assert operations["post"]["x-kubernetes-group-version-kind"] == GVK
    # kubectl looks for a PATCH of our GVK taking fieldValidation to skip client-side validation
    patch = operations["patch"]
    assert patch["x-kubernetes-group-version-kind"] == GVK
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation"
    ).items()
    schema = document["components"]["schemas"]["com.miloapis.activity.v1alpha1.AuditLogQuery"]
    assert schema["x-kubernetes-group-version-kind"] == [GVK]
    # every $ref resolves inside the document
    for ref in re.findall(r'"\$ref":"#/components/schemas/([^"]+)"', plain_json(document)):
        assert ref in document["components"]["schemas"]


def plain_json(document: Any) -> str:
    return orjson.dumps(document).decode()


# --- create ----------------------------------------------------------------------------------------------------


def test_create_answers_201_with_the_object_and_spliced_results(apiserver: ApiServerEnv) -> None:
    answer = apiserver.request(
        "POST", COLLECTION, _body({"filter": "verb == 'create'", "limit": 3}, metadata={"name": "q"}), JSON_HEADERS
    )
    assert answer.status == 201
    obj = answer.json()
    assert obj["apiVersion"] == GV and obj["kind"] == "AuditLogQuery"
    assert obj["metadata"]["name"] == "q"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", obj["metadata"]["creationTimestamp"])
    assert "uid" not in obj["metadata"] and "resourceVersion" not in obj["metadata"]
    assert obj["spec"] == {"filter": "verb == 'create'", "limit": 3}
    expected = apiserver.newest_first(lambda e: e["verb"] == "create")
    assert obj["status"]["results"] == expected[:3]
    assert obj["status"]["continue"]
    assert set(obj["status"]) == {"results", "continue", "effectiveStartTime", "effectiveEndTime"}
    # the stored bytes are spliced, not re-serialised: each event appears in the body exactly as stored
    for event in expected[:3]:
        assert orjson.dumps(event) in answer.body


def test_pages_follow_the_continue_token_without_repeats(apiserver: ApiServerEnv) -> None:
    spec: dict[str, Any] = {"filter": "objectRef.resource == 'pods'", "limit": 7}
    seen: list[dict[str, Any]] = []
    while True:
        status = apiserver.create(spec).json()["status"]
        seen += status["results"]
        if not status["continue"]:
            break
        spec["continue"] = status["continue"]
    assert seen == apiserver.newest_first(lambda e: e.get("objectRef", {}).get("resource") == "pods")


def test_missing_content_type_is_json_and_yaml_bodies_work(apiserver: ApiServerEnv) -> None:
    assert apiserver.request("POST", COLLECTION, _body({"limit": 1})).status == 201
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = f"apiVersion: {GV}\nkind: AuditLogQuery\nspec:\n  limit: 1\n  startTime: {start}\n"
    answer = apiserver.request("POST", COLLECTION, document, {"Content-Type": "application/yaml"})
    assert answer.status == 201, answer.body
    # an unquoted YAML timestamp stays the string the user wrote, as in Kubernetes
    assert answer.json()["spec"]["startTime"] == start
    assert answer.json()["status"]["results"] == apiserver.newest_first()[:1]


def test_yaml_answer_when_asked(apiserver: ApiServerEnv) -> None:
    answer = apiserver.request("POST", COLLECTION, _body({"limit": 2}), {"Accept": "application/yaml"})
    assert answer.status == 201
    assert answer.headers["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(answer.body)["status"]["results"] == apiserver.newest_first()[:2]


def test_unsupported_media_types(apiserver: ApiServerEnv) -> None:
    unsupported = apiserver.request(
        "POST", COLLECTION, _body(), {"Content-Type": "application/vnd.kubernetes.protobuf"}
    )
    status = _assert_status(unsupported, 415, "UnsupportedMediaType")
    assert "application/json, application/yaml" in status["message"]
    _assert_status(
        apiserver.request("POST", COLLECTION, _body(), {"Accept": "application/vnd.kubernetes.protobuf"}),
        406,
        "NotAcceptable",
    )
    # client-go's usual Accept (protobuf first, JSON as fallback) gets JSON
    mixed = {"Accept": "application/vnd.kubernetes.protobuf, application/json"}
    assert apiserver.request("POST", COLLECTION, _body({"limit": 1}), mixed).status == 201


@pytest.mark.parametrize(
    ("query", "field", "fragment"),
    [
        ("?dryRun=Everything", "dryRun", 'supported values: "All"'),
        ("?fieldManager=" + "m" * 129, "fieldManager", "may not be longer than 128"),
        ("?fieldManager=bad%07name", "fieldManager", "printable"),
        ("?fieldValidation=Loose", "fieldValidation", '"Ignore", "Strict", "Warn"'),
    ],
)
def test_create_options_are_validated(apiserver: ApiServerEnv, query: str, field: str, fragment: str) -> None:
    status = _assert_status(apiserver.create({}, query), 422, "Invalid")
    assert status["details"]["kind"] == "CreateOptions"
    [cause] = status["details"]["causes"]
    assert cause["field"] == field
    assert fragment in cause["message"]


def test_dry_run_all_and_field_manager_are_accepted(apiserver: ApiServerEnv) -> None:
    answer = apiserver.create({"limit": 1}, "?dryRun=All&fieldManager=kubectl-create")
    assert answer.status == 201
    assert len(answer.json()["status"]["results"]) == 1


def test_field_validation_strict_warn_ignore(apiserver: ApiServerEnv) -> None:
    body = '{"apiVersion":"' + GV + '","kind":"AuditLogQuery","spec":{"limit":1,"foo":1,"limit":2},"bar":{}}'
    strict = apiserver.request("POST", COLLECTION + "?fieldValidation=Strict", body, JSON_HEADERS)
    status = _assert_status(strict, 400, "BadRequest")
    assert status["message"] == (
        'strict decoding error: unknown field "spec.foo", unknown field "bar", duplicate field "spec.limit"'
    )
    for validation in ("Warn", ""):
        warned = apiserver.request("POST", f"{COLLECTION}?fieldValidation={validation}", body, JSON_HEADERS)
        assert warned.status == 201
        assert warned.headers["Warning"] == (
            '299 - "unknown field \\"spec.foo\\"", 299 - "unknown field \\"bar\\"", '
            '299 - "duplicate field \\"spec.limit\\""'
        )
        assert warned.json()["spec"] == {"limit": 2}  # unknown fields dropped, the last duplicate wins
        assert len(warned.json()["status"]["results"]) == 2
    ignored = apiserver.request("POST", COLLECTION + "?fieldValidation=Ignore", body, JSON_HEADERS)
    assert ignored.status == 201 and "Warning" not in ignored.headers


def test_generate_name(apiserver: ApiServerEnv) -> None:
    prefix = "a" * 70
    metadata = apiserver.create({"limit": 1}, metadata={"generateName": prefix}).json()["metadata"]
    assert metadata["generateName"] == prefix
    assert re.fullmatch("a{58}[bcdfghjklmnpqrstvwxz2456789]{5}", metadata["name"])
    names = {
        apiserver.create({"limit": 1}, metadata={"generateName": "q-"}).json()["metadata"]["name"] for _ in range(3)
    }
    assert len(names) == 3 and all(re.fullmatch("q-[bcdfghjklmnpqrstvwxz2456789]{5}", n) for n in names)


def test_invalid_name_and_wrong_types_are_422_with_causes(apiserver: ApiServerEnv) -> None:
    answer = apiserver.create({"limit": "ten", "filter": 3}, metadata={"name": "Not_A_Name"})
    status = _assert_status(answer, 422, "Invalid")
    assert status["message"].startswith('AuditLogQuery.activity.miloapis.com "Not_A_Name" is invalid: [')
    assert status["details"]["name"] == "Not_A_Name" and status["details"]["kind"] == "AuditLogQuery"
    fields = {c["field"]: c["message"] for c in status["details"]["causes"]}
    assert set(fields) == {"metadata.name", "spec.limit", "spec.filter"}
    assert fields["spec.limit"] == 'Invalid value: "ten": spec.limit must be of type integer'


def test_query_errors_are_422_on_the_spec_field(apiserver: ApiServerEnv) -> None:
    status = _assert_status(apiserver.create({"startTime": "yesterday"}), 422, "Invalid")
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.startTime"]


def test_type_meta_must_match(apiserver: ApiServerEnv) -> None:
    wrong_version = apiserver.request("POST", COLLECTION, _body(apiVersion="activity.miloapis.com/v1"))
    assert "does not match the expected API version" in _assert_status(wrong_version, 400, "BadRequest")["message"]
    wrong_kind = apiserver.request("POST", COLLECTION, _body(kind="Pod"))
    assert "kind in the data (Pod)" in _assert_status(wrong_kind, 400, "BadRequest")["message"]
    # omitted type meta is fine: the URL says it
    assert apiserver.request("POST", COLLECTION, '{"spec":{"limit":1}}').status == 201


@pytest.mark.parametrize("body", ["{not json", "[1,2]", "null", "", '{"spec": NaN}', "a: [b"])
def test_malformed_bodies_are_400(apiserver: ApiServerEnv, body: str) -> None:
    content_type = "application/yaml" if body.startswith("a:") else "application/json"
    _assert_status(apiserver.request("POST", COLLECTION, body, {"Content-Type": content_type}), 400, "BadRequest")


def test_oversized_bodies_are_413_status(apiserver: ApiServerEnv) -> None:
    body = _body({"filter": "verb == '" + "x" * (4 * 1024 * 1024) + "'"})
    _assert_status(apiserver.request("POST", COLLECTION, body, JSON_HEADERS), 413, "RequestEntityTooLarge")


def test_other_verbs_and_named_paths(apiserver: ApiServerEnv) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        answer = apiserver.request(method, COLLECTION)
        _assert_status(answer, 405, "MethodNotAllowed")
        assert answer.headers["Allow"] == "POST"
    for method in ("GET", "PUT", "DELETE", "PATCH", "POST"):
        _assert_status(apiserver.request(method, f"{COLLECTION}/q1"), 404, "NotFound")
    _assert_status(apiserver.request("GET", f"{COLLECTION}/q1/status"), 404, "NotFound")


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_spec_fields = st.sampled_from(["startTime", "endTime", "filter", "limit", "continue", "other"])
_metadata_fields = st.sampled_from(["name", "generateName", "labels", "annotations", "namespace", "finalizers"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.dictionaries(_spec_fields, _json_values, max_size=5),
    metadata=st.dictionaries(_metadata_fields, _json_values, max_size=3),
)
def test_any_object_is_answered_201_or_a_4xx_status(
    apiserver: ApiServerEnv, spec: dict[str, Any], metadata: dict[str, Any]
) -> None:
    body = json.dumps({"metadata": metadata, "spec": spec}, ensure_ascii=False).encode()
    answer = apiserver.request("POST", COLLECTION, body, JSON_HEADERS)
    if answer.status == 201:
        assert isinstance(answer.json()["status"]["results"], list)
        return
    assert answer.status in (400, 422), answer.body
    status = answer.json()
    assert (status["kind"], status["code"]) == ("Status", answer.status)
