"""An answered AuditLogQuery as the client receives it: `status.results` are the stored event bytes spliced
into the JSON answer (no parse, no re-serialisation); a YAML answer parses them once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apiserver.apis.activity.v1alpha1.types import QueryResult
from apiserver.machinery.create import Created


def _status_without_results(result: QueryResult) -> dict[str, Any]:
    return {
        "continue": result.continue_token,
        "effectiveStartTime": result.effective_start_time,
        "effectiveEndTime": result.effective_end_time,
    }


def json_answer(head: Mapping[str, Any], result: QueryResult) -> bytes:
    status_head = orjson.dumps(_status_without_results(result))
    return b"".join(
        (orjson.dumps(head)[:-1], b',"status":', status_head[:-1], b',"results":', result.results_json, b"}}")
    )


def rendered(head: Mapping[str, Any], result: QueryResult) -> Created:
    def document() -> dict[str, Any]:
        status = _status_without_results(result) | {"results": orjson.loads(result.results_json)}
        return dict(head) | {"status": status}

    return Created(json_body=json_answer(head, result), document=document, size=len(result.results_json))
