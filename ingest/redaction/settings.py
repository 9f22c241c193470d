"""What redaction is told at start: whether it runs, its installation key, and the extra paths."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.redaction.paths import PathRule

MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class RedactionSettings:
    enabled: bool = True
    # None: a random key for this process, so markers compare only within its lifetime (a warning says so).
    key: bytes | None = field(default=None, repr=False)
    extra: tuple[PathRule, ...] = ()

    def __post_init__(self) -> None:
        if self.key is not None and len(self.key) < MIN_KEY_BYTES:
            raise ValueError(
                f"the redaction key is {len(self.key)} bytes; use at least {MIN_KEY_BYTES} random bytes "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
