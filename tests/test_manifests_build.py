"""Every overlay, and every component on the base, builds with `kubectl kustomize`, and every document it makes is
valid: built-in kinds by kubernetes-validate --strict, custom resources by the JSON Schema of their CRD."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from manifests_support import (
    COMPONENTS,
    CONFIG,
    CRDS,
    KUBERNETES_VERSION,
    OVERLAYS,
    TARGETS,
    build,
    core_error,
    crd_schemas,
    structural_to_json_schema,
)


@functools.cache
def _schemas() -> dict[tuple[str, str], dict[str, Any]]:
    return crd_schemas()


def test_the_config_tree_has_the_promised_parts() -> None:
    assert {"test-infra", "production"} <= set(OVERLAYS)
    promised = {
        "namespace",
        "api-registration",
        "cert-manager-ca",
        "nats-stream",
        "tracing",
        "grafana-clickhouse",
        "clickhouse",
        "clickhouse-migrations",
        "ingest",
        "observability",
    }
    assert promised <= set(COMPONENTS)
    for component in COMPONENTS:
        folder = CONFIG / "components" / component
        assert "kind: Component" in (folder / "kustomization.yaml").read_text(), f"{component} is not a Component"
        assert (folder / "README.md").is_file(), f"{component} has no README.md"


def _referenced(kustomization: dict[str, Any]) -> set[str]:
    """Files a kustomization names: resources, patches, generator files (`key=file` or `file`)."""
    names = set(kustomization.get("resources", [])) | set(kustomization.get("components", []))
    names |= {p["path"] for p in kustomization.get("patches", []) if "path" in p}
    for generator in kustomization.get("configMapGenerator", []) + kustomization.get("secretGenerator", []):
        names |= {f.split("=", 1)[-1] for f in generator.get("files", [])}
    return names


def test_every_yaml_file_is_part_of_its_kustomization() -> None:
    """A manifest file nobody lists is never applied: e.g. a new dashboard not added to its kustomization."""
    for kustomization in CONFIG.rglob("kustomization.yaml"):
        folder = kustomization.parent
        listed = _referenced(yaml.safe_load(kustomization.read_text()))
        for path in folder.glob("*.yaml"):
            if path.name != "kustomization.yaml":
                assert path.name in listed, f"{path.relative_to(CONFIG)} is not listed in its kustomization.yaml"


@pytest.mark.parametrize("target", TARGETS)
def test_builds_and_every_builtin_kind_validates_strictly(target: str) -> None:
    docs = build(target)
    assert docs, f"{target} builds to nothing"
    errors = []
    for doc in docs:
        try:
            error = core_error(doc)
        except kubernetes_validate.SchemaNotFoundError:
            continue  # a custom resource: the CRD test checks it
        if error:
            errors.append(error)
    assert not errors, f"{target} (Kubernetes {KUBERNETES_VERSION}, strict):\n" + "\n".join(errors)


def _custom_resources(target: str) -> list[dict[str, Any]]:
    customs = []
    for doc in build(target):
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            customs.append(doc)
        except kubernetes_validate.ValidationError:
            pass  # reported by the built-in test
    return customs


@pytest.mark.parametrize("target", TARGETS)
def test_custom_resources_validate_against_their_crds(target: str) -> None:
    if not CRDS.is_dir():
        pytest.skip(f"no CRD folder beside the repository ({CRDS}): custom resources are not validated")
    schemas = _schemas()
    errors, missing = [], set()
    for doc in _custom_resources(target):
        key = (doc["apiVersion"], doc["kind"])
        if key not in schemas:
            missing.add(f"{key[1]} ({key[0]})")
            continue
        validator = jsonschema.Draft7Validator(schemas[key])
        for err in validator.iter_errors(doc):
            path = ".".join(str(p) for p in err.absolute_path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {err.message}")
    assert not errors, f"{target}:\n" + "\n".join(errors)
    # A kind without its CRD would go unchecked: add the CRD to the shared folder (and its source to SOURCES.md).
    assert not missing, f"{target}: no CRD in {CRDS} for {', '.join(sorted(missing))}"


def test_the_shared_crds_include_prometheus_operators() -> None:
    if not CRDS.is_dir():
        pytest.skip(f"no CRD folder beside the repository ({CRDS}): custom resources are not validated")
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        assert ("monitoring.coreos.com/v1", kind) in _schemas()


def _prerequisites(overlay: str) -> str:
    text = (CONFIG / "overlays" / overlay / "README.md").read_text()
    assert "\n## Prerequisites\n" in text, f"overlays/{overlay}/README.md has no '## Prerequisites' section"
    return text.split("\n## Prerequisites\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlays_readme_lists_the_operator_and_version_of_every_custom_resource(overlay: str) -> None:
    section = _prerequisites(overlay)
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")][1:]
    assert rows, f"overlays/{overlay}: the prerequisites table is empty"
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 3 and all(cells), f"overlays/{overlay}: a row needs what, provides and version: {row}"
        assert any(ch.isdigit() for ch in cells[2]), f"overlays/{overlay}: no version in {row}"
    needed = {(doc["apiVersion"], doc["kind"]) for doc in _custom_resources(f"overlays/{overlay}")}
    unlisted = [
        f"{kind} ({api})"
        for api, kind in sorted(needed)
        if not any(f"`{kind}`" in row and f"`{api}`" in row for row in rows)
    ]
    assert not unlisted, f"overlays/{overlay}/README.md does not list what provides {', '.join(unlisted)}"


def test_the_crd_translation_rejects_what_the_api_server_would_drop_or_refuse() -> None:
    schema = structural_to_json_schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "port": {"x-kubernetes-int-or-string": True},
                        "note": {"type": "string", "nullable": True},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                    },
                }
            },
        }
    )
    validator = jsonschema.Draft7Validator(schema)
    good = {"spec": {"port": "https", "note": None, "free": {"anything": 1}, "mode": "a"}}
    assert not list(validator.iter_errors(good))
    assert not list(validator.iter_errors({"spec": {"port": 443}}))
    for bad in ({"spec": {"prot": 443}}, {"spec": {"mode": "c"}}, {"spec": {"port": 1.5}}, {"spec": {"note": 3}}):
        assert list(validator.iter_errors(bad)), bad
