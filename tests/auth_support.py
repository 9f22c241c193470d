"""Test support for delegated auth: test PKI, a test double of kube-apiserver's review endpoints, and a real
HTTPS server running the auth middleware in front of a handler that echoes who it was told the caller is.

`FakeKubeAuthAPI` is the one mock the project allows: it stands in for kube-apiserver's TokenReview,
SubjectAccessReview and the extension-apiserver-authentication ConfigMap, and counts every call.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from apiserver.auth.authconfig import AuthSettings
from apiserver.auth.delegated import DelegatedAuth, build_delegated_auth
from apiserver.machinery.certs import CertificateAuthority
from apiserver.machinery.request import USER_KEY, UserInfo

SERVICE_ACCOUNT_TOKEN = "service-account-token-of-the-apiserver"
CREATE_PATH = "/apis/activity.miloapis.com/v1alpha1/auditlogqueries"


@dataclass
class Pki:
    """CAs and certificates written to `directory`; each pair is (cert path, key path)."""

    directory: Path
    serving_ca: CertificateAuthority
    front_proxy_ca: CertificateAuthority
    client_ca: CertificateAuthority
    wrong_ca: CertificateAuthority
    serving: tuple[Path, Path]
    front_proxy_client: tuple[Path, Path]  # CN front-proxy-client, clientAuth, signed by the front-proxy CA
    other_proxy: tuple[Path, Path]  # CN other-proxy, signed by the front-proxy CA, not an allowed name
    alice: tuple[Path, Path]  # CN alice, O dev + ops, signed by the client CA
    no_client_auth: tuple[Path, Path]  # client CA, but ExtKeyUsage serverAuth only
    wrong: tuple[Path, Path]  # CN mallory, signed by a CA we do not trust
    client_ca_file: Path
    front_proxy_ca_file: Path

    @classmethod
    def create(cls, directory: Path) -> Pki:
        serving_ca = CertificateAuthority("test-serving-ca")
        front_proxy_ca = CertificateAuthority("test-front-proxy-ca")
        client_ca = CertificateAuthority("test-client-ca")
        wrong_ca = CertificateAuthority("test-wrong-ca")
        client_ca_file = directory / "client-ca.crt"
        client_ca_file.write_bytes(client_ca.cert_pem)
        front_proxy_ca_file = directory / "front-proxy-ca.crt"
        front_proxy_ca_file.write_bytes(front_proxy_ca.cert_pem)
        return cls(
            directory=directory,
            serving_ca=serving_ca,
            front_proxy_ca=front_proxy_ca,
            client_ca=client_ca,
            wrong_ca=wrong_ca,
            serving=serving_ca.issue_serving(["127.0.0.1", "localhost"]).write(directory, "serving"),
            front_proxy_client=front_proxy_ca.issue_client("front-proxy-client").write(directory, "front-proxy"),
            other_proxy=front_proxy_ca.issue_client("other-proxy").write(directory, "other-proxy"),
            alice=client_ca.issue_client("alice", ["dev", "ops"]).write(directory, "alice"),
            no_client_auth=client_ca.issue_serving(["alice-server"]).write(directory, "no-client-auth"),
            wrong=wrong_ca.issue_client("mallory", ["system:masters"]).write(directory, "wrong"),
            client_ca_file=client_ca_file,
            front_proxy_ca_file=front_proxy_ca_file,
        )

    def issue(self, ca: CertificateAuthority, user: str, groups: list[str], stem: str) -> tuple[Path, Path]:
        return ca.issue_client(user, groups).write(self.directory, stem)

    def client_context(self, pair: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.serving_ca.cert_pem.decode())
        if pair is not None:
            context.load_cert_chain(*pair)
        return context

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.serving)
        return context


def _user_json(user: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user.items() if v}


@dataclass
class FakeKubeAuthAPI:
    """Test double of kube-apiserver's TokenReview / SubjectAccessReview endpoints and the authentication configmap.

    tokens: token -> TokenReview status.user (a token not listed is refused).
    allowed: (user, verb, target) triples the SubjectAccessReview allows; target is a non-resource path, a resource
    (any name), `resource/subresource`, or either with `:name` for one name only (`users:bob`).
    """

    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    allowed: set[tuple[str, str, str]] = field(default_factory=set)
    deny_reason: str = ""
    fail_token_reviews: bool = False
    fail_access_reviews: bool = False
    configmap: dict[str, str] | None = None
    configmap_status: int = 200
    token_reviews: list[dict[str, Any]] = field(default_factory=list)
    access_reviews: list[dict[str, Any]] = field(default_factory=list)
    configmap_reads: int = 0
    _read: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", self._token_review)
        app.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews", self._access_review)
        app.router.add_get(
            "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication", self._configmap
        )
        return app

    @staticmethod
    def _caller_ok(request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {SERVICE_ACCOUNT_TOKEN}"

    async def _token_review(self, request: web.Request) -> web.Response:
        if not self._caller_ok(request):
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        review = await request.json()
        self.token_reviews.append(review)
        if self.fail_token_reviews:
            return web.json_response({"kind": "Status", "code": 500}, status=500)
        user = self.tokens.get(review["spec"]["token"])
        status: dict[str, Any] = {"authenticated": user is not None}
        if user is not None:
            status["user"] = user
        return web.json_response({**review, "status": status}, status=201)

    async def _access_review(self, request: web.Request) -> web.Response:
        if not self._caller_ok(request):
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        review = await request.json()
        self.access_reviews.append(review)
        if self.fail_access_reviews:
            return web.json_response({"kind": "Status", "code": 503}, status=503)
        spec = review["spec"]
        attributes = spec.get("resourceAttributes") or spec["nonResourceAttributes"]
        targets = {attributes.get("resource") or attributes["path"]}
        if attributes.get("subresource"):
            targets.add(f"{attributes['resource']}/{attributes['subresource']}")
        if attributes.get("name"):
            targets |= {f"{t}:{attributes['name']}" for t in targets}
        allowed = any((spec["user"], attributes["verb"], t) in self.allowed for t in targets)
        status: dict[str, Any] = {"allowed": allowed}
        if not allowed and self.deny_reason:
            status["reason"] = self.deny_reason
        return web.json_response({**review, "status": status}, status=201)

    async def wait_for_configmap_reads(self, count: int) -> None:
        async with self._read:
            await self._read.wait_for(lambda: self.configmap_reads >= count)

    async def _configmap(self, request: web.Request) -> web.Response:
        self.configmap_reads += 1
        async with self._read:
            self._read.notify_all()
        if not self._caller_ok(request) or self.configmap_status == 403:
            return web.json_response({"kind": "Status", "code": 403, "reason": "Forbidden"}, status=403)
        if self.configmap is None:
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
        return web.json_response({"kind": "ConfigMap", "apiVersion": "v1", "data": self.configmap})


async def serve(app: web.Application, ssl_context: ssl.SSLContext) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None
    port: int = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, port


def write_kubeconfig(
    path: Path, server: str, ca_pem: bytes, token: str | None = None, client: tuple[Path, Path] | None = None
) -> Path:
    user: dict[str, Any] = {}
    if token is not None:
        user["token"] = token
    if client is not None:
        user["client-certificate"] = str(client[0])
        user["client-key"] = str(client[1])
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path.write_text(yaml.safe_dump(document))
    return path


async def echo_user(request: web.Request) -> web.Response:
    """What a handler is told: the user, and which identity headers (if any) still reached it."""
    user: UserInfo = request[USER_KEY]
    leaked = [
        h
        for h in request.headers
        if h.lower().startswith(("x-remote-", "impersonate-")) or h.lower() == "authorization"
    ]
    return web.json_response(
        {
            "name": user.name,
            "uid": user.uid,
            "groups": list(user.groups),
            "extra": {k: list(v) for k, v in user.extra.items()},
            "identityHeaders": leaked,
            "body": (await request.read()).decode(),
        }
    )


class AuthWorld:
    """A FakeKubeAuthAPI and an HTTPS server with delegated auth wired exactly as `build_delegated_auth` wires it.

    Any path answers with `echo_user`. `settings` defaults: CA files from the PKI, allowed name front-proxy-client,
    both kubeconfigs pointing at the fake.
    """

    def __init__(self, pki: Pki, fake: FakeKubeAuthAPI | None = None, **settings: Any) -> None:
        self.pki = pki
        self.fake = fake or FakeKubeAuthAPI()
        self._settings = settings
        self._runners: list[web.AppRunner] = []
        self.auth: DelegatedAuth | None = None
        self.url = ""
        self.kubeconfig = pki.directory / "auth-kubeconfig.yaml"

    async def __aenter__(self) -> AuthWorld:
        try:
            return await self._start()
        except BaseException:
            await self.__aexit__()
            raise

    async def _start(self) -> AuthWorld:
        fake_runner, fake_port = await serve(self.fake.app(), self.pki.server_context())
        self._runners.append(fake_runner)
        write_kubeconfig(
            self.kubeconfig, f"https://127.0.0.1:{fake_port}", self.pki.serving_ca.cert_pem, SERVICE_ACCOUNT_TOKEN
        )
        base = AuthSettings(
            client_ca_file=self.pki.client_ca_file,
            requestheader_client_ca_file=self.pki.front_proxy_ca_file,
            authentication_kubeconfig=self.kubeconfig,
            authorization_kubeconfig=self.kubeconfig,
            ca_check_interval=0,
        )
        base = replace(base, requestheader=replace(base.requestheader, allowed_names=("front-proxy-client",)))
        self.auth = await build_delegated_auth(replace(base, **self._settings))
        app = web.Application(middlewares=[self.auth.middleware()])
        app.router.add_route("*", "/{tail:.*}", echo_user)
        context = self.pki.server_context()
        self.auth.configure_server_tls(context)
        runner, port = await serve(app, context)
        self._runners.append(runner)
        self.url = f"https://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        if self.auth is not None:
            await self.auth.close()

    async def call(
        self,
        path: str = CREATE_PATH,
        cert: tuple[Path, Path] | None = None,
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
        method: str = "POST",
        data: bytes | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One request on a fresh connection (so each call is its own TLS handshake)."""
        connector = aiohttp.TCPConnector(ssl=self.pki.client_context(cert), force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(method, self.url + path, headers=headers, data=data) as response,
        ):
            return response.status, await response.json()
