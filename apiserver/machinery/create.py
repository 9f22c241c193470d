"""POST to a create-only collection, the resource-independent half (Kubernetes' generic REST create).

Negotiate the answer's media type (406) → check the create options (422 on CreateOptions) → read the body as
JSON or YAML (415, 413, 400; a large body off the event loop) → check type meta and the object against its
OpenAPI schema (fieldValidation: unknown and duplicate fields; wrong types are 422) → name it (generateName) →
hand the object to the resource's strategy → 201 with what the strategy answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from apiserver.machinery import decoding
from apiserver.machinery.createoptions import field_validation, warning_header
from apiserver.machinery.discovery import ApiResource, GroupVersion
from apiserver.machinery.fielderrors import wrong_type
from apiserver.machinery.middlewares import DEADLINE_KEY
from apiserver.machinery.negotiation import JSON, YAML, media_type, negotiate
from apiserver.machinery.objectmeta import created_metadata
from apiserver.machinery.request import USER_KEY, UserInfo
from apiserver.machinery.status import (
    bad_request,
    invalid,
    method_not_allowed,
    not_acceptable,
    not_found,
    unsupported_media_type,
)


@dataclass(frozen=True)
class Created:
    """A strategy's answer: the object as JSON bytes, and as a document for a YAML answer (built only then)."""

    json_body: bytes
    document: Callable[[], dict[str, Any]]
    size: int  # bytes of the answer; a large YAML rendering runs off the event loop


@dataclass(frozen=True)
class CreateRequest:
    head: dict[str, Any]  # kind, apiVersion, metadata (named) and the object's other fields, as conformed
    user: UserInfo
    deadline: float | None  # time.monotonic() by which the request must be answered


class CreateStrategy(Protocol):
    """What a create-only resource decides: everything past decoding, naming and field validation."""

    async def create(self, request: CreateRequest) -> Created: ...


class CreateHandler:
    def __init__(
        self,
        gv: GroupVersion,
        resource: ApiResource,
        root_schema: str,
        schemas: decoding.Schemas,
        strategy: CreateStrategy,
    ) -> None:
        self.gv = gv
        self.resource = resource
        self.root_schema = root_schema
        self.schemas = schemas
        self.strategy = strategy

    async def create(self, request: web.Request) -> web.Response:
        kind = self.resource.kind
        answer_type = negotiate(request.headers.get("Accept"), decoding.MEDIA_TYPES)
        if answer_type is None:
            raise not_acceptable(decoding.MEDIA_TYPES)
        validation = field_validation(request.query)
        body_type = media_type(request.headers.get("Content-Type", "")) or JSON
        if body_type not in decoding.MEDIA_TYPES:
            raise unsupported_media_type(body_type, decoding.MEDIA_TYPES)
        body = await request.read()
        document = await decoding.off_loop(len(body), decoding.decode, body, body_type)
        if not isinstance(document, dict):
            raise bad_request(f"the request body must be one {kind} object, not {json.dumps(document)[:40]}")
        self._check_type_meta(document)

        obj, problems = await decoding.off_loop(
            len(body), decoding.conform, document, self.schemas[self.root_schema], self.schemas
        )
        field_messages = problems.field_messages()
        if field_messages and validation == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(field_messages))
        metadata, errors = created_metadata(obj.get("metadata") or {})
        errors += [wrong_type(*wrong) for wrong in problems.wrong_type]
        if errors:
            raise invalid(kind, self.gv.group, metadata.get("name", ""), errors)

        rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}
        head = {"kind": kind, "apiVersion": self.gv.group_version, "metadata": metadata} | rest
        created = await self.strategy.create(CreateRequest(head, request[USER_KEY], request.get(DEADLINE_KEY)))

        headers: dict[str, str] = {}
        if validation in ("", "Warn") and field_messages:
            headers["Warning"] = warning_header(field_messages)
        if answer_type == YAML:
            rendered = await decoding.off_loop(created.size, lambda: decoding.dump_yaml(created.document()))
            return web.Response(status=201, body=rendered, content_type=YAML, headers=headers)
        return web.Response(status=201, body=created.json_body, content_type=JSON, headers=headers)

    def _check_type_meta(self, document: Mapping[str, Any]) -> None:
        """apiVersion and kind may be omitted (the URL says them); given, they must be ours."""
        api_version, kind = document.get("apiVersion"), document.get("kind")
        if api_version not in (None, "", self.gv.group_version):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({self.gv.group_version})"
            )
        if kind not in (None, "", self.resource.kind):
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({self.resource.kind})")

    def add_routes(self, app: web.Application) -> None:
        collection = f"{self.gv.path}/{self.resource.name}"
        app.router.add_post(collection, self.create)
        app.router.add_route("*", collection, _collection_other_method)
        app.router.add_route("*", collection + "/{tail:.*}", self._no_such_object)

    async def _no_such_object(self, request: web.Request) -> web.StreamResponse:
        """A create-only resource stores nothing: there is no object to get, update or delete."""
        raise not_found(f'{self.resource.name}.{self.gv.group} "{request.match_info["tail"]}" not found')


async def _collection_other_method(request: web.Request) -> web.StreamResponse:
    raise method_not_allowed(request.method, ["POST"])
