"""How a resource joins the server: a Registration names its group version and kind (for discovery) and
installs its handlers and OpenAPI definitions given what the server shares (store, metrics, settings).
The server iterates the registrations; it names no resource."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from apiserver.machinery.discovery import ApiResource, GroupVersion
from apiserver.machinery.metrics import ApiMetrics
from apiserver.machinery.openapi import CreateOnlyApi
from auditlog.storage import Store

T = TypeVar("T")


@dataclass(frozen=True)
class InstallContext:
    store: Store  # queries reach the store through this client (its latency is measured)
    metrics: ApiMetrics  # a resource's own metrics go on metrics.registry
    settings: tuple[object, ...]  # each resource's operator settings, found by type

    def settings_of(self, kind: type[T]) -> T:
        for given in self.settings:
            if isinstance(given, kind):
                return given
        raise LookupError(f"the server was given no {kind.__name__}")


@dataclass(frozen=True)
class Installed:
    api: CreateOnlyApi  # what the OpenAPI documents say about the resource
    add_routes: Callable[[web.Application], None]


@dataclass(frozen=True)
class Registration:
    group: str
    version: str
    resource: ApiResource
    install: Callable[[InstallContext], Installed]


def group_version(registrations: Sequence[Registration]) -> GroupVersion:
    """The one group version the registrations share (discovery and OpenAPI serve one version today)."""
    versions = {(r.group, r.version) for r in registrations}
    if len(versions) != 1:
        raise ValueError(f"the server serves one group version, not {sorted(versions)}")
    ((group, version),) = versions
    return GroupVersion(group, version, tuple(r.resource for r in registrations))
