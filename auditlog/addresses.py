"""`HOST:PORT`, the one parser of the project's listen addresses: `HOST:PORT`, `[IPv6]:PORT`, `:PORT` (every
interface). A bare IPv6 address is refused rather than guessed at: in `::1:8080` the port could be part of it."""

from __future__ import annotations

import argparse
import ipaddress
import re
from typing import NamedTuple

ALL_INTERFACES = "0.0.0.0"
_PORT = re.compile(r"[0-9]{1,5}")  # ASCII digits only: str.isdigit() takes other scripts' digits too
_HOST = re.compile(r"[A-Za-z0-9._-]+")  # a name or an IPv4 address; IPv6 goes in brackets


class AddressError(ValueError):
    """The text is not a listen address; the message says what to write instead."""


class HostPort(NamedTuple):
    host: str
    port: int


def _refuse(text: str, why: str) -> AddressError:
    return AddressError(f"{text!r} is not HOST:PORT ({why}); e.g. 0.0.0.0:9090, [::1]:9090 or :9090")


def parse_host_port(text: str) -> HostPort:
    """The host and port of `text`; an empty host means every interface."""
    if text.startswith("["):
        inside, sep, rest = text[1:].partition("]")
        if not sep:
            raise _refuse(text, "an IPv6 address in brackets lacks its ']'")
        if not inside:
            raise _refuse(text, "the brackets are empty")
        try:
            host = str(ipaddress.IPv6Address(inside))
        except ValueError:
            raise _refuse(text, f"{inside!r} in brackets is not an IPv6 address") from None
        if not rest.startswith(":"):
            raise _refuse(text, "a ':PORT' must follow the ']'")
        port = rest[1:]
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise _refuse(text, "the ':PORT' is missing")
        if ":" in host:
            raise _refuse(text, "write an IPv6 address in brackets")
        if host and not _HOST.fullmatch(host):
            raise _refuse(text, f"host {host!r} is not a name or an IP address")
    if not _PORT.fullmatch(port) or int(port) > 65535:
        raise _refuse(text, f"port {port!r} is not a number from 0 to 65535")
    return HostPort(host or ALL_INTERFACES, int(port))


def host_port_flag(text: str) -> HostPort:
    """An argparse type for a listen flag: a usage error that says what to write."""
    try:
        return parse_host_port(text)
    except AddressError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
