"""The redaction flags of `activity webhook` and `activity up`, and the settings they make."""

from __future__ import annotations

import argparse
from pathlib import Path

from ingest.redaction.paths import RULE_FORM, PathRule, parse_rule
from ingest.redaction.settings import RedactionSettings


class HiddenKey(str):
    """A key given as a flag value or in the environment: shown as "(hidden)" wherever argparse prints it."""

    __slots__ = ()

    def __new__(cls, value: str) -> HiddenKey:
        return super().__new__(cls, str.__str__(value))  # its text, not "(hidden)", when argparse converts it again

    def __repr__(self) -> str:
        return "(hidden)"

    __str__ = __repr__


def _rule(spec: str) -> PathRule:
    try:
        return parse_rule(spec)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser, *, key_flags: bool) -> None:
    group = parser.add_argument_group(
        "credentials",
        "Secret data and stringData (also in lists, patches of every type and kubectl's last-applied annotation), "
        "TokenRequest status.token and TokenReview spec.token are replaced before publishing by "
        "'redacted:hmac-sha256:<16 hex>', a keyed hash that tells whether a value changed without keeping it",
    )
    group.add_argument(
        "--no-redact",
        action="store_true",
        help="store credentials as received (logs a warning at start): anyone who may query audit events reads them",
    )
    group.add_argument(
        "--redact-path",
        action="append",
        type=_rule,
        default=[],
        metavar="RULE",
        help=f"also redact this path of the request and response objects of a resource; repeatable. RULE is "
        f"{RULE_FORM}; '*' matches every key or list item, [key] quotes a key holding dots",
    )
    if key_flags:
        group.add_argument(
            "--redaction-key-file",
            type=Path,
            metavar="FILE",
            help="the installation's secret key for markers (at least 16 bytes, e.g. `openssl rand -hex 32`), the "
            "same on every replica and kept across restarts. Without a key a random one is used, and markers change "
            "on restart",
        )
        group.add_argument(
            "--redaction-key",
            type=HiddenKey,
            metavar="KEY",
            help="the key itself, best from the environment (a Kubernetes Secret): a flag value is visible to every "
            "user of the machine",
        )


def settings_from(args: argparse.Namespace) -> RedactionSettings:
    """With the key from --redaction-key-file, else --redaction-key, where those flags exist (`activity up` keeps
    its own key)."""
    key = None
    if getattr(args, "redaction_key_file", None) is not None:
        try:
            key = args.redaction_key_file.read_bytes().strip()
        except OSError as err:
            raise ValueError(f"cannot read --redaction-key-file {args.redaction_key_file}: {err.strerror}") from None
    elif getattr(args, "redaction_key", None):
        key = str.encode(args.redaction_key).strip()
    return RedactionSettings(enabled=not args.no_redact, key=key, extra=tuple(args.redact_path))
