"""Exec credential plugins (client.authentication.k8s.io v1 and v1beta1), run as client-go runs them: the
kubeconfig's args and env on top of ours, KUBERNETES_EXEC_INFO holding an ExecCredential (with the cluster when
provideClusterInfo is set), stdin only when interactive, stderr passed through. The credential is kept for the
life of the command, or until its expirationTimestamp."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubectl_activity.errors import PluginError
from kubectl_activity.kubeconfig import ClientConfig, ExecConfig, Pem

INSTALL_HINT = "It looks like you are trying to use a client-go credential plugin that is not installed."


@dataclass(frozen=True)
class Credential:
    token: str = ""
    client_cert: Pem | None = None
    client_key: Pem | None = None
    expires: float | None = None  # a UNIX time; None: valid for the life of the command


def _error(config: ExecConfig, message: str) -> PluginError:
    return PluginError(f"error: getting credentials from the exec plugin {config.command}: {message}")


def _interactive(config: ExecConfig, stdin_is_terminal: bool) -> bool:
    if config.interactive_mode == "Never":
        return False
    if config.interactive_mode == "Always" and not stdin_is_terminal:
        raise _error(config, "exec plugin cannot support interactive mode: standard input is not a terminal")
    return stdin_is_terminal


def exec_info(config: ExecConfig, cluster: ClientConfig, interactive: bool) -> dict[str, Any]:
    """The ExecCredential the plugin gets in KUBERNETES_EXEC_INFO."""
    spec: dict[str, Any] = {"interactive": interactive}
    if config.provide_cluster_info:
        info: dict[str, Any] = {"server": cluster.server}
        if cluster.tls_server_name:
            info["tls-server-name"] = cluster.tls_server_name
        if cluster.insecure_skip_tls_verify:
            info["insecure-skip-tls-verify"] = True
        if cluster.ca is not None:
            info["certificate-authority-data"] = base64.b64encode(cluster.ca.data).decode()
        if cluster.proxy_url:
            info["proxy-url"] = cluster.proxy_url
        if cluster.exec_cluster_config is not None:
            info["config"] = cluster.exec_cluster_config
        spec["cluster"] = info
    return {"kind": "ExecCredential", "apiVersion": config.api_version, "spec": spec}


def _expiry(status: Mapping[str, Any], config: ExecConfig) -> float | None:
    stamp = status.get("expirationTimestamp")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise _error(config, f"expirationTimestamp {stamp!r} is not an RFC3339 time") from None


def parse_credential(config: ExecConfig, output: str) -> Credential:
    try:
        document = json.loads(output)
    except ValueError:
        raise _error(config, "its output is not an ExecCredential (JSON expected on stdout)") from None
    if not isinstance(document, Mapping) or document.get("kind") != "ExecCredential":
        raise _error(config, "its output is not an ExecCredential")
    if document.get("apiVersion") != config.api_version:
        raise _error(
            config,
            f"exec plugin is configured to use API version {config.api_version}, plugin returned version "
            f"{document.get('apiVersion')}",
        )
    status = document.get("status")
    if not isinstance(status, Mapping):
        raise _error(config, "exec plugin didn't return a status field")
    token, cert, key = (str(status.get(k) or "") for k in ("token", "clientCertificateData", "clientKeyData"))
    if not token and not (cert and key):
        if cert or key:
            raise _error(config, "exec plugin returned only one of clientCertificateData and clientKeyData")
        raise _error(config, "exec plugin didn't return a token or cert/key pair")
    return Credential(
        token,
        Pem(cert.encode(), "exec plugin clientCertificateData") if cert else None,
        Pem(key.encode(), "exec plugin clientKeyData") if key else None,
        _expiry(status, config),
    )


def run_exec(config: ExecConfig, cluster: ClientConfig, environ: Mapping[str, str] | None = None) -> Credential:
    interactive = _interactive(config, sys.stdin is not None and sys.stdin.isatty())
    env = dict(os.environ if environ is None else environ)
    env.update(config.env)
    env["KUBERNETES_EXEC_INFO"] = json.dumps(exec_info(config, cluster, interactive))
    try:
        done = subprocess.run(
            [config.command, *config.args],
            env=env,
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None,  # the plugin's own messages (a login prompt, a warning) reach the user
            text=True,
            check=False,
        )
    except FileNotFoundError:
        hint = config.install_hint or INSTALL_HINT
        raise PluginError(f"error: exec: executable {config.command} not found\n\n{hint}") from None
    except OSError as err:
        raise _error(config, str(err)) from None
    if done.returncode != 0:
        raise _error(config, f"exit status {done.returncode}")
    return parse_credential(config, done.stdout)


class ExecCache:
    """Runs the plugin when no credential is held or the held one has expired."""

    def __init__(self, config: ExecConfig, cluster: ClientConfig, clock: Callable[[], float]) -> None:
        self._config, self._cluster, self._clock = config, cluster, clock
        self._held: Credential | None = None

    def get(self) -> Credential:
        held = self._held
        if held is None or (held.expires is not None and held.expires <= self._clock()):
            held = self._held = run_exec(self._config, self._cluster)
        return held
