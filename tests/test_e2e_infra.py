"""test-infra/ checked where no cluster runs: the kind config wires the audit policy and the webhook kubeconfig
into kube-apiserver, the policy records what it should (evaluated rule by rule, first match wins, as
kube-apiserver does), the webhook kubeconfig reaches the receiver the manifests deploy, the dependencies are
pinned and valid, and the e2e harness renders its config and names what is missing."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import manifests_support
import pytest
import yaml
from e2e_support import (
    APISERVICE,
    IMAGE,
    KIND_CONFIG,
    QUERIER_ROLE,
    REPO,
    TEST_INFRA,
    kind_config,
    missing_prerequisite,
)

from ingest.webhook.settings import WebhookSettings

POLICY = TEST_INFRA / "audit-policy.yaml"
WEBHOOK_KUBECONFIG = TEST_INFRA / "audit-webhook-kubeconfig.yaml"
DEPS = TEST_INFRA / "deps"
STAGES = {"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}
LEVELS = {"None", "Metadata", "Request", "RequestResponse"}
RULE_KEYS = {"level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs", "omitStages"}
RULE_KEYS |= {"omitManagedFields"}
WRITES = ("create", "update", "patch", "delete", "deletecollection")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def overlay() -> tuple[dict[str, Any], ...]:
    """config/overlays/test-infra as `kubectl kustomize` builds it: what deploy.sh applies."""
    return manifests_support.build("overlays/test-infra")


def one(kind: str, name: str) -> dict[str, Any]:
    return manifests_support.one(overlay(), kind, name)


# --- kind cluster config ---------------------------------------------------------------------------------------


def _cluster_configuration() -> dict[str, Any]:
    [node] = load(KIND_CONFIG)["nodes"]
    [patch] = [yaml.safe_load(p) for p in node["kubeadmConfigPatches"]]
    assert patch["kind"] == "ClusterConfiguration"
    assert "apiVersion" not in patch  # unversioned: kind fits it to the kubeadm API version it generates
    api_server: dict[str, Any] = patch["apiServer"]
    return api_server


def test_kind_config_is_one_control_plane_with_the_audit_files_mounted() -> None:
    config = load(KIND_CONFIG)
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    [node] = config["nodes"]
    assert node["role"] == "control-plane"
    mounts = {(REPO / m["hostPath"]).resolve(): m for m in node["extraMounts"]}
    assert set(mounts) == {POLICY, WEBHOOK_KUBECONFIG}
    assert all(m["readOnly"] for m in mounts.values())


def test_kube_apiserver_reads_the_mounted_policy_and_kubeconfig_in_batch_mode() -> None:
    [node] = load(KIND_CONFIG)["nodes"]
    on_node = {(REPO / m["hostPath"]).resolve(): m["containerPath"] for m in node["extraMounts"]}
    api_server = _cluster_configuration()
    args = api_server["extraArgs"]
    assert args["audit-policy-file"] == on_node[POLICY]
    assert args["audit-webhook-config-file"] == on_node[WEBHOOK_KUBECONFIG]
    assert args["audit-webhook-mode"] == "batch"
    assert args["audit-webhook-batch-max-size"] == "400"
    assert {"audit-webhook-batch-max-wait", "audit-webhook-batch-throttle-qps", "audit-webhook-initial-backoff"} <= set(
        args
    )
    assert all(isinstance(v, str) for v in args.values())  # kubeadm's extraArgs is a map of strings
    # the node's files are visible inside the kube-apiserver pod: a volume holds both paths
    [volume] = api_server["extraVolumes"]
    assert volume["readOnly"] is True
    for path in (args["audit-policy-file"], args["audit-webhook-config-file"]):
        assert Path(path).parent == Path(volume["hostPath"]) == Path(volume["mountPath"])


def test_the_harness_renders_the_kind_config_with_absolute_existing_paths(tmp_path: Path) -> None:
    rendered = load(kind_config(tmp_path))
    original = load(KIND_CONFIG)
    [node] = rendered["nodes"]
    assert all(Path(m["hostPath"]).is_absolute() and Path(m["hostPath"]).is_file() for m in node["extraMounts"])
    assert {Path(m["hostPath"]) for m in node["extraMounts"]} == {POLICY, WEBHOOK_KUBECONFIG}
    assert node["kubeadmConfigPatches"] == original["nodes"][0]["kubeadmConfigPatches"]


# --- audit policy --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    verb: str
    user: str = "alice@example.com"
    groups: tuple[str, ...] = ("system:authenticated",)
    group: str = ""
    resource: str = ""  # "pods" or "pods/status"; empty for a non-resource URL
    namespace: str = "default"
    path: str = ""  # a non-resource URL


@dataclass(frozen=True)
class Policy:
    rules: list[dict[str, Any]] = field(default_factory=list)

    def level(self, request: Request) -> str:
        """kube-apiserver's evaluation: the first rule that matches decides; none matching means None."""
        return next((str(r["level"]) for r in self.rules if _matches(r, request)), "None")


