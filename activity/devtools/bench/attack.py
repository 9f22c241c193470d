"""`activity bench attack`: ingest and queries at a steady load, first alone, then while the stack is attacked.

The stack is `activity up` on a fresh data directory and free loopback ports (webhook, consumer and API server
share one event loop there, so anything that blocks it shows). The bench first measures the stack's ingest rate
(unpaced `activity loadgen` until the consumer has stored it all), then runs two phases of the same length:
A, `activity loadgen` at a fraction of that rate plus a light query load; B, the same while an attacker process
loops the attacks of issue 16 (gzip members and tiny-item bodies, YAML bombs, costly CEL filters, absurd windows,
`?timeout=1s` queries, crowds of concurrent queries, idle connections up to the cap, slowloris headers, an
EventList spanning 150 days, a reused Audit-ID). Readiness of the webhook, the consumer and the API server is
polled every 250 ms throughout, with Kubernetes' default probe timeout.

At the end the stream is drained, the stack stopped, and every event the load generator and the attacker were
answered 200 for is looked up in the store (by auditID and stage, counting distinct contents, so both events of
a reused Audit-ID must be there). Invariants (exit 1 when broken): no event lost, no batch given up, readiness
never lost (no run of `--failure-threshold` failed polls, as Kubernetes counts them). Target, printed as
met/missed only: the ingest rate under attack within 20% of the baseline.

`python -m activity.devtools.bench.attack attacker CONFIG_JSON` is the attacker (a process of its own, so its work
is not the bench's): it prints `ready` once its payloads are built, then one JSON line with what it sent and was
answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import re
import shutil
import socket
import ssl
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import nats
import orjson

from activity.devtools.bench.ingest import machine
from activity.devtools.bench.processes import load_average, start_activity, stop, wait_http_ok
from activity.devtools.loadgen.batches import clocked_plan, event_list, items
from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from activity.devtools.natsd import free_port
from activity.devtools.up import orphans
from activity.devtools.up.banner import READY_LINE
from activity.devtools.up.layout import DataDir, Ports
from activity.devtools.up.pki import LocalPki
from auditlog.config import parse_store_dsn
from auditlog.storage import Store
from ingest.jetstream import DURABLE, STREAM

RC = "ResponseComplete"
COLLECTION = "/apis/activity.miloapis.com/v1alpha1/auditlogqueries"
INGEST_TARGET = 0.80  # phase B's stored rate at least this share of phase A's (printed, not enforced)
POLL_EVERY_S = 0.25
RECONNECT_PAUSE_S = 0.5
INSERTED = "activity_consumer_events_inserted_total"  # for the unpaced rate
QUERY_FILTERS = ("", "verb == 'delete'", "user.username.startsWith('system:serviceaccount:')")
NESTED_EXISTS = "annotations.exists(a, annotations.exists(b, annotations.exists(c, a.contains(b) && b.contains(c))))"


@dataclass(frozen=True)
class AttackSizes:
    """How big each attack is; the defaults are the issue's reproductions."""

    gzip_members: int = 150_000  # empty gzip members in one body
    tiny_items: int = 22_000_000  # `{},` items in one gzip body
    yaml_aliases: int = 2_000  # label keys aliasing one anchor
    yaml_anchor_bytes: int = 1_000_000
    concurrent_queries: int = 200
    idle_connections: int = 1_000  # per listener (webhook, API server): the default cap
    slowloris: int = 50  # per listener
    span_days: int = 150  # stageTimestamps of one EventList on this many days
    rounds: int = 1_000  # at most this many rounds of the request attacks per phase
    without: tuple[str, ...] = ()  # ATTACKS left out, to find which one costs what


ATTACKS = ("span-days", "audit-id", "bodies", "yaml", "costly-queries", "concurrent-queries", "idle", "slowloris")
QUICK_SIZES = AttackSizes(
    gzip_members=2_000,
    tiny_items=200_000,
    yaml_aliases=50,
    yaml_anchor_bytes=10_000,
    concurrent_queries=8,
    idle_connections=40,
    slowloris=4,
)


@dataclass(frozen=True)
class AttackBench:
    seconds: float = 20.0  # each phase
    rate_fraction: float = 0.7  # of the measured ingest rate
    probe_events: int = 20_000  # sent unpaced to measure the ingest rate
    query_rate: float = 4.0  # queries per second of the light load
    probe_timeout_s: float = 1.0  # Kubernetes' default timeoutSeconds
    failure_threshold: int = 3  # Kubernetes' default failureThreshold
    drain_timeout_s: float = 120.0
    sizes: AttackSizes = field(default_factory=AttackSizes)


