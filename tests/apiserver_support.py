"""A real API server for tests: started in-process on a free port, on its own event loop in a thread (so tests can
run `kubectl` synchronously), with a generated CA, serving certificate and client certificates, and a kubeconfig
that the real kubectl uses.

Import the `apiserver` fixture into a test module (`from apiserver_support import apiserver`) for a server with
generated events in its store, or use `running_apiserver(...)` for one configured differently.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import ssl
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import orjson
import pytest
import yaml

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from apiserver.auth.authconfig import AuthSettings
from apiserver.auth.authorize import Mode
from apiserver.machinery.certs import CertificateAuthority
from apiserver.registry.auditlogquery.settings import QuerySettings
from apiserver.server.apiserver import ApiServerHandle, start_apiserver
from apiserver.server.options import ApiServerSettings
from auditlog.config import parse_store_dsn
from auditlog.schema import migrate

T = TypeVar("T")

ADMIN = "admin"
ADMIN_GROUPS = ("system:masters",)
FRONT_PROXY = "front-proxy-client"  # the CN kube-apiserver's aggregator presents
EVENT_REQUESTS = 150  # 300 events: enough for several pages, quick to insert


Headers = Mapping[str, str] | Sequence[tuple[str, str]]  # pairs when a header repeats (X-Remote-Group)


def _pairs(headers: Headers | None) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class LoopThread:
    """An event loop running in a daemon thread; `run` executes a coroutine there and waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="apiserver-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass
