"""DIR/kubeconfig: the local API server as the cluster, the client certificate as the user, everything embedded
(base64 data, not file paths) so the file still works when copied or when DIR is moved."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from activity.devtools.up.pki import USER, LocalPki


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(name: str, server: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes) -> dict[str, Any]:
    """One cluster, one client-certificate user, one context joining them (current)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [
            {"name": user, "user": {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}}
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    }


def write_kubeconfig(path: Path, name: str, server: str, pki: LocalPki) -> None:
    """Owner-only, like ~/.kube/config: it holds a private key."""
    config = kubeconfig(
        name, server, pki.ca_cert.read_bytes(), USER, pki.client_cert.read_bytes(), pki.client_key.read_bytes()
    )
    path.touch(mode=0o600)
    path.chmod(0o600)  # also when an older file was left with another mode
    path.write_text(yaml.safe_dump(config, sort_keys=False))
