"""The API server's options: flags → ApiServerSettings (the options) → complete() → CompletedConfig, which
apiserver.server.apiserver turns into a running server.

Flags carry the names every aggregated server uses (--secure-port, --tls-cert-file, --client-ca-file,
--requestheader-*, --authorization-*), so its Deployment reads like any other; each is also an ACTIVITY_* env var.
"""

from __future__ import annotations

import argparse
import logging
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from apiserver.auth.authconfig import AuthSettings, add_auth_arguments
from apiserver.auth.authorize import Mode
from apiserver.auth.requestheader import RequestHeaderConfig
from apiserver.machinery.certs import self_signed_serving
from apiserver.machinery.flagtypes import positive
from apiserver.machinery.logs import FORMATS
from apiserver.machinery.tracing import TracingConfiguration, load_tracing_configuration
from apiserver.registry.auditlogquery import options as query_options
from apiserver.registry.auditlogquery.cursor import load_cursor_key
from apiserver.registry.auditlogquery.settings import QuerySettings
from auditlog.durations import duration_flag
from auditlog.listener import ListenerLimits, add_listener_arguments, listener_limits

log = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT_SECONDS = 60.0
# kube-apiserver's defaults for --max-requests-inflight and --max-mutating-requests-inflight
DEFAULT_MAX_REQUESTS_INFLIGHT = 400
DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT = 200
DEFAULT_STORE_WORKERS = 8
SELF_SIGNED_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ApiServerSettings:
    query: QuerySettings
    auth: AuthSettings = field(default_factory=AuthSettings)
    bind_address: str = "0.0.0.0"
    secure_port: int = 6443  # 0: any free port (see ApiServerHandle.port)
    tls_cert_file: Path | None = None  # both None: a self-signed pair is generated
    tls_private_key_file: Path | None = None
    metrics_port: int | None = None  # None: no metrics listener; 0: any free port
    tracing: TracingConfiguration | None = None
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    max_requests_inflight: int = DEFAULT_MAX_REQUESTS_INFLIGHT  # 0: unlimited
    max_mutating_requests_inflight: int = DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT
    store_workers: int = DEFAULT_STORE_WORKERS  # queries that may run in the store at once; more wait for one
    # Extra hosts for a generated serving certificate (the Service DNS name, a node IP, ...).
    self_signed_hosts: tuple[str, ...] = SELF_SIGNED_HOSTS
    listener: ListenerLimits = field(default_factory=ListenerLimits)  # each listener: connection cap, timeouts

    @property
    def resource_settings(self) -> tuple[object, ...]:
        """Each registered resource's settings, which it finds by type."""
        return (self.query,)

    def complete(self) -> CompletedConfig:
        """What the options imply and nothing can change any more: the serving TLS context."""
        return CompletedConfig(self, _serving_context(self))


@dataclass(frozen=True)
class CompletedConfig:
    settings: ApiServerSettings
    serving_context: ssl.SSLContext


def _serving_context(settings: ApiServerSettings) -> ssl.SSLContext:
    # A bare server context: client certificates are trusted only through the CAs the auth layer loads,
    # never the system's public roots.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # aiohttp speaks HTTP/1.1 only: selecting it in ALPN settles Go clients (the aggregator) that also offer h2
    context.set_alpn_protocols(["http/1.1"])
    if settings.tls_cert_file and settings.tls_private_key_file:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_private_key_file)
        return context
    if settings.tls_cert_file or settings.tls_private_key_file:
        raise ValueError("give both --tls-cert-file and --tls-private-key-file, or neither (self-signed)")
    pair = self_signed_serving(settings.self_signed_hosts)
    log.warning(
        "no --tls-cert-file/--tls-private-key-file: serving a generated self-signed certificate for %s; clients "
        "must skip verification or pin it (kube-aggregator needs insecureSkipTLSVerify or the APIService caBundle)",
        ", ".join(settings.self_signed_hosts),
    )
    # ssl loads certificate chains only from files: the pair lives in temporary files just long enough to load.
    with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
        cert.write(pair.cert_pem)
        key.write(pair.key_pem)
        cert.flush()
        key.flush()
        context.load_cert_chain(cert.name, key.name)
    return context