@dataclass(frozen=True)
class AttackerConfig:
    webhook_port: int
    apiserver_port: int
    pki: str  # the stack's certificate directory
    seconds: float
    sizes: AttackSizes

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @staticmethod
    def from_json(raw: str) -> AttackerConfig:
        data = orjson.loads(raw)
        sizes = AttackSizes(**{**data["sizes"], "without": tuple(data["sizes"]["without"])})
        return AttackerConfig(**{**data, "sizes": sizes})


def _client_tls(pki: LocalPki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


def _query(spec: dict[str, Any]) -> bytes:
    return orjson.dumps({"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "AuditLogQuery", "spec": spec})


# --- the attacker (its own process) -------------------------------------------------------------------------------


class Attacker:
    """Loops the request attacks one after another (bounded by time and rounds) while crowds of idle and slowloris
    connections are kept up on the webhook and the API server."""

    def __init__(self, config: AttackerConfig) -> None:
        self.config = config
        s = config.sizes
        self.webhook = f"http://127.0.0.1:{config.webhook_port}/events"
        self.api = f"https://127.0.0.1:{config.apiserver_port}{COLLECTION}"
        self.tls = _client_tls(LocalPki(Path(config.pki)))
        self.answers: dict[str, Counter[str]] = {}
        self.slowest: dict[str, float] = {}  # seconds to the answer, the slowest of each request attack
        self.stored: Counter[tuple[str, str]] = Counter()  # events answered 200: they must reach the store
        self.deadline = 0.0
        # Built once, before the phase starts: the cost of making them is not the attack's.
        self.gzip_members = gzip.compress(b"") * s.gzip_members
        prefix = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
        self.tiny_items = gzip.compress(prefix + b"{}," * (s.tiny_items - 1) + b"{}]}", compresslevel=6)
        laughs = [b"a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
        for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
            laughs.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]".encode())
        self.billion_laughs = b"\n".join(laughs) + b"\nspec: {}\n"
        anchor = [b"metadata:", b"  annotations:", b"    big: &big " + b"x" * s.yaml_anchor_bytes, b"  labels:"]
        self.aliases = b"\n".join(anchor + [b"    k%d: *big" % i for i in range(s.yaml_aliases)]) + b"\nspec: {}\n"
        self.generator = EventGenerator(GeneratorSettings(seed=7, start=datetime.now(UTC)))

    def _answer(self, attack: str, outcome: str) -> None:
        self.answers.setdefault(attack, Counter())[outcome] += 1

    async def _post(
        self, http: aiohttp.ClientSession, attack: str, url: str, body: bytes, headers: dict[str, str]
    ) -> int:
        started = time.monotonic()
        try:
            async with http.post(url, data=body, headers=headers) as answer:
                await answer.read()
                self._answer(attack, str(answer.status))
                return answer.status
        except (aiohttp.ClientError, TimeoutError) as err:
            self._answer(attack, type(err).__name__)
            return 0
        finally:
            self.slowest[attack] = max(self.slowest.get(attack, 0.0), time.monotonic() - started)

    def _done_event(self) -> dict[str, Any]:
        return self.generator.request()[1]

    async def _events(self, http: aiohttp.ClientSession, attack: str, events: list[dict[str, Any]]) -> None:
        status = await self._post(http, attack, self.webhook, event_list(events), {"Content-Type": "application/json"})
        if status == 200:
            self.stored.update((e["auditID"], RC) for e in events)

    async def span_days(self, http: aiohttp.ClientSession) -> None:
        """One EventList whose events fall on as many days (once it stopped all ingestion): in retention, some in
        the future, so each must be stored and none is expired on arrival."""
        now = datetime.now(UTC)
        events = []
        for day in range(self.config.sizes.span_days):
            at = now + timedelta(days=day - 80)
            stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            events.append(dict(self._done_event(), requestReceivedTimestamp=stamp, stageTimestamp=stamp))
        await self._events(http, "EventList over 150 days", events)

    async def reused_audit_id(self, http: aiohttp.ClientSession) -> None:
        """A harmless get, then (a second later, as a second request is) a delete sent with the same Audit-ID
        header: both must be stored."""
        shared = str(uuid.uuid4())
        harmless = dict(self._done_event(), auditID=shared, verb="get")
        later = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        delete = dict(harmless, verb="delete", requestReceivedTimestamp=later, stageTimestamp=later)
        await self._events(http, "reused Audit-ID pair", [harmless])
        await self._events(http, "reused Audit-ID pair", [delete])

    async def bodies(self, http: aiohttp.ClientSession) -> None:
        gz = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        await self._post(
            http, f"gzip of {self.config.sizes.gzip_members:,} empty members", self.webhook, self.gzip_members, gz
        )
        await self._post(http, f"gzip of {{}}, x {self.config.sizes.tiny_items:,}", self.webhook, self.tiny_items, gz)

    async def yaml(self, http: aiohttp.ClientSession) -> None:
        headers = {"Content-Type": "application/yaml"}
        await self._post(http, "YAML billion laughs", self.api, self.billion_laughs, headers)
        await self._post(
            http, f"YAML: {self.config.sizes.yaml_aliases:,} aliases of one anchor", self.api, self.aliases, headers
        )

    async def costly_queries(self, http: aiohttp.ClientSession) -> None:
        headers = {"Content-Type": "application/json"}
        await self._post(http, "CEL: nested annotations.exists", self.api, _query({"filter": NESTED_EXISTS}), headers)
        window = {"startTime": "0001-01-01T00:00:00Z", "endTime": "9999-12-31T23:59:59Z"}
        await self._post(http, "window 0001 -> 9999", self.api, _query(window), headers)
        slow = {"startTime": "now-30d", "endTime": "now", "limit": 1000, "filter": "requestURI.contains('obj-1')"}
        await self._post(http, "?timeout=1s queries", self.api + "?timeout=1s", _query(slow), headers)

    async def crowd_of_queries(self, http: aiohttp.ClientSession) -> None:
        body = _query({"startTime": "now-30d", "endTime": "now", "limit": 1000})
        headers = {"Content-Type": "application/json"}
        name = f"{self.config.sizes.concurrent_queries} concurrent queries"
        await asyncio.gather(
            *(self._post(http, name, self.api, body, headers) for _ in range(self.config.sizes.concurrent_queries))
        )

    async def idle_crowd(self, port: int, listener: str) -> None:
        """Keep `idle_connections` connections open that never send a byte (on the API server: a TLS handshake never
        begun); each one the server closes is opened again after a pause (a crowd up to the cap, not a connect
        flood: with the bench's own connections past the cap, eviction and reconnection would chase each other)."""

        async def one() -> None:
            while time.monotonic() < self.deadline:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError as err:
                    self._answer(f"idle connections ({listener})", type(err).__name__)
                    await asyncio.sleep(0.5)
                    continue
                self._answer(f"idle connections ({listener})", "opened")
                try:
                    left = self.deadline - time.monotonic()
                    with contextlib.suppress(TimeoutError, OSError):
                        async with asyncio.timeout(max(left, 0)):
                            await reader.read()  # EOF: the server closed it
                            self._answer(f"idle connections ({listener})", "closed by the server")
                finally:
                    writer.close()
                await asyncio.sleep(RECONNECT_PAUSE_S)

        await asyncio.gather(*(one() for _ in range(self.config.sizes.idle_connections)))

    async def slowloris(self, port: int, listener: str) -> None:
        """Request headers one byte a second, never finished: the server must cut them at its header timeout."""

        async def one() -> None:
            head = b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 10_000
            while time.monotonic() < self.deadline:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError as err:
                    self._answer(f"slowloris ({listener})", type(err).__name__)
                    await asyncio.sleep(0.5)
                    continue
                self._answer(f"slowloris ({listener})", "opened")
                try:
                    for i in range(len(head)):
                        if time.monotonic() >= self.deadline or reader.at_eof():
                            break
                        writer.write(head[i : i + 1])
                        await writer.drain()
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(1.0):
                                if not await reader.read(1024) and reader.at_eof():
                                    break
                    if reader.at_eof():
                        self._answer(f"slowloris ({listener})", "closed by the server")
                except OSError:
                    self._answer(f"slowloris ({listener})", "closed by the server")
                finally:
                    writer.close()

        await asyncio.gather(*(one() for _ in range(self.config.sizes.slowloris)))

    async def run(self) -> None:
        c = self.config
        self.deadline = time.monotonic() + c.seconds
        skip = set(c.sizes.without)
        crowds = []
        if "idle" not in skip:
            crowds.append(asyncio.create_task(self.idle_crowd(c.webhook_port, "webhook")))
            crowds.append(asyncio.create_task(self.idle_crowd(c.apiserver_port, "API server")))
        if "slowloris" not in skip:
            crowds.append(asyncio.create_task(self.slowloris(c.webhook_port, "webhook")))
            crowds.append(asyncio.create_task(self.slowloris(c.apiserver_port, "API server")))
        every: dict[str, Callable[[aiohttp.ClientSession], Awaitable[None]]] = {
            "span-days": self.span_days,
            "audit-id": self.reused_audit_id,
            "bodies": self.bodies,
            "yaml": self.yaml,
            "costly-queries": self.costly_queries,
            "concurrent-queries": self.crowd_of_queries,
        }
        rounds = [attack for name, attack in every.items() if name not in skip]
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(ssl=self.tls, limit=c.sizes.concurrent_queries + 4)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            for done in range(c.sizes.rounds * len(rounds)):
                if time.monotonic() >= self.deadline or not rounds:
                    break
                await rounds[done % len(rounds)](http)
        await asyncio.gather(*crowds)


async def _attacker_main(config: AttackerConfig) -> dict[str, Any]:
    attacker = Attacker(config)
    print("ready", flush=True)
    await attacker.run()
    return {
        "answers": {name: dict(outcomes) for name, outcomes in attacker.answers.items()},
        "slowest": attacker.slowest,
        "stored": [[audit_id, stage, n] for (audit_id, stage), n in attacker.stored.items()],
    }


# --- the bench ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    polls: int
    failed: int
    longest_failed_run: int  # consecutive failed polls
    longest_unready_s: float  # from the first poll of that run to the next poll that succeeded (or the end)
    first_failure: str = ""


@dataclass(frozen=True)
class Phase:
    name: str
    offered_rate: float  # loadgen items/s asked for
    accepted: int  # loadgen items answered 200
    failed_batches: int
    elapsed_s: float  # the loadgen's sending time
    sent: Counter[tuple[str, str]] = field(repr=False, compare=False)  # its ResponseComplete events
    query_seconds: tuple[float, ...]
    query_errors: int
    readiness: dict[str, Readiness]
    answers: dict[str, dict[str, int]] = field(default_factory=dict)
    slowest: dict[str, float] = field(default_factory=dict)
    stored_span: tuple[float, float] = (0.0, 0.0)  # wall clock of its first and last insert (from the store)

    @property
    def stored_rate(self) -> float:
        """Its ResponseComplete events over the time from the first stored to the last: a consumer stalled or
        behind at the end stretches it; the attacker's own events are not counted."""
        span = self.stored_span[1] - self.stored_span[0]
        return sum(self.sent.values()) / span if span > 0 else 0.0

    def query_ms(self, q: float) -> float:
        ordered = sorted(self.query_seconds) or [float("nan")]
        return 1e3 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class AttackReport:
    bench: AttackBench
    max_rate: float  # loadgen items/s the stack took in and stored, unpaced
    phases: tuple[Phase, Phase]
    expected: int  # events answered 200 that must be in the store
    lost: int
    load_before: float
    load_after: float
    machine: str

    @property
    def ingest_ratio(self) -> float:
        a, b = self.phases
        return b.stored_rate / a.stored_rate if a.stored_rate else 0.0

    def readiness_broken(self) -> list[str]:
        return [
            f"{phase.name}: {part} failed {r.longest_failed_run} polls in a row, {r.longest_unready_s:.1f}s "
            f"({r.first_failure})"
            for phase in self.phases
            for part, r in phase.readiness.items()
            if r.longest_failed_run >= self.bench.failure_threshold
        ]

    @property
    def ok(self) -> bool:
        return self.lost == 0 and not self.readiness_broken() and all(p.failed_batches == 0 for p in self.phases)


class Watcher:
    """Polls the parts' readiness every 250 ms, each on a fresh connection (as the kubelet probes)."""

    def __init__(self, ports: Ports, tls: ssl.SSLContext, bench: AttackBench) -> None:
        self.bench = bench
        self.tls = tls
        self.urls = {
            "webhook": f"http://127.0.0.1:{ports.webhook}/readyz",
            "consumer": f"http://127.0.0.1:{ports.consumer_probes}/readyz",
            "API server": f"https://127.0.0.1:{ports.apiserver}/readyz",
        }
        self.metrics = f"http://127.0.0.1:{ports.consumer_probes}/metrics"
        self.polls: dict[str, list[tuple[float, bool, str]]] = {part: [] for part in self.urls}
        self._tasks: list[asyncio.Task[None]] = []

    async def _poll(self, part: str, url: str) -> None:
        connector = aiohttp.TCPConnector(force_close=True, ssl=self.tls)
        async with aiohttp.ClientSession(connector=connector) as http:
            while True:
                started = time.monotonic()
                try:
                    async with asyncio.timeout(self.bench.probe_timeout_s), http.get(url) as answer:
                        body = await answer.text()
                        ok, why = answer.status == 200, f"HTTP {answer.status}: {body[:120]}"
                except TimeoutError:
                    ok, why = False, f"no answer in {self.bench.probe_timeout_s:g}s"
                except aiohttp.ClientError as err:
                    ok, why = False, f"{type(err).__name__}: {err}"
                self.polls[part].append((started, ok, why))
                await asyncio.sleep(max(0.0, started + POLL_EVERY_S - time.monotonic()))

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._poll(p, u)) for p, u in self.urls.items()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stored_now(self) -> float:
        async with aiohttp.ClientSession() as http, http.get(self.metrics) as answer:
            return _sample(await answer.text(), INSERTED)

    def readiness(self, since: float, until: float) -> dict[str, Readiness]:
        out = {}
        for part, polls in self.polls.items():
            window = [(at, ok, why) for at, ok, why in polls if since <= at <= until]
            run = longest = 0
            run_from = unready = 0.0
            for at, ok, _ in [*window, (until, True, "")]:  # the end closes a run still open
                if not ok and run == 0:
                    run_from = at
                if ok and run:
                    unready = max(unready, at - run_from)
                run = 0 if ok else run + 1
                longest = max(longest, run)
            first = next((why for _, ok, why in window if not ok), "")
            out[part] = Readiness(len(window), sum(not ok for _, ok, _ in window), longest, unready, first)
        return out


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == name:
            return float(value)
    raise ValueError(f"{name} is not on the metrics page")


class QueryLoad:
    """One caller asking for a page of the last hour `rate` times a second, filters in turn, each timed."""

    def __init__(self, port: int, tls: ssl.SSLContext, rate: float) -> None:
        self.url = f"https://127.0.0.1:{port}{COLLECTION}"
        self.tls = tls
        self.rate = rate
        self.seconds: list[float] = []
        self.errors = 0

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self.tls, limit=1)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            for i in range(10**9):
                started = time.monotonic()
                spec = {"startTime": "now-1h", "endTime": "now", "limit": 100, "filter": QUERY_FILTERS[i % 3]}
                try:
                    async with http.post(
                        self.url, data=_query(spec), headers={"Content-Type": "application/json"}
                    ) as a:
                        await a.read()
                        ok = a.status == 201
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    self.seconds.append(time.monotonic() - started)
                else:
                    self.errors += 1
                await asyncio.sleep(max(0.0, started + 1 / self.rate - time.monotonic()))


_BATCHES = re.compile(r"batches:\s+([\d,]+) acknowledged, ([\d,]+) failed")
_SENT = re.compile(r"events sent:\s+([\d,]+)")
_ELAPSED = re.compile(r"elapsed:\s+([\d.]+) s")


@dataclass(frozen=True)
class Sent:
    events: int
    failed_batches: int
    elapsed_s: float
    expected: Counter[tuple[str, str]]  # the ResponseComplete events sent, by (auditID, stage)


async def loadgen(webhook: str, events: int, rate: float, seed: int, log: Path) -> Sent:
    """`activity loadgen` as users run it; its traffic is generated again here (same seed and start) to know
    every event it sent."""
    start = datetime.now(UTC) if rate else None
    flags = ["--webhook", webhook, "--events", str(events), "--seed", str(seed), "--quiet", "--concurrency", "8"]
    if rate:
        flags += ["--rate", f"{rate:.3f}", "--start", start.isoformat() if start else ""]
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "activity.cli", "loadgen", *flags, stdout=asyncio.subprocess.PIPE, stderr=err
        )
        out, _ = await process.communicate()
    text = out.decode()
    sent, batches, elapsed = _SENT.search(text), _BATCHES.search(text), _ELAPSED.search(text)
    if sent is None or batches is None or elapsed is None:
        raise RuntimeError(f"activity loadgen printed no summary (exit {process.returncode}); see {log}")
    # Which batches failed is not told: every event stays expected, so a batch given up shows as events lost too.
    plan = clocked_plan(events, now=datetime.now(UTC), rate=rate, start=start, seed=seed)
    expected = Counter((e["auditID"], RC) for e, _ in items(plan) if e["stage"] == RC)
    return Sent(int(sent[1].replace(",", "")), int(batches[2].replace(",", "")), float(elapsed[1]), expected)


