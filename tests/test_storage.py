"""The storage client's failure path: a store error says what failed and holds on to none of the statement's data."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from auditlog.storage import Store, StoreError


async def test_failed_inserts_do_not_keep_their_batches_alive(store: Store) -> None:
    await store.run(lambda c: c.command("RENAME TABLE events TO events_away"))  # a real failure: no such table
    rows = [b'{"auditID":"%d","pad":"%s"}' % (i, b"x" * 1000) for i in range(2000)]  # ~2 MB once joined
    gc.collect()
    gc.disable()  # what a consumer retrying for minutes sees: cycles wait for a collection that is rare
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            with pytest.raises(StoreError, match="events"):
                await store.insert_events(rows)
        held = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
        gc.enable()
    # Five failed 2 MB batches: anything near a batch per attempt would be a leak.
    assert held < 1_000_000, f"{held} bytes still held after 5 failed inserts"
