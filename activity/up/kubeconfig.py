"""DIR/kubeconfig: the local API server as the cluster, the client certificate as the user, everything embedded
(base64 data, not file paths) so the file still works when copied or when DIR is moved."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from activity.up.pki import USER, LocalPki


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig(name: str, server: str, pki: LocalPki) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(pki.ca_cert)}}],
        "users": [
            {
                "name": USER,
                "user": {"client-certificate-data": _b64(pki.client_cert), "client-key-data": _b64(pki.client_key)},
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": USER}}],
        "current-context": name,
    }


def write_kubeconfig(path: Path, name: str, server: str, pki: LocalPki) -> None:
    """Owner-only, like ~/.kube/config: it holds a private key."""
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(kubeconfig(name, server, pki), sort_keys=False))