async def attacker_process(config: AttackerConfig, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, "attacker", config.to_json(), stdout=asyncio.subprocess.PIPE, stderr=err
        )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 300)
    if line.strip() != b"ready":
        raise RuntimeError(f"the attacker did not start (exit {await process.wait()}); see {log}")
    return process


@dataclass
class Run:
    bench: AttackBench
    data: DataDir
    ports: Ports
    say: Callable[[str], None]
    watcher: Watcher = field(init=False)
    tls: ssl.SSLContext = field(init=False)
    expected: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.tls = _client_tls(LocalPki(self.data.pki))
        self.watcher = Watcher(self.ports, self.tls, self.bench)

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.ports.webhook}/events"

    async def max_rate(self) -> float:
        """Unpaced loadgen until the consumer has stored all of it: items per second end to end."""
        before = await self.watcher.stored_now()
        started = time.monotonic()
        sent = await loadgen(self.webhook, self.bench.probe_events, 0, 3, self.data.root / "loadgen.log")
        self.expected += sent.expected
        target = before + sum(sent.expected.values())
        deadline = time.monotonic() + self.bench.drain_timeout_s
        while await self.watcher.stored_now() < target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the consumer did not store the {sent.events:,} probe events in time")
            await asyncio.sleep(0.05)
        return sent.events / (time.monotonic() - started)

    async def phase(self, name: str, rate: float, seed: int, attack: bool) -> Phase:
        b = self.bench
        attacker = None
        if attack:
            config = AttackerConfig(self.ports.webhook, self.ports.apiserver, str(self.data.pki), b.seconds, b.sizes)
            attacker = await attacker_process(config, self.data.root / "attacker.log")
        queries = QueryLoad(self.ports.apiserver, self.tls, b.query_rate)
        querying = asyncio.create_task(queries.run())
        started = time.monotonic()
        sent = await loadgen(self.webhook, max(2, round(rate * b.seconds)), rate, seed, self.data.root / "loadgen.log")
        querying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await querying
        self.expected += sent.expected
        answers: dict[str, dict[str, int]] = {}
        slowest: dict[str, float] = {}
        if attacker is not None:
            out, _ = await attacker.communicate()
            if attacker.returncode != 0:
                raise RuntimeError(f"the attacker failed (exit {attacker.returncode}); see its log")
            result = orjson.loads(out.splitlines()[-1])
            answers, slowest = result["answers"], result["slowest"]
            for audit_id, stage, n in result["stored"]:
                self.expected[(audit_id, stage)] += n
        return Phase(
            name=name,
            offered_rate=rate,
            accepted=sent.events,
            failed_batches=sent.failed_batches,
            elapsed_s=sent.elapsed_s,
            sent=sent.expected,
            query_seconds=tuple(queries.seconds),
            query_errors=queries.errors,
            readiness=self.watcher.readiness(started, time.monotonic()),
            answers=answers,
            slowest=slowest,
        )

    async def drain(self) -> None:
        """Until the durable has nothing pending or unacked: stopping the stack then loses nothing."""
        nc = await nats.connect(f"nats://127.0.0.1:{self.ports.nats}")
        try:
            deadline = time.monotonic() + self.bench.drain_timeout_s
            while True:
                info = await nc.jetstream().consumer_info(STREAM, DURABLE)
                if not info.num_pending and not info.num_ack_pending:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the consumer left {info.num_pending} pending after the phases")
                await asyncio.sleep(0.25)
        finally:
            await nc.close()


