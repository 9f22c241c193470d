"""Audit events as JSON bytes: the common case decided without building the event, and the exact parser for the rest.

Building a Python object for every value of an event was the largest cost of our own code in the webhook and the
consumer (12 of the webhook's 34 us of CPU per event, measured), and almost every event is storable. So the bytes
are first validated whole by simdjson (syntax, UTF-8, numbers that fit a double) and only the fields `problem()`
judges are decoded, by msgspec, which skips the rest in place. Anything that is not plainly storable takes the full
path (`loads` + `problem()`), which alone words the reasons; both paths give the same verdict
(tests/test_eventjson.py holds that). A key given twice in one object is told from the bytes alone
(auditlog.duplicatekeys): every parser that builds the event keeps one of its values.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Annotated, Any, NoReturn

import msgspec
import simdjson

from auditlog.duplicatekeys import first_duplicate, parse_keeping_pairs, render_path, unique_keys
from auditlog.events import (
    INT32_MAX,
    INT32_MIN,
    MAP_FIELDS,
    NESTED_FIELDS,
    STRING_FIELDS,
    STRING_LIST_FIELDS,
    duplicate_key_problem,
    identity_problem,
)

# The JSON types `problem()` accepts for a member, by the kind events.NESTED_FIELDS names; null reads as absent.
_KINDS: dict[str, Any] = {
    "str": str | None,
    "strs": list[str] | None,
    "int32": Annotated[int, msgspec.Meta(ge=INT32_MIN, le=INT32_MAX)] | None,
}
_NESTED = {
    name: msgspec.defstruct(f"_{name}", [(member, _KINDS[kind], None) for member, kind in members.items()], gc=False)
    for name, members in NESTED_FIELDS.items()
}

# The fields problem() reads, with the JSON types it accepts; absent and null read alike, as there. Public so that
# a decoder of a list of events can embed it.
Judged = msgspec.defstruct(
    "Judged",
    [
        ("auditID", str),
        ("stage", str),
        ("stageTimestamp", str),
        *((name, str | None, None) for name in STRING_FIELDS),
        *((name, list[str] | None, None) for name in STRING_LIST_FIELDS),
        *((name, struct | None, None) for name, struct in _NESTED.items()),
        *((name, dict[str, str] | None, None) for name in MAP_FIELDS),
    ],
    gc=False,  # holds only strings, lists and dicts of them: never in a cycle, so not tracked by the collector
)
_JUDGED = msgspec.json.Decoder(Judged)
_parsers = threading.local()  # a simdjson parser keeps its buffers between documents but is not thread-safe
# A parser's buffers grow to ~2x the largest document it has read and never shrink: bigger documents get a parser of
# their own, freed with them (making one costs ~0.5 us, nothing beside parsing megabytes).
_REUSED_UP_TO = 4 << 20


def valid_json(data: bytes) -> bool:
    """Whether `data` is one JSON document that every parser downstream reads alike: strict syntax, valid UTF-8,
    no number beyond a double or a 64-bit integer, nesting within 1024 levels."""
    try:
        _parser_for(data).parse(data)  # the root proxy is dropped at once, so the parser can take the next document
    except (ValueError, RuntimeError, UnicodeDecodeError):
        return False
    return True


def _parser_for(data: bytes) -> simdjson.Parser:
    parser = getattr(_parsers, "parser", None) if len(data) <= _REUSED_UP_TO else simdjson.Parser()
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    return parser


# simdjson counts an array's elements on its tape up to this; a longer array reads as this length.
ARRAY_LENGTH_SATURATES = 0xFFFFFF


# A document the exact parser cannot read for its depth (simdjson reads 1024 levels, it ~1000): its keys are unchecked.
DEEPER_THAN_CHECKED = "event is nested too deeply to check that every key of it is given once"


class DuplicateKey(ValueError):
    """A top-level object gives `key` more than once: which of its values counts is open (auditlog.duplicatekeys)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {render_path([key])} is given more than once")
        self.key = key


def array_length(data: bytes, key: str) -> int | None:
    """None when `data` is not `valid_json`; else the length of the array at `key` of its top-level object (0 when
    there is none). One parse answers both, and the array's elements are never built as Python objects: a body of
    millions of tiny items is measured before anything pays for them. Raises DuplicateKey when the top-level
    object gives a key twice (simdjson would count the first `key`, the other parsers build the last)."""
    try:
        doc = _parser_for(data).parse(data)
    except (ValueError, RuntimeError, UnicodeDecodeError):
        return None
    if isinstance(doc, simdjson.Object) and len(set(doc.keys())) != len(doc):
        seen: set[str] = set()
        for name in doc:
            if name in seen:
                del doc
                raise DuplicateKey(name)
            seen.add(name)
    value = doc.get(key) if isinstance(doc, simdjson.Object) else None
    length = len(value) if isinstance(value, simdjson.Array) else 0
    del doc, value  # the proxies go before the parser takes the next document
    return length


def storable(data: bytes | msgspec.Raw) -> tuple[str, str] | None:
    """(auditID, stage) when `data`, already `valid_json`, is a storable event; None when the full path must
    decide (the event is not storable, or is in a form this path does not judge)."""
    judged = judge(data)
    return None if judged is None else (judged.auditID, judged.stage)


def judge(data: bytes | msgspec.Raw) -> Any:
    """The `Judged` fields of `data`, already `valid_json`, when it is a storable event, else None (as `storable`)."""
    try:
        judged = _JUDGED.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    return judged if identity(judged) is not None and unique_keys(bytes(data)) else None


def key_problem(data: bytes) -> str | None:
    """Why `data` cannot be stored for its keys: where it first gives one twice in one object (for any JSON
    `loads_exact` reads), or that it is nested too deeply to tell. None when every key is unique, or when `data` is
    not such JSON (its parser words that)."""
    if unique_keys(data):
        return None  # the common case, told without keeping anything built
    try:
        read = parse_exactly_keeping_pairs(data)
    except RecursionError:
        return DEEPER_THAN_CHECKED
    except ValueError:
        return None
    path = first_duplicate(read)
    return None if path is None else duplicate_key_problem(render_path(path))


def parse_exactly_keeping_pairs(data: bytes) -> Any:
    """`data` read as `loads_exact` reads it (text that is not UTF-8 kept as surrogate escapes), each object as its
    (key, value) pairs with duplicates kept (auditlog.duplicatekeys). Raises ValueError or RecursionError."""
    return parse_keeping_pairs(
        data.decode("utf-8", "surrogateescape"), parse_constant=_reject_constant, parse_float=_finite
    )


def identity(judged: Any) -> tuple[str, str] | None:
    """(auditID, stage) of a decoded `Judged` when its event is storable, else None. `Any`: a struct made at run
    time, whose fields mypy cannot see."""
    if identity_problem(judged.auditID, judged.stage, judged.stageTimestamp) is not None:
        return None  # the other fields' types were checked by the decoder
    return judged.auditID, judged.stage


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def loads_exact(text: str) -> Any:
    """The standard parser, for what orjson refuses but JSON allows (integers beyond 64 bits, text decoded with
    surrogate escapes); refuses NaN, Infinity and numbers beyond a double, which no reader of the event could
    parse. Raises ValueError or RecursionError."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
