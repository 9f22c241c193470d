"""The plugin acts as the identity kubectl would: for the same kubeconfig and flags, the real kubectl
(`kubectl get --raw`) and the plugin (`kubectl activity query`) must present the same client certificate, the
same Authorization and Impersonate-* headers, ask for the same TLS server name and go through the same proxy.
A recording HTTPS server (tests/recorder_support.py) shows what each sent. What the plugin cannot honour it
refuses, sending nothing."""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from plugin_support import SCRIPTS
from recorder_support import Answer, Recorder, Seen, connect_proxy, empty_page, recording_server

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")

API_PATH = "/apis/activity.miloapis.com/v1alpha1"
QUERY_PATH = f"{API_PATH}/auditlogqueries"


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    with recording_server(tmp_path_factory.mktemp("recorder")) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(recorder: Recorder) -> Iterator[None]:
    recorder.take()
    recorder.answers = empty_page
    yield
    recorder.answers = empty_page


def write_config(
    path: Path,
    recorder: Recorder,
    users: Mapping[str, Mapping[str, Any]],
    cluster: Mapping[str, Any] | None = None,
    current: str | None = None,
) -> Path:
    """One cluster (the recorder, its CA unless `cluster` says otherwise), one context per user named after it."""
    body = {"server": recorder.url, "certificate-authority": str(recorder.ca_file)} | dict(cluster or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {k: v for k, v in body.items() if v is not None}}],
                "users": [{"name": name, "user": dict(user)} for name, user in users.items()],
                "contexts": [{"name": name, "context": {"cluster": "c", "user": name}} for name in users],
                "current-context": current or next(iter(users)),
            }
        )
    )
    return path


@dataclass(frozen=True)
class Run:
    code: int
    stderr: str
    seen: list[Seen]

    @property
    def last(self) -> Seen:
        assert self.seen, f"no request reached the server: {self.stderr}"
        return self.seen[-1]


