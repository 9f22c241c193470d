"""The delegated-auth flags: Kubernetes names and value syntax, ACTIVITY_* environment variables, clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from activity.cli import apply_env_defaults
from apiserver.auth.authconfig import AuthSettings, add_auth_arguments
from apiserver.auth.authorize import DEFAULT_ALWAYS_ALLOW_PATHS, Mode
from apiserver.auth.requestheader import RequestHeaderConfig


def parse(argv: list[str], environ: dict[str, str] | None = None) -> AuthSettings:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_auth_arguments(parser)
    apply_env_defaults(parser, environ or {})
    return AuthSettings.from_args(parser.parse_args(argv))


def test_defaults_are_kubes_secure_ones() -> None:
    settings = parse([])
    assert settings == AuthSettings(requestheader=RequestHeaderConfig())
    assert (settings.anonymous, settings.authorization_mode) == (False, Mode.DELEGATED)
    assert settings.always_allow_paths == DEFAULT_ALWAYS_ALLOW_PATHS
    assert (settings.token_cache_ttl, settings.authorized_ttl, settings.unauthorized_ttl) == (10.0, 10.0, 10.0)


def test_flags_as_a_kubernetes_deployment_writes_them() -> None:
    settings = parse(
        [
            "--client-ca-file=/etc/ca/client.crt",
            "--requestheader-client-ca-file=/etc/ca/front-proxy.crt",
            "--requestheader-allowed-names=front-proxy-client,aggregator",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-uid-headers=X-Remote-Uid",
            "--authentication-kubeconfig=/etc/kube/authn",
            "--authorization-kubeconfig=/etc/kube/authz",
            "--authentication-tolerate-lookup-failure",
            "--anonymous-auth=false",
            "--authorization-mode=AlwaysAllow",
            "--authorization-always-allow-paths=/healthz,/openapi/*",
            "--authentication-token-webhook-cache-ttl=2m",
            "--authorization-webhook-cache-authorized-ttl=500ms",
            "--authorization-webhook-cache-unauthorized-ttl=1m30s",  # Go durations, as client-go writes them
        ]
    )
    assert settings == AuthSettings(
        client_ca_file=Path("/etc/ca/client.crt"),
        requestheader_client_ca_file=Path("/etc/ca/front-proxy.crt"),
        requestheader=RequestHeaderConfig(
            username_headers=("X-Remote-User",),
            group_headers=("X-Remote-Group",),
            extra_headers_prefixes=("X-Remote-Extra-",),
            uid_headers=("X-Remote-Uid",),
            allowed_names=("front-proxy-client", "aggregator"),
        ),
        authentication_kubeconfig=Path("/etc/kube/authn"),
        authorization_kubeconfig=Path("/etc/kube/authz"),
        tolerate_lookup_failure=True,
        anonymous=False,
        token_cache_ttl=120.0,
        authorization_mode=Mode.ALWAYS_ALLOW,
        always_allow_paths=("/healthz", "/openapi/*"),
        authorized_ttl=0.5,
        unauthorized_ttl=90.0,
    )


def test_environment_variables() -> None:
    settings = parse(
        [],
        {
            "ACTIVITY_ANONYMOUS_AUTH": "true",
            "ACTIVITY_REQUESTHEADER_ALLOWED_NAMES": "a,b",
            "ACTIVITY_AUTHORIZATION_MODE": "AlwaysAllow",
        },
    )
    assert (settings.anonymous, settings.requestheader.allowed_names, settings.authorization_mode) == (
        True,
        ("a", "b"),
        Mode.ALWAYS_ALLOW,
    )


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--authorization-mode=RBAC", "choose Delegated or AlwaysAllow"),
        ("--authorization-always-allow-paths=/a*/b", "only a trailing \\* is allowed"),
        ("--authentication-token-webhook-cache-ttl=10 minutes", "not a duration: unknown unit ' minutes'"),
        ("--authentication-token-webhook-cache-ttl=30", "a unit is missing"),  # as Kubernetes' own flags
        ("--authorization-webhook-cache-authorized-ttl=-1s", "is negative"),
        ("--anonymous-auth=maybe", "not a boolean"),
    ],
)
def test_bad_values_say_what_to_fix(flag: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentError, match=message):
        parse([flag])
