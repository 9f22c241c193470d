"""POST /apis/activity.miloapis.com/v1alpha1/auditlogqueries: the create handler, following the request.

Negotiate the answer's media type (406) → check the create options (422 on CreateOptions) → read the body as
JSON or YAML (415, 413, 400; a large body off the event loop) → check it against the AuditLogQuery schema
(fieldValidation: unknown and duplicate fields; wrong types are 422) → name it (generateName) → run the query as
the caller (InvalidQuery → 422, unusable scope → 403) → 201 with the object, whose `status.results` are the stored
events spliced in as bytes.
Nothing is stored, so there is no uid or resourceVersion.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from apiserver.auditlogquery.definitions import (
    AUDIT_LOG_QUERY,
    GROUP,
    GROUP_VERSION,
    KIND,
    RESOURCE,
    VERSION,
)
from apiserver.auditlogquery.errors import FieldError, InvalidQuery
from apiserver.auditlogquery.scope import ScopeUnresolved
from apiserver.auditlogquery.service import QueryService, QueryTimedOut
from apiserver.auditlogquery.types import QueryResult, QuerySpec
from apiserver.auth.middleware import USER_KEY
from apiserver.auth.user import UserInfo
from apiserver.http import decoding
from apiserver.http.metrics import ApiMetrics
from apiserver.http.middlewares import DEADLINE_KEY
from apiserver.http.negotiation import JSON, YAML, media_type, negotiate
from apiserver.http.status import (
    bad_request,
    forbidden,
    invalid,
    method_not_allowed,
    not_acceptable,
    not_found,
    service_unavailable,
    unsupported_media_type,
)
from apiserver.http.status import timeout as timeout_error
from apiserver.http.tracing import traceparent
from auditlog.storage import StoreError

log = logging.getLogger(__name__)

API_VERSION = f"{GROUP}/{VERSION}"
FIELD_VALIDATIONS = ("", "Ignore", "Strict", "Warn")
MAX_FIELD_MANAGER_LENGTH = 128
# apiserver's names.SimpleNameGenerator: 5 characters from an alphabet without vowels or look-alikes.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LENGTH = 5
MAX_GENERATE_NAME_PREFIX = 63 - GENERATED_SUFFIX_LENGTH
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com')"
)
RETRY_AFTER_STORE_FAILURE_SECONDS = 5
MAX_SHOWN_VALUE = 200  # characters of a wrongly typed value quoted back in the error


def field_validation(query: MultiMapping[str]) -> str:
    """The create options, checked as kube-apiserver's ValidateCreateOptions does (422 on CreateOptions); returns
    the fieldValidation directive. dryRun and fieldManager change nothing here, as nothing is stored."""
    errors = []
    for value in query.getall("dryRun", []):
        if value != "All":
            errors.append(FieldError("dryRun", "FieldValueNotSupported", value, 'supported values: "All"'))
    manager = query.get("fieldManager", "")
    if len(manager) > MAX_FIELD_MANAGER_LENGTH:
        detail = f"may not be longer than {MAX_FIELD_MANAGER_LENGTH}"
        errors.append(FieldError("fieldManager", "FieldValueTooLong", None, detail))
    elif not manager.isprintable():
        errors.append(
            FieldError("fieldManager", "FieldValueInvalid", manager, "must only contain printable characters")
        )
    validation = query.get("fieldValidation", "")
    if validation not in FIELD_VALIDATIONS:
        supported = ", ".join(f'"{v}"' for v in FIELD_VALIDATIONS)
        errors.append(
            FieldError("fieldValidation", "FieldValueNotSupported", validation, f"supported values: {supported}")
        )
    if errors:
        raise invalid("CreateOptions", "meta.k8s.io", "", errors)
    return validation


def _warning(text: str) -> str:
    """An RFC 7234 warning as kube-apiserver writes it: code 299, agent '-', quoted text."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def _type_error(path: str, expected: str, value: Any) -> FieldError:
    # the stdlib encoder: orjson refuses integers beyond 64 bits, which JSON bodies may carry
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(shown) > MAX_SHOWN_VALUE:
        shown = shown[:MAX_SHOWN_VALUE] + "..."
    return FieldError(path, "FieldValueTypeInvalid", shown, f"{path} must be of type {expected}")


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _metadata(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """The metadata of the answer: a name (given, generated or none), labels and annotations echoed."""
    errors = []
    name = meta.get("name", "")
    generate_name = meta.get("generateName", "")
    if not name and generate_name:
        name = generate_name[:MAX_GENERATE_NAME_PREFIX] + "".join(
            secrets.choice(NAME_ALPHABET) for _ in range(GENERATED_SUFFIX_LENGTH)
        )
        if not _DNS1123_SUBDOMAIN.match(name):
            errors.append(FieldError("metadata.generateName", "FieldValueInvalid", generate_name, _SUBDOMAIN_HELP))
    elif name and (len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name)):
        errors.append(FieldError("metadata.name", "FieldValueInvalid", name, _SUBDOMAIN_HELP))
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if generate_name:
        out["generateName"] = generate_name
    for key in ("labels", "annotations"):
        if meta.get(key):
            out[key] = meta[key]
    out["creationTimestamp"] = _now_rfc3339()
    return out, errors


