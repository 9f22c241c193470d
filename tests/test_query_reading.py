"""The two-phase page read when redelivered copies outnumber the candidate keys of phase 1."""

from __future__ import annotations

import hashlib

import orjson

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from auditlog.reading import PageQuery, read_page
from auditlog.storage import Store


def _order(raw: bytes) -> tuple[str, str, bytes]:
    """Newest first by (stageTimestamp, auditID, identity); the generator writes one timestamp format."""
    event = orjson.loads(raw)
    return (event["stageTimestamp"], event["auditID"], hashlib.sha256(raw).digest()[:16])


async def test_many_copies_of_each_event_still_fill_every_page_exactly_once(store: Store) -> None:
    events = list(EventGenerator(GeneratorSettings(seed=3)).events(30))
    # A third of the events have a different twin with the same key (a reused Audit-ID): both are events to show.
    twins = [dict(e, verb="delete", requestURI="/reused") for e in events[::3]]
    rows = [orjson.dumps(e) for e in events + twins]
    for _ in range(5):  # five copies: phase 1's first 2 x (limit + 1) candidates hold too few distinct keys
        await store.insert_events(rows)
    want = sorted(rows, key=_order, reverse=True)
    query = PageQuery(0, 2**62, limit=7)
    seen: list[bytes] = []
    while True:
        page = await read_page(store, query)
        assert len(page.events) == 7 or page.next_after is None
        seen += page.events
        if page.next_after is None:
            break
        assert len(seen) <= len(want), "pages repeat rows"
        query = PageQuery(0, 2**62, limit=7, after=page.next_after)
    assert seen == want
