"""The kubeconfig as kubectl reads it (client-go's clientcmd), reduced to what one HTTPS connection needs.

Loading: `--kubeconfig FILE` alone, else every file of $KUBECONFIG (missing ones skipped), else ~/.kube/config.
Merging: the first file that names a cluster, user or context wins for that name (the whole entry);
current-context comes from the first file that sets it. Relative paths in an entry are relative to its file.
Selecting: --context or current-context; --cluster and --user replace the context's; the other flags override
fields as kubectl's do (--server clears tls-server-name, --certificate-authority/--insecure-skip-tls-verify
replace all three CA fields, --as-group replaces the groups).
Validating: what client-go refuses is refused with its wording; what this plugin cannot do (auth-provider,
a SOCKS or HTTPS proxy, a plain-HTTP server) is refused too: never a request as someone broader than asked.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubectl_activity.errors import PluginError

EXEC_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"  # passed to exec plugins as spec.cluster.config
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")
# Every field of a kubeconfig user entry (client-go's AuthInfo). Another one may be an identity setting this
# plugin cannot honour (a newer field, or a misspelt `as-groups`): refused rather than ignored.
USER_FIELDS = frozenset(
    {
        "client-certificate", "client-certificate-data", "client-key", "client-key-data", "token", "tokenFile",
        "as", "as-uid", "as-groups", "as-user-extra", "username", "password", "auth-provider", "exec", "extensions",
    }
)  # fmt: skip
# Where a pod's service account credentials are mounted: kubectl uses them when it finds no kubeconfig.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER = "in-cluster"


@dataclass(frozen=True)
class Overrides:
    """kubectl's global flags (None / empty: not given)."""

    kubeconfig: str | None = None
    context: str | None = None
    cluster: str | None = None
    user: str | None = None
    server: str | None = None
    tls_server_name: str | None = None
    certificate_authority: str | None = None
    insecure_skip_tls_verify: bool = False
    client_certificate: str | None = None
    client_key: str | None = None
    token: str | None = None
    impersonate: str | None = None
    impersonate_groups: tuple[str, ...] = ()
    impersonate_uid: str | None = None


@dataclass(frozen=True)
class ExecConfig:
    """A `user.exec` credential plugin (client.authentication.k8s.io/v1 or v1beta1)."""

    api_version: str
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    interactive_mode: str = "IfAvailable"
    provide_cluster_info: bool = False
    install_hint: str = ""


@dataclass(frozen=True)
class Impersonation:
    user: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Pem:
    """A PEM blob from a file or inline (`*-data`); `path` names it in messages."""

    data: bytes
    path: str = ""


@dataclass(frozen=True)
class ClientConfig:
    """Everything one connection to the API needs, resolved."""

    server: str  # https://host[:port][/path]
    context: str
    cluster: str
    user: str
    ca: Pem | None = None  # None: the system's trust store
    insecure_skip_tls_verify: bool = False
    tls_server_name: str = ""
    proxy_url: str = ""  # http://[user:password@]host:port; "" = the environment's HTTPS_PROXY/NO_PROXY
    client_cert: Pem | None = None
    client_key: Pem | None = None
    token: str = ""
    basic: tuple[str, str] | None = None
    exec: ExecConfig | None = None
    impersonation: Impersonation = field(default_factory=Impersonation)
    exec_cluster_config: Any = None  # the cluster's client.authentication.k8s.io/exec extension, for exec plugins


def _error(message: str) -> PluginError:
    return PluginError(f"error: {message}")


def kubeconfig_files(overrides: Overrides, environ: Mapping[str, str] | None = None) -> tuple[list[Path], bool]:
    """The files to merge, and whether each must exist (--kubeconfig's must; $KUBECONFIG's may be missing)."""
    environ = os.environ if environ is None else environ
    if overrides.kubeconfig:
        return [Path(overrides.kubeconfig)], True
    listed = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        unique = list(dict.fromkeys(listed))  # client-go reads a file named twice once
        return [Path(p) for p in unique], False
    return [Path(environ.get("HOME", "~")).expanduser() / ".kube" / "config"], False


