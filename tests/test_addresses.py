"""`HOST:PORT`: the one parser of listen addresses, for the webhook's and the consumer's `--listen`."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditlog.addresses import AddressError, HostPort, host_port_flag, parse_host_port

PORTS = st.integers(0, 65535)
NAMES = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (":8090", ("0.0.0.0", 8090)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:9000", ("::1", 9000)),
        ("[::]:9000", ("::", 9000)),
        ("[0:0:0:0:0:0:0:1]:1", ("::1", 1)),
        ("localhost:0", ("localhost", 0)),
        ("webhook.activity.svc:65535", ("webhook.activity.svc", 65535)),
    ],
)
def test_listen_address_forms(text: str, address: tuple[str, int]) -> None:
    assert parse_host_port(text) == address
    assert host_port_flag(text) == address


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("8090", "':PORT' is missing"),
        ("host:", "port '' is not a number"),
        ("host:http", "port 'http' is not a number"),
        ("host:70000", "from 0 to 65535"),
        ("host:-1", "from 0 to 65535"),
        ("host:٣", "port '٣'"),  # a digit of another script, which str.isdigit() and int() take
        ("host: 80", "port ' 80'"),
        ("::1:8080", "IPv6 address in brackets"),  # is 8080 the port, or the last group of the address?
        ("[foo]:80", "'foo' in brackets is not an IPv6 address"),
        ("[::1]", "':PORT' must follow"),
        ("[::1]x:80", "':PORT' must follow"),
        ("[::1:80", "lacks its ']'"),
        ("[]:80", "brackets are empty"),
        ("a b:80", "host 'a b'"),
        ("[::1]]:80", "':PORT' must follow"),
        ("", "':PORT' is missing"),
    ],
)
def test_what_is_not_host_port_is_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(AddressError, match="is not HOST:PORT") as refused:
        parse_host_port(text)
    assert says in str(refused.value)
    assert "e.g. 0.0.0.0:9090" in str(refused.value)  # and what to write instead
    with pytest.raises(argparse.ArgumentTypeError, match="is not HOST:PORT"):
        host_port_flag(text)


@given(host=NAMES | st.ip_addresses(v=4).map(str), port=PORTS)
def test_any_name_or_ipv4_address_and_port_round_trips(host: str, port: int) -> None:
    assert parse_host_port(f"{host}:{port}") == HostPort(host, port)


@given(address=st.ip_addresses(v=6), port=PORTS)
def test_any_bracketed_ipv6_address_round_trips_and_the_bare_one_is_refused(
    address: ipaddress.IPv6Address, port: int
) -> None:
    for written in (str(address), address.exploded):
        assert parse_host_port(f"[{written}]:{port}") == HostPort(str(address), port)
        with pytest.raises(AddressError, match="in brackets"):
            parse_host_port(f"{written}:{port}")


@given(st.text(max_size=40))
def test_any_text_is_an_address_or_a_refusal_never_another_error(text: str) -> None:
    try:
        host, port = parse_host_port(text)
    except AddressError as err:
        assert repr(text) in str(err)
        return
    assert int(text.rpartition(":")[2]) == port
    canonical = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert parse_host_port(canonical) == (host, port)


@pytest.mark.parametrize(
    "command",
    [
        ["webhook", "--listen", "::1:8090"],
        ["consume", "--store", "chdb:///nowhere", "--listen", "::1:9090"],
    ],
    ids=["webhook", "consumer"],
)
async def test_webhook_and_consumer_refuse_a_bare_ipv6_listen_address_as_a_usage_error(command: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "activity.cli", *command, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    assert process.returncode == 2
    assert b"'::1:" in err and b"IPv6 address in brackets" in err and b"Traceback" not in err