class ApiServerEnv:
    handle: ApiServerHandle
    loop: LoopThread
    directory: Path
    ca: CertificateAuthority  # signs the serving certificate and the client certificates
    kubeconfig: Path  # user ADMIN in group system:masters
    events: list[dict[str, Any]] = field(default_factory=list)  # what insert_events stored, in insertion order
    _users: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.handle.port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    def client_pair(self, user: str, groups: Sequence[str] = ()) -> tuple[Path, Path]:
        return self.ca.issue_client(user, groups).write(self.directory / "users", f"{user}-{'-'.join(groups)}")

    def kubeconfig_for(self, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig whose client certificate says `user` in `groups`."""
        key = f"{user}/{','.join(groups)}"
        if key not in self._users:
            cert, private_key = self.client_pair(user, groups)
            path = self.directory / "users" / f"kubeconfig-{len(self._users)}"
            path.write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "clusters": [
                            {
                                "name": "activity",
                                "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                            }
                        ],
                        "users": [
                            {"name": user, "user": {"client-certificate": str(cert), "client-key": str(private_key)}}
                        ],
                        "contexts": [{"name": "activity", "context": {"cluster": "activity", "user": user}}],
                        "current-context": "activity",
                    }
                )
            )
            self._users[key] = path
        return self._users[key]

    def kubectl(
        self, *args: str, stdin: str | None = None, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The real kubectl against this server, with a private discovery/OpenAPI cache."""
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig or self.kubeconfig),
            "KUBECACHEDIR": str(self.directory / "kubecache"),
        }
        return subprocess.run(
            ["kubectl", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: Headers | None = None,
        *,
        user: str = ADMIN,
        groups: Sequence[str] = ADMIN_GROUPS,
        client_cert: bool = True,
    ) -> Response:
        """One HTTPS request, authenticated by a client certificate for `user` unless `client_cert` is False."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if client_cert:
            cert, key = self.client_pair(user, groups)
            context.load_cert_chain(cert, key)
        connection = http.client.HTTPSConnection("127.0.0.1", self.handle.port, context=context, timeout=30)
        data = body.encode() if isinstance(body, str) else body
        try:
            connection.putrequest(method, path)
            for name, value in _pairs(headers):
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(data or b"")))
            connection.endheaders(data)
            answer = connection.getresponse()
            return Response(answer.status, {k: v for k, v in answer.getheaders()}, answer.read())
        finally:
            connection.close()

    def create(
        self,
        spec: Mapping[str, Any],
        query: str = "",
        metadata: Mapping[str, Any] | None = None,
        headers: Headers | None = None,
        **kwargs: Any,
    ) -> Response:
        """POST an AuditLogQuery with this spec (and metadata); `kwargs` go to `request`."""
        obj = {"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "AuditLogQuery", "spec": spec}
        body = json.dumps(obj | ({"metadata": metadata} if metadata else {}))
        return self.request(
            "POST",
            f"/apis/activity.miloapis.com/v1alpha1/auditlogqueries{query}",
            body,
            [("Content-Type", "application/json"), *_pairs(headers)],
            **kwargs,
        )

    def as_front_proxy(
        self, user: str, groups: Sequence[str] = (), extra: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, Any]:
        """`request`/`create` keyword arguments that send a request as kube-apiserver's aggregator proxies it: the
        front-proxy certificate plus X-Remote-User/Group/Extra-* headers (extra keys percent-encoded)."""
        headers = [("X-Remote-User", user)] + [("X-Remote-Group", g) for g in groups]
        for key, values in (extra or {}).items():
            headers += [(f"X-Remote-Extra-{quote(key, safe='')}", v) for v in values]
        return {"user": FRONT_PROXY, "groups": (), "headers": headers}

    def metrics(self) -> str:
        connection = http.client.HTTPConnection("127.0.0.1", self.handle.metrics_port or 0, timeout=10)
        try:
            connection.request("GET", "/metrics")
            return connection.getresponse().read().decode()
        finally:
            connection.close()

    def insert_events(self, events: Sequence[dict[str, Any]]) -> None:
        self.loop.run(self.handle.store.insert_events([orjson.dumps(e) for e in events]))
        self.events += events

    def newest_first(self, keep: Callable[[dict[str, Any]], bool] = lambda _: True) -> list[dict[str, Any]]:
        """The stored events `keep` selects, in the order queries return them."""
        chosen = [e for e in self.events if keep(e)]
        return sorted(chosen, key=lambda e: (e["stageTimestamp"], e["auditID"], e["stage"]), reverse=True)


def generated_events(requests: int = EVENT_REQUESTS, start: datetime | None = None) -> list[dict[str, Any]]:
    """Realistic events from the last hour (inside the default window now-24h..now)."""
    begin = start or datetime.now(UTC) - timedelta(hours=1)
    return list(EventGenerator(GeneratorSettings(seed=7, start=begin)).events(requests))


@contextmanager
def running_apiserver(
    directory: Path,
    store_dsn: str,
    *,
    query: QuerySettings | None = None,
    auth: AuthSettings | None = None,
    front_proxy: bool = False,
    **settings: Any,
) -> Iterator[ApiServerEnv]:
    """Serve on a free port; the test CA is trusted for client certificates (and, with `front_proxy`, for the
    FRONT_PROXY certificate that may assert X-Remote-* identities); authorization is AlwaysAllow unless `auth`
    says otherwise."""
    ca = CertificateAuthority("activity-test-ca")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    cert, key = ca.issue_serving(["localhost", "127.0.0.1"]).write(directory, "serving")
    auth = auth or AuthSettings(authorization_mode=Mode.ALWAYS_ALLOW)
    auth = replace(auth, client_ca_file=auth.client_ca_file or directory / "ca.crt")
    if front_proxy:
        auth = replace(
            auth,
            requestheader_client_ca_file=directory / "ca.crt",
            requestheader=replace(auth.requestheader, allowed_names=(FRONT_PROXY,)),
        )
    base = ApiServerSettings(
        query=query or QuerySettings(cursor_key=b"k" * 32),
        auth=auth,
        bind_address="127.0.0.1",
        secure_port=0,
        metrics_port=0,
        tls_cert_file=cert,
        tls_private_key_file=key,
    )
    loop = LoopThread()
    try:
        handle = loop.run(start_apiserver(replace(base, **settings), parse_store_dsn(store_dsn)))
    except BaseException:
        loop.close()
        raise
    env = ApiServerEnv(handle, loop, directory, ca, directory / "kubeconfig")
    env.kubeconfig = env.kubeconfig_for(ADMIN, ADMIN_GROUPS)
    try:
        yield env
    finally:
        loop.run(handle.stop())
        loop.close()


@contextmanager
def apiserver_with_events(tmp_path_factory: pytest.TempPathFactory, **options: Any) -> Iterator[ApiServerEnv]:
    """`running_apiserver(**options)` over a freshly migrated store holding `generated_events()`."""
    directory = tmp_path_factory.mktemp("apiserver")
    dsn = f"chdb://{directory / 'store'}"
    migrate(parse_store_dsn(dsn), retention_days=0)  # fixed-date test events must not age out
    with running_apiserver(directory, dsn, **options) as env:
        env.insert_events(generated_events())
        yield env


@contextmanager
def delegated_apiserver(directory: Path, fake: Any, *, events: bool = False) -> Iterator[ApiServerEnv]:
    """A server in Delegated mode whose TokenReview/SubjectAccessReview go to `fake` (auth_support's
    FakeKubeAuthAPI, served here over TLS); client certificates from the test CA; `events`: generated events
    stored."""
    from auth_support import SERVICE_ACCOUNT_TOKEN, serve, write_kubeconfig  # test support of the auth area

    ca = CertificateAuthority("fake-kube-ca")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = ca.issue_serving(["127.0.0.1"]).write(directory, "fake-kube")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    loop = LoopThread()
    runner, port = loop.run(serve(fake.app(), context))
    kubeconfig = write_kubeconfig(
        directory / "delegation.kubeconfig", f"https://127.0.0.1:{port}", ca.cert_pem, SERVICE_ACCOUNT_TOKEN
    )
    auth = AuthSettings(
        authentication_kubeconfig=kubeconfig,
        authorization_kubeconfig=kubeconfig,
        authorization_mode=Mode.DELEGATED,
        tolerate_lookup_failure=True,  # the double serves no front-proxy configmap; client CA comes from the flag
    )
    dsn = f"chdb://{directory / 'store'}"
    migrate(parse_store_dsn(dsn), retention_days=0)  # fixed-date test events must not age out
    try:
        with running_apiserver(directory / "server", dsn, auth=auth) as env:
            if events:
                env.insert_events(generated_events())
            yield env
    finally:
        loop.run(runner.cleanup())
        loop.close()


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerEnv]:
    """A server with generated events, shared by a test module."""
    with apiserver_with_events(tmp_path_factory) as env:
        yield env
