"""OpenAPI v2 and v3 documents for one create-only resource, served with the caching kube-openapi uses.

The aggregator merges /openapi/v2 into the cluster's document and proxies /openapi/v3; kubectl reads v3 for
`explain` and to decide whether server-side field validation is available. kubectl checks for a PATCH operation
of our GVK that takes `fieldValidation`; the PATCH is declared truthfully as answering 405 (the resource is
create-only) while POST does validate fields as the parameter describes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from apiserver.machinery.discovery import ApiResource, GroupVersion
from apiserver.machinery.negotiation import JSON, YAML, negotiate
from apiserver.machinery.status import not_acceptable

Schemas = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class CreateOnlyApi:
    gv: GroupVersion
    resource: ApiResource
    root_schema: str  # definition name of the resource's object schema
    schemas_for: Callable[[Callable[[str], str]], Schemas]  # builds every schema given a ref-target function
    title: str

    @property
    def collection_path(self) -> str:
        return f"{self.gv.path}/{self.resource.name}"

    @property
    def gvk(self) -> dict[str, str]:
        return {"group": self.gv.group, "version": self.gv.version, "kind": self.resource.kind}


def _query_params(v3: bool) -> list[dict[str, Any]]:
    params = [
        (
            "dryRun",
            "When present, indicates that modifications should not be persisted. The only valid value is All. "
            "An AuditLogQuery is never persisted, so a dry run answers exactly like a real one.",
        ),
        (
            "fieldManager",
            "A name for the actor making the request: at most 128 printable characters. Accepted for "
            "compatibility; nothing is stored, so it is not recorded.",
        ),
        (
            "fieldValidation",
            "How the server treats fields it does not know and fields given twice: Ignore drops them, Warn "
            "(the default) drops them and returns a Warning header per field, Strict rejects the request with "
            "400 Bad Request.",
        ),
    ]
    out = []
    for name, description in params:
        param: dict[str, Any] = {"name": name, "in": "query", "description": description, "uniqueItems": True}
        if v3:
            param["schema"] = {"type": "string", "uniqueItems": True}
        else:
            param["type"] = "string"
        out.append(param)
    return out


def _v3_refs(node: Any) -> Any:
    """OpenAPI v3 ignores siblings of $ref, so a described reference is written `allOf: [$ref]` as Kubernetes
    does (kubectl explain reads the description from there)."""
    if isinstance(node, dict):
        node = {k: _v3_refs(v) for k, v in node.items()}
        if "$ref" in node and len(node) > 1:
            target = node.pop("$ref")
            node["allOf"] = [{"$ref": target}]
        return node
    if isinstance(node, list):
        return [_v3_refs(v) for v in node]
    return node


def _operations(api: CreateOnlyApi, v3: bool, ref: Callable[[str], str]) -> dict[str, Any]:
    kind = api.resource.kind
    body_ref = {"$ref": ref(api.root_schema)}
    ok = {"description": "Created: the query's answer is in status.", **_content(v3, body_ref)}
    common: dict[str, Any] = {
        "tags": [f"{api.gv.group}_{api.gv.version}"],
        "x-kubernetes-group-version-kind": api.gvk,
        "parameters": _query_params(v3),
    }
    post: dict[str, Any] = {
        **common,
        "description": f"run an {kind}: the answer (status) holds the matching audit events",
        "operationId": f"create{_go_name(api.gv.group)}{api.gv.version.capitalize()}{kind}",
        "x-kubernetes-action": "post",
        "responses": {"200": ok, "201": ok, "401": {"description": "Unauthorized"}},
    }
    patch: dict[str, Any] = {
        **common,
        "description": f"not supported: {kind} is create-only and answers 405 Method Not Allowed; declared so "
        "clients know the server validates fields (fieldValidation)",
        "operationId": f"patch{_go_name(api.gv.group)}{api.gv.version.capitalize()}{kind}",
        "x-kubernetes-action": "patch",
        "responses": {"405": {"description": "MethodNotAllowed"}, "401": {"description": "Unauthorized"}},
    }
    if v3:
        post["requestBody"] = {"required": True, **_content(True, body_ref)}
        patch["requestBody"] = {"content": {"application/merge-patch+json": {"schema": {"type": "object"}}}}
    else:
        post["consumes"] = [JSON, YAML]
        post["produces"] = [JSON, YAML]
        post["parameters"] = [
            {"name": "body", "in": "body", "required": True, "schema": body_ref},
            *common["parameters"],
        ]
        patch["consumes"] = ["application/merge-patch+json"]
        patch["produces"] = [JSON]
        patch["parameters"] = [
            {"name": "body", "in": "body", "required": True, "schema": {"type": "object"}},
            *common["parameters"],
        ]
    return {"post": post, "patch": patch}


def _content(v3: bool, schema: dict[str, Any]) -> dict[str, Any]:
    if v3:
        return {"content": {JSON: {"schema": schema}, YAML: {"schema": schema}}}
    return {"schema": schema}


def _go_name(group: str) -> str:
    """`activity.miloapis.com` → `ActivityMiloapisCom`, Kubernetes' operationId style."""
    return "".join(part.capitalize() for part in group.split("."))


