"""The Activity API over HTTP, authenticated the way kubectl is: kr8s reads the kubeconfig (`--kubeconfig`,
KUBECONFIG, ~/.kube/config; `--context`) with client certificates, bearer tokens and exec credential plugins
(client.authentication.k8s.io v1 and v1beta1). Each page is one POST of an AuditLogQuery; nothing else is called.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import httpx
import kr8s.asyncio

from kubectl_activity.errors import PluginError, status_message

GROUP = "activity.miloapis.com"
VERSION = "v1alpha1"
KIND = "AuditLogQuery"
RESOURCE = "auditlogqueries"
APISERVICE = f"{VERSION}.{GROUP}"
USER_AGENT = "kubectl-activity/0.1.0"
# The server names each query like `kubectl create` would, so error messages can quote it.
GENERATE_NAME = "kubectl-activity-"


@dataclass(frozen=True)
class QueryRequest:
    """`spec` of one AuditLogQuery page."""

    start_time: str
    end_time: str
    filter: str = ""
    limit: int = 25
    continue_token: str = ""

    def body(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"startTime": self.start_time, "endTime": self.end_time, "limit": self.limit}
        if self.filter:
            spec["filter"] = self.filter
        if self.continue_token:
            spec["continue"] = self.continue_token
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"generateName": GENERATE_NAME},
            "spec": spec,
        }


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]  # newest first, as the server returns them
    continue_token: str  # "" on the last page
    effective_start_time: str
    effective_end_time: str


class ActivityClient:
    """Use as `async with ActivityClient(kubeconfig, context) as client:`."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        self._kubeconfig = kubeconfig
        self._context = context
        self._api: Any = None

    async def __aenter__(self) -> ActivityClient:
        try:
            # Not kr8s.asyncio.api(): that also GETs /version to warn about Kubernetes versions, a round trip
            # (and a warning) this plugin does not need.
            self._api = kr8s.asyncio.Api(kubeconfig=self._kubeconfig, context=self._context, bypass_factory=True)
            await self._api.auth
        except Exception as err:  # kr8s raises ValueError, KeyError, OSError... for unusable configs
            where = self._kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise PluginError(
                f"error: cannot load the kubeconfig {where}: {_describe(err)}\n"
                "hint: point --kubeconfig or KUBECONFIG at a kubeconfig for the cluster (and --context at a context)"
            ) from None
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        session = getattr(self._api, "_session", None)
        if session is not None:
            await session.aclose()
        self._remove_credential_copies()

    def _remove_credential_copies(self) -> None:
        """kr8s writes `*-data` credentials (embedded in the kubeconfig or from an exec plugin) to temporary files
        and leaves them; the session has read them, so a private key does not outlive the command."""
        auth = getattr(self._api, "auth", None)
        if auth is None:
            return
        written = (
            ("client-key-data", auth._user, auth.client_key_file),
            ("client-certificate-data", auth._user, auth.client_cert_file),
            ("certificate-authority-data", auth._cluster, auth.server_ca_file),
        )
        for key, section, path in written:
            if key in section and path:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    @property
    def server(self) -> str:
        return str(self._api.auth.server) if self._api else ""

    @property
    def context(self) -> str:
        return str(self._api.auth.active_context) if self._api else ""

    async def query(self, request: QueryRequest) -> Page:
        try:
            async with self._api.call_api(
                "POST",
                version=VERSION,
                base=f"/apis/{GROUP}",
                url=RESOURCE,
                raise_for_status=False,
                content=json.dumps(request.body()),
                headers={"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT},
            ) as response:
                return self._page(response)
        except (httpx.TransportError, ssl.SSLError, OSError) as err:
            raise PluginError(
                f"error: cannot reach the Activity API at {self.server} (context {self.context!r}): "
                f"{_describe(err)}\nhint: is the server up, and is `kubectl get apiservice {APISERVICE}` Available?"
            ) from None
        except PluginError:
            raise
        except Exception as err:  # kr8s wraps some transport failures in its own errors
            raise PluginError(f"error: the request to {self.server} failed: {_describe(err)}") from None

    async def pages(self, request: QueryRequest) -> AsyncGenerator[Page, None]:
        """Every page from `request` on, following `continue` until the last."""
        while True:
            page = await self.query(request)
            yield page
            if not page.continue_token:
                return
            request = replace(request, continue_token=page.continue_token)

    def _page(self, response: httpx.Response) -> Page:
        try:
            document = response.json()
        except ValueError:
            document = None
        if response.status_code >= 400:
            if isinstance(document, dict) and document.get("kind") == "Status":
                message = status_message(document, response.status_code)
            else:
                message = f"Error from server: HTTP {response.status_code}: {response.text[:300].strip()}"
            if response.status_code in (404, 503):
                message += f"\nhint: is the APIService {APISERVICE} registered and Available on {self.server}?"
            raise PluginError(message)
        if not isinstance(document, dict) or not isinstance(document.get("status"), dict):
            raise PluginError(f"error: {self.server} did not answer with an {KIND} (HTTP {response.status_code})")
        status = document["status"]
        return Page(
            events=list(status.get("results") or []),
            continue_token=str(status.get("continue") or ""),
            effective_start_time=str(status.get("effectiveStartTime") or ""),
            effective_end_time=str(status.get("effectiveEndTime") or ""),
        )


def _describe(err: BaseException) -> str:
    return str(err) or type(err).__name__
