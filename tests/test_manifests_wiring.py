"""The objects fit each other and the code: JetStream objects are the ones the programs would declare, the
APIService reaches the Service with a certificate for its DNS names, secrets and hosts name the same things,
pods are locked down, and production is highly available."""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from manifests_support import (
    DEPLOY_TIME,
    OVERLAYS,
    TARGETS,
    Container,
    Doc,
    build,
    containers,
    find,
    go_duration,
    is_activity_image,
    object_data,
    one,
    subcommand_parser,
    workloads,
)

from apiserver.apis.activity.v1alpha1 import register
from apiserver.machinery.tracing import load_tracing_configuration
from apiserver.registry.auditlogquery.cursor import load_cursor_key
from auditlog.config import parse_store_dsn
from ingest.consumer import command as consume_command
from ingest.consumer.consumer import consumer_config
from ingest.jetstream import DEAD_LETTER_SETTINGS, StreamSettings, events_subject

OVERLAY_TARGETS = [f"overlays/{o}" for o in OVERLAYS]


def _with(kind: str) -> list[str]:
    return [t for t in TARGETS if find(build(t), kind)]


def _program(monkeypatch: pytest.MonkeyPatch, target: str, command: str) -> Container:
    (found,) = [c for c in containers(monkeypatch, target) if c.command == command]
    return found


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or token not in ("*", have[i]):
            return False
    return len(want) == len(have)


def test_subject_matching_follows_nats() -> None:
    assert subject_matches("audit.k8s.>", "audit.k8s.kind")
    assert not subject_matches("audit.k8s.>", "audit.k8s")
    assert subject_matches("audit.*.x", "audit.k8s.x")
    assert not subject_matches("audit.deadletter.>", "audit.k8s.kind")


# --- JetStream ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", _with("Stream"))
def test_streams_are_the_ones_the_programs_would_create(target: str) -> None:
    streams = {s["spec"]["name"]: s["spec"] for s in find(build(target), "Stream")}
    assert set(streams) == {StreamSettings().name, DEAD_LETTER_SETTINGS.name}
    for settings in (StreamSettings(), DEAD_LETTER_SETTINGS):
        spec, config = streams[settings.name], settings.config()
        assert spec["subjects"] == config.subjects
        assert (spec["storage"], spec["retention"], spec["discard"]) == (
            config.storage.value,  # type: ignore[union-attr]
            config.retention.value,  # type: ignore[union-attr]
            config.discard.value,  # type: ignore[union-attr]
        )
        assert go_duration(spec["duplicateWindow"]) == config.duplicate_window
        assert go_duration(spec["maxAge"]) == config.max_age
        assert spec["maxBytes"] == config.max_bytes
        assert spec["replicas"] == (3 if target == "overlays/production" else config.num_replicas)


