"""The Activity API over HTTPS, as the identity kubectl would use (kubectl_activity.kubeconfig resolves it,
kubectl_activity.transport presents it). Each page is one POST of an AuditLogQuery; nothing else is called."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from kubectl_activity.errors import PluginError, status_message
from kubectl_activity.kubeconfig import ClientConfig, Overrides, client_config
from kubectl_activity.transport import Log, Response, Transport, describe_network_error

GROUP = "activity.miloapis.com"
VERSION = "v1alpha1"
KIND = "AuditLogQuery"
RESOURCE = "auditlogqueries"
APISERVICE = f"{VERSION}.{GROUP}"
USER_AGENT = "kubectl-activity/0.1.0"
# The server names each query like `kubectl create` would, so error messages can quote it.
GENERATE_NAME = "kubectl-activity-"
# The server's refusal of a too large spec.limit names its maximum (apiserver.registry.auditlogquery.service).
_LIMIT_RANGE = re.compile(r"must be between 1 and (\d+)")


@dataclass(frozen=True)
class QueryRequest:
    """`spec` of one AuditLogQuery page. `limit` None: the server's default page size."""

    start_time: str
    end_time: str
    filter: str = ""
    limit: int | None = None
    continue_token: str = ""

    def body(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"startTime": self.start_time, "endTime": self.end_time}
        if self.limit is not None:
            spec["limit"] = self.limit
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


class LimitTooLarge(PluginError):
    def __init__(self, message: str, largest: int) -> None:
        super().__init__(message)
        self.largest = largest


class ActivityClient:
    """Use as `with ActivityClient(overrides) as client:`."""

    def __init__(self, overrides: Overrides | None = None, *, verbosity: int = 0, timeout_ns: int = 0) -> None:
        self._overrides = overrides or Overrides()
        self._verbosity = verbosity
        self._timeout_ns = timeout_ns
        self._config: ClientConfig | None = None
        self._transport: Transport | None = None

    def __enter__(self) -> ActivityClient:
        self._config = client_config(self._overrides)
        self._transport = Transport(
            self._config, timeout_ns=self._timeout_ns, log=Log(self._verbosity), user_agent=USER_AGENT
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def server(self) -> str:
        return self._config.server if self._config else ""

    @property
    def context(self) -> str:
        return self._config.context if self._config else ""

    @property
    def transport(self) -> Transport:
        assert self._transport is not None, "use the client in a with block"
        return self._transport

    def query(self, request: QueryRequest) -> Page:
        body = json.dumps(request.body()).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            response = self.transport.request("POST", f"/apis/{GROUP}/{VERSION}/{RESOURCE}", body, headers)
        except ssl.SSLCertVerificationError as err:
            raise PluginError(
                f"error: Unable to connect to the server {self.server}: {describe_network_error(err)}\n"
                "hint: the kubeconfig's certificate-authority(-data) or tls-server-name does not match the server"
            ) from None
        except OSError as err:  # refused, unreachable, TLS failures, timeouts: ssl.SSLError is an OSError
            raise PluginError(
                f"error: cannot reach the Activity API at {self.server} (context {self.context!r}): "
                f"{describe_network_error(err)}\nhint: is the server up, and is `kubectl get apiservice "
                f"{APISERVICE}` Available?"
            ) from None
        except PluginError:
            raise
        except Exception as err:  # http.client's protocol errors
            raise PluginError(f"error: the request to {self.server} failed: {type(err).__name__}: {err}") from None
        return self._page(response)

    def pages(self, request: QueryRequest, *, fit_limit: bool = False) -> Iterator[Page]:
        """Every page from `request` on, following `continue` until the last. With `fit_limit`, a limit above
        the server's --max-page-size is lowered to it (once) instead of failing."""
        while True:
            try:
                page = self.query(request)
            except LimitTooLarge as err:
                if not fit_limit or request.limit is None or err.largest >= request.limit:
                    raise
                request, fit_limit = replace(request, limit=err.largest), False
                continue
            yield page
            if not page.continue_token:
                return
            request = replace(request, continue_token=page.continue_token)

    def _page(self, response: Response) -> Page:
        try:
            document = json.loads(response.body)
        except ValueError:
            document = None
        if response.status >= 400:
            if isinstance(document, dict) and document.get("kind") == "Status":
                message = status_message(document, response.status)
                largest = _largest_limit(document)
                if largest:
                    raise LimitTooLarge(message, largest)
            else:
                text = response.body[:300].decode(errors="replace").strip()
                message = f"Error from server: HTTP {response.status}: {text}"
            if response.status in (404, 503):
                message += f"\nhint: is the APIService {APISERVICE} registered and Available on {self.server}?"
            raise PluginError(message)
        if not isinstance(document, dict) or not isinstance(document.get("status"), dict):
            raise PluginError(f"error: {self.server} did not answer with an {KIND} (HTTP {response.status})")
        status = document["status"]
        return Page(
            events=list(status.get("results") or []),
            continue_token=str(status.get("continue") or ""),
            effective_start_time=str(status.get("effectiveStartTime") or ""),
            effective_end_time=str(status.get("effectiveEndTime") or ""),
        )


def _largest_limit(status: dict[str, Any]) -> int:
    """The server's maximum page size when `status` refuses spec.limit alone, else 0."""
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    if not isinstance(causes, list) or len(causes) != 1 or not isinstance(causes[0], dict):
        return 0
    if causes[0].get("field") != "spec.limit":
        return 0
    found = _LIMIT_RANGE.search(str(causes[0].get("message") or ""))
    return int(found.group(1)) if found else 0
