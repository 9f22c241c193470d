"""One HTTPS connection to the API server presenting exactly the identity of a ClientConfig: the client
certificate, `Authorization` (a bearer token, an exec plugin's token or basic auth) and the Impersonate-* headers
client-go sends. The standard library only (http.client, ssl): the plugin starts in a fraction of the time an
HTTP library takes to import, and each request is one call anyway.

With -v (kubectl's levels): 6 logs each request's method, URL, status and duration; 7 the request and response
headers; 8 the bodies, cut as client-go cuts them (1024 characters at 8, 10240 at 9, whole from 10).
Authorization is always masked.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import ssl
import sys
import time
from base64 import b64encode
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from auditlog.durations import SECOND, format_ns
from kubectl_activity.errors import PluginError
from kubectl_activity.kubeconfig import ClientConfig, Pem

if TYPE_CHECKING:  # exec plugins (like tempfile and ipaddress) are loaded only by configurations that use them
    from kubectl_activity.execcred import Credential, ExecCache

CONNECT_TIMEOUT = 30.0  # seconds; Go's dialer gives up after 30s too, whatever the request timeout
_UNRESERVED = "-._~"  # RFC 3986 unreserved (with letters and digits): not escaped in an Impersonate-Extra key


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def impersonation_headers(config: ClientConfig) -> list[tuple[str, str]]:
    """client-go's ImpersonatingRoundTripper: Impersonate-User, -Uid, one -Group per group, one
    Impersonate-Extra-<key> per value (the key percent-encoded byte by byte)."""
    who = config.impersonation
    if not who.user:
        return []
    headers = [("Impersonate-User", who.user)]
    if who.uid:
        headers.append(("Impersonate-Uid", who.uid))
    headers += [("Impersonate-Group", group) for group in who.groups]
    for key, values in who.extra:
        name = "Impersonate-Extra-" + quote(key, safe=_UNRESERVED)
        headers += [(name, value) for value in values]
    return headers


def mask(name: str, value: str) -> str:
    """What -v shows of a header: Authorization keeps its scheme only, as kubectl's debug output."""
    if name.lower() in ("authorization", "proxy-authorization"):
        scheme, _, _ = value.partition(" ")
        return f"{scheme} <masked>"
    return value


class Log:
    """klog-shaped lines on stderr at kubectl's -v levels."""

    def __init__(self, level: int, stream: IO[str] | None = None) -> None:
        self.level = level
        self.stream = stream or sys.stderr

    def __call__(self, level: int, message: str) -> None:
        if self.level >= level:
            from datetime import datetime

            stamp = datetime.now().strftime("%m%d %H:%M:%S.%f")
            self.stream.write(f"I{stamp} {os.getpid():>7} kubectl-activity] {message}\n")
            self.stream.flush()


def _loopback_or_local(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _no_proxy_matches(host: str, port: int, no_proxy: str) -> bool:
    """Go's NO_PROXY rules (golang.org/x/net/http/httpproxy): `*`, IPs, CIDRs, and domains (`foo.com` is foo.com
    and its subdomains, `.foo.com` its subdomains), each optionally with a port."""
    import ipaddress

    host = host.lower()
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        with contextlib.suppress(ValueError):
            network = ipaddress.ip_network(entry, strict=False)
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(host) in network:
                    return True
            continue
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name[1:] if name.startswith("*.") else name
        if name.startswith("."):  # subdomains only
            if host.endswith(name):
                return True
        elif host == name or host.endswith("." + name):
            return True
    return False


def proxy_for(config: ClientConfig, host: str, port: int, environ: Mapping[str, str]) -> str:
    """The proxy URL kubectl would use: the cluster's proxy-url, else HTTPS_PROXY unless NO_PROXY or loopback."""
    if config.proxy_url:
        return config.proxy_url
    value = environ.get("HTTPS_PROXY") or environ.get("https_proxy") or ""
    if not value or _loopback_or_local(host):
        return ""
    if _no_proxy_matches(host, port, environ.get("NO_PROXY") or environ.get("no_proxy") or ""):
        return ""
    url = value if "://" in value else f"http://{value}"
    if urlsplit(url).scheme != "http":
        raise PluginError(
            f"error: HTTPS_PROXY={value} is not supported by kubectl-activity: only http:// proxies "
            "(HTTPS tunnelled with CONNECT)"
        )
    return url


def _memory_file() -> int | None:
    if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.memfd_create("kubectl-activity")
    except OSError:  # refused by a sandbox: a private temporary file instead
        return None


@contextlib.contextmanager
def _pem_files(*pems: Pem) -> Iterator[list[str]]:
    """Paths holding these PEM blobs for as long as ssl needs to read them: anonymous memory files where the
    system has them, else a private temporary directory; nothing is left on disk afterwards."""
    with contextlib.ExitStack() as stack:
        paths = []
        directory = ""
        for pem in pems:
            fd = _memory_file()
            if fd is not None:
                stack.callback(os.close, fd)
                os.write(fd, pem.data)
                paths.append(f"/proc/self/fd/{fd}")
                continue
            if not directory:
                import tempfile

                directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="kubectl-activity-"))
            path = os.path.join(directory, str(len(paths)))
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                out.write(pem.data)
            paths.append(path)
        yield paths


def ssl_context(config: ClientConfig, credential: Credential | None) -> ssl.SSLContext:
    if config.ca is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # the kubeconfig's CA only, as client-go
        try:
            context.load_verify_locations(cadata=config.ca.data.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError) as err:
            raise PluginError(f"error: unable to load root certificates from {config.ca.path}: {err}") from None
    else:
        context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # Go's default floor
    if config.insecure_skip_tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = config.client_cert, config.client_key
    if credential is not None and credential.client_cert is not None:
        cert, key = credential.client_cert, credential.client_key
    if cert is not None and key is not None:
        with _pem_files(cert, key) as (cert_path, key_path):
            try:
                context.load_cert_chain(cert_path, key_path)
            except ssl.SSLError as err:
                raise PluginError(
                    f"error: cannot use the client certificate {cert.path} with the key {key.path}: {err.reason or err}"
                ) from None
    return context