def environment(tmp_path: Path, kubeconfig: Path | str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    return (
        env
        | {
            "PATH": SCRIPTS + os.pathsep + os.environ["PATH"],
            "KUBECONFIG": str(kubeconfig),
            "HOME": str(tmp_path),  # no ~/.kube/config of the machine's
            "KUBECACHEDIR": str(tmp_path / "kubecache"),
        }
        | dict(extra or {})
    )


def run(recorder: Recorder, command: Sequence[str], env: Mapping[str, str]) -> Run:
    done = subprocess.run(
        command, capture_output=True, text=True, env=dict(env), timeout=120, check=False, stdin=subprocess.DEVNULL
    )
    return Run(done.returncode, done.stderr, [s for s in recorder.take() if not s.path.startswith("/version")])


def kubectl(recorder: Recorder, env: Mapping[str, str], *flags: str) -> Run:
    return run(recorder, ["kubectl", *flags, "get", "--raw", API_PATH], env)


def plugin(recorder: Recorder, env: Mapping[str, str], *flags: str) -> Run:
    return run(recorder, ["kubectl", "activity", "query", *flags], env)


def both(recorder: Recorder, env: Mapping[str, str], *flags: str) -> tuple[Run, Run]:
    return kubectl(recorder, env, *flags), plugin(recorder, env, *flags)


def same_identity(recorder: Recorder, env: Mapping[str, str], *flags: str) -> Seen:
    theirs, ours = both(recorder, env, *flags)
    assert theirs.code == 0, theirs.stderr
    assert ours.code == 0, ours.stderr
    assert ours.last.method == "POST" and ours.last.path.split("?")[0] == QUERY_PATH
    assert ours.last.identity() == theirs.last.identity()
    assert ours.last.sni == theirs.last.sni
    assert ours.last.query == theirs.last.query  # ?timeout=, when --request-timeout is given
    return ours.last


def pem_data(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


# (kubeconfig user entry, cluster fields, flags): each a field or flag kubectl honours; the plugin must too.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]] = {
    "token": ({"token": "t0ken"}, {}, ()),
    "basic": ({"username": "u", "password": "p:w"}, {}, ()),
    "token-over-token-file": ({"token": "t0ken", "tokenFile": "/nowhere"}, {}, ()),
    "impersonation": (
        {
            "token": "t0ken",
            "as": "bob",
            "as-groups": ["dev", "ops"],
            "as-uid": "1234",
            "as-user-extra": {"scopes": ["view", "edit"], "example.com/Team%é": ["a b"], "reason": ["audit"]},
        },
        {},
        (),
    ),
    "as-flags": ({"token": "t0ken"}, {}, ("--as", "carol", "--as-group", "a", "--as-group", "b", "--as-uid", "9")),
    "as-flag-over-kubeconfig": ({"token": "t0ken", "as": "bob", "as-groups": ["g"]}, {}, ("--as", "carol")),
    "as-group-flag-replaces-groups": ({"token": "t0ken", "as": "bob", "as-groups": ["g"]}, {}, ("--as-group", "h")),
    "token-flag": ({"token": "t0ken"}, {}, ("--token", "other")),
    "tls-server-name": ({"token": "t0ken"}, {"tls-server-name": "localhost"}, ()),
    "insecure-skip-tls-verify": (
        {"token": "t0ken"},
        {"insecure-skip-tls-verify": True, "certificate-authority": None},
        (),
    ),
    "tls-server-name-flag": ({"token": "t0ken"}, {}, ("--tls-server-name", "localhost")),
    "insecure-flag-clears-ca": ({"token": "t0ken"}, {}, ("--insecure-skip-tls-verify",)),
    "request-timeout-go-duration": ({"token": "t0ken"}, {}, ("--request-timeout", "1m30s")),
    "request-timeout-seconds": ({"token": "t0ken"}, {}, ("--request-timeout", "45")),
    "request-timeout-zero": ({"token": "t0ken"}, {}, ("--request-timeout", "0")),
}


@pytest.mark.parametrize("case", CASES)
def test_the_plugin_sends_what_kubectl_sends(recorder: Recorder, tmp_path: Path, case: str) -> None:
    user, cluster, flags = CASES[case]
    config = write_config(tmp_path / "config", recorder, {"u": user}, cluster)
    same_identity(recorder, environment(tmp_path, config), *flags)


def test_client_certificates_from_files_and_inline(recorder: Recorder, tmp_path: Path) -> None:
    cert, key = recorder.client_pair("alice", ["dev"])
    users = {
        "files": {"client-certificate": str(cert), "client-key": str(key)},
        "inline": {"client-certificate-data": pem_data(cert), "client-key-data": pem_data(key)},
        "cert-and-token": {"client-certificate": str(cert), "client-key": str(key), "token": "t0ken"},
    }
    config = write_config(tmp_path / "config", recorder, users)
    env = environment(tmp_path, config)
    for name in users:
        assert same_identity(recorder, env, "--context", name).client_cn == "alice"
    assert same_identity(recorder, env, "--context", "files", "--token", "x").client_cn == "alice"
    other_cert, other_key = recorder.client_pair("bob")
    flags = ("--client-certificate", str(other_cert), "--client-key", str(other_key))
    assert same_identity(recorder, env, "--context", "files", *flags).client_cn == "bob"  # flags replace files
    theirs, ours = both(recorder, env, "--context", "inline", *flags)  # a file next to inline data: refused
    assert theirs.code != 0 and theirs.seen == []
    assert ours.code == 1 and ours.seen == [] and "are both specified" in ours.stderr


def test_context_cluster_and_user_flags_pick_entries(recorder: Recorder, tmp_path: Path) -> None:
    users = {"first": {"token": "one"}, "second": {"token": "two", "as": "bob"}}
    config = write_config(tmp_path / "config", recorder, users, current="first")
    env = environment(tmp_path, config)
    assert same_identity(recorder, env).identity()[1] == (("authorization", "Bearer one"),)
    assert same_identity(recorder, env, "--context", "second").identity()[1][0] == ("authorization", "Bearer two")
    assert same_identity(recorder, env, "--user", "second").identity()[1][0] == ("authorization", "Bearer two")
    assert same_identity(recorder, env, "--cluster", "c", "--user", "first").identity()[1] == (
        ("authorization", "Bearer one"),
    )


def test_server_flag_and_certificate_authority_flag(recorder: Recorder, tmp_path: Path) -> None:
    wrong_ca = tmp_path / "wrong-ca.crt"
    wrong_ca.write_bytes(recorder.client_ca.cert_pem)  # does not sign the serving certificate
    config = write_config(
        tmp_path / "config", recorder, {"u": {"token": "t"}}, {"certificate-authority": str(wrong_ca)}
    )
    env = environment(tmp_path, config)
    seen = same_identity(recorder, env, "--certificate-authority", str(recorder.ca_file))
    assert seen.identity()[1] == (("authorization", "Bearer t"),)
    by_name = recorder.url.replace("127.0.0.1", "localhost")
    assert same_identity(recorder, env, "-s", by_name, "--certificate-authority", str(recorder.ca_file)).sni == (
        "localhost"
    )
    # --server clears the kubeconfig's tls-server-name, as in kubectl
    named = write_config(tmp_path / "named", recorder, {"u": {"token": "t"}}, {"tls-server-name": "localhost"})
    assert same_identity(recorder, environment(tmp_path, named), "--server", recorder.url).sni == ""
    theirs, ours = both(recorder, env)  # the wrong CA: both refuse to talk to the server
    assert theirs.code != 0 and ours.code == 1
    assert "certificate" in ours.stderr and "Traceback" not in ours.stderr


def test_certificate_authority_data_and_relative_paths(recorder: Recorder, tmp_path: Path) -> None:
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    shutil.copy(recorder.ca_file, directory / "ca.crt")
    (directory / "token").write_text("from-a-file\n")
    cert, key = recorder.client_pair("relative")
    shutil.copy(cert, directory / "client.crt")
    shutil.copy(key, directory / "client.key")
    user = {"tokenFile": "token", "client-certificate": "client.crt", "client-key": "client.key"}
    config = write_config(directory / "config", recorder, {"u": user}, {"certificate-authority": "ca.crt"})
    seen = same_identity(recorder, environment(tmp_path, config))  # paths are relative to the kubeconfig's folder
    assert seen.identity() == ("relative", (("authorization", "Bearer from-a-file"),))
    inline = write_config(
        tmp_path / "inline",
        recorder,
        {"u": {"token": "t"}},
        {"certificate-authority": None, "certificate-authority-data": pem_data(recorder.ca_file)},
    )
    same_identity(recorder, environment(tmp_path, inline))


def test_kubeconfig_files_merge_as_kubectl_merges_them(recorder: Recorder, tmp_path: Path) -> None:
    """First file wins per user/cluster/context name; current-context from the first file that sets it; files
    that do not exist are skipped; relative paths stay relative to their own file."""
    first = write_config(tmp_path / "a" / "config", recorder, {"shared": {"token": "from-a"}}, current="shared")
    second_dir = tmp_path / "b"
    second_dir.mkdir()
    (second_dir / "token").write_text("from-b-file")
    second = write_config(
        second_dir / "config",
        recorder,
        {"shared": {"token": "ignored"}, "only-b": {"tokenFile": "token", "as": "bob"}},
        current="only-b",
    )
    listing = os.pathsep.join([str(tmp_path / "missing"), str(first), str(second)])
    env = environment(tmp_path, listing)
    assert same_identity(recorder, env).identity()[1] == (("authorization", "Bearer from-a"),)
    seen = same_identity(recorder, env, "--context", "only-b")
    assert seen.identity()[1] == (("authorization", "Bearer from-b-file"), ("impersonate-user", "bob"))
    # without a current-context in the first file, the second's applies
    bare = yaml.safe_load(first.read_text()) | {"current-context": ""}
    first.write_text(yaml.safe_dump(bare))
    assert same_identity(recorder, env).identity()[1][0] == ("authorization", "Bearer from-b-file")


def test_proxy_url_tunnels_through_the_proxy(recorder: Recorder, tmp_path: Path) -> None:
    with connect_proxy() as proxy:
        config = write_config(tmp_path / "config", recorder, {"u": {"token": "t"}}, {"proxy-url": proxy.url})
        env = environment(tmp_path, config)
        theirs = kubectl(recorder, env)
        their_tunnels = list(proxy.tunnels)
        proxy.tunnels.clear()
        ours = plugin(recorder, env)
        assert theirs.code == 0 and ours.code == 0, ours.stderr
        target = recorder.url.removeprefix("https://")
        assert [t for t, _ in their_tunnels] == [target] * len(their_tunnels)
        assert proxy.tunnels == [(target, "")]
        assert ours.last.identity() == theirs.last.identity()
        # HTTPS_PROXY is not used for a loopback server, by either
        env = environment(tmp_path, write_config(tmp_path / "plain", recorder, {"u": {"token": "t"}}))
        proxy.tunnels.clear()
        assert same_identity(recorder, env | {"HTTPS_PROXY": proxy.url}) and proxy.tunnels == []


def exec_helper(tmp_path: Path, status: Mapping[str, Any]) -> Path:
    """A credential plugin that appends what it was given (args, FOO, KUBERNETES_EXEC_INFO) to a log and prints
    an ExecCredential of the apiVersion it was asked for, with `status`."""
    helper = tmp_path / "credential.py"
    helper.write_text(
        "import json, os, sys\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        f"with open({str(tmp_path / 'calls.log')!r}, 'a') as log:\n"
        "    log.write(json.dumps({'args': sys.argv[1:], 'foo': os.environ.get('FOO'), 'info': info}) + '\\n')\n"
        f"status = {dict(status)!r}\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential', 'status': status}))\n"
    )
    return helper


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("version", ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"])
def test_exec_plugins_get_what_kubectl_gives_them(recorder: Recorder, tmp_path: Path, version: str) -> None:
    helper = exec_helper(tmp_path, {"token": "exec-token", "expirationTimestamp": "2099-01-01T00:00:00Z"})
    user = {
        "exec": {
            "apiVersion": version,
            "command": sys.executable,
            "args": [str(helper), "two words"],
            "env": [{"name": "FOO", "value": "bar"}],
            "provideClusterInfo": True,
            "interactiveMode": "Never",
        }
    }
    extension = [{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "activity"}}]
    config = write_config(
        tmp_path / "config", recorder, {"u": user}, {"tls-server-name": "localhost", "extensions": extension}
    )
    env = environment(tmp_path, config)
    theirs = kubectl(recorder, env)
    their_calls = calls(tmp_path)
    ours = plugin(recorder, env)
    our_calls = calls(tmp_path)
    assert theirs.code == 0 and ours.code == 0, ours.stderr
    assert ours.last.identity() == theirs.last.identity() == ("", (("authorization", "Bearer exec-token"),))
    assert our_calls == their_calls[:1]  # the same args, env and KUBERNETES_EXEC_INFO (cluster info included)
    assert our_calls[0]["info"]["spec"]["cluster"]["config"] == {"audience": "activity"}


def test_exec_plugins_are_interactive_on_a_terminal_as_with_kubectl(recorder: Recorder, tmp_path: Path) -> None:
    """IfAvailable (v1beta1's default): interactive when stdin is a terminal (util-linux `script` provides one)."""
    helper = exec_helper(tmp_path, {"token": "exec-token"})
    exec_spec = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable, "args": [str(helper)]}
    config = write_config(tmp_path / "config", recorder, {"u": {"exec": exec_spec}})
    env = environment(tmp_path, config)
    interactive = []
    for command in (["kubectl", "get", "--raw", API_PATH], ["kubectl", "activity", "query"]):
        subprocess.run(
            ["script", "-qec", shlex.join(command), "/dev/null"],
            env=env,
            capture_output=True,
            timeout=120,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        interactive.append([call["info"]["spec"]["interactive"] for call in calls(tmp_path)])
    assert interactive == [[True], [True]]


def test_exec_plugin_client_certificates(recorder: Recorder, tmp_path: Path) -> None:
    cert, key = recorder.client_pair("exec-user", ["dev"])
    helper = exec_helper(tmp_path, {"clientCertificateData": cert.read_text(), "clientKeyData": key.read_text()})
    exec_spec = {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable, "args": [str(helper)]}
    config = write_config(tmp_path / "config", recorder, {"u": {"exec": exec_spec | {"interactiveMode": "Never"}}})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    seen = same_identity(recorder, environment(tmp_path, config, {"TMPDIR": str(scratch)}))
    assert seen.client_cn == "exec-user"
    assert list(scratch.iterdir()) == [], "no copy of the private key is left behind"


def paged(pages: int) -> Any:
    """Answers POSTs with `pages` pages (continue tokens 1..pages-1)."""

    def answer(seen: Seen) -> Answer:
        if seen.method != "POST":
            return empty_page(seen)
        spec = json.loads(seen.body)["spec"]
        number = int(spec.get("continue") or 0) + 1
        status = {"results": [], "continue": str(number) if number < pages else ""}
        return Answer(201, {"kind": "AuditLogQuery", "status": status})

    return answer


@pytest.mark.parametrize(("expires", "runs"), [("2099-01-01T00:00:00Z", 1), (None, 1), ("2000-01-01T00:00:00Z", 3)])
def test_exec_credential_is_cached_until_it_expires(
    recorder: Recorder, tmp_path: Path, expires: str | None, runs: int
) -> None:
    status = {"token": "exec-token"} | ({"expirationTimestamp": expires} if expires else {})
    helper = exec_helper(tmp_path, status)
    exec_spec = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable, "args": [str(helper)]}
    config = write_config(tmp_path / "config", recorder, {"u": {"exec": exec_spec}})
    recorder.answers = paged(3)
    ours = plugin(recorder, environment(tmp_path, config), "--all-pages", "-o", "json")
    assert ours.code == 0, ours.stderr
    assert len(ours.seen) == 3
    assert len(calls(tmp_path)) == runs


