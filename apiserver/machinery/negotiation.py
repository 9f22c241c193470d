"""Content negotiation: which of the media types we can produce the client's Accept header allows.

Media ranges carrying Kubernetes conversion parameters (`;as=Table`, `;g=apidiscovery.k8s.io;v=v2`) ask for a
representation we do not serve, so they match nothing and the client's next choice applies, exactly as
client-go expects when it lists a plain `application/json` fallback.

Ours, not python-mimeparse: its best_match lets a range with conversion parameters match plain JSON (a Table
request would get a plain object instead of the fallback), and the matcher here is a few lines.
"""

from __future__ import annotations

from collections.abc import Sequence

JSON = "application/json"
YAML = "application/yaml"

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
        quality = _quality(params.get("q", "1"))
        if quality > 0:
            ranges.append((-quality, position, kind.lower()))
    return sorted(ranges)


def _matches(media_range: str, offer: str) -> bool:
    if media_range in ("*/*", offer):
        return True
    kind, _, sub = media_range.partition("/")
    return sub == "*" and offer.startswith(kind + "/")


def accepts_with_params(accept: str | None, media: str, params: dict[str, str]) -> bool:
    """Whether Accept lists `media` with exactly these conversion parameters (and q > 0), e.g. aggregated
    discovery's `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`."""
    for item in (accept or "").split(","):
        kind, *raw_params = (p.strip() for p in item.split(";"))
        given = {key.strip(): value.strip() for key, _, value in (p.partition("=") for p in raw_params)}
        quality = _quality(given.pop("q", "1"))
        if kind.lower() == media and given == params and quality > 0:
            return True
    return False


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def negotiate(accept: str | None, offers: Sequence[str]) -> str | None:
    """The offer the client prefers most (the first offer when Accept is absent), or None: answer 406."""
    if not accept or not accept.strip():
        return offers[0]
    for _, _, media_range in _ranges(accept):
        for offer in offers:
            if _matches(media_range, offer):
                return offer
    return None
