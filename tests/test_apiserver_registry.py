"""A resource joins the server by registration alone: a second create-only resource, registered beside
AuditLogQuery, is listed by discovery, documented by OpenAPI and served by the generic create handler, and
nothing generic had to change for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler
from opentelemetry import trace

from apiserver.machinery.create import Created, CreateHandler, CreateRequest
from apiserver.machinery.discovery import ApiResource, GroupVersion
from apiserver.machinery.metrics import ApiMetrics
from apiserver.machinery.openapi import CreateOnlyApi
from apiserver.machinery.registration import InstallContext, Installed, Registration, group_version
from apiserver.machinery.request import USER_KEY, UserInfo
from apiserver.registry.auditlogquery.settings import QuerySettings
from apiserver.registry.resources import RESOURCES
from apiserver.server.apiserver import build_app
from apiserver.server.options import ApiServerSettings
from auditlog.storage import Store

GROUP, VERSION = "activity.miloapis.com", "v1alpha1"
WIDGET = ApiResource(name="widgets", singular_name="widget", kind="Widget", verbs=("create",))
WIDGET_SCHEMA = "com.miloapis.activity.v1alpha1.Widget"


def _widget_schemas(ref: Any) -> dict[str, dict[str, Any]]:
    return {
        WIDGET_SCHEMA: {
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            },
        }
    }


class EchoStrategy:
    """Answers with the object it was given and who asked: the resource's own half of a create."""

    async def create(self, request: CreateRequest) -> Created:
        answer = request.head | {"status": {"createdBy": request.user.name}}
        body = orjson.dumps(answer)
        return Created(json_body=body, document=lambda: answer, size=len(body))


def _install_widget(context: InstallContext) -> Installed:
    gv = GroupVersion(GROUP, VERSION, (WIDGET,))
    handler = CreateHandler(gv, WIDGET, WIDGET_SCHEMA, _widget_schemas(None), EchoStrategy())
    api = CreateOnlyApi(gv=gv, resource=WIDGET, root_schema=WIDGET_SCHEMA, schemas_for=_widget_schemas, title="w")
    return Installed(api, handler.add_routes)


WIDGETS = Registration(GROUP, VERSION, WIDGET, _install_widget)


@web.middleware
async def _as_admin(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[USER_KEY] = UserInfo("admin", groups=("system:masters",))
    return await handler(request)


@pytest.fixture
async def client(store: Store) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    settings = ApiServerSettings(query=QuerySettings(cursor_key=b"k" * 32))
    app = build_app(
        settings, store, store, _as_admin, ApiMetrics(), trace.NoOpTracer(), lambda: False, (*RESOURCES, WIDGETS)
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_discovery_and_openapi_list_every_registered_resource(
    client: TestClient[web.Request, web.Application],
) -> None:
    listed = await (await client.get(f"/apis/{GROUP}/{VERSION}")).json()
    assert [r["name"] for r in listed["resources"]] == ["auditlogqueries", "widgets"]
    document = await (await client.get(f"/openapi/v3/apis/{GROUP}/{VERSION}")).json()
    assert set(document["paths"]) == {f"/apis/{GROUP}/{VERSION}/auditlogqueries", f"/apis/{GROUP}/{VERSION}/widgets"}
    assert WIDGET_SCHEMA in document["components"]["schemas"]


async def test_the_generic_create_handler_serves_the_new_resource(
    client: TestClient[web.Request, web.Application],
) -> None:
    path = f"/apis/{GROUP}/{VERSION}/widgets"
    created = await client.post(path, json={"metadata": {"generateName": "w-"}, "spec": {"size": 3}})
    body = await created.json()
    assert created.status == 201
    assert (body["kind"], body["apiVersion"], body["spec"]) == ("Widget", f"{GROUP}/{VERSION}", {"size": 3})
    assert body["metadata"]["name"].startswith("w-") and len(body["metadata"]["name"]) == 7
    assert body["status"] == {"createdBy": "admin"}

    # the generic checks apply to it unchanged: strict field validation, wrong types, other verbs
    strict = await client.post(path + "?fieldValidation=Strict", json={"spec": {"size": 1, "colour": "red"}})
    assert (strict.status, (await strict.json())["message"]) == (
        400,
        'strict decoding error: unknown field "spec.colour"',
    )
    wrong = await client.post(path, json={"spec": {"size": "big"}})
    assert wrong.status == 422 and (await wrong.json())["details"]["causes"][0]["field"] == "spec.size"
    assert (await client.get(path)).status == 405
    assert (await client.get(path + "/w-abcde")).status == 404

    # and AuditLogQuery, registered the same way, still answers
    query = await client.post(f"/apis/{GROUP}/{VERSION}/auditlogqueries", json={"spec": {"limit": 1}})
    assert query.status == 201 and (await query.json())["status"]["results"] == []


def test_resources_of_several_group_versions_are_refused_until_discovery_serves_them() -> None:
    other = Registration(GROUP, "v1beta1", WIDGET, _install_widget)
    with pytest.raises(ValueError, match="one group version"):
        group_version((*RESOURCES, other))
