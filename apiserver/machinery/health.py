"""/livez, /readyz and /healthz in kube-apiserver's format, so probes and operators read them the same way.

`?verbose` lists `[+]name ok` per check, `?exclude=name` skips a check, `/readyz/<name>` runs one. A failing
check answers 500 and never says why over HTTP (`reason withheld`); the reason goes to the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from apiserver.machinery.status import not_found, status_response

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    # Returns "" when healthy, else the reason (logged, never sent).
    probe: Callable[[], Awaitable[str]]


async def always_ok() -> str:
    return ""


async def _run(check: Check) -> str:
    try:
        return await asyncio.wait_for(check.probe(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g}s"
    except Exception as err:  # a probe bug must report unhealthy, not crash the endpoint
        return f"{type(err).__name__}: {err}"


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=body, status=status, content_type="text/plain", headers={"X-Content-Type-Options": "nosniff"}
    )


class HealthEndpoint:
    def __init__(self, name: str, checks: Sequence[Check]) -> None:
        self.name = name
        self.checks = {c.name: c for c in checks}

    async def all(self, request: web.Request) -> web.Response:
        excluded = {n for value in request.query.getall("exclude", []) for n in value.split(",") if n}
        lines = []
        failed = False
        for name, check in self.checks.items():
            if name in excluded:
                lines.append(f"[+]{name} excluded: ok")
                continue
            reason = await _run(check)
            if reason:
                failed = True
                log.warning("%s check %s failed: %s", self.name, name, reason)
                lines.append(f"[-]{name} failed: reason withheld")
            else:
                lines.append(f"[+]{name} ok")
        unknown = sorted(excluded - set(self.checks))
        if unknown:
            quoted = ", ".join(f'"{n}"' for n in unknown)
            lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}")
        if failed:
            return _text("\n".join([*lines, f"{self.name} check failed"]) + "\n", 500)
        if "verbose" in request.query:
            return _text("\n".join([*lines, f"{self.name} check passed"]) + "\n")
        return _text("ok")

    async def one(self, request: web.Request) -> web.Response:
        check = self.checks.get(request.match_info["check"])
        if check is None:
            return status_response(not_found(f'no health check named "{request.match_info["check"]}"'))
        reason = await _run(check)
        if reason:
            log.warning("%s check %s failed: %s", self.name, check.name, reason)
            return _text("internal server error: reason withheld\n", 500)
        return _text("ok")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(f"/{self.name}", self.all, allow_head=False)
        app.router.add_get(f"/{self.name}/{{check}}", self.one, allow_head=False)


def storage_check(ping: Callable[[], Awaitable[bool]]) -> Check:
    async def probe() -> str:
        return "" if await ping() else "the store did not answer SELECT 1"

    return Check("storage", probe)


def shutdown_check(stopping: Callable[[], bool]) -> Check:
    """Not ready once shutdown began, so load balancers drain us before the listener closes."""

    async def probe() -> str:
        return "shutting down" if stopping() else ""

    return Check("shutdown", probe)