@pytest.mark.parametrize("target", _with("Consumer"))
def test_the_durable_is_the_one_the_consumer_declares(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    docs = build(target)
    programs = [c for c in containers(monkeypatch, target) if c.command == "consume"]
    if programs:
        args = programs[0].args
    else:  # the component alone: the consumer's defaults
        monkeypatch.setenv("ACTIVITY_STORE", DEPLOY_TIME["ACTIVITY_STORE"])
        args = subcommand_parser("consume").parse_args([])
    settings = consume_command.settings_from(args)
    wanted = consumer_config(settings)
    spec = one(docs, "Consumer")["spec"]
    assert (spec["streamName"], spec["durableName"], spec["filterSubject"]) == (
        settings.stream,
        wanted.durable_name,
        wanted.filter_subject,
    )
    assert (spec["ackPolicy"], spec["deliverPolicy"]) == (wanted.ack_policy.value, wanted.deliver_policy.value)  # type: ignore[union-attr]
    assert go_duration(spec["ackWait"]) == wanted.ack_wait
    assert spec["maxAckPending"] == wanted.max_ack_pending


@pytest.mark.parametrize("target", OVERLAY_TARGETS)
def test_the_webhook_publishes_where_the_stream_and_the_durable_listen(
    monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    docs = build(target)
    webhook = _program(monkeypatch, target, "webhook")
    consumer = _program(monkeypatch, target, "consume")
    subject = events_subject(webhook.args.cluster)
    streams = [
        s["spec"] for s in find(docs, "Stream") if any(subject_matches(p, subject) for p in s["spec"]["subjects"])
    ]
    assert [s["name"] for s in streams] == [consumer.args.stream] == [webhook.args.stream]
    assert subject_matches(consumer.args.filter_subject, subject)
    # NACK owns the streams: the receiver must not reconfigure them, and every side talks to the same NATS.
    assert webhook.args.no_manage_streams
    for owned in find(docs, "Stream") + find(docs, "Consumer"):
        assert owned["spec"]["servers"] == [webhook.args.nats_url] == [consumer.args.nats_url]


# --- API registration, serving certificate, RBAC ---------------------------------------------------------------


def _mount_of(c: Container, path: str) -> tuple[Doc, Doc]:
    """The volume mount and volume a file path of the container lives in."""
    pod = c.workload["spec"]["template"]["spec"]
    mounts = [m for m in c.spec.get("volumeMounts", []) if path.startswith(m["mountPath"].rstrip("/") + "/")]
    assert mounts, f"{c.name}: nothing is mounted at {path}"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mounts[0]["name"]]
    return mounts[0], volume


@pytest.mark.parametrize("target", OVERLAY_TARGETS)
def test_the_apiservice_reaches_the_apiserver_over_verified_tls(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    docs = build(target)
    apiserver = _program(monkeypatch, target, "apiserver")
    namespace = apiserver.workload["metadata"]["namespace"]
    api = one(docs, "APIService")
    gv = register.GROUP_VERSION
    assert api["metadata"]["name"] == f"{gv.version}.{gv.group}"
    assert (api["spec"]["group"], api["spec"]["version"]) == (gv.group, gv.version)
    assert not api["spec"].get("insecureSkipTLSVerify") and "caBundle" not in api["spec"]
    service = one(docs, "Service", api["spec"]["service"]["name"])
    assert service["metadata"]["namespace"] == api["spec"]["service"]["namespace"] == namespace
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == api["spec"]["service"].get("port", 443)]
    assert apiserver.port(port["targetPort"]) == apiserver.args.secure_port
    assert service["spec"]["selector"].items() <= apiserver.workload["spec"]["template"]["metadata"]["labels"].items()
    # The serving certificate: the Secret mounted for --tls-cert-file, issued for the Service's DNS names.
    mount, volume = _mount_of(apiserver, str(apiserver.args.tls_cert_file))
    assert posixpath.dirname(str(apiserver.args.tls_private_key_file)) == mount["mountPath"]
    files = (apiserver.args.tls_cert_file, apiserver.args.tls_private_key_file)
    assert {posixpath.basename(str(f)) for f in files} == {"tls.crt", "tls.key"}
    (certificate,) = [c for c in find(docs, "Certificate") if c["spec"]["secretName"] == volume["secret"]["secretName"]]
    assert certificate["metadata"]["namespace"] == namespace
    assert f"{service['metadata']['name']}.{namespace}.svc" in certificate["spec"]["dnsNames"]
    annotation = api["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{namespace}/{certificate['metadata']['name']}"
    # Its issuer is a CA whose certificate a self-signed issuer made.
    issuer = one(docs, "Issuer", certificate["spec"]["issuerRef"]["name"])
    (ca,) = [c for c in find(docs, "Certificate") if c["spec"]["secretName"] == issuer["spec"]["ca"]["secretName"]]
    assert ca["spec"]["isCA"] is True
    assert "selfSigned" in one(docs, "Issuer", ca["spec"]["issuerRef"]["name"])["spec"]


@pytest.mark.parametrize("target", OVERLAY_TARGETS)
def test_everything_is_in_one_namespace_but_the_authentication_reader_binding(target: str) -> None:
    docs = build(target)
    (namespace,) = find(docs, "Namespace")
    name = namespace["metadata"]["name"]
    for doc in docs:
        where = doc["metadata"].get("namespace")
        if doc["kind"] == "RoleBinding" and doc["roleRef"]["name"] == "extension-apiserver-authentication-reader":
            assert where == "kube-system"
        elif where is not None:
            assert where == name, f"{doc['kind']}/{doc['metadata']['name']} is in {where}"


@pytest.mark.parametrize("target", ["base", *OVERLAY_TARGETS])
def test_the_apiserver_may_delegate_and_users_may_query(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    docs = build(target)
    apiserver = _program(monkeypatch, target, "apiserver")
    account = (
        apiserver.workload["spec"]["template"]["spec"]["serviceAccountName"],
        apiserver.workload["metadata"].get("namespace"),
    )
    one(docs, "ServiceAccount", account[0])
    granted = {}
    for binding in find(docs, "RoleBinding") + find(docs, "ClusterRoleBinding"):
        subjects = {(s["name"], s.get("namespace")) for s in binding["subjects"] if s["kind"] == "ServiceAccount"}
        if account in subjects:
            granted[binding["roleRef"]["name"]] = (binding["kind"], binding["metadata"].get("namespace"))
    assert granted == {
        "system:auth-delegator": ("ClusterRoleBinding", None),
        "extension-apiserver-authentication-reader": ("RoleBinding", "kube-system"),
    }
    gv, resource = register.GROUP_VERSION, register.RESOURCE
    querier = [
        r
        for r in find(docs, "ClusterRole")
        if {"apiGroups": [gv.group], "resources": [resource.name], "verbs": list(resource.verbs)} in r["rules"]
    ]
    assert querier, f"no ClusterRole grants {resource.verbs} {resource.name}"
    labels = querier[0]["metadata"]["labels"]
    for role in ("view", "edit", "admin"):
        assert labels.get(f"rbac.authorization.k8s.io/aggregate-to-{role}") == "true"


# --- secrets, ClickHouse, Grafana ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", _with("ClickHouseInstallation"))
def test_the_store_secret_clickhouse_and_grafana_name_the_same_user_and_host(
    monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    docs = build(target)
    chi = one(docs, "ClickHouseInstallation")
    users = chi["spec"]["configuration"]["users"]
    (secret_ref,) = [(k.split("/")[0], v) for k, v in users.items() if k.endswith("/k8s_secret_password")]
    user, (secret_name, password_key) = secret_ref[0], secret_ref[1].split("/")
    secrets = find(docs, "Secret", secret_name)
    if secrets:
        data = object_data(secrets[0])
        dsn = urlsplit(data["dsn"])
        assert (dsn.username, dsn.password, data["username"]) == (user, data[password_key], user)
        assert (dsn.hostname, dsn.port) == (f"clickhouse-{chi['metadata']['name']}", 8123)
        parse_store_dsn(data["dsn"])
    else:
        assert target == "overlays/production", "only production leaves the store Secret to the operator"
    for c in containers(monkeypatch, target):
        for entry in c.spec.get("env", []):
            if entry["name"] == "ACTIVITY_STORE":
                assert entry["valueFrom"]["secretKeyRef"]["name"] == secret_name
    for source in find(docs, "GrafanaDatasource"):
        spec = source["spec"]
        (value,) = spec["valuesFrom"]
        assert value["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": password_key}
        assert spec["datasource"]["secureJsonData"][value["targetPath"].split(".")[-1]] == f"${{{password_key}}}"
        json_data = spec["datasource"]["jsonData"]
        namespace = chi["metadata"].get("namespace", "activity-system")
        assert json_data["host"] == f"clickhouse-{chi['metadata']['name']}.{namespace}.svc"
        assert (json_data["username"], json_data["port"]) == (user, 8123)


@pytest.mark.parametrize("target", OVERLAY_TARGETS)
def test_the_schema_job_matches_the_clickhouse_layout(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    docs = build(target)
    migrate = _program(monkeypatch, target, "migrate")
    chi = one(docs, "ClickHouseInstallation")
    (cluster,) = chi["spec"]["configuration"]["clusters"]
    replicated = cluster["layout"].get("replicasCount", 1) > 1
    if replicated:
        # ReplicatedReplacingMergeTree ON CLUSTER needs the cluster's name and a Keeper the servers can reach.
        assert migrate.args.cluster == cluster["name"]
        keeper = one(docs, "ClickHouseKeeperInstallation")
        hosts = [n["host"] for n in chi["spec"]["configuration"]["zookeeper"]["nodes"]]
        assert hosts == [f"keeper-{keeper['metadata']['name']}"]
    else:
        assert migrate.args.cluster is None


@pytest.mark.parametrize("target", OVERLAY_TARGETS)
def test_the_cursor_key_is_mounted_where_the_flag_says(
    monkeypatch: pytest.MonkeyPatch, target: str, tmp_path: Path
) -> None:
    docs = build(target)
    apiserver = _program(monkeypatch, target, "apiserver")
    path = apiserver.args.cursor_key_file
    mount, volume = _mount_of(apiserver, path)
    secrets = find(docs, "Secret", volume["secret"]["secretName"])
    if not secrets:
        assert target == "overlays/production", "only production leaves the cursor key to the operator"
        return
    key = object_data(secrets[0])[posixpath.relpath(path, mount["mountPath"])]
    (tmp_path / "key").write_text(key)
    assert len(load_cursor_key(str(tmp_path / "key"))) >= 32


@pytest.mark.parametrize("target", _with("ConfigMap"))
def test_the_tracing_configuration_is_one_the_apiserver_loads(
    monkeypatch: pytest.MonkeyPatch, target: str, tmp_path: Path
) -> None:
    docs = build(target)
    apiserver = _program(monkeypatch, target, "apiserver")
    if apiserver.args.tracing_config_file is None:
        return
    path = str(apiserver.args.tracing_config_file)
    mount, volume = _mount_of(apiserver, path)
    text = object_data(one(docs, "ConfigMap", volume["configMap"]["name"]))[posixpath.relpath(path, mount["mountPath"])]
    (tmp_path / "tracing.yaml").write_text(text)
    assert load_tracing_configuration(tmp_path / "tracing.yaml").sampling_rate_per_million > 0


def test_tracing_is_wired_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _program(monkeypatch, "overlays/production", "apiserver").args.tracing_config_file is not None


# --- pods ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_meets_the_restricted_pod_security_standard_but_host_networking(target: str) -> None:
    for workload, pod in workloads(build(target)):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        context = pod.get("securityContext", {})
        assert context.get("runAsNonRoot") is True, where
        assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in pod.get("initContainers", []) + pod["containers"]:
            here = f"{where}:{container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, here
            assert sc.get("readOnlyRootFilesystem") is True, here
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], here
            assert not sc.get("capabilities", {}).get("add"), here
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})) and "memory" in resources.get("limits", {})
            if is_activity_image(container["image"]):
                # HOME and TMPDIR of the image are /tmp: the one writable place.
                assert any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in container["volumeMounts"])
        if pod.get("hostNetwork"):
            assert workload["kind"] == "DaemonSet" and pod["dnsPolicy"] == "ClusterFirstWithHostNet", where


