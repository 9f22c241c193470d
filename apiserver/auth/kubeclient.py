"""A minimal kube-apiserver client for the three calls delegated auth makes (TokenReview, SubjectAccessReview,
GET of one ConfigMap), with client-go's webhook habits: a timeout, and a few retries on transient failures."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from apiserver.auth.kubeconfig import BearerToken, KubeConnection

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0  # client-go's default webhook timeout for delegated auth
RETRY_DELAYS = (0.1, 0.3)  # attempts = len + 1; short, because a request waits on them


class KubeAPIError(Exception):
    """The call failed (network, timeout, unexpected status or body). The message is safe to log, never to reply."""


class _Transient(Exception):
    """One attempt failed in a way another attempt may not."""


def _log_retry(state: RetryCallState) -> None:
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    problem = state.outcome.exception() if state.outcome is not None else None
    log.warning("kube-apiserver call failed, retrying in %.1fs: %s", delay, problem)


class KubeClient:
    def __init__(
        self,
        connection: KubeConnection,
        timeout: float = TIMEOUT_SECONDS,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.connection = connection
        self._token = BearerToken(connection)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retry_delays = retry_delays
        self._ssl = connection.ssl_context() if connection.server.startswith("https") else None
        self._session: aiohttp.ClientSession | None = None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        token = self._token.value()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """(status, decoded JSON body). Retries connection errors, timeouts, 429 and 5xx; returns other statuses."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        data = orjson.dumps(body) if body is not None else None
        retrying = AsyncRetrying(
            stop=stop_after_attempt(len(self._retry_delays) + 1),
            wait=self._delay,
            retry=retry_if_exception_type(_Transient),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(self._session, method, path, data)
        except _Transient as err:
            raise KubeAPIError(str(err)) from None
        raise AssertionError("tenacity ends every run with a return or a raise")

    def _delay(self, state: RetryCallState) -> float:
        # tenacity asks for the wait before its stop check: the last attempt has no delay of its own
        delays = self._retry_delays
        return delays[state.attempt_number - 1] if state.attempt_number <= len(delays) else 0.0

    async def _attempt(
        self, session: aiohttp.ClientSession, method: str, path: str, data: bytes | None
    ) -> tuple[int, Any]:
        try:
            async with session.request(
                method,
                self.connection.server + path,
                data=data,
                headers=self._headers(),
                ssl=self._ssl if self._ssl is not None else True,
                server_hostname=self.connection.tls_server_name,
            ) as response:
                raw = await response.read()
                if response.status != 429 and response.status < 500:
                    return response.status, orjson.loads(raw) if raw else None
                raise _Transient(f"{method} {path}: HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, OSError) as e:
            raise _Transient(f"{method} {path}: {type(e).__name__}: {e}") from None

    async def create(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """POST a review object; anything but 200/201 with a JSON object is an error."""
        status, answer = await self.request("POST", path, body)
        if status not in (200, 201) or not isinstance(answer, Mapping):
            raise KubeAPIError(f"POST {path}: HTTP {status}")
        return answer

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