async def _measure_running(run: Run) -> tuple[float, Phase, Phase]:
    run.watcher.start()
    try:
        run.say(f"measuring the ingest rate: {run.bench.probe_events:,} events unpaced")
        top = await run.max_rate()
        rate = run.bench.rate_fraction * top
        run.say(f"ingest rate {top:,.0f} events/s; phases at {rate:,.0f} events/s, {run.bench.seconds:g}s each")
        a = await run.phase("A: baseline", rate, 1, attack=False)
        run.say(f"phase A: {a.accepted / a.elapsed_s:,.0f} events/s accepted; phase B: the same under attack")
        b = await run.phase("B: under attack", rate, 2, attack=True)
        run.say(f"phase B: {b.accepted / b.elapsed_s:,.0f} events/s accepted; draining the stream")
        await run.drain()
    finally:
        await run.watcher.stop()
    return top, a, b


@dataclass(frozen=True)
class Stored:
    count: dict[tuple[str, str], int]  # distinct contents stored per (auditID, stage)
    inserted: dict[str, tuple[float, float]]  # auditID -> wall clock of its first and latest insert

    def lost(self, expected: Counter[tuple[str, str]]) -> int:
        return sum(max(0, n - self.count.get(key, 0)) for key, n in expected.items())

    def span(self, sent: Counter[tuple[str, str]]) -> tuple[float, float]:
        found = [self.inserted[audit_id] for audit_id, _ in sent if audit_id in self.inserted]
        return (min(f for f, _ in found), max(last for _, last in found)) if found else (0.0, 0.0)


