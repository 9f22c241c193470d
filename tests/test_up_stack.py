"""`activity up` end to end: a real subprocess with demo traffic, the real kubectl through the kubeconfig it wrote,
Ctrl-C, and restarts on the same data directory."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import yaml
from up_support import audit_ids, burst_stored, end, first_run_burst, process_alive, run_up, running_up, start_up

from activity.devtools.loadgen.events import PEOPLE, SERVICE_ACCOUNTS, SYSTEM_USERS
from activity.devtools.natsd import NatsServer
from activity.devtools.up.demo import BURST_EVENTS, BURST_SPAN
from ingest.jetstream import DURABLE, STREAM

DEMO_USERS = {*PEOPLE, *SERVICE_ACCOUNTS, *SYSTEM_USERS}
GROUP_VERSION = "/apis/activity.miloapis.com/v1alpha1"


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _jetstream_state(nats_dir: Path) -> tuple[int, int, int]:
    """(messages in the events stream, not yet delivered to the durable, delivered but unacked), read from a
    nats-server started on the stopped stack's JetStream directory."""

    async def read(url: str) -> tuple[int, int, int]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            stream, durable = await js.stream_info(STREAM), await js.consumer_info(STREAM, DURABLE)
            return stream.state.messages, durable.num_pending or 0, durable.num_ack_pending or 0
        finally:
            await nc.close()

    with NatsServer(nats_dir) as server:
        return asyncio.run(read(server.url))


def test_demo_traffic_is_queryable_with_kubectl_and_survives_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    started = datetime.now(UTC)
    with running_up(data, "--with-demo-traffic") as up:
        base = up.port_base

        # the kubeconfig is private and self-contained: kubectl needs nothing else to trust and be trusted
        assert stat.S_IMODE(up.kubeconfig.stat().st_mode) == 0o600
        config = yaml.safe_load(up.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == f"https://127.0.0.1:{base + 1}"
        assert base64.b64decode(cluster["certificate-authority-data"]) == (data / "pki" / "ca.crt").read_bytes()
        assert set(config["users"][0]["user"]) == {"client-certificate-data", "client-key-data"}
        discovery = json.loads(up.kubectl("get", "--raw", GROUP_VERSION).stdout)
        assert [r["name"] for r in discovery["resources"]] == ["auditlogqueries"]

        # the first run's burst, every ResponseComplete event of it, stamped within the last two hours: the
        # default window finds them
        sent = first_run_burst()
        assert len(sent) == BURST_EVENTS // 2
        demo = up.wait_for_events(burst_stored(sent))
        assert sent <= {e["auditID"] for e in demo}
        assert len(audit_ids(demo)) == len(demo)
        assert {e["stage"] for e in demo} == {"ResponseComplete"}
        assert {e["user"]["username"] for e in demo} <= DEMO_USERS
        assert min(_time(e["stageTimestamp"]) for e in demo) >= started - BURST_SPAN - timedelta(minutes=1)
        assert max(_time(e["stageTimestamp"]) for e in demo) <= datetime.now(UTC)

        # the object the banner suggests for `history --diff` has several stored versions
        words = next(line for line in up.stdout if " history " in line).split()
        at = words.index("history")
        resource, name, namespace = words[at + 1], words[at + 2], words[words.index("-n") + 1]
        versions = up.events(
            filter=f"objectRef.resource == '{resource}' && objectRef.name == '{name}' "
            f"&& objectRef.namespace == '{namespace}' && level == 'RequestResponse' && responseStatus.code < 400"
        )
        assert len(versions) >= 2

        # one `up` per data directory: the second names the first's PID
        second = run_up(data)
        assert second.returncode == 1
        assert f"another `activity up` (PID {up.process.pid}) is already running on {data}" in second.stderr
        assert "Traceback" not in second.stderr

        assert up.stop(signal.SIGINT) == 0, up.errors
        assert up.stdout[-1] == "stopped"
        assert not process_alive(up.nats_pid)
        assert (data / "up.lock").read_text() == ""
        assert "Traceback" not in up.errors
    ca = (data / "pki" / "ca.crt").read_bytes()
    kubeconfig = (data / "kubeconfig").read_text()
    # Ctrl-C left nothing behind in JetStream: every message was delivered to the durable and acked (after its
    # insert), so the store holds one ResponseComplete event per request the webhook accepted
    messages, pending, ack_pending = _jetstream_state(data / "nats")
    assert (pending, ack_pending) == (0, 0)

    # ... and a restart shows every one of them
    again = start_up(data, port_base=base)
    try:
        again.wait_ready()
        kept = again.events()
        assert audit_ids(demo) <= audit_ids(kept)
        assert len(audit_ids(kept)) == len(kept) == messages // 2
        # ... killed outright, `up` cannot end its nats-server: the child outlives it ...
        again.process.kill()
        again.finish()
        orphan = again.nats_pid
        assert process_alive(orphan)
        # ... until the next `up` on the directory ends it, takes the same ports and shows the same events
        with running_up(data, port_base=base) as third:
            assert not process_alive(orphan)
            assert audit_ids(third.events()) == audit_ids(kept)
            assert (data / "pki" / "ca.crt").read_bytes() == ca
            assert (data / "kubeconfig").read_text() == kubeconfig
            assert third.stop(signal.SIGTERM) == 0, third.errors
            assert not process_alive(third.nats_pid)
    finally:
        end(again)
