"""`activity up`: flags, logging to DIR/activity.log, signals, and errors as one sentence with the fix."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
from pathlib import Path

from activity.devtools.up.banner import banner
from activity.devtools.up.errors import UpError
from activity.devtools.up.layout import DEFAULT_DATA_DIR, DEFAULT_PORT_BASE, DataDir, Ports
from activity.devtools.up.stack import Stack, UpSettings
from auditlog import engineoutput
from ingest.redaction import flags as redaction_flags
from ingest.webhook.settings import WebhookSettings

log = logging.getLogger("activity.up")
SUPERVISE_INTERVAL_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        default=DEFAULT_DATA_DIR,
        help="where NATS, the store, the certificates, the kubeconfig and the log live; kept between runs",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        metavar="N",
        default=DEFAULT_PORT_BASE,
        help="first of five ports on 127.0.0.1: webhook, API server (+1), nats-server (+2), API server metrics "
        "(+3), consumer probes (+4)",
    )
    parser.add_argument(
        "--with-demo-traffic",
        action="store_true",
        help="send generated audit events (a burst over the last 2 hours, then a trickle) so queries show results",
    )
    parser.add_argument(
        "--cluster-name",
        default="local",
        metavar="NAME",
        help="cluster the webhook's events are filed under (audit.k8s.<name>)",
    )
    redaction_flags.add_arguments(parser, key_flags=False)  # the key is generated into DIR/pki/redaction.key


def prepare_data_dir(root: Path) -> DataDir:
    """The data directory, created and proven writable before anything starts."""
    absolute = root.expanduser().absolute()
    fix = "choose a writable directory with --data-dir"
    try:
        absolute.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=absolute):
            pass
    except OSError as err:
        raise UpError(f"cannot write to the data directory {absolute} ({err.strerror}): {fix}") from None
    return DataDir(absolute)


def _log_to(path: Path) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


async def serve(settings: UpSettings) -> int:
    """Start, print the banner, run until SIGINT/SIGTERM (or a part failing), stop in order."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    stack = Stack(settings)
    await stack.start()
    log.info("up: everything started")
    if not stopping.is_set():  # a Ctrl-C during start-up: straight to stopping, no banner
        print(banner(stack), flush=True)
    failure = None
    while not stopping.is_set() and failure is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), SUPERVISE_INTERVAL_S)
        failure = stack.failure()
    print("\nstopping: webhook, consumer (last batch flushed and acked), API server, nats-server", flush=True)
    await stack.stop()
    if failure is not None:
        raise UpError(failure)
    print("stopped", flush=True)
    return 1 if stack.unflushed else 0


def run(args: argparse.Namespace) -> int:
    try:
        ports = Ports(args.port_base)
        WebhookSettings(cluster=args.cluster_name)  # refuses a name that is not one NATS subject token
        data = prepare_data_dir(args.data_dir)
    except (UpError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _log_to(data.log)
    engineoutput.capture()  # the embedded engine's messages go to the log, not over the banner
    settings = UpSettings(
        data,
        ports,
        cluster=args.cluster_name,
        demo=args.with_demo_traffic,
        redaction=redaction_flags.settings_from(args),  # the key: kept in DIR/pki, read at start
    )
    try:
        return asyncio.run(serve(settings))
    except UpError as err:
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # unforeseen: one line here, the traceback in the log
        log.exception("activity up failed")
        print(f"error: {type(err).__name__}: {err} (details in {data.log})", file=sys.stderr)
        return 1
