"""The kind end-to-end harness: a kind cluster whose kube-apiserver audits into Activity (test-infra/), the
image loaded onto the node, the dependencies and the kind overlay deployed, and a scenario target that acts
through the real kubectl and kube-apiserver's aggregation layer.

It needs kind and a reachable Docker engine; `missing_prerequisite()` says which is missing so the tests skip
with that reason. Set ACTIVITY_E2E_KEEP=1 to keep the cluster after the run (delete it with `task kind:down`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import chdir, contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from scenario_support import Change
from up_support import env_with_scripts_first

REPO = Path(__file__).resolve().parent.parent
TEST_INFRA = REPO / "test-infra"
KIND_CONFIG = TEST_INFRA / "kind-config.yaml"
IMAGE = "activity:e2e"  # the image config/overlays/test-infra runs
CLUSTER = "activity-e2e"
APISERVICE = "v1alpha1.activity.miloapis.com"
QUERIER_ROLE = "activity:auditlog-querier"  # the user-facing ClusterRole of config/base


def missing_prerequisite() -> str | None:
    """Why the kind harness cannot run here (None when it can): kind or the Docker engine missing."""
    if shutil.which("kind") is None:
        return "kind is not installed (the e2e harness creates a kind cluster): install kind to run it"
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (kind runs its nodes as Docker containers)"
    done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"Docker engine not reachable: `docker info` failed ({why})"
    return None


def kind_config(directory: Path) -> Path:
    """test-infra/kind-config.yaml with its extraMounts made absolute (kind resolves a relative hostPath against
    the directory it runs in, which is the repository root only for `task kind:up`)."""
    config = yaml.safe_load(KIND_CONFIG.read_text())
    for node in config["nodes"]:
        for mount in node.get("extraMounts", []):
            mount["hostPath"] = str((REPO / mount["hostPath"]).resolve())
    path = directory / "kind-config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 1200) -> None:
    subprocess.run(argv, check=True, env=env, timeout=timeout, cwd=REPO)


class KindTarget:
    """The kind cluster as a scenario target: the real kubectl (plugin on PATH) through kind's kubeconfig, as
    kind's admin or, with `as_user`, impersonating someone else."""

    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        self.env = env_with_scripts_first({"KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache)})

    def kubectl(
        self, *args: str, stdin: str | None = None, as_user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        impersonate = ["--as", as_user] if as_user else []
        return subprocess.run(
            ["kubectl", *impersonate, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=300,
            check=False,
        )

    def kubectl_ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.kubectl(*args, stdin=stdin)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    @cached_property
    def user(self) -> str:
        """Who kind's kubeconfig authenticates as, as kube-apiserver records it (a SelfSubjectReview)."""
        return self.kubectl_ok("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").strip()

    def apply(self, change: Change) -> None:
        """The change as a real kubectl write: kube-apiserver audits it to the webhook on the node."""
        where = ["-n", change.namespace] if change.namespace else []
        if change.verb == "create":
            self.kubectl_ok("create", "-f", "-", stdin=yaml.safe_dump(change.obj))
        elif change.verb == "patch":
            patch = yaml.safe_dump(change.patch, default_flow_style=True).strip()
            self.kubectl_ok("patch", change.kind.kubectl_name, change.name, *where, "--type", "merge", "-p", patch)
        elif change.verb == "delete":
            self.kubectl_ok("delete", change.kind.kubectl_name, change.name, *where, "--wait=false")
        else:
            raise ValueError(f"no kubectl write for verb {change.verb!r}")

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl_ok(*args, "-o", "json"))


def ensure_image() -> None:
    """The image the overlay runs, built from the repository's Dockerfile unless Docker already has it."""
    present = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False)
    if present.returncode != 0:
        _run(["docker", "build", "-t", IMAGE, str(REPO)])


@contextmanager
def kind_cluster(workdir: Path) -> Iterator[KindTarget]:
    """A kind cluster from test-infra/ with Activity deployed and its APIService Available; deleted at the end
    (unless ACTIVITY_E2E_KEEP=1)."""
    from pytest_kind import KindCluster  # type: ignore[import-untyped]  # the e2e extra (pytest-kind-ng)

    kind, kubectl = shutil.which("kind"), shutil.which("kubectl")
    assert kind and kubectl, "checked by missing_prerequisite()"
    with chdir(workdir):  # KindCluster keeps a `.pytest-kind` folder in the working directory: not in the repository
        cluster = KindCluster(
            CLUSTER, kubeconfig=workdir / "kubeconfig", kind_path=Path(kind), kubectl_path=Path(kubectl)
        )
    cluster.create(kind_config(workdir))
    try:
        ensure_image()
        cluster.load_docker_image(IMAGE)
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig_path)}
        _run([str(TEST_INFRA / "deps" / "install.sh")], env)
        _run([str(TEST_INFRA / "deploy.sh")], env)
        yield KindTarget(cluster.kubeconfig_path, workdir / "kubecache")
    finally:
        if os.environ.get("ACTIVITY_E2E_KEEP") != "1":
            cluster.delete()