async def read_stored(store_dsn: str) -> Stored:
    """The stored ResponseComplete events, by (auditID, stage): how many distinct contents, inserted when."""
    store = Store(parse_store_dsn(store_dsn), workers=1)
    try:
        rows = await store.query_tsv(
            "SELECT audit_id, stage, uniqExact(event_json), toUnixTimestamp64Milli(min(inserted_at)), "
            "toUnixTimestamp64Milli(max(inserted_at)) FROM events "
            "WHERE stage = {stage:String} GROUP BY audit_id, stage",
            {"stage": RC},
        )
    finally:
        store.close()
    count: dict[tuple[str, str], int] = {}
    inserted: dict[str, tuple[float, float]] = {}
    for row in rows:
        audit_id, stage, n, first_ms, last_ms = row.decode().split("\t")
        count[(audit_id, stage)] = int(n)
        inserted[audit_id] = (int(first_ms) / 1000, int(last_ms) / 1000)
    return Stored(count, inserted)


def free_port_base(attempts: int = 50) -> Ports:
    """Five consecutive free ports on loopback, as `activity up --port-base` takes them."""
    for _ in range(attempts):
        base = free_port()
        if base > 65535 - 4:
            continue
        try:
            for port in range(base, base + 5):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return Ports(base)
    raise RuntimeError("found no five consecutive free ports on 127.0.0.1")


