"""`activity apiserver`: serve the registered resources as a Kubernetes aggregated API server (flags in
apiserver.server.options)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from apiserver.machinery.logs import configure_logging
from apiserver.server.apiserver import start_apiserver
from apiserver.server.options import ApiServerSettings, settings_from_args
from apiserver.server.options import add_arguments as add_arguments
from auditlog import engineoutput
from auditlog.config import ConfigError, parse_store_dsn
from auditlog.storelock import claim

log = logging.getLogger(__name__)


async def serve(settings: ApiServerSettings, dsn: str, shutdown_delay_seconds: float) -> None:
    handle = await start_apiserver(settings, parse_store_dsn(dsn))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finishing in-flight requests")
    await handle.stop(shutdown_delay_seconds)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.logging_format)
    try:
        settings = settings_from_args(args)
        config = parse_store_dsn(args.store)
        if config.embedded:
            engineoutput.capture()  # the engine writes to descriptor 2: into our (possibly JSON) log lines instead
        with claim(config):  # an embedded store another process holds: refuse now, not "serving" and never ready
            asyncio.run(serve(settings, args.store, args.shutdown_delay_duration))
    except (ConfigError, ValueError, OSError) as err:
        log.error("%s", err)
        return 2
    return 0
