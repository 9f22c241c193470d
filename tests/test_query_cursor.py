"""Continue tokens: what they carry survives the trip, anything else is refused, and where the key comes from."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver.registry.auditlogquery.cursor import Cursor, CursorCodec, load_cursor_key
from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.timerange import TimeWindow
from auditlog.reading import Position, Scope

KEY = b"0123456789abcdef0123456789abcdef"
texts = st.text(max_size=40)


@given(
    expires_s=st.integers(0, 2**40),
    scope=st.none() | st.builds(Scope, st.sampled_from(["Organization", "Project", "User"]), texts),
    digests=st.tuples(texts, texts),
    limit=st.integers(1, 1000),
    window=st.tuples(st.integers(0, 2**55), st.integers(0, 2**55)),
    # auditIDs may hold tabs, quotes, unicode; the identity is 16 bytes in hex
    position=st.builds(
        Position,
        st.integers(0, 2**55),
        texts,
        texts,
        st.binary(min_size=16, max_size=16).map(lambda b: b.hex().upper()),
    ),
)
def test_a_token_carries_its_cursor_exactly(
    expires_s: int,
    scope: Scope | None,
    digests: tuple[str, str],
    limit: int,
    window: tuple[int, int],
    position: Position,
) -> None:
    cursor = Cursor(expires_s, scope, digests[0], digests[1], limit, TimeWindow(*window), position)
    token = CursorCodec(KEY).encode(cursor)
    assert token.replace("-", "").replace("_", "").replace(".", "").isalnum()  # URL-safe, opaque
    assert CursorCodec(KEY).decode(token) == cursor


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        ("", "not a continue token this server issued"),
        ("abc", "not a continue token this server issued"),
        ("a.b.c", "not a continue token this server issued"),
        ("!!!.???", "not a continue token this server issued"),
        ("Zm9v.YmFy=", "not a continue token this server issued"),  # padding: not the spelling we issue
        ("Zm9v.YmFy", "signature does not match"),  # well-formed, unsigned
    ],
)
def test_anything_but_an_issued_token_is_refused(token: str, detail: str) -> None:
    with pytest.raises(InvalidQuery) as err:
        CursorCodec(KEY).decode(token)
    (error,) = err.value.errors
    assert error.field == "spec.continue" and error.value == token and detail in error.detail


def test_a_token_signed_by_this_key_but_unreadable_is_an_incompatible_version() -> None:
    payload = b'[3, "from a future server"]'
    token = ".".join(
        base64.urlsafe_b64encode(part).rstrip(b"=").decode()
        for part in (payload, hmac.new(KEY, payload, hashlib.sha256).digest())
    )
    with pytest.raises(InvalidQuery, match="incompatible server version"):
        CursorCodec(KEY).decode(token)


def test_without_a_key_file_each_process_gets_a_random_key_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        first, second = load_cursor_key(None), load_cursor_key(None)
    assert len(first) == 32 and first != second
    assert "no --cursor-key-file" in caplog.text and "other replicas" in caplog.text


def test_key_file_is_read_without_its_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "cursor.key"
    path.write_bytes(b"a-shared-secret-of-32-bytes-long\n")
    assert load_cursor_key(str(path)) == b"a-shared-secret-of-32-bytes-long"


def test_a_short_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cursor.key"
    path.write_bytes(b"short\n")
    with pytest.raises(ValueError, match="holds 5 bytes; use at least 16 random bytes"):
        load_cursor_key(str(path))