def _resource_matches(rule_resources: list[dict[str, Any]], request: Request) -> bool:
    for entry in rule_resources:
        if entry.get("group", "") != request.group:
            continue
        names = entry.get("resources") or ["*"]
        main = request.resource.split("/")[0]
        if any(
            n in ("*", request.resource) or n == f"{main}/*" or n == f"*/{request.resource[len(main) + 1 :]}"
            for n in names
        ):
            return True
    return False


def _matches(rule: dict[str, Any], request: Request) -> bool:
    if rule.get("users") and request.user not in rule["users"]:
        return False
    if rule.get("userGroups") and not set(rule["userGroups"]) & set(request.groups):
        return False
    if rule.get("verbs") and request.verb not in rule["verbs"]:
        return False
    if rule.get("namespaces") and request.namespace not in rule["namespaces"]:
        return False
    if rule.get("resources") or rule.get("nonResourceURLs"):
        if request.resource:
            return bool(rule.get("resources")) and _resource_matches(rule["resources"], request)
        return any(fnmatch.fnmatchcase(request.path, u) for u in rule.get("nonResourceURLs") or [])
    return True


def test_the_policy_has_the_shape_kube_apiserver_accepts() -> None:
    policy = load(POLICY)
    assert (policy["apiVersion"], policy["kind"]) == ("audit.k8s.io/v1", "Policy")
    assert set(policy) <= {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}
    assert policy["omitStages"] == ["RequestReceived"]
    for rule in policy["rules"]:
        assert set(rule) <= RULE_KEYS, rule
        assert rule["level"] in LEVELS
        assert not (rule.get("resources") and rule.get("nonResourceURLs")), "a rule is for resources or URLs"
        assert set(rule.get("omitStages", [])) <= STAGES
        for entry in rule.get("resources", []):
            assert set(entry) <= {"group", "resources", "resourceNames"}, entry
        for url in rule.get("nonResourceURLs", []):
            assert url.startswith("/") and "*" not in url[:-1], url  # only a trailing wildcard is allowed
    assert policy["rules"][-1] == {"level": "Metadata"}  # a catch-all last: nothing unmatched goes unrecorded