class _HTTPSConnection(http.client.HTTPSConnection):
    """Verifies the server as `server_name` (tls-server-name) whatever host it dials (or tunnels to)."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, server_name: str, timeout: float | None):
        super().__init__(host, port, context=context, timeout=timeout)
        self._context_for_wrap = context
        self._server_name = server_name
        self._request_timeout = timeout

    def connect(self) -> None:
        self.timeout = CONNECT_TIMEOUT if self._request_timeout is None else min(CONNECT_TIMEOUT, self._request_timeout)
        http.client.HTTPConnection.connect(self)
        self.sock = self._context_for_wrap.wrap_socket(self.sock, server_hostname=self._server_name)
        self.sock.settimeout(self._request_timeout)


class Transport:
    """Requests to one API server as one identity; the connection is kept open between pages."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        timeout_ns: int = 0,
        log: Log | None = None,
        user_agent: str = "kubectl-activity",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.timeout_ns = timeout_ns
        self.log = log or Log(0)
        self.user_agent = user_agent
        self._environ = os.environ if environ is None else environ
        parts = urlsplit(config.server if "://" in config.server else f"https://{config.server}")
        self.host = parts.hostname or ""
        self.port = parts.port or 443
        self.base_path = parts.path.rstrip("/")
        self._exec: ExecCache | None = None
        if config.exec:
            from kubectl_activity.execcred import ExecCache

            self._exec = ExecCache(config.exec, config, time.time)
        self._connection: _HTTPSConnection | None = None
        self._credential: Credential | None = None

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{self.base_path}{path}"

    def _connect(self, credential: Credential | None) -> _HTTPSConnection:
        timeout = self.timeout_ns / SECOND if self.timeout_ns else None
        server_name = self.config.tls_server_name or self.host
        context = ssl_context(self.config, credential)
        proxy = proxy_for(self.config, self.host, self.port, self._environ)
        if not proxy:
            return _HTTPSConnection(self.host, self.port, context, server_name, timeout)
        parts = urlsplit(proxy)
        connection = _HTTPSConnection(parts.hostname or "", parts.port or 80, context, server_name, timeout)
        tunnel_headers = {}
        if parts.username is not None:
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            tunnel_headers["Proxy-Authorization"] = "Basic " + b64encode(secret).decode()
        connection.set_tunnel(self.host, self.port, headers=tunnel_headers)
        return connection

    def _headers(self, credential: Credential | None, extra: Mapping[str, str]) -> list[tuple[str, str]]:
        headers = [("User-Agent", self.user_agent), *extra.items()]
        token = credential.token if credential and credential.token else self.config.token
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        elif self.config.basic is not None:
            secret = ":".join(self.config.basic).encode()
            headers.append(("Authorization", "Basic " + b64encode(secret).decode()))
        return headers + impersonation_headers(self.config)

    def request(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> Response:
        credential = self._exec.get() if self._exec else None
        if credential is not self._credential or self._connection is None:
            self.close()
            self._connection = self._connect(credential)
            self._credential = credential
            fresh = True
        else:
            fresh = False
        if self.timeout_ns:
            path += ("&" if "?" in path else "?") + "timeout=" + format_ns(self.timeout_ns)
        sent = self._headers(credential, headers)
        url = self.url(path)
        self.log(7, f"{method} {url}")
        self.log(7, "Request Headers:")
        for name, value in sent:
            self.log(7, f"    {name}: {mask(name, value)}")
        self.log(8, f'"Request Body" body={self._cut(body)}')
        started = time.monotonic()
        try:
            answer = self._send(method, self.base_path + path, body, sent)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if fresh:
                raise
            self.close()  # the server closed an idle kept-alive connection: a new one, once (the POST only reads)
            self._connection = self._connect(credential)
            answer = self._send(method, self.base_path + path, body, sent)
        took = round((time.monotonic() - started) * 1000)
        status = f"{answer.status} {answer.reason}"
        if self.log.level == 6:  # from 7 on, the URL was logged before and the status comes next
            self.log(6, f"{method} {url} {status} in {took} milliseconds")
        self.log(7, f"Response Status: {status} in {took} milliseconds")
        self.log(7, "Response Headers:")
        for name, value in answer.headers:
            self.log(7, f"    {name}: {value}")
        self.log(8, f'"Response Body" body={self._cut(answer.body)}')
        return answer

    def _cut(self, body: bytes) -> str:
        text = body.decode(errors="replace")
        limit = {8: 1024, 9: 10240}.get(self.log.level)
        if limit is None or len(text) <= limit:
            return text
        return f"{text[:limit]} [truncated {len(text) - limit} chars]"

    def _send(self, method: str, path: str, body: bytes, headers: list[tuple[str, str]]) -> Response:
        assert self._connection is not None
        connection = self._connection
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
        except ValueError as err:  # a header value with a line break: a kubeconfig must not smuggle headers
            self.close()
            raise PluginError(f"error: cannot send the request: {err} (check the kubeconfig's user entry)") from None
        answer = connection.getresponse()
        return Response(answer.status, answer.reason, tuple(answer.getheaders()), answer.read())

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def describe_network_error(err: BaseException) -> str:
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: {err.verify_message or err}"
    if isinstance(err, TimeoutError):
        return "timed out (--request-timeout)"
    return str(err) or type(err).__name__