def _wait_up(process: Any, out: Path, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while READY_LINE not in out.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"`activity up` did not come up; see {out}")
        time.sleep(0.1)


def measure(bench: AttackBench, root: Path, say: Callable[[str], None]) -> AttackReport:
    load_before = load_average()
    root.mkdir(parents=True, exist_ok=True)
    data = DataDir(root.absolute())
    ports = free_port_base()
    out = data.root / "up.out"
    say(f"starting `activity up --data-dir {data.root} --port-base {ports.base}`")
    up = start_activity(["up", "--data-dir", str(data.root), "--port-base", str(ports.base)], out)
    try:
        _wait_up(up, out)
        wait_http_ok(f"http://127.0.0.1:{ports.consumer_probes}/readyz", up)
        run = Run(bench, data, ports, say)
        top, a, b = asyncio.run(_measure_running(run))
    finally:
        stop(up, timeout_s=120)
        orphans.end_orphan(data.nats_pid, data.nats)  # an `up` killed while stopping leaves its nats-server
    if up.returncode != 0:
        raise RuntimeError(f"`activity up` stopped with exit {up.returncode}; see {out}")
    stored = asyncio.run(read_stored(data.store_dsn))
    return AttackReport(
        bench=bench,
        max_rate=top,
        phases=(replace(a, stored_span=stored.span(a.sent)), replace(b, stored_span=stored.span(b.sent))),
        expected=sum(run.expected.values()),
        lost=stored.lost(run.expected),
        load_before=load_before,
        load_after=load_average(),
        machine=machine(),
    )


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _ratio(b: float, a: float) -> str:
    return f"{b / a:.2f}" if a else "-"


