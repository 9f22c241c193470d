"""The manifests run the programs as the programs are: every flag and ACTIVITY_* variable is one the real parser
accepts, container ports are the ports the parsed flags make the program listen on, and probes and scrapes ask for
paths the program serves (the API server's over HTTPS, without credentials, as the kubelet asks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from apiserver_support import ApiServerEnv, running_apiserver
from manifests_support import (
    OVERLAYS,
    TARGETS,
    Container,
    build,
    containers,
    find,
    subcommand_parser,
)

from activity.cli import COMMANDS, env_name
from apiserver.auth.authconfig import AuthSettings
from apiserver.auth.authorize import PathMatcher
from apiserver.machinery.metrics import ApiMetrics
from auditlog.addresses import parse_host_port
from auditlog.config import parse_store_dsn
from auditlog.probes import probe_app
from auditlog.schema import migrate
from ingest.consumer import command as consume_command
from ingest.webhook import command as webhook_command
from ingest.webhook.receiver import build_app as webhook_app
from ingest.webhook.settings import WebhookSettings


def _routes(app: web.Application) -> frozenset[str]:
    return frozenset(route.resource.canonical for route in app.router.routes() if route.resource is not None)


async def _never_ready() -> str | None:
    return "only the routes are looked at"


def listeners(c: Container) -> dict[int, tuple[str, frozenset[str] | None]]:
    """port -> (scheme, paths served there) for what the parsed flags make the program listen on. None: the API
    server's HTTPS port, whose paths are asked of a running server."""
    if c.command == "apiserver":
        ports: dict[int, tuple[str, frozenset[str] | None]] = {c.args.secure_port: ("HTTPS", None)}
        if c.args.metrics_port >= 0:
            ports[c.args.metrics_port] = ("HTTP", _routes(ApiMetrics().app()))
        return ports
    if c.command == "webhook":
        return {c.args.listen[1]: ("HTTP", _routes(webhook_app(WebhookSettings(), None, None, 0)))}  # type: ignore[arg-type]
    if c.command == "consume" and c.args.listen:
        return {parse_host_port(c.args.listen)[1]: ("HTTP", _routes(probe_app(_never_ready)))}
    return {}


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerEnv]:
    directory = tmp_path_factory.mktemp("manifest-apiserver")
    dsn = f"chdb://{directory / 'store'}"
    migrate(parse_store_dsn(dsn), retention_days=0)
    with running_apiserver(directory, dsn) as env:
        yield env