def _query_spec(spec: Mapping[str, Any]) -> QuerySpec:
    given = {
        "start_time": spec.get("startTime"),
        "end_time": spec.get("endTime"),
        "filter": spec.get("filter"),
        "limit": spec.get("limit"),
        "continue_token": spec.get("continue"),
    }
    return QuerySpec(**{k: v for k, v in given.items() if v is not None})


def _status_without_results(result: QueryResult) -> dict[str, Any]:
    return {
        "continue": result.continue_token,
        "effectiveStartTime": result.effective_start_time,
        "effectiveEndTime": result.effective_end_time,
    }


def _json_answer(head: Mapping[str, Any], result: QueryResult) -> bytes:
    """The object with status.results spliced in as the stored bytes: no parse, no re-serialisation."""
    status_head = orjson.dumps(_status_without_results(result))
    return b"".join(
        (orjson.dumps(head)[:-1], b',"status":', status_head[:-1], b',"results":', result.results_json, b"}}")
    )


class AuditLogQueryResource:
    def __init__(self, service: QueryService, schemas: decoding.Schemas, metrics: ApiMetrics) -> None:
        self.service = service
        self.schemas = schemas
        self.metrics = metrics

    async def create(self, request: web.Request) -> web.Response:
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
            raise bad_request(f"the request body must be one {KIND} object, not {json.dumps(document)[:40]}")
        self._check_type_meta(document)

        obj, problems = await decoding.off_loop(
            len(body), decoding.conform, document, self.schemas[AUDIT_LOG_QUERY], self.schemas
        )
        field_messages = problems.field_messages()
        if field_messages and validation == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(field_messages))
        metadata, errors = _metadata(obj.get("metadata") or {})
        errors += [_type_error(*wrong) for wrong in problems.wrong_type]
        name = metadata.get("name", "")
        if errors:
            raise invalid(KIND, GROUP, name, errors)

        spec = obj.get("spec") or {}
        user: UserInfo = request[USER_KEY]
        result = await self._execute(_query_spec(spec), user, name, request.get(DEADLINE_KEY))

        head = {"kind": KIND, "apiVersion": API_VERSION, "metadata": metadata, "spec": spec}
        headers: dict[str, str] = {}
        if validation in ("", "Warn") and field_messages:
            headers["Warning"] = ", ".join(_warning(m) for m in field_messages)
        if answer_type == YAML:
            status = _status_without_results(result) | {"results": orjson.loads(result.results_json)}
            full = head | {"status": status}
            return web.Response(
                status=201,
                body=await decoding.off_loop(len(result.results_json), decoding.dump_yaml, full),
                content_type=YAML,
                headers=headers,
            )
        return web.Response(status=201, body=_json_answer(head, result), content_type=JSON, headers=headers)

    @staticmethod
    def _check_type_meta(document: Mapping[str, Any]) -> None:
        """apiVersion and kind may be omitted (the URL says them); given, they must be ours."""
        api_version, kind = document.get("apiVersion"), document.get("kind")
        if api_version not in (None, "", API_VERSION):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({API_VERSION})"
            )
        if kind not in (None, "", KIND):
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({KIND})")

    async def _execute(self, spec: QuerySpec, user: UserInfo, name: str, deadline: float | None) -> QueryResult:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await self.service.execute(spec, user, sql_comment=traceparent(), deadline=deadline)
            outcome = "ok"
            self.metrics.query_results.observe(result.count)
            return result
        except InvalidQuery as err:
            outcome = "invalid"
            if any(e.field == "spec.filter" for e in err.errors):
                self.metrics.cel_rejected.inc()
            raise invalid(KIND, GROUP, name, err.errors) from None
        except ScopeUnresolved as err:
            outcome = "forbidden"
            raise forbidden(user.name, "create", RESOURCE.name, GROUP, str(err)) from None
        except QueryTimedOut:
            outcome = "timeout"
            raise timeout_error(round(time.perf_counter() - started, 1)) from None
        except StoreError as err:
            log.error("audit log store failed: %s", err)
            raise service_unavailable(
                "the audit log store is not answering; try again shortly", RETRY_AFTER_STORE_FAILURE_SECONDS
            ) from None
        finally:
            self.metrics.query_duration.labels(outcome).observe(time.perf_counter() - started)

    def add_routes(self, app: web.Application) -> None:
        collection = f"{GROUP_VERSION.path}/{RESOURCE.name}"
        app.router.add_post(collection, self.create)
        app.router.add_route("*", collection, _collection_other_method)
        app.router.add_route("*", collection + "/{tail:.*}", _no_such_object)


async def _collection_other_method(request: web.Request) -> web.StreamResponse:
    raise method_not_allowed(request.method, ["POST"])


async def _no_such_object(request: web.Request) -> web.StreamResponse:
    """AuditLogQueries are not stored: there is no object to get, update or delete."""
    raise not_found(f'{RESOURCE.name}.{GROUP} "{request.match_info["tail"]}" not found')
