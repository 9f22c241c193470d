"""The parts of the local pipeline, started in dependency order and stopped in the order that loses nothing.

Start: data-dir lock → certificates → nats-server child → migrations → API server → webhook (it sets the stream
limits) → consumer → kubeconfig → demo traffic. Stop: demo traffic → webhook (no new events; batches in flight
finish) → consumer (last batch inserted and acked) → API server → nats-server child → lock. `stop()` undoes
whatever part of `start()` got done, so a failed start leaves no process or port behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from aiohttp import web
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from activity.devtools.natsd import NatsServer, NatsServerMissing, find_binary
from activity.devtools.up import orphans
from activity.devtools.up.demo import DemoTraffic
from activity.devtools.up.errors import UpError
from activity.devtools.up.kubeconfig import write_kubeconfig
from activity.devtools.up.layout import HOST, DataDir, Ports
from activity.devtools.up.lock import DataDirLock
from activity.devtools.up.pki import LocalPki
from apiserver.server.apiserver import ApiServerHandle, start_apiserver
from apiserver.server.options import single_user_settings
from auditlog.config import StoreConfig, parse_store_dsn
from auditlog.schema import migrate
from auditlog.storage import Store
from auditlog.storelock import StoreInUse, claim
from ingest.consumer.consumer import Consumer
from ingest.consumer.probes import start_probes
from ingest.consumer.settings import ConsumerSettings
from ingest.jetstream import connect
from ingest.redaction import RedactionSettings
from ingest.webhook.service import WebhookHandle, start_webhook
from ingest.webhook.settings import WebhookSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpSettings:
    data: DataDir
    ports: Ports
    cluster: str = "local"
    demo: bool = False
    redaction: RedactionSettings = field(default_factory=RedactionSettings)  # its key: kept in pki/

    @property
    def kube_name(self) -> str:
        return f"activity-{self.cluster}"


def check_ports_free(ports: Ports) -> None:
    """Every port free on HOST before anything starts, so the error names the port and the flag to change."""
    for label, port in ports.named().items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is fine
            try:
                sock.bind((HOST, port))
            except OSError as err:
                raise port_error(label, port, ports, err) from None


def port_error(label: str, port: int, ports: Ports, err: OSError) -> UpError:
    why = "is already in use" if err.errno == errno.EADDRINUSE else f"cannot be used ({err.strerror})"
    return UpError(
        f"port {port} ({label}) on {HOST} {why}: `activity up` uses ports {ports.base}-{ports.base + 4}; "
        f"pick another range with --port-base (e.g. --port-base {ports.base + 100 if ports.base < 65000 else 20000})"
    )


async def _close(nc: NATS) -> None:
    """Drain when connected (what was published gets flushed); with NATS gone, drain refuses: just close."""
    if nc.is_connected:
        with contextlib.suppress(NatsError):
            await nc.drain()
            return
    await nc.close()


@dataclass
class Stack:
    settings: UpSettings
    pki: LocalPki = field(init=False)
    nats: NatsServer | None = None
    demo: DemoTraffic | None = None
    apiserver: ApiServerHandle | None = None
    webhook: WebhookHandle | None = None
    consumer: Consumer | None = None
    _lock: DataDirLock | None = None
    _store_claim: contextlib.ExitStack | None = None
    _webhook_nc: NATS | None = None
    _consumer_nc: NATS | None = None
    _consumer_store: Store | None = None
    _consumer_task: asyncio.Task[None] | None = None
    _probes: web.AppRunner | None = None
    _demo_task: asyncio.Task[None] | None = None
    unflushed: bool = False  # the consumer gave up on its last batch while stopping

    def __post_init__(self) -> None:
        self.pki = LocalPki(self.settings.data.pki)

    @property
    def store_config(self) -> StoreConfig:
        return parse_store_dsn(self.settings.data.store_dsn)

    @property
    def webhook_url(self) -> str:
        return f"http://{HOST}:{self.settings.ports.webhook}/events"

    @property
    def apiserver_url(self) -> str:
        return f"https://{HOST}:{self.settings.ports.apiserver}"

    def failure(self) -> str | None:
        """Why the stack can no longer work (a part ended on its own), or None while it can."""
        if self.nats is not None and self.nats.process is not None and self.nats.process.poll() is not None:
            return f"nats-server exited unexpectedly (code {self.nats.process.returncode}); see {self.nats_log}"
        if self._consumer_task is not None and self._consumer_task.done():
            return f"the consumer stopped unexpectedly; see {self.settings.data.log}"
        return None

    @property
    def nats_log(self) -> str:
        return str(self.settings.data.nats / "nats-server.log")

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        s = self.settings
        try:
            find_binary()
        except NatsServerMissing as err:
            raise UpError(str(err)) from None
        self._lock = DataDirLock(s.data.lock)
        self._lock.acquire()
        self._store_claim = contextlib.ExitStack()
        try:  # a separate `activity consume` or `apiserver` on this store: say so before starting anything
            self._store_claim.enter_context(claim(self.store_config))
        except StoreInUse as err:
            raise UpError(str(err)) from None
        orphans.end_orphan(s.data.nats_pid, s.data.nats)
        check_ports_free(s.ports)
        if self.pki.ensure():
            log.info("generated a CA, a serving and a client certificate in %s", self.pki.directory)
        self.nats = NatsServer(s.data.nats, port=s.ports.nats, host=HOST)
        try:
            self.nats.start()
        except RuntimeError as err:
            raise UpError(str(err)) from None
        assert self.nats.process is not None
        orphans.record(s.data.nats_pid, self.nats.process.pid)
        config = self.store_config
        try:
            migrate(config, log=log.info)
        except Exception as err:  # the engine's own errors: a store another process holds, a damaged dir
            raise UpError(
                f"cannot open the store {config.describe()}: {err}. If another program (activity consume, "
                "activity apiserver) uses this directory, stop it or give `up` another --data-dir"
            ) from None
        await self._start_apiserver(config)
        self._webhook_nc = await connect(self.nats.url, "activity-up-webhook")
        try:
            redaction = replace(s.redaction, key=self.pki.ensure_redaction_key())
            self.webhook = await start_webhook(
                WebhookSettings(host=HOST, port=s.ports.webhook, cluster=s.cluster, redaction=redaction),
                self._webhook_nc,
            )
        except OSError as err:
            raise port_error("webhook", s.ports.webhook, s.ports, err) from None
        await self._start_consumer(config)
        write_kubeconfig(s.data.kubeconfig, s.kube_name, self.apiserver_url, self.pki)
        if s.demo:
            self.demo = DemoTraffic.starting(datetime.now(UTC), DemoTraffic.next_run(s.data.demo_runs))
            self._demo_task = asyncio.create_task(self._send_demo(self.demo))

    async def _send_demo(self, demo: DemoTraffic) -> None:
        try:
            await demo.run(self.webhook_url)
        except Exception:  # demo traffic is a nicety: its failure is logged, the stack keeps running
            log.exception("demo traffic stopped")

    async def _start_apiserver(self, config: StoreConfig) -> None:
        s, pki = self.settings, self.pki
        settings = single_user_settings(
            ca_cert=pki.ca_cert,
            cursor_key_file=pki.cursor_key,
            bind_address=HOST,
            secure_port=s.ports.apiserver,
            tls_cert_file=pki.serving_cert,
            tls_private_key_file=pki.serving_key,
            metrics_port=s.ports.apiserver_metrics,
        )
        try:
            self.apiserver = await start_apiserver(settings, config)
        except OSError as err:
            raise port_error("API server", s.ports.apiserver, s.ports, err) from None

    async def _start_consumer(self, config: StoreConfig) -> None:
        assert self.nats is not None
        self._consumer_nc = await connect(self.nats.url, "activity-up-consumer")
        self._consumer_store = Store(config)
        self.consumer = Consumer(ConsumerSettings(), self._consumer_nc, self._consumer_store)
        self._consumer_task = asyncio.create_task(self.consumer.run())
        ports = self.settings.ports
        try:
            self._probes = await start_probes(self.consumer, HOST, ports.consumer_probes)
        except OSError as err:
            raise port_error("consumer probes", ports.consumer_probes, ports, err) from None

    async def stop(self) -> None:
        """Stop whatever runs, in the order that keeps every accepted event."""
        if self._demo_task is not None:
            self._demo_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._demo_task
            self._demo_task = None
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None
        if self._webhook_nc is not None:
            await _close(self._webhook_nc)
            self._webhook_nc = None
        await self._stop_consumer()
        if self.apiserver is not None:
            await self.apiserver.stop()
            self.apiserver = None
        if self.nats is not None:
            self.nats.stop()
            self.nats = None
            self.settings.data.nats_pid.unlink(missing_ok=True)
        if self._store_claim is not None:
            self._store_claim.close()
            self._store_claim = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def _stop_consumer(self) -> None:
        if self._probes is not None:
            await self._probes.cleanup()
            self._probes = None
        if self.consumer is not None and self._consumer_task is not None:
            self.consumer.stop()
            try:
                await self._consumer_task
            except Exception:  # already reported as a failure; stopping goes on
                log.exception("the consumer failed")
            self.unflushed = not self.consumer.all_flushed
            if self.unflushed:
                log.error("the consumer gave up on its last batch: JetStream redelivers it on the next `up`")
            self._consumer_task = None
        if self._consumer_nc is not None:
            await _close(self._consumer_nc)
            self._consumer_nc = None
        if self._consumer_store is not None:
            self._consumer_store.close()
            self._consumer_store = None