@pytest.mark.parametrize(
    ("request_", "level"),
    [
        # the activity API never audits itself back into the store
        (Request("create", group="activity.miloapis.com", resource="auditlogqueries", namespace=""), "None"),
        (Request("get", path="/apis/activity.miloapis.com/v1alpha1"), "None"),
        # writes keep their bodies: history --diff needs them
        (Request("create", group="apps", resource="deployments"), "RequestResponse"),
        (Request("patch", group="apps", resource="deployments"), "RequestResponse"),
        (Request("delete", resource="namespaces", namespace=""), "RequestResponse"),
        (Request("deletecollection", resource="pods"), "RequestResponse"),
        (Request("update", group="apps", resource="deployments/scale"), "RequestResponse"),
        # controllers' writes too: they change objects
        (
            Request(
                "update",
                "system:serviceaccount:kube-system:deployment-controller",
                ("system:serviceaccounts", "system:serviceaccounts:kube-system"),
                group="apps",
                resource="deployments/status",
            ),
            "RequestResponse",
        ),
        # never a secret payload or an issued token
        (Request("create", resource="secrets"), "Metadata"),
        (Request("update", resource="configmaps"), "Metadata"),
        (Request("get", resource="secrets"), "Metadata"),
        (Request("create", resource="serviceaccounts/token"), "Metadata"),
        (Request("create", group="authentication.k8s.io", resource="tokenreviews", namespace=""), "None"),
        # a person's reads: who looked at what
        (Request("get", resource="pods"), "Metadata"),
        (Request("list", group="apps", resource="deployments"), "Metadata"),
        (Request("get", resource="pods/log"), "Metadata"),
        # noise: node and control-plane reads, heartbeats, events, health probes
        (Request("watch", "system:node:kind-control-plane", ("system:nodes",), resource="pods"), "None"),
        (Request("get", "system:kube-controller-manager", group="apps", resource="deployments"), "None"),
        (
            Request("update", "system:node:n1", ("system:nodes",), group="coordination.k8s.io", resource="leases"),
            "None",
        ),
        (Request("patch", "system:node:n1", ("system:nodes",), resource="nodes/status", namespace=""), "None"),
        (Request("create", resource="events"), "None"),
        (Request("watch", "bob@example.com", group="discovery.k8s.io", resource="endpointslices"), "None"),
        (Request("get", path="/readyz"), "None"),
        (Request("get", path="/livez/etcd"), "None"),
        (Request("get", path="/logs/kube-apiserver.log"), "Metadata"),
    ],
)
def test_the_policy_records_each_request_at_the_level_intended(request_: Request, level: str) -> None:
    assert Policy(load(POLICY)["rules"]).level(request_) == level


# --- webhook kubeconfig --------------------------------------------------------------------------------------------


def webhook_port_default() -> int:
    """`activity webhook`'s default --listen port, from its argument parser."""
    host_port: tuple[str, int] = manifests_support.subcommand_parser("webhook").parse_args([]).listen
    return host_port[1]


def test_the_webhook_kubeconfig_points_at_the_receiver_on_the_node() -> None:
    config = load(WEBHOOK_KUBECONFIG)
    assert config["kind"] == "Config"
    [context] = config["contexts"]
    assert config["current-context"] == context["name"]
    clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
    url = urlsplit(clusters[context["context"]["cluster"]]["server"])
    assert {u["name"] for u in config["users"]} == {context["context"]["user"]}
    assert (url.scheme, url.hostname, url.path) == ("http", "127.0.0.1", "/events")  # kube-apiserver's host network
    assert url.port == WebhookSettings().port == webhook_port_default()

    # ... which is where the kind overlay runs the receiver: in the host network of the control-plane node
    daemonset = one("DaemonSet", "activity-webhook")
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"  # it still resolves nats.nats.svc
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert any(t["key"] == "node-role.kubernetes.io/control-plane" for t in pod["tolerations"])
    [container] = pod["containers"]
    assert container["args"][0] == "webhook"
    listen = next(a.split("=", 1)[1] for a in container["args"] if a.startswith("--listen="))
    assert int(listen.rsplit(":", 1)[1]) == url.port
    assert [(p["containerPort"], p["hostPort"]) for p in container["ports"]] == [(url.port, url.port)]


# --- dependencies --------------------------------------------------------------------------------------------------


def _kustomizations() -> dict[str, dict[str, Any]]:
    return {p.parent.name: load(p) for p in sorted(DEPS.glob("*/kustomization.yaml"))}


