"""How this server reaches kube-apiserver for delegated auth: a kubeconfig file or the pod's service account.

Only what TokenReview, SubjectAccessReview and reading one ConfigMap need: server URL, CA, bearer token (inline
or a file re-read as it rotates) and client certificate. Exec plugins and auth providers are refused with a clear
message rather than half-supported.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Where Kubernetes mounts a pod's service account (not a path of any build machine).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Bound service account tokens rotate; kubelet refreshes the file well before expiry, client-go re-reads each minute.
TOKEN_FILE_REREAD_SECONDS = 60.0


class KubeconfigError(ValueError):
    """The kubeconfig cannot be used; the message says which field to fix."""


@dataclass(frozen=True)
class KubeConnection:
    server: str
    ca_pem: bytes | None = None
    token: str | None = None
    token_file: Path | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    source: str = ""  # for messages: "kubeconfig FILE" or "in-cluster service account"

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca_pem.decode() if self.ca_pem else None)
        if self.insecure_skip_tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert_pem and self.client_key_pem:
            _load_cert_chain(context, self.client_cert_pem, self.client_key_pem)
        return context


def _load_cert_chain(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    # ssl can only load a key pair from files: write both to a private temporary directory, load, delete.
    with tempfile.TemporaryDirectory(prefix="activity-kubeconfig-") as directory:
        cert, key = Path(directory, "tls.crt"), Path(directory, "tls.key")
        cert.write_bytes(cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        context.load_cert_chain(cert, key)


class BearerToken:
    """The token to send: inline, or read from a file and re-read periodically (rotated service account tokens)."""

    def __init__(self, connection: KubeConnection) -> None:
        self._inline = connection.token
        self._file = connection.token_file
        self._value: str | None = None
        self._read_at = float("-inf")

    def value(self) -> str | None:
        if self._inline:
            return self._inline
        if self._file is None:
            return None
        now = time.monotonic()
        if now - self._read_at >= TOKEN_FILE_REREAD_SECONDS:
            self._value = self._file.read_text().strip()
            self._read_at = now
        return self._value


def _data_or_file(entry: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    data = entry.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except ValueError as e:
            raise KubeconfigError(f"{key}-data is not valid base64: {e}") from None
    path = entry.get(key)
    if path:
        return (base / str(path)).read_bytes()
    return None


def _named(items: Any, name: str, kind: str, source: str) -> Mapping[str, Any]:
    for item in items or ():
        if isinstance(item, Mapping) and item.get("name") == name:
            value = item.get(kind)
            return value if isinstance(value, Mapping) else {}
    raise KubeconfigError(f"{source}: no {kind} named {name!r}")


def load_kubeconfig(path: Path) -> KubeConnection:
    """Read the current context of a kubeconfig file; relative paths are relative to the file."""
    source = f"kubeconfig {path}"
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise KubeconfigError(f"{source}: cannot read: {e}") from None
    if not isinstance(document, Mapping):
        raise KubeconfigError(f"{source}: not a kubeconfig (expected a YAML mapping)")
    base = path.parent
    name = document.get("current-context")
    if name:
        context = _named(document.get("contexts"), str(name), "context", source)
    else:
        contexts = document.get("contexts") or []
        if len(contexts) != 1:
            raise KubeconfigError(f"{source}: set current-context (it has {len(contexts)} contexts)")
        context = contexts[0].get("context") or {}
    cluster = _named(document.get("clusters"), str(context.get("cluster")), "cluster", source)
    user = _named(document.get("users"), str(context.get("user")), "user", source) if context.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise KubeconfigError(f"{source}: exec and auth-provider users are not supported; use a token or a client cert")
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"{source}: cluster {context.get('cluster')!r} has no server")
    try:
        token_file = user.get("tokenFile")
        return KubeConnection(
            server=str(server).rstrip("/"),
            ca_pem=_data_or_file(cluster, "certificate-authority", base),
            token=str(user["token"]) if user.get("token") else None,
            token_file=base / str(token_file) if token_file else None,
            client_cert_pem=_data_or_file(user, "client-certificate", base),
            client_key_pem=_data_or_file(user, "client-key", base),
            insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
            tls_server_name=str(cluster["tls-server-name"]) if cluster.get("tls-server-name") else None,
            source=source,
        )
    except OSError as e:
        raise KubeconfigError(f"{source}: {e}") from None


def in_cluster(
    environ: Mapping[str, str] | None = None, directory: Path = SERVICE_ACCOUNT_DIR
) -> KubeConnection | None:
    """The pod's service account, or None when not running in a pod."""
    environ = os.environ if environ is None else environ
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token_file = directory / "token"
    if not host or not port or not token_file.exists():
        return None
    if ":" in host:  # an IPv6 address needs brackets in a URL
        host = f"[{host}]"
    ca = directory / "ca.crt"
    return KubeConnection(
        server=f"https://{host}:{port}",
        ca_pem=ca.read_bytes() if ca.exists() else None,
        token_file=token_file,
        source="in-cluster service account",
    )


def resolve(path: Path | None) -> KubeConnection | None:
    """The connection a --authentication-kubeconfig / --authorization-kubeconfig flag names, else in-cluster."""
    return load_kubeconfig(path) if path is not None else in_cluster()