@pytest.mark.parametrize("target", TARGETS)
def test_every_activity_container_runs_a_subcommand_with_flags_its_parser_accepts(
    monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    for c in containers(monkeypatch, target):
        assert c.command in COMMANDS
        # Beyond parsing: the values make the settings each program builds at start.
        if hasattr(c.args, "store"):
            parse_store_dsn(c.args.store)
        if c.command == "apiserver":
            AuthSettings.from_args(c.args)
        elif c.command == "webhook":
            webhook_command.settings_from(c.args)
        elif c.command == "consume":
            consume_command.settings_from(c.args)


def test_the_overlays_run_every_cluster_program() -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        for overlay in OVERLAYS:
            commands = {c.command for c in containers(monkeypatch, f"overlays/{overlay}")}
            assert {"apiserver", "webhook", "consume", "migrate"} <= commands, overlay


@pytest.mark.parametrize("target", TARGETS)
def test_activity_environment_variables_are_flags_of_the_program(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    for c in containers(monkeypatch, target):
        parser = subcommand_parser(c.command)
        accepted = {env_name(o) for a in parser._actions for o in a.option_strings if o.startswith("--")}
        for entry in c.spec.get("env", []):
            if entry["name"].startswith("ACTIVITY_"):
                assert entry["name"] in accepted, f"{c.name}: {entry['name']} is no flag of `activity {c.command}`"


@pytest.mark.parametrize("target", TARGETS)
def test_container_ports_are_the_ports_the_program_listens_on(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    for c in containers(monkeypatch, target):
        declared = {p["containerPort"] for p in c.spec.get("ports", [])}
        assert declared == set(listeners(c)), f"{c.name}: ports {declared} but it listens on {set(listeners(c))}"
        for port in c.spec.get("ports", []):
            assert port.get("hostPort", port["containerPort"]) == port["containerPort"], c.name


def _probe_paths(monkeypatch: pytest.MonkeyPatch, target: str) -> Iterator[tuple[Container, str, dict[str, Any]]]:
    for c in containers(monkeypatch, target):
        for kind, probe in c.probes():
            assert "httpGet" in probe, f"{c.name} {kind}: an HTTP probe of what the program serves"
            yield c, kind, probe["httpGet"]


@pytest.mark.parametrize("target", TARGETS)
def test_probes_ask_for_paths_the_program_serves(
    monkeypatch: pytest.MonkeyPatch, target: str, request: pytest.FixtureRequest
) -> None:
    for c, kind, get in _probe_paths(monkeypatch, target):
        port = c.port(get["port"])
        served = listeners(c)
        assert port in served, f"{c.name} {kind}: port {get['port']} is not one the program listens on"
        scheme, paths = served[port]
        assert get.get("scheme", "HTTP") == scheme, f"{c.name} {kind}: the program serves {scheme} on {port}"
        if paths is not None:
            assert get["path"] in paths, f"{c.name} {kind}: {get['path']} is not served on {port}"
            continue
        # The kubelet sends no credentials: the path must be one authorization lets through, and the real server
        # must answer it 200 without a client certificate.
        assert PathMatcher(c.args.authorization_always_allow_paths).matches(get["path"]), (c.name, kind)
        env: ApiServerEnv = request.getfixturevalue("apiserver")
        answer = env.request("GET", get["path"], client_cert=False)
        assert answer.status == 200, f"{c.name} {kind}: GET {get['path']} answered {answer.status}"


def test_the_apiserver_probes_livez_and_readyz_on_its_https_port(monkeypatch: pytest.MonkeyPatch) -> None:
    (apiserver,) = [c for c in containers(monkeypatch, "base") if c.command == "apiserver"]
    probes = dict(apiserver.probes())
    assert {"livenessProbe", "readinessProbe"} <= set(probes)
    assert probes["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert all(listeners(apiserver)[apiserver.port(p["httpGet"]["port"])][1] is None for p in probes.values())


@pytest.mark.parametrize("target", [t for t in TARGETS if t.startswith("overlays/")] + ["components/observability"])
def test_service_monitors_scrape_metrics_where_the_program_serves_them(
    monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    docs = build(target)
    programs = containers(monkeypatch, target)
    for monitor in find(docs, "ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [s for s in find(docs, "Service") if selector.items() <= s["metadata"].get("labels", {}).items()]
        if target.startswith("components/"):
            continue  # the Services come with the base and other components: checked in the overlays
        assert len(services) == 1, f"ServiceMonitor {monitor['metadata']['name']} selects {len(services)} Services"
        service = services[0]
        pods = [
            c
            for c in programs
            if service["spec"]["selector"].items()
            <= c.workload["spec"]["template"]["metadata"].get("labels", {}).items()
        ]
        assert pods, f"Service {service['metadata']['name']} selects no activity pod"
        for endpoint in monitor["spec"]["endpoints"]:
            (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
            for c in pods:
                number = c.port(port["targetPort"])
                assert number in listeners(c), f"{monitor['metadata']['name']}: {c.name} listens on no port {number}"
                scheme, paths = listeners(c)[number]
                path = endpoint.get("path", "/metrics")
                assert scheme == "HTTP" and paths is not None and path in paths, (
                    f"{monitor['metadata']['name']}: {c.name} serves no plain-HTTP {path} on {port['targetPort']}"
                )


def test_service_monitor_of_the_base_has_its_service_port() -> None:
    """The base Service exposes the API server's metrics port under the name the ServiceMonitor scrapes."""
    docs = build("base")
    (service,) = find(docs, "Service", "activity-apiserver")
    monitors = find(build("components/observability"), "ServiceMonitor", "activity-apiserver")
    assert monitors
    names = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitors[0]["spec"]["endpoints"]} <= names
