"""The real kubectl against a running API server (real engine, client-certificate authentication)."""

from __future__ import annotations

import re

import yaml
from apiserver_support import ApiServerEnv, apiserver

from apiserver.apis.activity.v1alpha1.filterdocs import FILTER_DESCRIPTION
from auditlog.fields import FIELDS

__all__ = ["apiserver"]  # the fixture, imported for pytest

QUERY = """\
apiVersion: activity.miloapis.com/v1alpha1
kind: AuditLogQuery
metadata:
  name: deletes
spec:
  filter: "verb == 'delete'"
  limit: 1000
"""


def _words(text: str) -> str:
    """kubectl wraps long descriptions: compare texts with whitespace collapsed."""
    return " ".join(text.split())


def test_api_resources_lists_auditlogqueries_from_aggregated_discovery(apiserver: ApiServerEnv) -> None:
    result = apiserver.kubectl(
        "api-resources",
        "--api-group=activity.miloapis.com",
        "--no-headers",
        f"--cache-dir={apiserver.directory / 'fresh-cache'}",
        "-v=6",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["auditlogqueries", "activity.miloapis.com/v1alpha1", "false", "AuditLogQuery"]
    # one aggregated document was enough: the per-version legacy document was not fetched
    assert "/apis?timeout=" in result.stderr
    assert "/apis/activity.miloapis.com/v1alpha1" not in result.stderr


def test_explain_spec_lists_the_fields_and_filter_teaches_the_language(apiserver: ApiServerEnv) -> None:
    spec = apiserver.kubectl("explain", "auditlogquery.spec")
    assert spec.returncode == 0, spec.stderr
    fields = re.findall(r"^  (\w+)\t<(\w+)>", spec.stdout, re.MULTILINE)
    assert fields == [
        ("continue", "string"),
        ("endTime", "string"),
        ("filter", "string"),
        ("limit", "integer"),
        ("startTime", "string"),
    ]
    assert "1 to 1000" in _words(spec.stdout)  # the operator's --max-page-size is documented

    filter_doc = apiserver.kubectl("explain", "auditlogquery.spec.filter")
    assert filter_doc.returncode == 0, filter_doc.stderr
    assert "FIELD: filter <string>" in filter_doc.stdout
    assert _words(FILTER_DESCRIPTION) in _words(filter_doc.stdout)


def test_explain_results_documents_every_catalogue_field(apiserver: ApiServerEnv) -> None:
    result = apiserver.kubectl("explain", "auditlogquery.status.results", "--recursive")
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^\s+(\w+)\t<", result.stdout, re.MULTILINE))
    assert {part for f in FIELDS for part in f.parts} <= listed

    verb = apiserver.kubectl("explain", "auditlogquery.status.results.verb")
    assert "verb in ['create', 'update', 'patch', 'delete']" in _words(verb.stdout)


def test_create_without_validation_returns_the_matching_events(apiserver: ApiServerEnv) -> None:
    result = apiserver.kubectl("create", "--validate=false", "-f", "-", "-o", "yaml", stdin=QUERY)
    assert result.returncode == 0, result.stderr
    answer = yaml.safe_load(result.stdout)
    assert answer["kind"] == "AuditLogQuery"
    assert answer["metadata"]["name"] == "deletes"
    assert answer["spec"] == {"filter": "verb == 'delete'", "limit": 1000}
    expected = apiserver.newest_first(lambda e: e["verb"] == "delete")
    assert expected, "the generator produced deletes"
    assert answer["status"]["results"] == expected  # newest first, byte-for-byte the stored events
    assert answer["status"]["continue"] == ""


def test_default_strict_create_uses_server_side_validation(apiserver: ApiServerEnv) -> None:
    """kubectl's default --validate=strict must find fieldValidation support in OpenAPI v3, so it neither
    fetches the protobuf v2 document nor lists CRDs."""
    result = apiserver.kubectl("create", "-f", "-", "-o", "json", "-v=6", stdin=QUERY)
    assert result.returncode == 0, result.stderr
    assert "fieldValidation=Strict" in result.stderr
    assert "/openapi/v2" not in result.stderr
    assert "customresourcedefinitions" not in result.stderr


def test_invalid_filter_prints_the_is_invalid_block(apiserver: ApiServerEnv) -> None:
    one = apiserver.kubectl("create", "-f", "-", stdin=QUERY.replace("verb == 'delete'", "verb == 42"))
    assert one.returncode == 1
    # kubectl prints a single cause inline, several as a block
    assert one.stderr.startswith('The AuditLogQuery "deletes" is invalid: spec.filter: Invalid value: "verb == 42": ')

    two = apiserver.kubectl(
        "create", "-f", "-", stdin=QUERY.replace("verb == 'delete'", "verb == 42").replace("limit: 1000", "limit: 0")
    )
    assert two.returncode == 1
    lines = two.stderr.strip().splitlines()
    assert lines[0].strip() == 'The AuditLogQuery "deletes" is invalid:'
    assert sorted(line.split(":")[0] for line in lines[1:]) == ["* spec.filter", "* spec.limit"]
    assert '* spec.filter: Invalid value: "verb == 42": ' in two.stderr


def test_unknown_field_is_an_error_with_strict_and_a_warning_with_warn(apiserver: ApiServerEnv) -> None:
    query = QUERY.replace("  limit: 1000", "  limit: 1000\n  colour: blue")
    strict = apiserver.kubectl("create", "-f", "-", stdin=query)
    assert strict.returncode == 1
    assert 'strict decoding error: unknown field "spec.colour"' in strict.stderr

    warn = apiserver.kubectl("create", "--validate=warn", "-f", "-", stdin=query)
    assert warn.returncode == 0, warn.stderr
    assert 'Warning: unknown field "spec.colour"' in warn.stderr
    assert "auditlogquery.activity.miloapis.com/deletes created" in warn.stdout


def test_reading_or_deleting_queries_is_refused_as_kubernetes_does(apiserver: ApiServerEnv) -> None:
    listing = apiserver.kubectl("get", "auditlogqueries")
    assert listing.returncode == 1
    assert "Error from server (MethodNotAllowed)" in listing.stderr

    one = apiserver.kubectl("get", "auditlogquery", "deletes")
    assert one.returncode == 1
    assert "Error from server (NotFound)" in one.stderr
    assert '"deletes" not found' in one.stderr


def test_kubectl_request_timeouts_are_go_durations(apiserver: ApiServerEnv) -> None:
    """client-go sends --request-timeout as `?timeout=<Go duration>`: 1m30s was once answered 400."""
    for flag in ("1m30s", "1h", "1.5s", "90s"):
        result = apiserver.kubectl("get", "--raw", "/apis/activity.miloapis.com/v1alpha1", f"--request-timeout={flag}")
        assert result.returncode == 0, (flag, result.stderr)
        assert '"kind":"APIResourceList"' in result.stdout
