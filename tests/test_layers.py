"""Imports point down: every module of the shipped packages is read with `ast` (function-local imports too) and
each import is checked against the layer order below. An upward arrow fails with the module, line and target."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("apiserver", "auditlog", "ingest", "kubectl_activity")

# Inside the API server, lowest first: a module may import its own layer and the ones before it.
APISERVER_LAYERS = (
    "apiserver.machinery",  # generic: request context, Status, negotiation, decoding, discovery, OpenAPI, ...
    "apiserver.auth",  # authentication, authorization, impersonation: generic, knows no resource
    "apiserver.apis",  # API types, defaults, validation, OpenAPI definitions
    "apiserver.registry",  # one package per resource: strategy, handlers, query
    "apiserver.server",  # wiring: options, complete, new
    "apiserver.command",  # the `activity apiserver` entry point
)
# The kubectl plugin ships without the server's dependencies: of the shared package it reads only these.
PLUGIN_SHARED = frozenset({"auditlog.fields", "auditlog.paging", "auditlog.durations", "auditlog.redaction"})
# Packages each top-level package must never import.
FORBIDDEN = {
    "auditlog": ("apiserver", "ingest", "kubectl_activity", "activity"),
    "apiserver": ("ingest", "kubectl_activity", "activity"),
    "ingest": ("apiserver", "kubectl_activity", "activity"),
    "kubectl_activity": ("apiserver", "ingest", "activity"),
}


@dataclass(frozen=True)
class Arrow:
    source: str  # importing module
    line: int
    target: str  # imported module (or module.name for `from module import name`)

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str, module: str, is_package: bool) -> Iterator[Arrow]:
    """Every import in `source`, wherever it is (module level, function, TYPE_CHECKING block), made absolute."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Arrow(module, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                yield Arrow(module, node.lineno, f"{base}.{alias.name}")


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layer(name: str) -> int | None:
    for rank, prefix in enumerate(APISERVER_LAYERS):
        if _within(name, prefix):
            return rank
    return None


def _registry_package(name: str) -> str | None:
    """`apiserver.registry.<resource>` of a module inside one resource's package."""
    parts = name.split(".")
    return ".".join(parts[:3]) if len(parts) >= 3 and parts[:2] == ["apiserver", "registry"] else None


def violation(arrow: Arrow) -> str | None:
    """Why the arrow points the wrong way, or None when it is allowed."""
    source, target = arrow.source, arrow.target
    top = source.split(".")[0]
    for forbidden in FORBIDDEN.get(top, ()):
        if _within(target, forbidden):
            return f"{top} must not import {forbidden}"
    light = any(_within(target, module) for module in PLUGIN_SHARED)
    if top == "kubectl_activity" and _within(target, "auditlog") and not light:
        return f"the plugin reads only {sorted(PLUGIN_SHARED)} of auditlog"
    if source in PLUGIN_SHARED and _within(target, "auditlog") and not light:
        return "a module the plugin reads must stay light: it imports only the other light modules"
    low, high = _layer(target), _layer(source)
    if low is not None and high is not None and low > high:
        return f"{APISERVER_LAYERS[high]} is below {APISERVER_LAYERS[low]}"
    own, other = _registry_package(source), _registry_package(target)
    if own and other and own != other and own != "apiserver.registry.resources":
        return "one resource's package must not import another's"
    return None


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield module_name(path), path


def _all_arrows() -> list[Arrow]:
    arrows: list[Arrow] = []
    for name, path in _modules():
        arrows.extend(imports(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"))
    return arrows


def test_every_apiserver_module_belongs_to_a_layer() -> None:
    """A new folder under apiserver/ must be placed in the order, or the checks would silently skip it."""
    unplaced = [
        name for name, _ in _modules() if _within(name, "apiserver") and name != "apiserver" and _layer(name) is None
    ]
    assert unplaced == []


def test_no_import_points_upward() -> None:
    wrong = [f"{arrow}: {why}" for arrow in _all_arrows() if (why := violation(arrow)) is not None]
    assert wrong == [], "\n".join(wrong)


def test_the_walk_sees_the_imports_it_checks() -> None:
    """The checks above mean something only if the walk finds the arrows that exist."""
    arrows = {(a.source, a.target) for a in _all_arrows()}
    assert ("apiserver.server.apiserver", "apiserver.registry.resources.RESOURCES") in arrows
    assert any(s.startswith("kubectl_activity.") and t.startswith("auditlog.") for s, t in arrows)


@pytest.mark.parametrize(
    ("module", "source", "reason"),
    [
        # the arrows the renovation removed: plumbing reaching up into auth and into a resource
        ("apiserver.machinery.logs", "from apiserver.auth.middleware import USER_KEY", "below apiserver.auth"),
        (
            "apiserver.machinery.status",
            "def f():\n    from apiserver.registry.auditlogquery.errors import InvalidQuery\n",
            "below apiserver.registry",
        ),
        ("apiserver.apis.activity.v1alpha1.types", "import apiserver.registry.auditlogquery", "below"),
        ("apiserver.registry.facets.rest", "from apiserver.registry.auditlogquery import service", "another's"),
        ("apiserver.auth.authorize", "from ..server import options", "below apiserver.server"),
        ("auditlog.storage", "from ingest.consumer import sink", "must not import ingest"),
        ("ingest.consumer.sink", "from apiserver.machinery import status", "must not import apiserver"),
        ("apiserver.machinery.health", "import ingest.probes", "must not import ingest"),
        ("kubectl_activity.client", "from auditlog.storage import Store", "reads only"),
        ("kubectl_activity.client", "import apiserver.machinery.status", "must not import apiserver"),
        ("auditlog.fields", "from auditlog.storage import Store", "stay light"),
    ],
)
def test_an_upward_arrow_is_refused(module: str, source: str, reason: str) -> None:
    found = [why for arrow in imports(source, module, is_package=False) if (why := violation(arrow))]
    assert found and reason in found[0]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("apiserver.registry.auditlogquery.rest", "from apiserver.machinery.create import CreateHandler"),
        ("apiserver.server.options", "from apiserver.registry.auditlogquery import options"),
        ("apiserver.registry.resources", "from apiserver.registry.auditlogquery.rest import REGISTRATION"),
        ("apiserver.registry.auditlogquery.filter", "from .compile import check"),
        ("kubectl_activity.client", "from auditlog.paging import DEFAULT_LIMIT"),
        ("apiserver.auth.middleware", "from apiserver.machinery.request import USER_KEY"),
    ],
)
def test_a_downward_arrow_is_allowed(module: str, source: str) -> None:
    assert [
        why for arrow in imports(source, module, is_package=module.endswith("filter")) if (why := violation(arrow))
    ] == []
