"""A recording HTTPS server and a CONNECT proxy, to compare what the real kubectl sends with what the plugin sends
for the same kubeconfig: the identity (Authorization, client certificate, Impersonate-* headers), the TLS server
name asked for (SNI), the proxy used and the URL.

The server answers any GET with an empty JSON object and any POST with an empty AuditLogQuery page (or what
`answers` says), and records each request. It stands in for no Kubernetes logic: it only shows the wire.
"""

from __future__ import annotations

import http.server
import json
import selectors
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apiserver.machinery.certs import CertificateAuthority

IDENTITY_HEADERS = ("authorization", "impersonate-")  # header names (prefixes) that carry who the caller is


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query string
    headers: tuple[tuple[str, str], ...]  # (lower-case name, value) in the order sent
    client_cn: str  # subject CN of the client certificate, "" without one
    sni: str  # the TLS server name the client asked for, "" without SNI
    body: bytes

    def identity(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The client certificate and the identity headers, sorted (header order is not part of the identity)."""
        chosen = [(k, v) for k, v in self.headers if k.startswith(IDENTITY_HEADERS)]
        return self.client_cn, tuple(sorted(chosen))

    @property
    def query(self) -> str:
        return self.path.partition("?")[2]


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def empty_page(_: Seen) -> Answer:
    if _.method == "POST":
        status = {"results": [], "continue": "", "effectiveStartTime": "", "effectiveEndTime": ""}
        return Answer(201, {"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "AuditLogQuery", "status": status})
    return Answer(200, {})


@dataclass
class Recorder:
    url: str
    ca_file: Path  # trusts the serving certificate
    client_ca: CertificateAuthority  # client certificates from it are accepted
    directory: Path
    seen: list[Seen] = field(default_factory=list)
    answers: Callable[[Seen], Answer] = empty_page

    def client_pair(self, user: str, groups: Sequence[str] = ()) -> tuple[Path, Path]:
        return self.client_ca.issue_client(user, groups).write(self.directory, f"client-{user}")

    def take(self) -> list[Seen]:
        taken, self.seen[:] = list(self.seen), []
        return taken


def _handler(recorder: Recorder) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            connection: Any = self.connection
            cert = connection.getpeercert() or {}
            names = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
            seen = Seen(
                self.command,
                self.path,
                tuple((k.lower(), v) for k, v in self.headers.items()),
                names[0] if names else "",
                getattr(connection, "sni", None) or "",
                body,
            )
            recorder.seen.append(seen)
            answer = recorder.answers(seen)
            data = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _remember_sni(sock: Any, server_name: str | None, _: ssl.SSLContext) -> None:
    sock.sni = server_name or ""


@contextmanager
def recording_server(directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> Iterator[Recorder]:
    """An HTTPS server on 127.0.0.1 whose certificate names `hosts`, accepting (not requiring) client certificates
    from its own client CA."""
    directory.mkdir(parents=True, exist_ok=True)
    serving_ca, client_ca = CertificateAuthority("recorder-serving-ca"), CertificateAuthority("recorder-client-ca")
    (directory / "ca.crt").write_bytes(serving_ca.cert_pem)
    (directory / "client-ca.crt").write_bytes(client_ca.cert_pem)
    cert, key = serving_ca.issue_serving(list(hosts)).write(directory, "serving")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(directory / "client-ca.crt"))
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.sni_callback = _remember_sni
    recorder = Recorder("", directory / "ca.crt", client_ca, directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    recorder.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="recorder", daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Proxy:
    url: str
    tunnels: list[tuple[str, str]] = field(default_factory=list)  # (CONNECT target, Proxy-Authorization)


def _pump(a: socket.socket, b: socket.socket) -> None:
    # A selector, not select.select(): late in a long test run this process holds descriptors past 1024.
    selector = selectors.DefaultSelector()
    selector.register(a, selectors.EVENT_READ)
    selector.register(b, selectors.EVENT_READ)
    try:
        while True:
            ready = selector.select(30)
            if not ready:
                return
            for key, _ in ready:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
    except OSError:
        return
    finally:
        selector.close()
        a.close()
        b.close()


@contextmanager
def connect_proxy() -> Iterator[Proxy]:
    """An HTTP proxy that only tunnels (CONNECT), recording each tunnel's target and Proxy-Authorization."""
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = Proxy(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()

    def serve_one(client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        request, *lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        method, target, _ = request.split(" ")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        proxy.tunnels.append((target, headers.get("proxy-authorization", "")))
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        _pump(client, upstream)

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve_one, args=(client,), daemon=True).start()

    thread = threading.Thread(target=accept, name="proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()
