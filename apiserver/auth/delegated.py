"""Assemble delegated auth from settings: the authenticators in Kubernetes' order, the authorizer, the TLS trust,
and the configmap watcher. The HTTP layer uses the result through three things: `middleware()`,
`configure_server_tls(context)` and `close()`.

Sources, as kube's DelegatingAuthenticationOptions decide them: CA flags win; whatever they leave unset comes from
configmap kube-system/extension-apiserver-authentication, read with the authentication kubeconfig (or the pod's
service account). A failed lookup stops start-up unless --authentication-tolerate-lookup-failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp.typedefs import Middleware

from apiserver.auth.authconfig import AuthSettings
from apiserver.auth.authenticate import Authenticator, UnionAuthenticator
from apiserver.auth.authorize import Authorizer, Mode, SubjectAccessReviewer
from apiserver.auth.clientcert import ClientCertAuthenticator
from apiserver.auth.configmap import ConfigMapLookupFailed, ConfigMapWatcher, fetch_configmap
from apiserver.auth.kubeclient import KubeClient
from apiserver.auth.kubeconfig import KubeConnection, resolve
from apiserver.auth.middleware import auth_middleware
from apiserver.auth.requestheader import RequestHeaderAuthenticator
from apiserver.auth.tls import ClientCATrust
from apiserver.auth.tokenreview import TokenReviewAuthenticator
from apiserver.auth.trust import CABundleSource, FileCABundle, SettableCABundle

log = logging.getLogger(__name__)


class AuthSetupError(Exception):
    """Delegated auth cannot start as configured; the message says what to fix."""


@dataclass
class DelegatedAuth:
    authenticator: UnionAuthenticator
    authorizer: Authorizer
    trust: ClientCATrust
    clients: list[KubeClient] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def middleware(self) -> Middleware:
        return auth_middleware(self.authenticator, self.authorizer)

    def configure_server_tls(self, context: ssl.SSLContext) -> None:
        """Request client certificates on `context` and trust the client and request-header CAs (kept current)."""
        self.trust.install(context)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in self.clients:
            await client.close()


def _ca_source(path: Path | None, interval: float) -> tuple[CABundleSource, SettableCABundle | None]:
    """The CA a flag names (re-read when its file changes); else a bundle for the configmap to fill, returned twice."""
    if path is None:
        from_configmap = SettableCABundle()
        return from_configmap, from_configmap
    try:
        return FileCABundle(path, interval), None
    except (OSError, ValueError) as e:
        raise AuthSetupError(f"cannot load CA file {path}: {e}") from None


async def build_delegated_auth(settings: AuthSettings) -> DelegatedAuth:
    """Must run inside the event loop that will serve (it starts the configmap watcher there)."""
    try:
        authn_connection = resolve(settings.authentication_kubeconfig)
        delegated = settings.authorization_mode is Mode.DELEGATED
        authz_connection = resolve(settings.authorization_kubeconfig) if delegated else None
    except ValueError as e:
        raise AuthSetupError(str(e)) from None
    auth = DelegatedAuth(UnionAuthenticator(()), Authorizer(), ClientCATrust(()))
    try:
        await _assemble(auth, settings, authn_connection, authz_connection)
    except BaseException:
        await auth.close()
        raise
    return auth


async def _assemble(
    auth: DelegatedAuth,
    settings: AuthSettings,
    authn_connection: KubeConnection | None,
    authz_connection: KubeConnection | None,
) -> None:
    # a CA no flag names is taken from the configmap (and stays empty, so unused, if there is none)
    client_ca, client_ca_map = _ca_source(settings.client_ca_file, settings.ca_check_interval)
    requestheader_ca, requestheader_ca_map = _ca_source(
        settings.requestheader_client_ca_file, settings.ca_check_interval
    )
    requestheader = RequestHeaderAuthenticator(requestheader_ca, settings.requestheader)
    authenticators: list[Authenticator] = [requestheader, ClientCertAuthenticator(client_ca)]

    if authn_connection is None:
        log.warning("no authentication kubeconfig and not in a cluster: bearer tokens (TokenReview) are not accepted")
        # Without the cluster's ConfigMap, a CA no flag names stays empty: say which kind of caller that refuses.
        if client_ca_map is not None:
            log.warning("no --client-ca-file and no cluster to read it from: client certificates are not accepted")
        if requestheader_ca_map is not None:
            log.warning(
                "no --requestheader-client-ca-file and no cluster to read it from: front-proxy (aggregation) "
                "requests are not accepted"
            )
    else:
        authn_client = KubeClient(authn_connection)
        auth.clients.append(authn_client)
        authenticators.append(TokenReviewAuthenticator(authn_client, settings.token_cache_ttl))
        if client_ca_map is not None or requestheader_ca_map is not None:
            watcher = ConfigMapWatcher(
                authn_client, client_ca_map, requestheader if requestheader_ca_map else None, requestheader_ca_map
            )
            await _first_lookup(watcher, authn_client, settings.tolerate_lookup_failure)
            auth.tasks.append(asyncio.create_task(watcher.poll(settings.configmap_poll_interval)))

    reviewer = None
    if authz_connection is not None:
        authz_client = KubeClient(authz_connection)
        auth.clients.append(authz_client)
        reviewer = SubjectAccessReviewer(authz_client, settings.authorized_ttl, settings.unauthorized_ttl)
    elif settings.authorization_mode is Mode.DELEGATED:
        log.warning("no authorization kubeconfig and not in a cluster: only system:masters and always-allowed paths")
    auth.authenticator = UnionAuthenticator(authenticators, settings.anonymous)
    auth.authorizer = Authorizer(settings.authorization_mode, settings.always_allow_paths, reviewer)
    auth.trust = ClientCATrust((client_ca, requestheader_ca))


async def _first_lookup(watcher: ConfigMapWatcher, client: KubeClient, tolerate: bool) -> None:
    try:
        values = await fetch_configmap(client)
    except ConfigMapLookupFailed as e:
        if not tolerate:
            raise AuthSetupError(f"{e} (or start with --authentication-tolerate-lookup-failure)") from None
        log.warning("continuing without the authentication configmap (tolerated): %s", e)
        return
    if values is not None:
        watcher.apply(values)