def render(report: AttackReport) -> str:
    r, bench = report, report.bench
    a, b = r.phases
    threshold = bench.failure_threshold

    def ready(p: Phase) -> str:
        return ", ".join(f"{part} {x.failed}/{x.polls}" for part, x in p.readiness.items())

    def longest(p: Phase) -> str:
        worst = max(p.readiness.values(), key=lambda x: x.longest_failed_run)
        return f"{worst.longest_failed_run} ({worst.longest_unready_s:.1f}s)"

    rows: list[tuple[str, ...]] = [
        ("measure", "A: baseline", "B: under attack", "B/A", "target", "verdict"),
        ("loadgen events sent/s (asked)", f"{a.offered_rate:,.0f}", f"{b.offered_rate:,.0f}", "", "", ""),
        (
            "loadgen events accepted/s",
            f"{a.accepted / a.elapsed_s:,.0f}",
            f"{b.accepted / b.elapsed_s:,.0f}",
            _ratio(b.accepted / b.elapsed_s, a.accepted / a.elapsed_s),
            "",
            "",
        ),
        (
            "ingest: events stored/s",
            f"{a.stored_rate:,.0f}",
            f"{b.stored_rate:,.0f}",
            _ratio(b.stored_rate, a.stored_rate),
            f">= {INGEST_TARGET:.2f}",
            "met" if r.ingest_ratio >= INGEST_TARGET else "missed",
        ),
        (
            "query p50 ms",
            f"{a.query_ms(0.5):.0f}",
            f"{b.query_ms(0.5):.0f}",
            _ratio(b.query_ms(0.5), a.query_ms(0.5)),
            "",
            "",
        ),
        (
            "query p99 ms",
            f"{a.query_ms(0.99):.0f}",
            f"{b.query_ms(0.99):.0f}",
            _ratio(b.query_ms(0.99), a.query_ms(0.99)),
            "",
            "",
        ),
        (
            "queries answered / failed",
            f"{len(a.query_seconds)} / {a.query_errors}",
            f"{len(b.query_seconds)} / {b.query_errors}",
            "",
            "",
            "",
        ),
        ("readiness polls failed / made", ready(a), ready(b), "", "", ""),
        (
            "readiness: longest run of failed polls",
            longest(a),
            longest(b),
            "",
            f"< {threshold}",
            "ok" if not r.readiness_broken() else "BROKEN",
        ),
        (
            "loadgen batches given up",
            str(a.failed_batches),
            str(b.failed_batches),
            "",
            "0",
            "ok" if a.failed_batches == b.failed_batches == 0 else "BROKEN",
        ),
        (f"events lost (of {r.expected:,} answered 200)", "", str(r.lost), "", "0", "ok" if r.lost == 0 else "BROKEN"),
    ]
    attacks: list[tuple[str, ...]] = [("attack (phase B)", "answers", "slowest answer s")]
    for name, outcomes in sorted(b.answers.items()):
        slowest = f"{b.slowest[name]:.1f}" if name in b.slowest else ""
        attacks.append((name, ", ".join(f"{k} x{v:,}" for k, v in sorted(outcomes.items())), slowest))
    header = (
        f"attack benchmark: `activity up`, ingest rate measured unpaced at {r.max_rate:,.0f} events/s; phases of "
        f"{bench.seconds:g}s at {bench.rate_fraction:g} of it, {bench.query_rate:g} queries/s; readiness polled "
        f"every {POLL_EVERY_S * 1000:.0f} ms, {bench.probe_timeout_s:g}s timeout; load average "
        f"{r.load_before:.2f} before, {r.load_after:.2f} after"
    )
    if bench.sizes.without:
        header += f"; left out: {', '.join(bench.sizes.without)}"
    lines = [r.machine, header, "", _table(rows), "", _table(attacks)]
    lines += [f"readiness lost: {why}" for why in r.readiness_broken()]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = AttackBench()
    parser.add_argument("--seconds", type=float, default=d.seconds, help="length of each phase")
    parser.add_argument("--rate-fraction", type=float, default=d.rate_fraction, help="of the measured ingest rate")
    parser.add_argument("--probe-events", type=int, default=d.probe_events, help="events sent to measure the rate")
    parser.add_argument("--query-rate", type=float, default=d.query_rate, help="queries per second of the load")
    parser.add_argument("--probe-timeout", type=float, default=d.probe_timeout_s, help="readiness poll timeout, s")
    parser.add_argument(
        "--failure-threshold", type=int, default=d.failure_threshold, help="failed polls in a row that lose readiness"
    )
    parser.add_argument("--quick", action="store_true", help="tiny attack sizes: a smoke run")
    parser.add_argument(
        "--without", nargs="+", choices=ATTACKS, default=[], metavar="ATTACK", help=f"leave out: {', '.join(ATTACKS)}"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="the stack's data directory (default: temporary)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory (logs, store)")


