"""Discovery documents: what kubectl and the aggregator read to learn our group, version and resource.

`GET /apis` answers aggregated discovery (apidiscovery.k8s.io/v2, everything in one document) when the Accept
header asks for exactly that, with the exact Content-Type echoed and ETag/If-None-Match; anything else gets
the legacy APIGroupList, which client-go and the aggregator take as "use the legacy endpoints".
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from apiserver.machinery.negotiation import JSON, accepts_with_params

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_AGGREGATED_V2_PARAMS = {"g": "apidiscovery.k8s.io", "v": "v2", "as": "APIGroupDiscoveryList"}


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


def aggregated_discovery(gv: GroupVersion) -> dict[str, Any]:
    resources = [
        {
            "resource": r.name,
            "responseKind": {"group": gv.group, "version": gv.version, "kind": r.kind},
            "scope": "Namespaced" if r.namespaced else "Cluster",
            "singularResource": r.singular_name,
            "verbs": list(r.verbs),
        }
        | ({"shortNames": list(r.short_names)} if r.short_names else {})
        | ({"categories": list(r.categories)} if r.categories else {})
        for r in gv.resources
    ]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": gv.group},
                "versions": [{"version": gv.version, "resources": resources, "freshness": "Current"}],
            }
        ],
    }


def add_routes(app: web.Application, gv: GroupVersion) -> None:
    """GET handlers for /apis, /apis/<group> and /apis/<group>/<version>; the documents never change, so they
    are serialised once."""

    def serve(document: dict[str, Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        body = orjson.dumps(document)

        async def handler(_: web.Request) -> web.Response:
            return web.Response(body=body, content_type=JSON)

        return handler

    legacy = serve(api_group_list(gv))
    aggregated = orjson.dumps(aggregated_discovery(gv))
    etag = f'"{hashlib.sha256(aggregated).hexdigest()}"'

    async def apis(request: web.Request) -> web.Response:
        if not accepts_with_params(request.headers.get("Accept"), JSON, _AGGREGATED_V2_PARAMS):
            return await legacy(request)
        headers = {"Content-Type": AGGREGATED_V2, "ETag": etag, "Vary": "Accept"}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=aggregated, headers=headers)

    app.router.add_get("/apis", apis, allow_head=False)
    app.router.add_get(f"/apis/{gv.group}", serve(api_group(gv)), allow_head=False)
    app.router.add_get(gv.path, serve(api_resource_list(gv)), allow_head=False)