@pytest.mark.parametrize("target", OVERLAY_TARGETS)
def test_the_webhook_receiver_runs_on_every_control_plane_node(target: str) -> None:
    (daemonset, pod) = next((w, p) for w, p in workloads(build(target)) if w["kind"] == "DaemonSet")
    assert pod["hostNetwork"] is True
    assert "node-role.kubernetes.io/control-plane" in pod["nodeSelector"]
    tolerated = {(t["key"], t.get("effect")) for t in pod["tolerations"]}
    assert ("node-role.kubernetes.io/control-plane", "NoSchedule") in tolerated
    assert all(p.get("hostPort") == p["containerPort"] for p in pod["containers"][0]["ports"]), daemonset


def _pdb_for(docs: tuple[Doc, ...], workload: Doc) -> Doc | None:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    for pdb in find(docs, "PodDisruptionBudget"):
        if pdb["spec"]["selector"]["matchLabels"].items() <= labels.items():
            return pdb
    return None


def test_production_is_highly_available(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = build("overlays/production")
    for command in ("apiserver", "consume"):
        workload = _program(monkeypatch, "overlays/production", command).workload
        assert workload["spec"]["replicas"] >= 2, command
        pdb = _pdb_for(docs, workload)
        assert pdb is not None, f"no PodDisruptionBudget for {command}"
        assert pdb["spec"].get("minAvailable", 0) < workload["spec"]["replicas"] or "maxUnavailable" in pdb["spec"]
        anti = workload["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution", []) + [
            t["podAffinityTerm"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
        ]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(
            t["topologyKey"] == "kubernetes.io/hostname" and t["labelSelector"]["matchLabels"].items() <= labels.items()
            for t in terms
        ), command
    (cluster,) = one(docs, "ClickHouseInstallation")["spec"]["configuration"]["clusters"]
    assert cluster["layout"]["replicasCount"] >= 3
    assert all(s["spec"]["replicas"] == 3 for s in find(docs, "Stream"))


def test_the_kind_overlay_runs_one_of_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    for c in containers(monkeypatch, "overlays/test-infra"):
        assert c.workload["spec"].get("replicas", 1) == 1, c.name
    image = {c.spec["image"] for c in containers(monkeypatch, "overlays/test-infra")}
    assert len(image) == 1 and image.pop().endswith(":e2e")  # what `kind load` puts on the node
