"""Redaction of one event's bytes: every way kube-apiserver writes a credential is replaced by a marker that tells
whether the value changed, and every event that holds none comes back as the very same bytes."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from typing import Any

import orjson
import pytest
from redaction_support import KEY, Case, audit_event, b64, cases, leaks, markers_at, secret

from activity.cli import EnvDefaultsFormatter, apply_env_defaults
from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from auditlog.redaction import MARKER_PREFIX, is_marker, marker
from ingest.redaction import RedactionSettings, Redactor, parse_path, parse_rule
from ingest.redaction.flags import add_arguments, settings_from

CASES = list(cases())


def redactor(*rules: str, key: bytes = KEY, counted: list[str] | None = None) -> Redactor:
    extra = tuple(parse_rule(r) for r in rules)
    return Redactor(
        RedactionSettings(key=key, extra=extra), on_redacted=(counted if counted is not None else []).append
    )


def _leaf_changes(before: Any, after: Any, where: str = "") -> list[str]:
    """Where `after` differs from `before`; each difference must be a value replaced by a marker."""
    if isinstance(before, dict) and isinstance(after, dict):
        assert before.keys() == after.keys(), where
        return [c for k in before for c in _leaf_changes(before[k], after[k], f"{where}.{k}")]
    if isinstance(before, list) and isinstance(after, list):
        assert len(before) == len(after), where
        return [
            c for i, (b, a) in enumerate(zip(before, after, strict=True)) for c in _leaf_changes(b, a, f"{where}[{i}]")
        ]
    if before == after:
        return []
    assert is_marker(after), f"{where}: {after!r} is not a marker"
    return [where]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_credential_is_replaced_by_a_marker_and_nothing_else_changes(case: Case) -> None:
    sent = orjson.dumps(case.event)
    assert leaks(sent, case.credentials), "the case carries its credentials"
    counted: list[str] = []
    published = redactor(counted=counted).redact(sent)
    assert leaks(published, case.credentials) == []
    changed = _leaf_changes(case.event, orjson.loads(published))
    assert changed, "values were replaced"
    assert counted == [case.resource]
    for key in case.keys:  # that a key exists is kept
        assert f'"{key}":"{MARKER_PREFIX}'.encode() in published or key.encode() in published


def test_the_marker_is_a_keyed_hash_of_the_value() -> None:
    event = audit_event("get", "secrets", response=secret({"password": "pw-1"}))
    published = orjson.loads(redactor().redact(orjson.dumps(event)))
    assert published["responseObject"]["data"]["password"] == marker(KEY, b64("pw-1"))
    other_installation = orjson.loads(redactor(key=b"another-installation-key").redact(orjson.dumps(event)))
    assert other_installation["responseObject"]["data"]["password"] != published["responseObject"]["data"]["password"]
    assert is_marker(marker(KEY, "x")) and len(marker(KEY, "x")) == len(MARKER_PREFIX) + 16
    assert marker(KEY, "1") != marker(KEY, 1), "a string and a number never share a marker"


def test_markers_tell_a_changed_value_from_an_unchanged_one() -> None:
    r = redactor()
    before = audit_event("update", "secrets", response=secret({"password": "same", "token": "t-1"}))
    after = audit_event("update", "secrets", response=secret({"password": "same", "token": "t-2"}, version=2))
    old, new = (orjson.loads(r.redact(orjson.dumps(e)))["responseObject"]["data"] for e in (before, after))
    assert old["password"] == new["password"]
    assert old["token"] != new["token"]


def test_events_without_credentials_come_back_as_the_same_bytes() -> None:
    r = redactor()
    events = EventGenerator(GeneratorSettings(seed=3)).events(1000)
    for event in events:
        sent = orjson.dumps(event)
        assert r.redact(sent) is sent
    # Named like a credential but not one a rule is about: a ConfigMap's "password", a Pod's secretKeyRef.
    config = {"kind": "ConfigMap", "apiVersion": "v1", "data": {"password": "visible", "token": "visible"}}
    for event in (
        audit_event("create", "configmaps", request=config, response=config),
        audit_event("get", "secrets", response=None) | {"level": "Metadata"},
        audit_event("create", "serviceaccounts", name="default", response={"kind": "ServiceAccount", "token": "x"}),
        audit_event("delete", "secrets", response={"kind": "Status", "apiVersion": "v1", "status": "Success"}),
    ):
        sent = orjson.dumps(event)
        assert r.redact(sent) is sent


def test_a_configured_path_is_redacted_for_its_resource_only() -> None:
    r = redactor("core/configmaps:data.password", "example.com/widgets/status:spec[auth.example.com/key]")
    config = {"kind": "ConfigMap", "apiVersion": "v1", "data": {"password": "cm-pw", "user": "bob"}}
    published = r.redact(orjson.dumps(audit_event("create", "configmaps", request=config, response=config)))
    assert b"cm-pw" not in published and b'"user":"bob"' in published
    listed = {"kind": "ConfigMapList", "apiVersion": "v1", "items": [config]}
    assert b"cm-pw" not in r.redact(orjson.dumps(audit_event("list", "configmaps", name=None, response=listed)))
    widget = {"spec": {"auth.example.com/key": "w-key", "size": 3}}
    status = audit_event("update", "widgets", group="example.com", subresource="status", request=widget)
    assert b"w-key" not in r.redact(orjson.dumps(status))
    main = audit_event("update", "widgets", group="example.com", request=widget)
    assert b"w-key" in r.redact(orjson.dumps(main)), "the rule names the status subresource only"
    elsewhere = audit_event("create", "configmaps", group="example.com", request=config)
    assert b"cm-pw" in r.redact(orjson.dumps(elsewhere)), "another group's configmaps are not the core ones"


def test_escaped_names_do_not_slip_past_the_byte_check() -> None:
    event = audit_event("create", "secrets", request=secret({"password": "escaped-pw"}))
    sent = orjson.dumps(event).replace(b'"secrets"', b'"secr\\u0065ts"').replace(b'"Secret"', b'"S\\u0065cret"')
    sent = sent.replace(b'"requestObject"', b'"requestObj\\u0065ct"')
    assert json.loads(sent)["objectRef"]["resource"] == "secrets"
    assert leaks(redactor().redact(sent), [b64("escaped-pw")]) == []


def test_bodies_kube_apiserver_could_not_decode_are_replaced_whole() -> None:
    yaml_patch = "stringData:\n  password: yaml-pw\n"
    event = audit_event("patch", "secrets", request=yaml_patch)
    published = orjson.loads(redactor().redact(orjson.dumps(event)))
    assert is_marker(published["requestObject"])
    odd = audit_event("create", "secrets", request={"data": "not-an-object-pw"})
    assert b"not-an-object-pw" not in redactor().redact(orjson.dumps(odd))
    pointer = audit_event("patch", "secrets", request=[{"op": "add", "path": "data/password", "value": "no-slash"}])
    assert b"no-slash" not in redactor().redact(orjson.dumps(pointer)), "a malformed pointer is still logged"


def test_nulls_and_markers_are_kept_so_redaction_is_idempotent() -> None:
    r = redactor()
    event = audit_event("patch", "secrets", request={"data": {"gone": None, "pw": b64("p")}})
    once = r.redact(orjson.dumps(event))
    assert orjson.loads(once)["requestObject"]["data"]["gone"] is None
    assert r.redact(once) is once
    assert len(markers_at(orjson.loads(once))) == 1


def test_turned_off_nothing_is_touched_and_a_warning_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        off = Redactor(RedactionSettings(enabled=False))
    assert "redaction is OFF" in caplog.text
    sent = orjson.dumps(CASES[0].event)
    assert off.redact(sent) is sent


def test_without_a_key_a_random_one_is_used_and_a_warning_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        a, b = Redactor(RedactionSettings()), Redactor(RedactionSettings())
    assert "no redaction key given" in caplog.text
    assert a.mark("v") != b.mark("v")


def test_bytes_that_may_hold_a_credential_but_are_not_json_are_refused() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        redactor().redact(b'{"objectRef":{"resource":"secrets"},"requestObject":{"data":{"p":"v"}}')


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("core/configmaps:data.password", ("", "configmaps", None, ("data", "password"))),
        ("core/configmaps:data.*", ("", "configmaps", None, ("data", "*"))),
        ("example.com/widgets:spec.apiKey", ("example.com", "widgets", None, ("spec", "apiKey"))),
        ("core/serviceaccounts/token:status.token", ("", "serviceaccounts", "token", ("status", "token"))),
        ("core/pods:metadata.annotations[a.io/b].x", ("", "pods", None, ("metadata", "annotations", "a.io/b", "x"))),
        ("configmaps:data.password", None),
        ("core/pods:", None),
        ("core/pods:a..b", None),
        ("core/pods:a.", None),
        ("core/Pods:a", None),
        ("core/pods data", None),
    ],
)  # fmt: skip
def test_redact_path_rules(spec: str, expected: tuple[str, str, str | None, tuple[str, ...]] | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match=r"RESOURCE|path"):
            parse_rule(spec)
        return
    rule = parse_rule(spec)
    assert (rule.group, rule.resource, rule.subresource, rule.paths[0]) == expected
    assert parse_path("a[b.c]") == ("a", "b.c")


def test_flags_make_the_settings(tmp_path: Any) -> None:
    parser = argparse.ArgumentParser(formatter_class=EnvDefaultsFormatter)
    add_arguments(parser, key_flags=True)
    key_file = tmp_path / "key"
    key_file.write_text("0123456789abcdef0123456789abcdef\n")
    args = parser.parse_args(["--redact-path", "core/configmaps:data.x", "--redaction-key-file", str(key_file)])
    settings = settings_from(args)
    assert settings.enabled and settings.key == b"0123456789abcdef0123456789abcdef"
    assert [r.label for r in settings.extra] == ["core/configmaps"]
    assert "0123" not in repr(settings), "the key stays out of logs"
    key_file.write_text("short")
    with pytest.raises(ValueError, match="at least 16"):
        settings_from(parser.parse_args(["--redaction-key-file", str(key_file)]))
    assert settings_from(parser.parse_args(["--no-redact"])).enabled is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--redact-path", "nonsense"])

    apply_env_defaults(parser, {"ACTIVITY_REDACTION_KEY": "from-the-environment-0123"})
    assert settings_from(parser.parse_args([])).key == b"from-the-environment-0123"
    assert "from-the-environment" not in parser.format_help(), "--help shows no key"


def test_a_secret_in_a_json_patch_of_another_resource_is_redacted() -> None:
    listed = {"kind": "List", "apiVersion": "v1", "items": [secret({"password": "in-a-patch"})]}
    patch = [{"op": "add", "path": "/spec/bundle", "value": listed}, {"op": "add", "path": "/x", "value": 1}]
    event = audit_event("patch", "bundles", group="example.com", request=patch)
    assert leaks(redactor().redact(orjson.dumps(event)), [b64("in-a-patch")]) == []


def test_bodies_without_an_objectref_get_every_built_in_rule() -> None:
    event = audit_event("patch", "secrets", request={"data": {"password": b64("no-ref")}})
    del event["objectRef"]
    assert leaks(redactor().redact(orjson.dumps(event)), [b64("no-ref")]) == []
    broken = dict(event, objectRef="secrets")  # bound for a dead letter: parsed, never on the fast path
    assert leaks(orjson.dumps(redactor().redact_item(broken)), [b64("no-ref")]) == []
    nested = [dict(CASES[0].event)]  # an item that is a list of events
    assert leaks(orjson.dumps(redactor().redact_item(orjson.loads(orjson.dumps(nested)))), CASES[0].credentials) == []


@pytest.mark.parametrize("command", ["webhook", "up"])
def test_help_documents_the_flags_and_a_bad_rule_is_refused_with_the_form(command: str) -> None:
    run = [sys.executable, "-m", "activity.cli", command]
    shown = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=120, check=True).stdout
    flat = " ".join(shown.split())
    for phrase in (
        "--no-redact",
        "--redact-path RULE",
        "redacted:hmac-sha256:<16 hex>",
        "core/configmaps:data.password",
    ):
        assert phrase in flat, phrase
    assert ("--redaction-key-file FILE" in flat) is (command == "webhook")
    refused = subprocess.run([*run, "--redact-path", "data.password"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "GROUP/RESOURCE[/SUBRESOURCE]:PATH" in refused.stderr
    assert "Traceback" not in refused.stderr