def run(args: argparse.Namespace) -> int:
    bench = AttackBench(
        seconds=args.seconds,
        rate_fraction=args.rate_fraction,
        probe_events=args.probe_events,
        query_rate=args.query_rate,
        probe_timeout_s=args.probe_timeout,
        failure_threshold=args.failure_threshold,
        sizes=replace(QUICK_SIZES if args.quick else AttackSizes(), without=tuple(args.without)),
    )
    if min(bench.seconds, bench.query_rate, bench.probe_timeout_s) <= 0 or not 0 < bench.rate_fraction <= 1:
        print(
            "error: --seconds, --query-rate, --probe-timeout must be positive, --rate-fraction in (0, 1]",
            file=sys.stderr,
        )
        return 2
    if min(bench.probe_events, bench.failure_threshold) < 1:
        print("error: --probe-events and --failure-threshold must be at least 1", file=sys.stderr)
        return 2
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="activity-bench-attack-"))

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        report = measure(bench, root, say)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if args.data_dir is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"data directory kept: {root}")
    print(render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] != ["attacker"] or len(sys.argv) != 3:
        sys.exit("usage: python -m activity.devtools.bench.attack attacker CONFIG_JSON")
    print(orjson.dumps(asyncio.run(_attacker_main(AttackerConfig.from_json(sys.argv[2])))).decode(), flush=True)
