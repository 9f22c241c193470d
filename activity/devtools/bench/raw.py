"""The raw JetStream ceilings our webhook and consumer are compared with: the fastest plain nats-py ways to
publish durably and to pull, with none of our logic (see the performance notes for how they were chosen).

They are also how the benchmark preloads a stream before measuring a consumer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, Header

from ingest.jetstream import MSG_ID_HEADER

PUBLISH_WINDOW = 4000  # PubAcks outstanding: measured best on 2 cores
PULL_EXPIRES_S = 5.0


class RawError(RuntimeError):
    """JetStream refused or lost part of the work; the measurement is void."""


async def publish_pipelined(
    nc: NATS,
    subject: str,
    payloads: Sequence[bytes],
    msg_ids: Sequence[str] | None = None,
    *,
    window: int = PUBLISH_WINDOW,
    timeout_s: float = 120.0,
) -> float:
    """Publish every payload with a reply subject and count the PubAcks in one inbox callback; return the
    seconds until the last PubAck. `msg_ids` become Nats-Msg-Id headers (JetStream's dedupe), as ours sends."""
    inbox = nc.new_inbox()
    total = len(payloads)
    done = asyncio.Event()
    room = asyncio.Event()
    room.set()
    state = {"acked": 0, "in_flight": 0, "errors": 0}
    first_error: list[bytes] = []

    async def on_ack(msg: Msg) -> None:
        state["acked"] += 1
        state["in_flight"] -= 1
        if not msg.data.startswith(b'{"stream"'):  # an error PubAck, or a no-responders status
            state["errors"] += 1
            first_error[:] = first_error or [msg.data or str(msg.headers).encode()]
        if state["in_flight"] < window:
            room.set()
        if state["acked"] == total:
            done.set()

    sub = await nc.subscribe(inbox, cb=on_ack, pending_msgs_limit=0, pending_bytes_limit=0)
    started = time.perf_counter()
    try:
        for i, data in enumerate(payloads):
            while state["in_flight"] >= window:
                room.clear()
                await room.wait()
            state["in_flight"] += 1
            headers = {MSG_ID_HEADER: msg_ids[i]} if msg_ids is not None else None
            await nc.publish(subject, data, reply=inbox, headers=headers)
        if total:
            await asyncio.wait_for(done.wait(), timeout_s)
        elapsed = time.perf_counter() - started
    except TimeoutError:
        raise RawError(f"only {state['acked']} of {total} PubAcks within {timeout_s:g}s") from None
    finally:
        await sub.unsubscribe()
    if state["errors"]:
        raise RawError(f"{state['errors']} publishes refused, first: {first_error[0][:200]!r}")
    return elapsed


def pull_consumer_config(durable: str, max_ack_pending: int) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        max_ack_pending=max_ack_pending,
    )


async def pull_and_ack(
    nc: NATS, stream: str, durable: str, total: int, batch: int, *, timeout_s: float = 120.0
) -> float:
    """Drain `total` messages from an existing durable with raw `$JS.API.CONSUMER.MSG.NEXT` requests of `batch`
    (one at a time, the next sent when the previous is complete or ended) and ack each message as our consumer
    must; return the seconds until the last message was acked."""
    api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
    inbox = nc.new_inbox()
    request = orjson.dumps({"batch": batch, "expires": int(PULL_EXPIRES_S * 1e9)})
    done = asyncio.Event()
    state = {"received": 0, "in_request": 0}

    async def ask() -> None:
        state["in_request"] = 0
        await nc.publish(api, request, reply=inbox)

    async def on_message(msg: Msg) -> None:
        if not msg.data and msg.headers and Header.STATUS.value in msg.headers:
            await ask()  # 408 expired / 404 nothing yet: ask again
            return
        state["received"] += 1
        state["in_request"] += 1
        await nc.publish(msg.reply, b"+ACK")
        if state["received"] == total:
            done.set()
        elif state["in_request"] == batch:
            await ask()

    sub = await nc.subscribe(inbox, cb=on_message, pending_msgs_limit=0, pending_bytes_limit=0)
    started = time.perf_counter()
    try:
        await ask()
        await asyncio.wait_for(done.wait(), timeout_s)
        await nc.flush()  # the acks are on the wire
        return time.perf_counter() - started
    except TimeoutError:
        raise RawError(f"pulled only {state['received']} of {total} within {timeout_s:g}s") from None
    finally:
        await sub.unsubscribe()
