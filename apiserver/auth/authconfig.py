"""Delegated authentication/authorization flags, named as every Kubernetes aggregated server names them, and the
frozen settings built from them.

Lists are comma-separated (`--requestheader-allowed-names=front-proxy-client,aggregator`), durations are Go's
(`10s`, `1m30s`, `500ms`, exactly as time.ParseDuration reads them), booleans accept `--flag`, `--flag=true|false`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from apiserver.auth.authorize import ALLOW_TTL_SECONDS, DEFAULT_ALWAYS_ALLOW_PATHS, DENY_TTL_SECONDS, Mode, PathMatcher
from apiserver.auth.configmap import POLL_SECONDS
from apiserver.auth.requestheader import RequestHeaderConfig
from apiserver.auth.tokenreview import CACHE_TTL_SECONDS
from apiserver.auth.trust import FILE_CHECK_INTERVAL_SECONDS
from auditlog.durations import duration_flag, flag_default


def comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not a boolean (true or false)")


def _mode(value: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: choose Delegated or AlwaysAllow") from None


def _paths(value: str) -> list[str]:
    paths = comma_list(value)
    try:
        PathMatcher(paths)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return paths


def add_auth_arguments(parser: argparse.ArgumentParser) -> None:
    default = RequestHeaderConfig()
    authn = parser.add_argument_group("delegated authentication")
    authn.add_argument(
        "--client-ca-file",
        type=Path,
        help="PEM CA bundle; a client certificate it signed authenticates as user = CN, groups = O. "
        "Unset: taken from configmap kube-system/extension-apiserver-authentication",
    )
    authn.add_argument(
        "--requestheader-client-ca-file",
        type=Path,
        help="PEM CA bundle of the front proxy (kube-apiserver's aggregator); only callers with a certificate it "
        "signed may assert identities in X-Remote-* headers. Unset: taken from the configmap",
    )
    authn.add_argument(
        "--requestheader-allowed-names",
        type=comma_list,
        default=[],
        help="front-proxy certificate CNs allowed to assert identities (empty: any CN the CA signed)",
    )
    authn.add_argument(
        "--requestheader-username-headers",
        type=comma_list,
        default=list(default.username_headers),
        help="headers holding the user name; the first non-empty one wins",
    )
    authn.add_argument(
        "--requestheader-uid-headers", type=comma_list, default=[], help="headers holding the user's UID"
    )
    authn.add_argument(
        "--requestheader-group-headers",
        type=comma_list,
        default=list(default.group_headers),
        help="headers holding group names; every value of every header is a group",
    )
    authn.add_argument(
        "--requestheader-extra-headers-prefix",
        type=comma_list,
        default=list(default.extra_headers_prefixes),
        help="header prefixes for user extras; the rest of the name, lower-cased and percent-decoded, is the key",
    )
    authn.add_argument(
        "--authentication-kubeconfig",
        type=Path,
        help="kubeconfig for TokenReview and the configmap lookup (unset: the pod's service account)",
    )
    authn.add_argument(
        "--authentication-tolerate-lookup-failure",
        type=boolean,
        nargs="?",
        const=True,
        default=False,
        help="start even if the configmap cannot be read (client-cert and front-proxy auth may then be off)",
    )
    authn.add_argument(
        "--authentication-token-webhook-cache-ttl",
        type=duration_flag,
        default=flag_default(CACHE_TTL_SECONDS),
        help="how long TokenReview answers are cached (Go duration like 10s or 2m)",
    )
    authn.add_argument(
        "--anonymous-auth",
        type=boolean,
        nargs="?",
        const=True,
        default=False,
        help="serve requests without credentials as system:anonymous (then still subject to authorization)",
    )
    authz = parser.add_argument_group("delegated authorization")
    authz.add_argument(
        "--authorization-mode",
        type=_mode,
        default=Mode.DELEGATED,
        help="Delegated: ask kube-apiserver (SubjectAccessReview); AlwaysAllow: no checks (local use only)",
    )
    authz.add_argument(
        "--authorization-kubeconfig",
        type=Path,
        help="kubeconfig for SubjectAccessReview (unset: the pod's service account)",
    )
    authz.add_argument(
        "--authorization-always-allow-paths",
        type=_paths,
        default=list(DEFAULT_ALWAYS_ALLOW_PATHS),
        help="paths served without authorization; a trailing * matches a prefix",
    )
    authz.add_argument(
        "--authorization-webhook-cache-authorized-ttl",
        type=duration_flag,
        default=flag_default(ALLOW_TTL_SECONDS),
        help="how long an allowed SubjectAccessReview is cached",
    )
    authz.add_argument(
        "--authorization-webhook-cache-unauthorized-ttl",
        type=duration_flag,
        default=flag_default(DENY_TTL_SECONDS),
        help="how long a denied SubjectAccessReview is cached",
    )


@dataclass(frozen=True)
class AuthSettings:
    client_ca_file: Path | None = None
    requestheader_client_ca_file: Path | None = None
    requestheader: RequestHeaderConfig = field(default_factory=RequestHeaderConfig)
    authentication_kubeconfig: Path | None = None
    authorization_kubeconfig: Path | None = None
    tolerate_lookup_failure: bool = False
    anonymous: bool = False
    token_cache_ttl: float = CACHE_TTL_SECONDS
    authorization_mode: Mode = Mode.DELEGATED
    always_allow_paths: tuple[str, ...] = DEFAULT_ALWAYS_ALLOW_PATHS
    authorized_ttl: float = ALLOW_TTL_SECONDS
    unauthorized_ttl: float = DENY_TTL_SECONDS
    # not flags: how often CA files are checked and the configmap re-read (tests shorten them)
    ca_check_interval: float = FILE_CHECK_INTERVAL_SECONDS
    configmap_poll_interval: float = POLL_SECONDS

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AuthSettings:
        return cls(
            client_ca_file=args.client_ca_file,
            requestheader_client_ca_file=args.requestheader_client_ca_file,
            requestheader=RequestHeaderConfig(
                username_headers=tuple(args.requestheader_username_headers),
                group_headers=tuple(args.requestheader_group_headers),
                extra_headers_prefixes=tuple(args.requestheader_extra_headers_prefix),
                uid_headers=tuple(args.requestheader_uid_headers),
                allowed_names=tuple(args.requestheader_allowed_names),
            ),
            authentication_kubeconfig=args.authentication_kubeconfig,
            authorization_kubeconfig=args.authorization_kubeconfig,
            tolerate_lookup_failure=args.authentication_tolerate_lookup_failure,
            anonymous=args.anonymous_auth,
            token_cache_ttl=args.authentication_token_webhook_cache_ttl,
            authorization_mode=args.authorization_mode,
            always_allow_paths=tuple(args.authorization_always_allow_paths),
            authorized_ttl=args.authorization_webhook_cache_authorized_ttl,
            unauthorized_ttl=args.authorization_webhook_cache_unauthorized_ttl,
        )
