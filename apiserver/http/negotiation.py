"""Content negotiation: which of the media types we can produce the client's Accept header allows.

Media ranges carrying Kubernetes conversion parameters (`;as=Table`, `;g=apidiscovery.k8s.io;v=v2`) ask for a
representation we do not serve, so they match nothing and the client's next choice applies, exactly as
client-go expects when it lists a plain `application/json` fallback.
"""

from __future__ import annotations

from collections.abc import Sequence

_CONVERSION_PARAMS = frozenset({"as", "g", "v"})


def media_type(header: str) -> str:
    """`application/json; charset=utf-8` → `application/json` (lower case); "" when absent."""
    return header.split(";", 1)[0].strip().lower()


def _ranges(accept: str) -> list[tuple[float, int, str]]:
    ranges = []
    for position, item in enumerate(accept.split(",")):
        kind, *raw_params = (p.strip() for p in item.split(";"))
        if not kind:
            continue
        params = {key.strip().lower(): value.strip() for key, _, value in (p.partition("=") for p in raw_params)}
        if _CONVERSION_PARAMS & set(params):
            continue
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0:
            ranges.append((-quality, position, kind.lower()))
    return sorted(ranges)


def _matches(media_range: str, offer: str) -> bool:
    if media_range in ("*/*", offer):
        return True
    kind, _, sub = media_range.partition("/")
    return sub == "*" and offer.startswith(kind + "/")


def negotiate(accept: str | None, offers: Sequence[str]) -> str | None:
    """The offer the client prefers most (the first offer when Accept is absent), or None: answer 406."""
    if not accept or not accept.strip():
        return offers[0]
    for _, _, media_range in _ranges(accept):
        for offer in offers:
            if _matches(media_range, offer):
                return offer
    return None