def _one_group_version(apis: Sequence[CreateOnlyApi]) -> CreateOnlyApi:
    """The first resource, after checking every resource shares its group version (one document per version)."""
    if not apis or len({api.gv.path for api in apis}) != 1:
        raise ValueError("OpenAPI documents one group version: give it that version's resources")
    return apis[0]


def _schemas(apis: Sequence[CreateOnlyApi], ref: Callable[[str], str]) -> Schemas:
    merged: Schemas = {}
    for api in apis:
        merged |= api.schemas_for(ref)
    return merged


def v2_document(apis: Sequence[CreateOnlyApi]) -> dict[str, Any]:
    first = _one_group_version(apis)

    def ref(name: str) -> str:
        return f"#/definitions/{name}"

    return {
        "swagger": "2.0",
        "info": {"title": first.title, "version": first.gv.version},
        "paths": {api.collection_path: _operations(api, False, ref) for api in apis},
        "definitions": _schemas(apis, ref),
    }


def v3_document(apis: Sequence[CreateOnlyApi]) -> dict[str, Any]:
    first = _one_group_version(apis)

    def ref(name: str) -> str:
        return f"#/components/schemas/{name}"

    document: dict[str, Any] = _v3_refs(
        {
            "openapi": "3.0.0",
            "info": {"title": first.title, "version": first.gv.version},
            "paths": {api.collection_path: _operations(api, True, ref) for api in apis},
            "components": {"schemas": _schemas(apis, ref)},
        }
    )
    return document


@dataclass(frozen=True)
class Served:
    body: bytes
    etag: str  # upper-case hex SHA-512, as kube-openapi computes it

    @classmethod
    def of(cls, document: dict[str, Any]) -> Served:
        body = orjson.dumps(document)
        return cls(body, hashlib.sha512(body).hexdigest().upper())


def _answer(request: web.Request, served: Served, extra_headers: dict[str, str] | None = None) -> web.Response:
    headers = {"ETag": f'"{served.etag}"', "Vary": "Accept", **(extra_headers or {})}
    if served.etag in request.headers.get("If-None-Match", "").replace('"', " ").split():
        return web.Response(status=304, headers=headers)
    return web.Response(body=served.body, content_type=JSON, headers=headers)


class OpenApiHandlers:
    def __init__(self, apis: Sequence[CreateOnlyApi]) -> None:
        gv = _one_group_version(apis).gv
        self.gv_key = f"apis/{gv.group}/{gv.version}"
        self.v2 = Served.of(v2_document(apis))
        self.v3 = Served.of(v3_document(apis))
        root = {"paths": {self.gv_key: {"serverRelativeURL": self._v3_url()}}}
        self.v3_root = Served.of(root)

    def _v3_url(self) -> str:
        return f"/openapi/v3/{self.gv_key}?hash={quote(self.v3.etag)}"

    @staticmethod
    def _require_json(request: web.Request) -> None:
        """Only JSON is served (no protobuf OpenAPI): 406 when the client accepts nothing else."""
        if negotiate(request.headers.get("Accept"), [JSON]) is None:
            raise not_acceptable([JSON])

    async def get_v2(self, request: web.Request) -> web.Response:
        self._require_json(request)
        return _answer(request, self.v2)

    async def get_v3_root(self, request: web.Request) -> web.Response:
        self._require_json(request)
        return _answer(request, self.v3_root)

    async def get_v3_group_version(self, request: web.Request) -> web.Response:
        self._require_json(request)
        wanted = request.query.get("hash")
        if wanted is None:
            return _answer(request, self.v3, {"Cache-Control": "no-cache, private"})
        if wanted != self.v3.etag:
            # An old hash (the server was upgraded since the client read the root): send it to the current one.
            raise web.HTTPMovedPermanently(self._v3_url(), headers={"Cache-Control": "no-cache, private"})
        return _answer(
            request, self.v3, {"Cache-Control": "public, immutable", "Expires": "Thu, 31 Dec 2099 23:59:59 GMT"}
        )

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/openapi/v2", self.get_v2, allow_head=False)
        app.router.add_get("/openapi/v3", self.get_v3_root, allow_head=False)
        app.router.add_get(f"/openapi/v3/{self.gv_key}", self.get_v3_group_version, allow_head=False)
