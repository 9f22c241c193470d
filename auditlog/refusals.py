"""Store failures that are a statement's own doing, told apart from outages by ClickHouse's error code.

A statement that crossed one of the limits it was sent with (reading.ReadLimits) failed because of what it asked
for: retrying it unchanged fails the same way, so the caller must be told to ask for less, not to come back later.
Both drivers (HTTP and chdb) carry the server's text, `Code: 241. DB::Exception: ...`, in the error message.
"""

from __future__ import annotations

import enum
import re

from auditlog.storage import StoreError

_CODE = re.compile(r"\bCode: (\d+)\.")


class Refusal(enum.Enum):
    MEMORY = 241  # MEMORY_LIMIT_EXCEEDED
    ROWS = 158  # TOO_MANY_ROWS (max_rows_to_read)
    TIME = 159  # TIMEOUT_EXCEEDED (max_execution_time)


class DeadlinePassed(StoreError):
    """No time was left for the next statement: it was not sent (the engine would refuse it anyway)."""


def refusal(error: BaseException) -> Refusal | None:
    """The limit a failed statement crossed, or None when the failure is not one (an outage, a bug)."""
    if isinstance(error, DeadlinePassed):
        return Refusal.TIME
    text = str(error)
    found = _CODE.search(text)
    if found is None:
        return None
    try:
        crossed = Refusal(int(found.group(1)))
    except ValueError:
        return None
    # The server's own ceiling ("(total) memory limit exceeded") is an overload of the store, not this statement.
    if crossed is Refusal.MEMORY and "(total)" in text:
        return None
    return crossed
