"""What can be checked of the image without a Docker engine: its entrypoint is the `activity` command with the
subcommands the manifests run, it runs as the user the manifests require, exposes the ports they declare, ships
only what `pip install .` needs, and has no build tools or embedded engine in its final stage."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
from manifests_support import OVERLAYS, REPO, Instruction, containers, dockerfile_stages

from activity.cli import COMMANDS

DOCKERFILE = REPO / "Dockerfile"
STAGES = dockerfile_stages(DOCKERFILE)
FINAL = STAGES[-1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _values(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.value for i in stage if i.keyword == keyword]


def _env(stage: list[Instruction]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in _values(stage, "ENV"):
        pairs.update(dict(re.findall(r"(\w+)=(\S+)", value)))
    return pairs


def _overlay_containers() -> list[tuple[str, dict[str, object], dict[str, object]]]:
    found = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        for overlay in OVERLAYS:
            for c in containers(monkeypatch, f"overlays/{overlay}"):
                found.append((c.command, c.workload["spec"]["template"]["spec"], c.spec))
    return found


def test_the_image_is_multi_stage_on_a_slim_python_without_build_tools() -> None:
    assert len(STAGES) >= 2
    (base,) = _values(FINAL, "FROM")
    assert re.fullmatch(r"python:3\.1[1-9][\w.-]*-slim(-\w+)?", base), base
    final_commands = " ".join(_values(FINAL, "RUN"))
    for tool in ("apt-get", "apk", "gcc", "build-essential", "pip install", "make "):
        assert tool not in final_commands, f"the final stage runs {tool}"
    # The final stage takes only the built virtualenv, never the sources.
    copies = _values(FINAL, "COPY")
    assert copies and all(c.startswith("--from=") for c in copies), copies


def test_the_install_leaves_out_the_embedded_engine() -> None:
    installs = [r for stage in STAGES for r in _values(stage, "RUN") if "pip install" in r]
    assert installs
    assert not any("[" in r for r in installs), f"an extra is installed: {installs}"
    assert "chdb" not in " ".join(PYPROJECT["project"]["dependencies"])


def test_the_entrypoint_is_the_activity_command_with_the_subcommands_the_manifests_run() -> None:
    (entrypoint,) = _values(FINAL, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["activity"]
    assert PYPROJECT["project"]["scripts"]["activity"] == "activity.cli:main"
    used = {command for command, _, _ in _overlay_containers()}
    assert used == {"apiserver", "webhook", "consume", "migrate"}
    assert used <= set(COMMANDS)


def test_the_image_user_is_the_one_the_manifests_run_as() -> None:
    (user,) = _values(FINAL, "USER")
    uid = int(user.split(":")[0])
    for command, pod, container in _overlay_containers():
        pod_context = pod.get("securityContext", {})
        own = container.get("securityContext", {})
        assert isinstance(pod_context, dict) and isinstance(own, dict)
        assert own.get("runAsUser", pod_context.get("runAsUser")) == uid, command


def test_exposed_ports_are_the_container_ports_of_the_manifests() -> None:
    exposed = {int(p.split("/")[0]) for value in _values(FINAL, "EXPOSE") for p in value.split()}
    declared = set()
    for _, _, container in _overlay_containers():
        ports = container.get("ports", [])
        assert isinstance(ports, list)
        declared |= {p["containerPort"] for p in ports}
    assert exposed == declared


def test_the_image_writes_nothing_outside_tmp() -> None:
    env = _env(FINAL)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("HOME") == "/tmp" and env.get("TMPDIR", "/tmp") == "/tmp"


def test_every_package_the_project_installs_is_in_the_build_context() -> None:
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    copies = [c.split() for stage in STAGES for c in _values(stage, "COPY") if not c.startswith("--")]
    copied = {source for words in copies for source in words[:-1]}
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignore, ".dockerignore starts from nothing and lets in what the build needs"
    for needed in packages | {"pyproject.toml", PYPROJECT["project"]["readme"]}:
        assert needed in copied, f"{needed} is not copied into the build stage"
        assert f"!{needed}/" in ignore or f"!{needed}" in ignore, f".dockerignore keeps {needed} out"
