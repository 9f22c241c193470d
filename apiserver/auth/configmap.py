"""Which CAs and headers to trust, as the cluster publishes them: ConfigMap
kube-system/extension-apiserver-authentication, written by kube-apiserver for every aggregated server. Reading it
needs the Role `extension-apiserver-authentication-reader`. Values are PEM strings and JSON-array strings. It is
polled, so CA rotation reaches us without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from apiserver.auth.kubeclient import KubeAPIError, KubeClient
from apiserver.auth.requestheader import RequestHeaderAuthenticator, RequestHeaderConfig
from apiserver.auth.trust import SettableCABundle, TrustBundle, parse_bundle

log = logging.getLogger(__name__)

NAMESPACE, NAME = "kube-system", "extension-apiserver-authentication"
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{NAME}"
# The ConfigMap changes only when the cluster rotates a CA; one GET per 30 s is cheap and rotation is seen soon.
POLL_SECONDS = 30.0


class ConfigMapLookupFailed(Exception):
    pass


@dataclass(frozen=True)
class AuthenticationConfigMap:
    client_ca: TrustBundle | None
    requestheader_ca: TrustBundle | None
    requestheader: RequestHeaderConfig


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    raw = data.get(key)
    if not raw:
        return ()
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ConfigMapLookupFailed(f"{NAMESPACE}/{NAME}: {key} is not a JSON array of strings") from None
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigMapLookupFailed(f"{NAMESPACE}/{NAME}: {key} is not a JSON array of strings")
    return tuple(value)


def _bundle(data: Mapping[str, Any], key: str) -> TrustBundle | None:
    pem = data.get(key)
    if not pem:
        return None
    try:
        return parse_bundle(str(pem).encode(), f"{NAMESPACE}/{NAME} {key}")
    except ValueError as e:
        raise ConfigMapLookupFailed(str(e)) from None


def parse_configmap(data: Mapping[str, Any]) -> AuthenticationConfigMap:
    return AuthenticationConfigMap(
        client_ca=_bundle(data, "client-ca-file"),
        requestheader_ca=_bundle(data, "requestheader-client-ca-file"),
        requestheader=RequestHeaderConfig(
            username_headers=_strings(data, "requestheader-username-headers"),
            group_headers=_strings(data, "requestheader-group-headers"),
            extra_headers_prefixes=_strings(data, "requestheader-extra-headers-prefix"),
            uid_headers=_strings(data, "requestheader-uid-headers"),
            allowed_names=_strings(data, "requestheader-allowed-names"),
        ),
    )


async def fetch_configmap(client: KubeClient) -> AuthenticationConfigMap | None:
    """The ConfigMap's values; None if it does not exist (as kube treats it); ConfigMapLookupFailed otherwise."""
    try:
        status, body = await client.request("GET", PATH)
    except KubeAPIError as e:
        raise ConfigMapLookupFailed(f"cannot read {NAMESPACE}/{NAME}: {e}") from None
    if status == 404:
        return None
    if status == 403:
        raise ConfigMapLookupFailed(
            f"forbidden to read configmap {NAMESPACE}/{NAME}; usually fixed by 'kubectl create rolebinding -n "
            f"{NAMESPACE} ROLEBINDING_NAME --role=extension-apiserver-authentication-reader "
            f"--serviceaccount=YOUR_NS:YOUR_SA'"
        )
    if status != 200 or not isinstance(body, Mapping):
        raise ConfigMapLookupFailed(f"cannot read {NAMESPACE}/{NAME}: HTTP {status}")
    return parse_configmap(body.get("data") or {})


class ConfigMapWatcher:
    """Keeps the bundles and request-header settings taken from the ConfigMap current.

    `client_ca` / `requestheader` are None for the parts that flags configure (flags win, as in kube).
    """

    def __init__(
        self,
        client: KubeClient,
        client_ca: SettableCABundle | None,
        requestheader: RequestHeaderAuthenticator | None,
        requestheader_ca: SettableCABundle | None,
    ) -> None:
        self._client = client
        self._client_ca = client_ca
        self._requestheader = requestheader
        self._requestheader_ca = requestheader_ca

    def apply(self, values: AuthenticationConfigMap) -> None:
        if self._client_ca is not None:
            self._client_ca.set(values.client_ca)
        if self._requestheader is not None and self._requestheader_ca is not None:
            self._requestheader_ca.set(values.requestheader_ca)
            self._requestheader.config = values.requestheader

    async def poll(self, interval: float = POLL_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                values = await fetch_configmap(self._client)
            except ConfigMapLookupFailed as e:
                log.warning("keeping the previous authentication configuration: %s", e)
                continue
            if values is None:
                log.warning("configmap %s/%s is gone; keeping the previous configuration", NAMESPACE, NAME)
                continue
            self.apply(values)
