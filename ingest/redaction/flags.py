"""The redaction flags of `activity webhook` and `activity up`, and the settings they make."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ingest.redaction.paths import RULE_FORM, PathRule, parse_rule
from ingest.redaction.settings import RedactionSettings

KEY_ENV = "ACTIVITY_REDACTION_KEY"


def _rule(spec: str) -> PathRule:
    try:
        return parse_rule(spec)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser, *, key_file: bool) -> None:
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
    if key_file:
        group.add_argument(
            "--redaction-key-file",
            type=Path,
            metavar="FILE",
            help=f"the installation's secret key for markers (at least 16 bytes), the same on every replica; or its "
            f"value in {KEY_ENV}. Without either a random key is used, and markers change on restart",
        )


def settings_from(args: argparse.Namespace) -> RedactionSettings:
    """With the key from --redaction-key-file, else $ACTIVITY_REDACTION_KEY, where that flag exists (`activity up`
    keeps its own)."""
    key = None
    if not hasattr(args, "redaction_key_file"):
        pass
    elif args.redaction_key_file is not None:
        try:
            key = args.redaction_key_file.read_bytes().strip()
        except OSError as err:
            raise ValueError(f"cannot read --redaction-key-file {args.redaction_key_file}: {err.strerror}") from None
    elif os.environ.get(KEY_ENV):
        key = os.environ[KEY_ENV].strip().encode()
    return RedactionSettings(enabled=not args.no_redact, key=key, extra=tuple(args.redact_path))
