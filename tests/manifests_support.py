"""The kustomize builds the manifest tests check: every overlay, and every component applied to the base alone.

Builds run the real `kubectl kustomize` once per target and are cached for the session. Custom resources are
checked against the CRDs kept beside the repository in `../shared/crds` (never copied into it), turned from
Kubernetes structural schemas into plain JSON Schema.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from activity.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config"
# Beside the clone (as CI lays it out); ACTIVITY_CRDS_DIR points elsewhere, e.g. from a git worktree.
CRDS = Path(os.environ.get("ACTIVITY_CRDS_DIR") or REPO.parent / "shared" / "crds")
KUBERNETES_VERSION = "1.32"  # the kubectl on this project's machines; every built-in kind used here is GA there
IMAGE = "activity"  # the base's image name; overlays only change its tag or registry

Doc = dict[str, Any]


def _kustomizations(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if (p / "kustomization.yaml").is_file())


OVERLAYS = _kustomizations(CONFIG / "overlays")
COMPONENTS = _kustomizations(CONFIG / "components")
# What a test runs against: "overlays/<name>", "components/<name>" (that component on the base), or "base".
TARGETS = ["base", *(f"overlays/{o}" for o in OVERLAYS), *(f"components/{c}" for c in COMPONENTS)]


def _kustomize(folder: Path) -> list[Doc]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {folder} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def build(target: str) -> tuple[Doc, ...]:
    """The documents `kubectl kustomize` makes of a target (see TARGETS)."""
    if not target.startswith("components/"):
        return tuple(_kustomize(CONFIG / target))
    # A component cannot be built alone: a throw-away kustomization applies it to the base. kustomize refuses
    # absolute paths, so it names both relative to its own folder.
    with tempfile.TemporaryDirectory(prefix="activity-kustomize-") as tmp:
        rel = os.path.relpath(CONFIG, tmp)
        Path(tmp, "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": [f"{rel}/base"],
                    "components": [f"{rel}/{target}"],
                }
            )
        )
        return tuple(_kustomize(Path(tmp)))


@dataclass(frozen=True)
class Container:
    """A container of the `activity` image with the subcommand it runs and its flags parsed by that program."""

    workload: Doc
    spec: Doc
    command: str
    args: Any  # argparse.Namespace of the real parser

    @property
    def name(self) -> str:
        return f"{self.workload['kind']}/{self.workload['metadata']['name']}:{self.spec['name']}"

    def port(self, name_or_number: str | int) -> int:
        if isinstance(name_or_number, int):
            return name_or_number
        numbers = {p["name"]: p["containerPort"] for p in self.spec.get("ports", []) if "name" in p}
        assert name_or_number in numbers, f"{self.name}: no container port named {name_or_number!r}"
        return int(numbers[name_or_number])

    def probes(self) -> Iterator[tuple[str, Doc]]:
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if kind in self.spec:
                yield kind, self.spec[kind]


def find(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(workload: Doc) -> Doc | None:
    spec = workload.get("spec", {})
    if workload["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Job", "ReplicaSet"):
        return spec["template"]["spec"]  # type: ignore[no-any-return]
    if workload["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def workloads(docs: tuple[Doc, ...]) -> list[tuple[Doc, Doc]]:
    return [(d, spec) for d in docs if (spec := pod_spec(d)) is not None]


def is_activity_image(image: str) -> bool:
    return image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0] == IMAGE


def resolve_env(docs: tuple[Doc, ...], namespace: str | None, entry: Doc) -> str | None:
    """An env entry's value: literal, or read from a ConfigMap/Secret of the same build (None if not there)."""
    if "value" in entry:
        return str(entry["value"])
    source = entry.get("valueFrom", {})
    for kind, ref_key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
        if ref_key in source:
            ref = source[ref_key]
            for doc in find(docs, kind, ref["name"]):
                if doc["metadata"].get("namespace") != namespace:
                    continue
                return object_data(doc).get(ref["key"])
    return None


def object_data(doc: Doc) -> dict[str, str]:
    """A ConfigMap's or Secret's data as text (Secret `data` is base64)."""
    data = {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()} if doc["kind"] == "Secret" else {}
    if doc["kind"] == "ConfigMap":
        data.update(doc.get("data", {}))
    data.update(doc.get("stringData", {}))
    return data