def test_every_dependency_is_installed_and_pinned() -> None:
    deps = _kustomizations()
    assert set(deps) == {"cert-manager", "nats", "nack", "clickhouse-operator"}
    install = (DEPS / "install.sh").read_text()
    for name, kustomization in deps.items():
        assert f"apply {name}\n" in install
        for resource in kustomization["resources"]:
            if "://" in resource:
                assert resource.startswith("https://"), resource
                assert re.search(r"/(v|release-)\d+\.\d+\.\d+/", resource), f"{resource} is not pinned to a release"
            else:
                assert (DEPS / name / resource).is_file(), resource


def _local_documents() -> list[dict[str, Any]]:
    docs = []
    for name, kustomization in _kustomizations().items():
        for resource in kustomization["resources"]:
            if "://" not in resource:
                for doc in yaml.safe_load_all((DEPS / name / resource).read_text()):
                    docs.append(doc | {"metadata": doc["metadata"] | {"namespace": kustomization.get("namespace")}})
    return docs


def test_the_local_dependency_manifests_validate_strictly(tmp_path: Path) -> None:
    path = tmp_path / "deps.yaml"
    path.write_text(yaml.safe_dump_all(_local_documents()))
    done = subprocess.run(
        ["kubernetes-validate", "--strict", "--quiet", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    built = subprocess.run(["kubectl", "kustomize", str(DEPS / "nats")], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr  # the configMapGenerator reads nats.conf


def test_the_manifests_reach_the_nats_server_the_deps_install() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _local_documents()}
    service = docs[("Service", "nats")]
    client_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "client")
    address = f"nats.{service['metadata']['namespace']}.svc"
    url = urlsplit(one("ConfigMap", "activity-ingest")["data"]["nats-url"])
    assert (url.hostname, url.port) == (address, client_port)
    for stream in (d for d in overlay() if d["apiVersion"].startswith("jetstream.nats.io/")):
        assert {urlsplit(s).hostname for s in stream["spec"]["servers"]} == {address}, stream["metadata"]["name"]
    controller = docs[("Deployment", "jetstream-controller")]["spec"]["template"]["spec"]["containers"][0]
    [server] = [a.split("=", 1)[1] for a in controller["args"] if a.startswith("-s=")]
    assert str(urlsplit(server).hostname).startswith(address)
    assert "jetstream {" in (DEPS / "nats" / "nats.conf").read_text()


# --- the e2e harness -----------------------------------------------------------------------------------------------


def test_the_harness_loads_the_image_the_overlay_runs() -> None:
    images = {
        c["image"]
        for d in overlay()
        if d["kind"] in ("Deployment", "DaemonSet", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
        if manifests_support.is_activity_image(c["image"])
    }
    assert images == {IMAGE}


def test_the_harness_binds_a_role_that_grants_queries() -> None:
    role = one("ClusterRole", QUERIER_ROLE)
    assert {"apiGroups": ["activity.miloapis.com"], "resources": ["auditlogqueries"], "verbs": ["create"]} in role[
        "rules"
    ]


def test_without_kind_the_harness_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: neither kind nor docker
    assert "kind is not installed" in (missing_prerequisite() or "")


def test_deploy_waits_for_what_the_overlay_deploys() -> None:
    script = (TEST_INFRA / "deploy.sh").read_text()
    rollouts = re.findall(r"kubectl -n (\S+) rollout status .*daemonset/(\S+)", script)
    assert rollouts
    for namespace, name in rollouts:
        assert one("DaemonSet", name)["metadata"]["namespace"] == namespace
    [apiservice] = re.findall(r"apiservice/(\S+)", script)
    assert apiservice == APISERVICE
    assert one("APIService", apiservice)["spec"]["group"] == "activity.miloapis.com"


def test_the_deploy_scripts_are_executable() -> None:
    for script in (DEPS / "install.sh", TEST_INFRA / "deploy.sh"):
        assert os.access(script, os.X_OK), script
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in script.read_text()
