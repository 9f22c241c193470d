"""The two-phase page read when redelivered copies outnumber the candidate keys of phase 1."""

from __future__ import annotations

import orjson

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from auditlog.reading import PageQuery, read_page
from auditlog.storage import Store


async def test_many_copies_of_each_event_still_fill_every_page_exactly_once(store: Store) -> None:
    rows = [orjson.dumps(e) for e in EventGenerator(GeneratorSettings(seed=3)).events(30)]
    for _ in range(5):  # five copies: phase 1's first 2 x (limit + 1) candidates hold too few distinct keys
        await store.insert_events(rows)
    want = sorted(rows, key=lambda r: (orjson.loads(r)["stageTimestamp"], orjson.loads(r)["auditID"]), reverse=True)
    query = PageQuery(0, 2**62, limit=7)
    seen: list[bytes] = []
    while True:
        page = await read_page(store, query)
        assert len(page.events) == 7 or page.next_after is None
        seen += page.events
        if page.next_after is None:
            break
        query = PageQuery(0, 2**62, limit=7, after=page.next_after)
    assert seen == want
