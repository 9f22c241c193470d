"""Test helpers of the query service: a stored dataset with its Python model, a settable clock, page walking.

The model is the specification the service must meet: the events of a window (and scope, and filter), one per
distinct stored bytes (only a byte-identical copy is a duplicate), ordered newest first by (timestamp, auditID,
stage, identity), as the exact bytes that were stored.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from apiserver.apis.activity.v1alpha1.types import QueryResult, QuerySpec
from apiserver.machinery.request import UserInfo
from apiserver.registry.auditlogquery.service import QueryService
from apiserver.registry.auditlogquery.settings import QuerySettings
from apiserver.registry.auditlogquery.timerange import to_us
from auditlog.config import parse_store_dsn
from auditlog.events import parse_timestamp
from auditlog.fields import SCOPE_NAME_ANNOTATION, SCOPE_TYPE_ANNOTATION
from auditlog.reading import Scope
from auditlog.schema import migrate
from auditlog.storage import Store

START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
STEP = timedelta(seconds=5)
REQUESTS = 300  # 600 events over 25 minutes
KEY = b"test-cursor-key-0123456789abcdef"
PLATFORM = UserInfo("admin")


def scoped_user(scope_type: str, scope_name: str, name: str = "tenant-user") -> UserInfo:
    return UserInfo(
        name,
        extra={"iam.miloapis.com/parent-type": (scope_type,), "iam.miloapis.com/parent-name": (scope_name,)},
    )


@dataclass(frozen=True)
class Stored:
    key: tuple[int, str, str, bytes]  # (timestamp µs, auditID, stage, identity): the keyset order
    raw: bytes
    event: dict[str, Any]

    @property
    def scope(self) -> Scope | None:
        annotations = self.event.get("annotations") or {}
        if SCOPE_TYPE_ANNOTATION not in annotations:
            return None
        return Scope(annotations[SCOPE_TYPE_ANNOTATION], annotations[SCOPE_NAME_ANNOTATION])


def identity(raw: bytes) -> bytes:
    """The store's event_id: the first 16 bytes of the SHA-256 of the stored bytes (migration 0002)."""
    return hashlib.sha256(raw).digest()[:16]


def stored(event: dict[str, Any]) -> Stored:
    raw = orjson.dumps(event)
    key = (to_us(parse_timestamp(event["stageTimestamp"])), event["auditID"], event["stage"], identity(raw))
    return Stored(key, raw, event)


def generate() -> tuple[list[Stored], list[Stored]]:
    """The dataset (each event once) and the rows inserted a second time, as a redelivery would."""
    events = [stored(e) for e in EventGenerator(GeneratorSettings(seed=11, start=START, step=STEP)).events(REQUESTS)]
    # Same timestamp, other auditIDs: pages must break timestamp ties by auditID without skipping or repeating.
    twins = [stored(dict(s.event, auditID=f"{s.event['auditID'][:-4]}twin")) for s in events[::20]]
    # Same timestamp, auditID, stage and scope, another request (a reused Audit-ID): both are events to show.
    reused = [
        stored(dict(s.event, verb="delete", requestURI=f"{s.event.get('requestURI', '')}?x")) for s in events[7::9]
    ]
    events += twins + reused
    return events, events[::5]


def create_store(directory: Path, rows: Iterable[bytes], again: Iterable[bytes]) -> Store:
    dsn = f"chdb://{directory}"
    migrate(parse_store_dsn(dsn), retention_days=0)  # fixed-date test events must not age out
    store = Store(parse_store_dsn(dsn))

    async def load() -> None:
        await store.insert_events(list(rows))
        await store.insert_events(list(again))  # another insert, another part: not merged away yet

    asyncio.run(load())
    return store


def expected(
    events: Iterable[Stored],
    start_us: int,
    end_us: int,
    scope: Scope | None = None,
    keep: Callable[[dict[str, Any]], bool] = lambda e: True,
) -> list[bytes]:
    unique = {s.raw: s for s in events}
    chosen = [
        s
        for s in unique.values()
        if start_us <= s.key[0] < end_us and (scope is None or s.scope == scope) and keep(s.event)
    ]
    return [s.raw for s in sorted(chosen, key=lambda s: s.key, reverse=True)]


class Clock:
    """The service's clock, settable by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def service(store: Store, clock: Clock, *, key: bytes = KEY, max_page_size: int = 1000) -> QueryService:
    return QueryService(store, QuerySettings(cursor_key=key, max_page_size=max_page_size), clock=clock)


def spliced(rows: list[bytes]) -> bytes:
    return b"[" + b",".join(rows) + b"]"


async def walk(svc: QueryService, spec: QuerySpec, user: UserInfo, *, max_pages: int = 10_000) -> list[QueryResult]:
    """Every page of a query, following status.continue until it is empty."""
    pages = [await svc.execute(spec, user)]
    while pages[-1].continue_token and len(pages) < max_pages:
        pages.append(await svc.execute(replace(spec, continue_token=pages[-1].continue_token), user))
    return pages
