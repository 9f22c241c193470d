"""`activity webhook` as a process: its start-up line, a batch through it, and a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import aiohttp
from webhook_support import JSON, event_list, stored

from activity.devtools.loadgen.events import EventGenerator
from activity.devtools.natsd import NatsServer, free_port
from ingest.jetstream import STREAM, connect


async def _line_matching(stream: asyncio.StreamReader, pattern: str) -> str:
    async with asyncio.timeout(30):
        while line := (await stream.readline()).decode():
            if re.search(pattern, line):
                return line
    raise AssertionError(f"the process ended without printing {pattern!r}")


async def test_serves_until_sigterm_then_exits_0(nats_server: NatsServer) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "activity.cli",
        "webhook",
        "--nats-url",
        nats_server.url,
        "--listen",
        f"127.0.0.1:{port}",
        "--stream",
        "CLI_EVENTS",
        env={**os.environ, "ACTIVITY_CLUSTER": "from-env"},  # every flag also reads its ACTIVITY_* variable
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        started = await _line_matching(process.stderr, "webhook listening on")
        assert f"http://127.0.0.1:{port}/events" in started
        assert "stream CLI_EVENTS subject audit.k8s.from-env" in started
        items = list(EventGenerator().events(5))
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://127.0.0.1:{port}/events", data=event_list(items), headers=JSON) as response,
        ):
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        await _line_matching(process.stderr, "stopped")
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    nc = await connect(nats_server.url, "check")
    try:
        assert [m.subject for m in await stored(nc, "CLI_EVENTS")] == ["audit.k8s.from-env"] * 10
        assert STREAM not in [info.config.name for info in await nc.jetstream().streams_info()]
    finally:
        await nc.close()


async def test_a_cluster_name_that_is_not_a_subject_token_is_a_usage_error() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "activity.cli", "webhook", "--cluster", "prod.eu", stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"cluster 'prod.eu' must be one NATS subject token" in err