def _load_file(path: Path) -> Mapping[str, Any]:
    import yaml  # only here: a kubeconfig is YAML (or JSON, which YAML reads)

    try:
        document = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml if any
    except OSError as err:
        raise _error(f"cannot read the kubeconfig {path}: {err.strerror or err}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise _error(f'error loading config file "{path}": {str(err).splitlines()[0]}') from None
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise _error(f'error loading config file "{path}": not a kubeconfig (a YAML mapping is expected)')
    return document


def _named(document: Mapping[str, Any], section: str, entry: str, path: Path) -> dict[str, dict[str, Any]]:
    """`clusters`/`users`/`contexts` as name -> entry (a name twice in one file is refused, as by client-go)."""
    items = document.get(section) or []
    if not isinstance(items, list):
        raise _error(f'error loading config file "{path}": {section} must be a list')
    named: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise _error(f'error loading config file "{path}": every entry of {section} needs a name')
        body = item.get(entry) or {}
        if not isinstance(body, Mapping):
            raise _error(f'error loading config file "{path}": {section} "{item["name"]}": {entry} must be a mapping')
        if item["name"] in named:
            raise _error(f'error loading config file "{path}": duplicate name "{item["name"]}" in {section}')
        named[item["name"]] = {**body, "__file__": path}  # where relative paths start
    return named


@dataclass(frozen=True)
class Merged:
    files: tuple[Path, ...]
    clusters: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    contexts: dict[str, dict[str, Any]]
    current_context: str


def load(overrides: Overrides, environ: Mapping[str, str] | None = None) -> Merged:
    paths, required = kubeconfig_files(overrides, environ)
    clusters: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    contexts: dict[str, dict[str, Any]] = {}
    current = ""
    read: list[Path] = []
    for path in paths:
        if not required and not path.exists():
            continue
        document = _load_file(path)
        read.append(path)
        for target, section, entry in ((clusters, "clusters", "cluster"), (users, "users", "user")):
            for name, body in _named(document, section, entry, path).items():
                target.setdefault(name, body)  # the first file to name it wins
        for name, body in _named(document, "contexts", "context", path).items():
            contexts.setdefault(name, body)
        chosen = document.get("current-context")
        if not current and isinstance(chosen, str):
            current = chosen
    return Merged(tuple(read), clusters, users, contexts, current)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _error(f"{where}: {key} must be a string")
    return value


def _strings(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _error(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _flag(entry: Mapping[str, Any], key: str, where: str) -> bool:
    value = entry.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _error(f"{where}: {key} must be true or false")
    return value


def _resolve(entry: Mapping[str, Any], value: str) -> str:
    """A relative path in a kubeconfig entry is relative to the file that holds it."""
    if not value or os.path.isabs(value) or "__file__" not in entry:
        return value
    return str(Path(entry["__file__"]).parent / value)


def _pem(entry: Mapping[str, Any], file_key: str, data_key: str, where: str) -> Pem | None:
    data = _text(entry, data_key, where)
    if data and _text(entry, file_key, where):  # client-go refuses the pair rather than guess
        raise _error(f"{data_key} and {file_key} are both specified for {where}: keep one")
    if data:
        try:
            return Pem(base64.b64decode(data, validate=True), f"{where} {data_key}")
        except ValueError:
            raise _error(f"{where}: {data_key} is not base64") from None
    path = _resolve(entry, _text(entry, file_key, where))
    if not path:
        return None
    try:
        return Pem(Path(path).read_bytes(), path)
    except OSError as err:
        raise _error(f"unable to read {file_key} {path} for {where}: {err.strerror or err}") from None


def _exec(user: Mapping[str, Any], name: str) -> ExecConfig | None:
    spec = user.get("exec")
    if spec is None:
        return None
    where = f'user "{name}" exec'
    if not isinstance(spec, Mapping):
        raise _error(f"{where} must be a mapping")
    version = _text(spec, "apiVersion", where)
    command = _text(spec, "command", where)
    if not command:
        raise _error(f"command must be specified for {name} to use exec authentication plugin")
    if not version:
        raise _error(f"apiVersion must be specified for {name} to use exec authentication plugin")
    if version not in EXEC_VERSIONS:
        raise _error(f"{where}: apiVersion {version} is not supported; use one of {', '.join(EXEC_VERSIONS)}")
    mode = _text(spec, "interactiveMode", where)
    if not mode:
        if version.endswith("/v1"):
            raise _error(f"interactiveMode must be specified for {name} to use exec authentication plugin")
        mode = "IfAvailable"
    if mode not in INTERACTIVE_MODES:
        raise _error(f"invalid interactiveMode for {name}: {mode}; use one of {', '.join(INTERACTIVE_MODES)}")
    env: list[tuple[str, str]] = []
    for item in spec.get("env") or []:
        if not isinstance(item, Mapping) or not _text(item, "name", where):
            raise _error(f"env variable name must be specified for {name} to use exec authentication plugin")
        env.append((_text(item, "name", where), _text(item, "value", where)))
    if os.sep in command:  # a bare name is looked up on PATH; a path is relative to the kubeconfig
        command = _resolve(user, command)
    return ExecConfig(
        version,
        command,
        _strings(spec, "args", where),
        tuple(env),
        mode,
        _flag(spec, "provideClusterInfo", where),
        _text(spec, "installHint", where),
    )


def _extra(user: Mapping[str, Any], where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    extra = user.get("as-user-extra")
    if extra is None:
        return ()
    if not isinstance(extra, Mapping):
        raise _error(f"{where}: as-user-extra must be a mapping of lists of strings")
    return tuple((str(k), _strings(extra, k, where)) for k in sorted(extra))


def _exec_cluster_config(cluster: Mapping[str, Any]) -> Any:
    for item in cluster.get("extensions") or []:
        if isinstance(item, Mapping) and item.get("name") == EXEC_CLUSTER_EXTENSION:
            return item.get("extension")
    return None


def _check_proxy(proxy: str, where: str) -> None:
    if not proxy:
        return
    try:
        parts = urlsplit(proxy)
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError as err:
        raise _error(f"{where}: proxy-url {proxy!r} is not a URL: {err}") from None
    if parts.scheme != "http" or not parts.hostname:
        raise _error(
            f"{where}: proxy-url {proxy!r} is not supported by kubectl-activity: only http:// proxies "
            "(HTTPS tunnelled with CONNECT); kubectl also speaks socks5 and https proxies, this plugin does not"
        )


def in_cluster(environ: Mapping[str, str], account: Path) -> Merged | None:
    """The pod's service account as a kubeconfig (client-go's in-cluster config), if this runs in a pod."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST", ""), environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port or not (account / "token").exists():
        return None
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    cluster = {"server": server, "certificate-authority": str(account / "ca.crt")}
    user = {"tokenFile": str(account / "token")}
    context = {"cluster": IN_CLUSTER, "user": IN_CLUSTER}
    return Merged((), {IN_CLUSTER: cluster}, {IN_CLUSTER: user}, {IN_CLUSTER: context}, IN_CLUSTER)


def _select(merged: Merged, overrides: Overrides) -> tuple[str, str, str]:
    """The context, cluster and user names: --context/--cluster/--user, else the current context's."""
    where = ", ".join(map(str, merged.files)) or "no kubeconfig file"
    context_name = overrides.context or merged.current_context
    if overrides.context and overrides.context not in merged.contexts:
        raise _error(f'context "{overrides.context}" does not exist (kubeconfig: {where})')
    context = merged.contexts.get(context_name, {})
    cluster_name = overrides.cluster or _text(context, "cluster", f'context "{context_name}"')
    user_name = overrides.user or _text(context, "user", f'context "{context_name}"')
    if overrides.cluster and overrides.cluster not in merged.clusters:
        raise _error(f'cluster "{overrides.cluster}" does not exist (kubeconfig: {where})')
    if overrides.user and overrides.user not in merged.users:
        raise _error(
            f'auth info "{overrides.user}" does not exist (kubeconfig: {where})\n'
            "hint: --user picks a kubeconfig user, as in kubectl; to filter events by who made them use --actor"
        )
    if not _text(merged.clusters.get(cluster_name, {}), "server", f'cluster "{cluster_name}"') and not overrides.server:
        raise _error(
            f"no server found for cluster {cluster_name!r} (kubeconfig: {where})\n"
            "hint: point --kubeconfig or KUBECONFIG at a kubeconfig for the cluster, --context at a context in it, "
            "or give --server"
        )
    return context_name, cluster_name, user_name


def _cluster_with(cluster: Mapping[str, Any], overrides: Overrides) -> dict[str, Any]:
    """The cluster entry with the flags applied as clientcmd applies them."""
    merged = dict(cluster)
    if overrides.server:
        merged["server"] = overrides.server
    if overrides.server or overrides.tls_server_name:  # --server clears the kubeconfig's tls-server-name
        merged["tls-server-name"] = overrides.tls_server_name or ""
    if overrides.insecure_skip_tls_verify or overrides.certificate_authority:  # they replace all three CA fields
        merged["insecure-skip-tls-verify"] = overrides.insecure_skip_tls_verify
        ca_file = overrides.certificate_authority
        merged["certificate-authority"] = os.path.abspath(ca_file) if ca_file else ""
        merged["certificate-authority-data"] = ""
    return merged


def _user_with(user: Mapping[str, Any], overrides: Overrides) -> dict[str, Any]:
    """The user entry with the flags applied as clientcmd applies them (a flag given replaces the field)."""
    merged = dict(user)
    if overrides.token:
        merged["token"] = overrides.token
    if overrides.client_certificate:  # next to a kubeconfig's *-data it is refused, as by kubectl
        merged["client-certificate"] = os.path.abspath(overrides.client_certificate)
    if overrides.client_key:
        merged["client-key"] = os.path.abspath(overrides.client_key)
    if overrides.impersonate:
        merged["as"] = overrides.impersonate
    if overrides.impersonate_groups:
        merged["as-groups"] = list(overrides.impersonate_groups)
    if overrides.impersonate_uid:
        merged["as-uid"] = overrides.impersonate_uid
    return merged


def _token(user: Mapping[str, Any], where: str) -> str:
    token = _text(user, "token", where)
    if token or not _text(user, "tokenFile", where):
        return token
    path = _resolve(user, _text(user, "tokenFile", where))
    try:
        token = Path(path).read_text().strip()
    except OSError as err:
        raise _error(f"open {path}: {err.strerror or err} ({where} tokenFile)") from None
    if not token:
        raise _error(f"read empty token from file {path!r} ({where} tokenFile)")
    return token


def _client_pair(user: Mapping[str, Any], name: str, where: str) -> tuple[Pem | None, Pem | None]:
    cert = _pem(user, "client-certificate", "client-certificate-data", where)
    key = _pem(user, "client-key", "client-key-data", where)
    if cert is not None and key is None:
        raise _error(
            f"client-key-data or client-key must be specified for {name} to use the clientCert authentication method."
        )
    if key is not None and cert is None:
        raise _error(
            f"client-certificate-data or client-certificate must be specified for {name} to use the clientCert "
            "authentication method."
        )
    return cert, key


def _refuse_unknown_fields(user: Mapping[str, Any], where: str) -> None:
    unknown = sorted(str(k) for k in user if k not in USER_FIELDS and k != "__file__")
    if unknown:
        raise _error(
            f"{where} has field(s) kubectl-activity does not know: {', '.join(unknown)}. It will not ignore what may "
            f"be part of the identity; the fields of a user entry are: {', '.join(sorted(USER_FIELDS))}"
        )


def _refuse_auth_provider(user: Mapping[str, Any], where: str) -> None:
    provider = user.get("auth-provider")
    if provider is None:
        return
    kind = provider.get("name") if isinstance(provider, Mapping) else None
    raise _error(
        f"{where} uses auth-provider {kind or '(unnamed)'}, which kubectl-activity does not support: it will not "
        "fall back to another identity. Use an exec credential plugin instead (kubelogin for OIDC, "
        "gke-gcloud-auth-plugin, kubelogin for Azure), as kubectl itself now recommends"
    )


def client_config(
    overrides: Overrides, environ: Mapping[str, str] | None = None, *, service_account: Path = SERVICE_ACCOUNT_DIR
) -> ClientConfig:
    """The connection kubectl would make with these flags and this environment, or a PluginError saying why not."""
    merged = load(overrides, environ)
    if not merged.files and not overrides.kubeconfig:
        merged = in_cluster(os.environ if environ is None else environ, service_account) or merged
    context_name, cluster_name, user_name = _select(merged, overrides)
    cluster = _cluster_with(merged.clusters.get(cluster_name, {}), overrides)
    user = _user_with(merged.users.get(user_name, {}), overrides)
    cluster_where, user_where = f'cluster "{cluster_name}"', f'user "{user_name}"'

    server = _text(cluster, "server", cluster_where).rstrip("/")
    try:
        parts = urlsplit(server if "://" in server else f"https://{server}")
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError as err:
        raise _error(f"{cluster_where}: the server {server!r} is not a URL: {err}") from None
    if parts.scheme != "https" or not parts.hostname:
        raise _error(
            f"the server {server} is not an https:// URL: kubectl would send it no credentials and no "
            "impersonation, so kubectl-activity refuses it (the Activity API is served over HTTPS)"
        )
    insecure = _flag(cluster, "insecure-skip-tls-verify", cluster_where)
    ca = _pem(cluster, "certificate-authority", "certificate-authority-data", cluster_where)
    if insecure and ca is not None:
        raise _error("specifying a root certificates file with the insecure flag is not allowed")
    proxy = _text(cluster, "proxy-url", cluster_where)
    _check_proxy(proxy, cluster_where)

    _refuse_unknown_fields(user, user_where)
    _refuse_auth_provider(user, user_where)
    token = _token(user, user_where)
    username, password = _text(user, "username", user_where), _text(user, "password", user_where)
    if token and (username or password):
        raise _error(
            f"more than one authentication method found for {user_name}; found [token basicAuth], only one is allowed"
        )
    cert, key = _client_pair(user, user_name, user_where)
    exec_config = _exec(user, user_name)
    if token or username or password or cert is not None:
        exec_config = None  # client-go does not run the plugin when another credential is given
    elif exec_config is None:
        raise _error(
            f"the kubeconfig user {user_name!r} has no credentials (token, tokenFile, client certificate, exec "
            "plugin or username/password): kubectl would prompt for a username and password, kubectl-activity "
            "does not\nhint: use --context/--user to pick a user that has credentials, or --token"
        )
    impersonation = Impersonation(
        _text(user, "as", user_where),
        _text(user, "as-uid", user_where),
        _strings(user, "as-groups", user_where),
        _extra(user, user_where),
    )
    if not impersonation.user and (impersonation.uid or impersonation.groups or impersonation.extra):
        raise _error(f"requesting uid, groups or user-extra for {user_name} without impersonating a user")
    return ClientConfig(
        server=server,
        context=context_name,
        cluster=cluster_name,
        user=user_name,
        ca=ca,
        insecure_skip_tls_verify=insecure,
        tls_server_name=_text(cluster, "tls-server-name", cluster_where),
        proxy_url=proxy,
        client_cert=cert,
        client_key=key,
        token=token,
        basic=(username, password) if username or password else None,
        exec=exec_config,
        impersonation=impersonation,
        exec_cluster_config=_exec_cluster_config(cluster),
    )