def single_user_settings(
    *,
    ca_cert: Path,
    cursor_key_file: Path,
    bind_address: str,
    secure_port: int,
    tls_cert_file: Path,
    tls_private_key_file: Path,
    metrics_port: int | None,
) -> ApiServerSettings:
    """A server for one local user holding the only client certificate (signed by `ca_cert`): no cluster to
    delegate decisions to, so every authenticated request is allowed. Naming the request-header CA keeps the
    server from looking for kube-apiserver's configmap; the allowed name keeps that path shut."""
    return ApiServerSettings(
        query=QuerySettings(cursor_key=load_cursor_key(str(cursor_key_file))),
        auth=AuthSettings(
            client_ca_file=ca_cert,
            requestheader_client_ca_file=ca_cert,
            requestheader=RequestHeaderConfig(allowed_names=("front-proxy-client",)),
            authorization_mode=Mode.ALWAYS_ALLOW,
        ),
        bind_address=bind_address,
        secure_port=secure_port,
        tls_cert_file=tls_cert_file,
        tls_private_key_file=tls_private_key_file,
        metrics_port=metrics_port,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    serving = parser.add_argument_group("serving")
    serving.add_argument("--store", required=True, help="store DSN: chdb:///DIR or http(s)://USER:PASS@HOST:PORT/DB")
    serving.add_argument("--secure-port", type=int, default=6443, help="HTTPS port of the API")
    serving.add_argument("--bind-address", default="0.0.0.0", help="address to listen on")
    serving.add_argument(
        "--tls-cert-file", type=Path, help="serving certificate (PEM, chain allowed); unset: generate a self-signed one"
    )
    serving.add_argument("--tls-private-key-file", type=Path, help="private key of --tls-cert-file (PEM)")
    serving.add_argument(
        "--metrics-port", type=int, default=9090, help="plain-HTTP port for Prometheus /metrics (-1: off)"
    )
    serving.add_argument(
        "--tracing-config-file",
        type=Path,
        help="TracingConfiguration (apiserver.config.k8s.io/v1beta1) file: OTLP endpoint, samplingRatePerMillion",
    )
    serving.add_argument("--logging-format", choices=FORMATS, default="text", help="log line format")
    serving.add_argument(
        "--request-timeout",
        type=duration_flag,
        default=f"{DEFAULT_REQUEST_TIMEOUT_SECONDS:g}s",
        help="time before a request is answered 504 Timeout",
    )
    serving.add_argument(
        "--shutdown-delay-duration",
        type=duration_flag,
        default="0s",
        help="how long to keep serving after SIGTERM while /readyz reports not ready",
    )
    serving.add_argument(
        "--max-requests-inflight",
        type=int,
        default=DEFAULT_MAX_REQUESTS_INFLIGHT,
        help="read-only requests served at once before answering 429 (0: unlimited)",
    )
    serving.add_argument(
        "--max-mutating-requests-inflight",
        type=int,
        default=DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT,
        help="queries (POST) served at once before answering 429 (0: unlimited)",
    )
    query = parser.add_argument_group("queries")
    query_options.add_arguments(query)
    query.add_argument(
        "--store-workers",
        type=positive,
        default=DEFAULT_STORE_WORKERS,
        help="queries that may run in the store at once",
    )
    query_options.add_key_argument(query)
    add_auth_arguments(parser)
    add_listener_arguments(parser, tls=True)


def settings_from_args(args: argparse.Namespace) -> ApiServerSettings:
    return ApiServerSettings(
        query=query_options.settings_from_args(args),
        auth=AuthSettings.from_args(args),
        bind_address=args.bind_address,
        secure_port=args.secure_port,
        tls_cert_file=args.tls_cert_file,
        tls_private_key_file=args.tls_private_key_file,
        metrics_port=None if args.metrics_port < 0 else args.metrics_port,
        tracing=load_tracing_configuration(args.tracing_config_file) if args.tracing_config_file else None,
        request_timeout_seconds=args.request_timeout,
        max_requests_inflight=args.max_requests_inflight,
        max_mutating_requests_inflight=args.max_mutating_requests_inflight,
        store_workers=args.store_workers,
        listener=listener_limits(args),
    )