def subcommand_parser(command: str) -> Any:
    """The real argument parser of `activity COMMAND`."""
    root = build_parser(command)
    for action in root._actions:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict) and command in choices:
            return choices[command]
    raise AssertionError(f"activity has no subcommand {command!r}")


def parse_container(
    monkeypatch: pytest.MonkeyPatch, docs: tuple[Doc, ...], workload: Doc, spec: Doc, deploy_time: Mapping[str, str]
) -> Container:
    """Parse the container's args with the program's own parser, its ACTIVITY_* env applied as the program would.
    Values of Secrets the build does not ship come from `deploy_time` (what an operator creates)."""
    args = [str(a) for a in spec.get("command", [])[1:]] + [str(a) for a in spec.get("args", [])]
    assert args, f"{spec['name']}: no subcommand in args"
    command = args[0]
    namespace = workload["metadata"].get("namespace")
    for key in [k for k in os.environ if k.startswith("ACTIVITY_")]:
        monkeypatch.delenv(key)
    for entry in spec.get("env", []):
        if entry["name"].startswith("ACTIVITY_"):
            value = resolve_env(docs, namespace, entry)
            value = value if value is not None else deploy_time.get(entry["name"])
            assert value is not None, f"{spec['name']}: {entry['name']} comes from nothing in this build"
            monkeypatch.setenv(entry["name"], value)
    parser = subcommand_parser(command)
    try:
        parsed = parser.parse_args(args[1:])
    except SystemExit as exit_:
        raise AssertionError(f"`activity {shlex.join(args)}` is refused by its parser (exit {exit_.code})") from None
    return Container(workload, spec, command, parsed)


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Seconds of a Go time.Duration string (`2m`, `168h`, `1h30m`), as NACK parses them."""
    parts = _GO_DURATION.findall(text)
    assert parts and "".join(n + u for n, u in parts) == text, f"{text!r} is not a Go duration"
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


# Secrets the production overlay leaves to the operator (its README says how to create them).
DEPLOY_TIME = {
    "ACTIVITY_STORE": "http://activity:secret@clickhouse-activity:8123/audit",
    "ACTIVITY_REDACTION_KEY": "0123456789abcdef0123456789abcdef",  # Secret activity-redaction-key (optional)
}


def containers(monkeypatch: pytest.MonkeyPatch, target: str) -> list[Container]:
    docs = build(target)
    found = []
    for workload, spec in workloads(docs):
        for container in spec.get("initContainers", []) + spec["containers"]:
            if is_activity_image(container["image"]):
                found.append(parse_container(monkeypatch, docs, workload, container, DEPLOY_TIME))
    return found


# --- custom resources against their CRDs ---------------------------------------------------------------------


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON Schema of every served version of every CRD in ../shared/crds."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = structural_to_json_schema(version["schema"]["openAPIV3Schema"])
                    # The API server handles these itself, whether or not the CRD's schema names them.
                    schema.setdefault("properties", {}).update(
                        apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"}
                    )
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def structural_to_json_schema(node: Any) -> Any:
    """A Kubernetes structural schema as JSON Schema, as strict as the API server is useful:

    - an object with `properties` and no `additionalProperties` rejects unknown fields (the API server would
      prune them silently: a misspelt field is a setting that never takes effect), unless
      `x-kubernetes-preserve-unknown-fields` keeps them;
    - `x-kubernetes-int-or-string` accepts an integer or a string; `nullable` accepts null;
    - other `x-kubernetes-*` keys carry no validation and are dropped.
    """
    if isinstance(node, list):
        return [structural_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: structural_to_json_schema(v) for k, v in value.items()}
        else:
            out[key] = structural_to_json_schema(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def core_error(doc: Doc) -> str | None:
    """kubernetes-validate --strict of a built-in kind (APIService included): the error, or None if valid.
    Raises kubernetes_validate.SchemaNotFoundError for a kind it does not know (a custom resource)."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        return f"{doc['kind']}/{doc['metadata'].get('name')}: {path}: {err.message}"
    return None


def kinds(target: str) -> list[tuple[str, str]]:
    return sorted({(d["apiVersion"], d["kind"]) for d in build(target)})
