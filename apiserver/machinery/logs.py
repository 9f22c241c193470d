"""Logging as `--logging-format text|json` asks, and an access log that records who did what without secrets.

The access log writes method, path (never the query string or headers: tokens and cursors travel there),
status, duration and the user name the request ran as (and, under impersonation, the caller who impersonated).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from apiserver.machinery.request import IMPERSONATOR_KEY, USER_KEY

FORMATS = ("text", "json")
ACCESS_LOGGER = "apiserver.access"
# Attributes every LogRecord has; anything else on a record came from `extra=` and is a structured field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(fmt: str, level: int = logging.INFO) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"--logging-format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    formatter = (
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s")
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        user = getattr(request.get(USER_KEY), "name", "")
        impersonator = getattr(request.get(IMPERSONATOR_KEY), "name", "")
        duration_ms = round(time * 1000, 3)
        self.logger.info(
            "%s %s %d %.1fms user=%s%s",
            request.method,
            request.path,
            response.status,
            duration_ms,
            user or "-",
            f" impersonator={impersonator}" if impersonator else "",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": duration_ms,
                "user": user,
                "impersonator": impersonator,
                "remote": request.remote or "",
            },
        )
