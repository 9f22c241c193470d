"""What a failed insert says about itself: the rows are at fault, the insert was too wide, or the store is.

Decided from the ClickHouse error the driver passes on (`Code: N.` and, where one code has two meanings, its
words), never from how often it failed: retrying a data error blocks the stream forever, and dead-lettering
during an outage would empty it.
"""

from __future__ import annotations

import enum
import re

# ClickHouse error codes that mean "these rows cannot be stored", whatever the state of the store:
# CANNOT_PARSE_TEXT, CANNOT_PARSE_QUOTED_STRING, CANNOT_PARSE_INPUT_ASSERTION_FAILED, ATTEMPT_TO_READ_AFTER_EOF,
# CANNOT_PARSE_DATE, CANNOT_PARSE_DATETIME, TYPE_MISMATCH, ARGUMENT_OUT_OF_BOUND, CANNOT_CONVERT_TYPE,
# CANNOT_PARSE_NUMBER, INCORRECT_DATA, TOO_LARGE_ARRAY_SIZE, TOO_LARGE_STRING_SIZE, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE,
# VIOLATED_CONSTRAINT (a CHECK an operator added to the table).
DATA_ERROR_CODES = frozenset({6, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 128, 131, 321, 469})
# TOO_MANY_PARTS: "Too many partitions for single INSERT block" (the rows span more partitions than
# max_partitions_per_insert_block allows: the same rows go in as smaller inserts) shares its code with
# "Too many parts ... Merges are processing significantly slower than inserts" (the store is overloaded).
TOO_MANY_PARTS = 252
_TOO_WIDE_WORDS = "too many partitions for single insert block"
_CODE = re.compile(r"\bCode: (\d+)\.")


class InsertFailure(enum.Enum):
    DATA = "data"  # these rows: split the insert until the rejected row stands alone, dead-letter it
    TOO_WIDE = "too_wide"  # this grouping of rows: split it by partition, every row is still storable
    OUTAGE = "outage"  # the store (down, overloaded, out of memory, table missing, timing out): retry later


def error_code(message: str) -> int | None:
    match = _CODE.search(message)
    return int(match[1]) if match else None


def classify(message: str) -> InsertFailure:
    """What the failure `message` (a StoreError's text) is about. Unknown codes and failures without a code
    (connection refused, timeouts) are outages: retried, and the consumer reports itself unready if they last."""
    code = error_code(message)
    if code in DATA_ERROR_CODES:
        return InsertFailure.DATA
    if code == TOO_MANY_PARTS and _TOO_WIDE_WORDS in message.lower():
        return InsertFailure.TOO_WIDE
    return InsertFailure.OUTAGE
