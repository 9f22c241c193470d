"""The HTTP side of the load generator, against a small aiohttp receiver that records what it was sent and
answers what each test scripts (503s, a 400, the dead-letter count)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from activity.cli import main
from activity.devtools.loadgen.batches import TrafficPlan, batches
from activity.devtools.loadgen.sender import Delivery, Progress, post_batches, send
from activity.devtools.natsd import free_port
from auditlog.events import problem


@dataclass
class RecordingReceiver:
    """Records every EventList it accepts; answers the scripted statuses first, then 200."""

    url: str = ""
    script: list[int] = field(default_factory=list)
    report_dead_letters: bool = False
    retry_after: str = ""  # the Retry-After header of scripted answers
    bodies: list[bytes] = field(default_factory=list)  # accepted bodies, inflated
    attempts: int = 0
    encodings: set[str] = field(default_factory=set)
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        self.encodings.add(request.headers.get("Content-Encoding", ""))
        body = await request.read()  # aiohttp inflates a gzip body itself
        self.answered.set()
        if self.script:
            status = self.script.pop(0)
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.Response(status=status, text=f"scripted {status}", headers=headers)
        self.bodies.append(body)
        answer: dict[str, Any] = {}
        if self.report_dead_letters:
            answer["deadLettered"] = sum(problem(item) is not None for item in orjson.loads(body)["items"])
        return web.json_response(answer)

    def items(self) -> list[Any]:
        return [item for body in self.bodies for item in orjson.loads(body)["items"]]


@pytest.fixture
async def receiver() -> AsyncIterator[RecordingReceiver]:
    recorder = RecordingReceiver()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/events", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    recorder.url = f"http://127.0.0.1:{port}/events"
    try:
        yield recorder
    finally:
        await runner.cleanup()


def _delivery(receiver: RecordingReceiver, **overrides: Any) -> Delivery:
    return Delivery(**{"url": receiver.url, "initial_backoff_s": 0.01, **overrides})


async def test_every_batch_arrives_once_as_an_event_list(receiver: RecordingReceiver) -> None:
    plan = TrafficPlan(events=1001, seed=4, batch=100, malformed_ratio=0.1)
    summary = await send(plan, _delivery(receiver, concurrency=3))
    assert sorted(receiver.bodies) == sorted(b.body for b in batches(plan))
    assert all(orjson.loads(body)["kind"] == "EventList" for body in receiver.bodies)
    items = receiver.items()
    assert sum(problem(i) is None for i in items) == summary.events == 1001
    assert summary.response_complete == 500
    assert summary.malformed == sum(problem(i) is not None for i in items) > 0
    assert summary.dead_lettered == summary.malformed  # nothing reported: the malformed items sent
    assert summary.batches == len(receiver.bodies) == -(-(1001 + summary.malformed) // 100) and summary.ok


async def test_503_is_retried_until_accepted(receiver: RecordingReceiver) -> None:
    receiver.script = [503, 503, 429]
    summary = await send(TrafficPlan(events=40, batch=400), _delivery(receiver))
    assert receiver.attempts == 4 and summary.retries == 3
    assert len(receiver.items()) == 40 and summary.ok


async def test_the_receivers_retry_after_replaces_the_backoff(receiver: RecordingReceiver) -> None:
    # A backoff of 10 minutes would outlast the bound; the receiver's Retry-After: 1 is what is waited.
    receiver.script, receiver.retry_after = [503], "1"
    summary = await asyncio.wait_for(send(TrafficPlan(events=5), _delivery(receiver, initial_backoff_s=600)), 120)
    assert receiver.attempts == 2 and summary.retries == 1 and summary.ok


async def test_a_batch_still_refused_after_every_attempt_is_dropped_and_reported(receiver: RecordingReceiver) -> None:
    receiver.script = [503] * 3
    summary = await send(TrafficPlan(events=30, batch=20), _delivery(receiver, attempts=3, concurrency=1))
    assert summary.failed_batches == 1 and summary.failed_items == 20
    assert summary.events == 10 and len(receiver.items()) == 10
    assert not summary.ok and "gave up after 3 attempts" in summary.rejections[0]


async def test_a_400_is_not_retried(receiver: RecordingReceiver) -> None:
    receiver.script = [400]
    summary = await send(TrafficPlan(events=10), _delivery(receiver))
    assert receiver.attempts == 1 and summary.retries == 0
    assert summary.rejections == ("HTTP 400: scripted 400",)


async def test_gzip_bodies_and_reported_dead_letters(receiver: RecordingReceiver) -> None:
    receiver.report_dead_letters = True
    plan = TrafficPlan(events=200, seed=8, malformed_ratio=0.3)
    summary = await send(plan, _delivery(receiver, gzip=True))
    assert receiver.encodings == {"gzip"}
    assert sorted(receiver.bodies) == sorted(b.body for b in batches(plan))
    assert summary.dead_lettered == sum(problem(i) is not None for i in receiver.items()) > 0


async def test_progress_is_reported_while_sending(receiver: RecordingReceiver) -> None:
    seen: list[Progress] = []
    await post_batches(
        batches(TrafficPlan(events=300, batch=10)),
        _delivery(receiver, rate=3000),
        on_progress=seen.append,
        progress_every_s=0.02,
    )
    assert seen, "a paced run of ~0.1 s reports several times at a 20 ms interval"
    assert [p.acked for p in seen] == sorted(p.acked for p in seen)
    assert max(p.posted for p in seen) <= 300


async def test_the_command_prints_progress_and_a_summary(receiver: RecordingReceiver) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "activity.cli",
        "loadgen",
        "--webhook",
        receiver.url,
        "--events",
        "3000",
        "--rate",
        "2500",
        "--malformed-ratio",
        "0.01",
        "--seed",
        "6",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "events sent:        3,000 (ResponseComplete 1,500)" in out.decode()
    assert "acked" in err.decode() and "/s)" in err.decode()  # at least one progress line in ~1.2 s
    assert sum(problem(i) is None for i in receiver.items()) == 3000


async def test_an_unreachable_receiver_is_retried_then_given_up() -> None:
    url = f"http://127.0.0.1:{free_port()}/events"  # nobody listens
    summary = await send(TrafficPlan(events=5), Delivery(url=url, attempts=3, initial_backoff_s=0.01))
    assert summary.retries == 2 and summary.failed_items == 5 and not summary.ok
    assert "gave up after 3 attempts: ClientConnectorError" in summary.rejections[0]


def test_impossible_flags_are_refused_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loadgen", "--webhook", "http://127.0.0.1:1/events", "--malformed-ratio", "1.5"]) == 2
    assert "malformed ratio must be in [0, 1)" in capsys.readouterr().err


async def test_cancelling_a_send_ends_its_posts_in_flight(receiver: RecordingReceiver) -> None:
    receiver.script = [503] * 1000  # every POST waits to be retried
    sending = asyncio.create_task(send(TrafficPlan(events=400, batch=10), _delivery(receiver, initial_backoff_s=5)))
    await asyncio.wait_for(receiver.answered.wait(), 30)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    assert asyncio.all_tasks() == {asyncio.current_task()}
