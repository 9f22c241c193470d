"""A large realistic audit history, generated inside ClickHouse in seconds rather than in Python in hours.

The loadgen generator makes a pool of request pairs once; an `INSERT … SELECT FROM numbers()` replays it with a
fresh auditID and time per request (the JSON is rewritten, so derived columns agree). Request 0 is the newest, at
`anchor`; growing a history adds older events and leaves the newest hours identical.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import orjson

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from apiserver.registry.auditlogquery.timerange import to_us
from auditlog.events import parse_timestamp
from auditlog.storage import EVENTS_TABLE, Store

POOL_TABLE = "bench_event_pool"
POOL_REQUESTS = 5_000  # 10,000 distinct event bodies to replay
# One event in this many is stored a second time, as an at-least-once redelivery would.
DUPLICATE_EVERY = 100


@dataclass(frozen=True)
class History:
    anchor_us: int  # stageTimestamp of the newest request's RequestReceived
    events_per_second: int

    @property
    def step_us(self) -> int:
        """Time between two requests (each request is two events)."""
        return 2_000_000 // self.events_per_second


def _pool_rows() -> list[list[object]]:
    rows: list[list[object]] = []
    generator = EventGenerator(GeneratorSettings(seed=2026))
    for _ in range(POOL_REQUESTS):
        for event in generator.request():
            received = to_us(parse_timestamp(event["requestReceivedTimestamp"]))
            stage_at = to_us(parse_timestamp(event["stageTimestamp"]))
            rows.append(
                [
                    orjson.dumps(event).decode(),
                    event["auditID"],
                    event["requestReceivedTimestamp"],
                    event["stageTimestamp"],
                    stage_at - received,
                ]
            )
    return rows


_FORMAT = "'%Y-%m-%dT%H:%i:%S.%fZ'"
_REPLAY = f"""
INSERT INTO {EVENTS_TABLE} (event_json)
WITH
    (SELECT groupArray(json) FROM (SELECT * FROM {POOL_TABLE} ORDER BY n)) AS jsons,
    (SELECT groupArray(audit_id) FROM (SELECT * FROM {POOL_TABLE} ORDER BY n)) AS ids,
    (SELECT groupArray(received) FROM (SELECT * FROM {POOL_TABLE} ORDER BY n)) AS receiveds,
    (SELECT groupArray(stage_at) FROM (SELECT * FROM {POOL_TABLE} ORDER BY n)) AS stage_ats,
    (SELECT groupArray(took_us) FROM (SELECT * FROM {POOL_TABLE} ORDER BY n)) AS tooks,
    number % length(jsons) + 1 AS i,
    intDiv(number, 2) AS request,
    {{anchor_us:Int64}} - toInt64(request) * {{step_us:Int64}} AS received_us,
    formatDateTime(fromUnixTimestamp64Micro(received_us, 'UTC'), {_FORMAT}) AS new_received,
    formatDateTime(fromUnixTimestamp64Micro(received_us + tooks[i], 'UTC'), {_FORMAT}) AS new_stage_at,
    replaceAll(jsons[i], receiveds[i], new_received) AS retimed,
    replaceOne(retimed, concat('"', stage_ats[i], '"'), concat('"', new_stage_at, '"')) AS restaged
SELECT replaceOne(
    if(stage_ats[i] = receiveds[i], retimed, restaged),
    ids[i],
    UUIDNumToString(sipHash128({{seed:UInt64}}, request)))
FROM numbers({{first:UInt64}}, {{count:UInt64}})
WHERE {{every:UInt64}} = 1 OR number % {{every:UInt64}} = 0
SETTINGS max_insert_threads = 2
"""


async def prepare_pool(store: Store) -> None:
    await store.run(
        lambda c: c.command(
            f"CREATE TABLE IF NOT EXISTS {POOL_TABLE} (n UInt32, json String, audit_id String, received String, "
            "stage_at String, took_us Int64) ENGINE = Memory"
        )
    )
    await store.run(lambda c: c.command(f"TRUNCATE TABLE {POOL_TABLE}"))
    rows = [[n, *row] for n, row in enumerate(_pool_rows())]
    names = ["n", "json", "audit_id", "received", "stage_at", "took_us"]
    await store.run(lambda c: c.insert(POOL_TABLE, rows, column_names=names))


async def grow(store: Store, history: History, have: int, want: int) -> None:
    """Add events `have` .. `want` (older than the ones stored), plus their share of redelivered copies."""
    if want <= have:
        return
    base = {"anchor_us": history.anchor_us, "step_us": history.step_us, "seed": 7}
    for first, count, every in ((have, want - have, 1), (have, want - have, DUPLICATE_EVERY)):
        params = base | {"first": first, "count": count, "every": every}
        await store.run(lambda c, p=params: c.command(_REPLAY, parameters=p))  # type: ignore[misc]


async def settle(store: Store, *, timeout_s: float = 900.0) -> int:
    """Wait until no merge of the events table is running (a fresh bulk load merges for minutes and would
    compete with the queries measured); return the number of active parts."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:
        (running,) = await store.query_tsv(_MERGES, {})
        quiet = quiet + 1 if running == b"0" else 0
        await asyncio.sleep(1.0)
    (parts,) = await store.query_tsv(_PARTS, {})
    return int(parts)


_MERGES = f"SELECT count() FROM system.merges WHERE database = currentDatabase() AND table = '{EVENTS_TABLE}'"
_PARTS = f"SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = '{EVENTS_TABLE}' AND active"


def anchor_for(now: datetime) -> int:
    """The newest request sits on a whole second just before `now`, so relative windows see the whole history."""
    return (to_us(now) // 1_000_000 - 1) * 1_000_000
