"""Legacy discovery documents: what kubectl and the aggregator read to learn our group, version and resource.

Aggregated discovery (v2) is not served: a request asking for it gets the legacy APIGroupList as plain JSON,
which both the aggregator and client-go take as "fall back to the legacy endpoints" (only a 503 would be an
error there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web


@dataclass(frozen=True)
class ApiResource:
    name: str  # plural, the URL segment
    singular_name: str
    kind: str
    verbs: tuple[str, ...]
    namespaced: bool = False
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupVersion:
    group: str
    version: str
    resources: tuple[ApiResource, ...]

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def path(self) -> str:
        return f"/apis/{self.group}/{self.version}"


def api_group(gv: GroupVersion) -> dict[str, Any]:
    version = {"groupVersion": gv.group_version, "version": gv.version}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": gv.group,
        "versions": [version],
        "preferredVersion": version,
    }


def api_group_list(gv: GroupVersion) -> dict[str, Any]:
    group = api_group(gv)
    del group["kind"], group["apiVersion"]  # list items carry no type meta
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}


def api_resource_list(gv: GroupVersion) -> dict[str, Any]:
    resources = []
    for r in gv.resources:
        resource: dict[str, Any] = {
            "name": r.name,
            "singularName": r.singular_name,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            resource["shortNames"] = list(r.short_names)
        if r.categories:
            resource["categories"] = list(r.categories)
        resources.append(resource)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv.group_version, "resources": resources}


def add_routes(app: web.Application, gv: GroupVersion) -> None:
    """GET handlers for /apis, /apis/<group> and /apis/<group>/<version>; the documents never change, so they
    are serialised once."""

    def serve(document: dict[str, Any]) -> Any:
        body = orjson.dumps(document)

        async def handler(_: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        return handler

    app.router.add_get("/apis", serve(api_group_list(gv)), allow_head=False)
    app.router.add_get(f"/apis/{gv.group}", serve(api_group(gv)), allow_head=False)
    app.router.add_get(gv.path, serve(api_resource_list(gv)), allow_head=False)
