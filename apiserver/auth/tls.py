"""The TLS side of client-certificate authentication: ask every client for a certificate, and trust the CAs that
the authenticators trust, including CAs rotated in while serving.

Python's ssl cannot defer chain verification to the application (Go's RequestClientCert), so the handshake itself
verifies against the union of client CA and request-header CA; the authenticators then re-verify against their
own bundle. New CAs are added to the context at each handshake's ClientHello (sni_callback runs before the client
certificate is checked). CAs rotated out stay in the TLS store but no authenticator accepts them any more.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from typing import Any

from apiserver.auth.trust import CABundleSource

log = logging.getLogger(__name__)


class ClientCATrust:
    def __init__(self, sources: Sequence[CABundleSource]) -> None:
        self._sources = tuple(sources)
        self._loaded: set[str] = set()

    def refresh(self, context: ssl.SSLContext) -> None:
        for source in self._sources:
            bundle = source.current()
            if bundle is None or bundle.fingerprint in self._loaded:
                continue
            try:
                context.load_verify_locations(cadata=bundle.pem.decode("ascii", errors="replace"))
            except ssl.SSLError as e:  # keep serving with the CAs already loaded
                log.warning("cannot load CA bundle %s into the TLS context: %s", bundle.source, e)
                continue
            self._loaded.add(bundle.fingerprint)

    def install(self, context: ssl.SSLContext) -> None:
        """Make `context` (a server context with its serving pair loaded) request and check client certificates."""
        context.verify_mode = ssl.CERT_OPTIONAL
        self.refresh(context)
        previous = context.sni_callback

        def on_client_hello(ssl_object: Any, server_name: str, ctx: ssl.SSLContext) -> int | None:
            self.refresh(ctx)
            return previous(ssl_object, server_name, ctx) if previous is not None else None

        context.sni_callback = on_client_hello
