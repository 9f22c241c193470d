"""`activity`: one command, one subcommand per program. Subcommand modules are imported only when chosen, so
`activity webhook` never pays for the API server's imports."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, Protocol

from activity.devtools import INSTALL_HINT


class Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


# name -> (module with add_arguments/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "up": (
        "activity.devtools.up.command",
        "run the whole pipeline on this machine: NATS, store, webhook, consumer, API",
    ),
    "migrate": ("activity.commands.migrate", "create or upgrade the ClickHouse schema (idempotent)"),
    "webhook": (
        "ingest.webhook.command",
        "receive kube-apiserver audit webhooks and publish them to JetStream",
    ),
    "consume": (
        "ingest.consumer.command",
        "move audit events from JetStream into ClickHouse, acking after insert",
    ),
    "apiserver": ("apiserver.command", "serve AuditLogQuery as a Kubernetes aggregated API server"),
    "loadgen": ("activity.devtools.loadgen.command", "send realistic audit webhook traffic to a receiver"),
    "bench": ("activity.devtools.bench.command", "measure our paths against the raw ceilings and print the ratios"),
}

# The developer tools (activity/devtools/): their dependencies come with an extra, not with a plain install or the
# server image.
TOOLS = frozenset({"up", "loadgen", "bench"})

ENV_PREFIX = "ACTIVITY_"


class EnvDefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def env_name(option: str) -> str:
    """`--nats-url` is also read from ACTIVITY_NATS_URL."""
    return ENV_PREFIX + option.lstrip("-").replace("-", "_").upper()


def _truthy(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "on")


def apply_env_defaults(parser: argparse.ArgumentParser, environ: dict[str, str] | None = None) -> None:
    """Let every long option default to its ACTIVITY_* environment variable, converted like the flag would be."""
    environ = dict(os.environ) if environ is None else environ
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs or action.dest == "help":
            continue
        name = env_name(longs[0])
        if action.help and action.help is not argparse.SUPPRESS and name not in action.help:
            action.help += f" [env {name}]"
        if name not in environ:
            continue
        raw = environ[name]
        try:
            action.default = _env_value(action, raw)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as err:
            parser.error(f"environment variable {name}={raw!r}: {err}")
        action.required = False


def _env_value(action: argparse.Action, raw: str) -> Any:
    """`raw` converted as the flag's own value would be."""
    if isinstance(action, argparse._StoreTrueAction | argparse.BooleanOptionalAction):
        return _truthy(raw)
    if isinstance(action, argparse._StoreFalseAction):
        return not _truthy(raw)  # ACTIVITY_NO_X=true means "the flag is given"
    if action.nargs in ("*", "+") or isinstance(action, argparse._AppendAction):
        return [action.type(v) if action.type else v for v in raw.split(",") if v]  # type: ignore[operator]
    return action.type(raw) if callable(action.type) else raw


def load(name: str) -> Command:
    try:
        return importlib.import_module(COMMANDS[name][0])
    except ImportError as err:
        if name in TOOLS:
            raise _needs_extra(name, err) from err
        raise


def _needs_extra(name: str, err: ImportError) -> SystemExit:
    """A tool run without its extra: what to install, not a traceback."""
    return SystemExit(f"activity {name} is a developer tool: {INSTALL_HINT} ({type(err).__name__}: {err})")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported and given its flags."""
    parser = argparse.ArgumentParser(
        prog="activity",
        description="Kubernetes audit logs, from kube-apiserver to a kubectl answer.",
        epilog="Every --flag can also be set with an ACTIVITY_* environment variable "
        "(--nats-url: ACTIVITY_NATS_URL). Run `activity COMMAND --help` for a command's flags.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, formatter_class=EnvDefaultsFormatter)
        if only == name:
            load(name).add_arguments(sp)
            apply_env_defaults(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    chosen = chosen if chosen in COMMANDS else None
    args = build_parser(chosen).parse_args(argv)
    command = load(args.command)
    try:
        return int(command.run(args) or 0)
    except ImportError as err:  # a tool may import a dependency of its extra only when it needs it
        if args.command in TOOLS:
            raise _needs_extra(args.command, err) from err
        raise


if __name__ == "__main__":
    sys.exit(main())