# What kubectl refuses, the plugin refuses, before sending anything.
REFUSED: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[str, ...], str]] = {
    "groups-without-user": ({"token": "t", "as-groups": ["g"]}, {}, (), "without impersonating a user"),
    "uid-flag-without-user": ({"token": "t"}, {}, ("--as-uid", "9"), "without impersonating a user"),
    "token-and-basic": ({"token": "t", "username": "u", "password": "p"}, {}, (), "more than one authentication"),
    "certificate-without-key": ({"client-certificate": "/dev/null"}, {}, (), "client-key-data or client-key"),
    "insecure-with-ca": ({"token": "t"}, {"insecure-skip-tls-verify": True}, (), "insecure flag is not allowed"),
    "missing-token-file": ({"tokenFile": "/nonexistent/token"}, {}, (), "/nonexistent/token"),
    "unknown-user": ({"token": "t"}, {}, ("--user", "nobody"), 'auth info "nobody" does not exist'),
    "unknown-cluster": ({"token": "t"}, {}, ("--cluster", "nowhere"), 'cluster "nowhere" does not exist'),
    "exec-v1-without-interactive-mode": (
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "true"}},
        {},
        (),
        "interactiveMode must be specified",
    ),
    "exec-always-interactive-without-terminal": (
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "true", "interactiveMode": "Always"}},
        {},
        (),
        "standard input is not a terminal",
    ),
    "exec-not-installed": (
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "no-such-credential-helper",
                "interactiveMode": "Never",
                "installHint": "install it with your package manager",
            }
        },
        {},
        (),
        "install it with your package manager",
    ),
    # kubectl would prompt for a password (and fails without a terminal); the plugin never sends anonymously
    "no-credentials": ({"as": "bob"}, {}, (), "has no credentials"),
    "ca-file-and-data": (
        {"token": "t"},
        {"certificate-authority-data": base64.b64encode(b"x").decode()},
        (),
        "certificate-authority-data and certificate-authority are both specified",
    ),
    "ca-that-is-not-pem": (
        {"token": "t"},
        {"certificate-authority": None, "certificate-authority-data": base64.b64encode(b"garbage").decode()},
        (),
        "root certificates",
    ),
    "bad-timeout": ({"token": "t"}, {}, ("--request-timeout", "1d"), "request-timeout"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_what_kubectl_refuses_the_plugin_refuses(recorder: Recorder, tmp_path: Path, case: str) -> None:
    user, cluster, flags, says = REFUSED[case]
    config = write_config(tmp_path / "config", recorder, {"u": user}, cluster)
    theirs, ours = both(recorder, environment(tmp_path, config), *flags)
    assert theirs.code != 0 and theirs.seen == []
    assert ours.code == 1 and ours.seen == []
    assert says in ours.stderr and "Traceback" not in ours.stderr


def test_mismatched_key_and_duplicate_names_are_refused_by_both(recorder: Recorder, tmp_path: Path) -> None:
    cert, _ = recorder.client_pair("one")
    _, other_key = recorder.client_pair("two")
    mismatched = write_config(
        tmp_path / "mismatch", recorder, {"u": {"client-certificate": str(cert), "client-key": str(other_key)}}
    )
    theirs, ours = both(recorder, environment(tmp_path, mismatched))
    assert theirs.code != 0 and theirs.seen == []
    assert ours.code == 1 and ours.seen == [] and "cannot use the client certificate" in ours.stderr
    twice = write_config(tmp_path / "twice", recorder, {"u": {"token": "first"}})
    document = yaml.safe_load(twice.read_text())
    document["users"].append({"name": "u", "user": {"token": "second"}})
    twice.write_text(yaml.safe_dump(document))
    theirs, ours = both(recorder, environment(tmp_path, twice))
    assert theirs.code != 0 and theirs.seen == []
    assert ours.code == 1 and ours.seen == [] and 'duplicate name "u" in users' in ours.stderr


def test_flags_before_the_command_name_mean_the_same(recorder: Recorder, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", recorder, {"u": {"token": "t"}})
    env = environment(tmp_path, config)
    before = run(recorder, ["kubectl", "activity", "--as", "bob", "--as-group", "g", "query"], env)
    after = plugin(recorder, env, "--as", "bob", "--as-group", "g")
    assert before.code == after.code == 0, before.stderr + after.stderr
    assert before.last.identity() == after.last.identity()
    assert ("impersonate-user", "bob") in after.last.identity()[1]


# What kubectl can do and the plugin cannot: a clear refusal, never a request as another identity.
UNSUPPORTED: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "auth-provider": (
        {"auth-provider": {"name": "oidc", "config": {"idp-issuer-url": "https://x"}}},
        {},
        "auth-provider",
    ),
    "auth-provider-next-to-a-token": ({"token": "t", "auth-provider": {"name": "gcp"}}, {}, "auth-provider gcp"),
    "socks-proxy": ({"token": "t"}, {"proxy-url": "socks5://127.0.0.1:1080"}, "proxy-url"),
    "plain-http-server": ({"token": "t", "as": "bob"}, {"server": "http://127.0.0.1:1"}, "not an https:// URL"),
    "misspelt-field": ({"token": "t", "as": "bob", "as_groups": ["g"]}, {}, "as_groups"),  # kubectl ignores it
    "header-injection": ({"token": "t", "as": "bob\r\nImpersonate-Group: system:masters"}, {}, "Invalid header"),
}


@pytest.mark.parametrize("case", UNSUPPORTED)
def test_unsupported_fields_are_refused_with_a_clear_error(recorder: Recorder, tmp_path: Path, case: str) -> None:
    user, cluster, says = UNSUPPORTED[case]
    config = write_config(tmp_path / "config", recorder, {"u": user}, cluster)
    ours = plugin(recorder, environment(tmp_path, config))
    assert ours.code == 1, ours.stderr
    assert ours.seen == []
    assert says in ours.stderr and ours.stderr.startswith("error: ") and "Traceback" not in ours.stderr


def test_request_timeout_gives_up_on_a_stalled_server(recorder: Recorder, tmp_path: Path) -> None:
    def stall(seen: Seen) -> Answer:
        time.sleep(20)
        return empty_page(seen)

    recorder.answers = stall
    env = environment(tmp_path, write_config(tmp_path / "config", recorder, {"u": {"token": "t"}}))
    started = time.monotonic()
    ours = plugin(recorder, env, "--request-timeout", "1s")
    assert time.monotonic() - started < 15  # gave up well before the server answered
    assert ours.code == 1 and "timed out" in ours.stderr and "Traceback" not in ours.stderr
    assert ours.last.query == "timeout=1s"  # and told the server, as kubectl does


def test_verbose_levels_log_like_kubectl_and_never_a_credential(recorder: Recorder, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", recorder, {"u": {"token": "secret-token-value", "as": "bob"}})
    env = environment(tmp_path, config)
    url = f"{recorder.url}{QUERY_PATH}"
    six = plugin(recorder, env, "-v=6").stderr
    logged = [line.split("] ", 1)[1] for line in six.splitlines() if "kubectl-activity] " in line]
    assert [line.split(" in ")[0] for line in logged] == [f"POST {url} 201 Created"]
    assert logged[0].endswith(" milliseconds")
    seven = plugin(recorder, env, "--v", "7").stderr
    assert "Request Headers:" in seven and "    Impersonate-User: bob" in seven
    assert "Response Status: 201 Created in " in seven and "Response Headers:" in seven
    assert '"Request Body"' not in seven
    eight = plugin(recorder, env, "-v", "8").stderr
    assert '"Request Body" body={"apiVersion": "activity.miloapis.com/v1alpha1"' in eight
    assert '"Response Body" body={' in eight and "Response Headers:" in eight
    theirs = kubectl(recorder, env, "-v=9").stderr
    for text in (six, seven, eight, theirs):
        assert "secret-token-value" not in text
    masked = "Authorization: Bearer <masked>"
    assert masked in seven and masked in eight and masked in theirs


def test_verbose_bodies_are_cut_as_client_go_cuts_them(recorder: Recorder, tmp_path: Path) -> None:
    events = [{"auditID": f"{i:04}", "verb": "get", "stage": "ResponseComplete"} for i in range(300)]
    recorder.answers = lambda seen: Answer(201, {"kind": "AuditLogQuery", "status": {"results": events}})
    env = environment(tmp_path, write_config(tmp_path / "config", recorder, {"u": {"token": "t"}}))
    full = json.dumps({"kind": "AuditLogQuery", "status": {"results": events}})  # as the recorder sends it
    body = len(full)
    for level, shown in (("8", 1024), ("9", 10240), ("10", body)):
        logged = plugin(recorder, env, "-o", "json", f"-v={level}").stderr
        line = next(line for line in logged.splitlines() if '"Response Body"' in line)
        text = line.split(" body=", 1)[1]
        if shown < body:
            assert text == full[:shown] + f" [truncated {body - shown} chars]"
        else:
            assert json.loads(text)["status"]["results"] == events
