"""Bearer tokens, judged by kube-apiserver: POST authentication.k8s.io/v1 TokenReview, answers cached briefly.

The cache key is a SHA-256 of the token, so neither the cache nor a log line ever holds the token itself.
Positive and negative answers are cached; a failed call is not (the next request asks again).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from cachetools import TTLCache

from apiserver.auth.authenticate import AuthenticationFailed, Credentials
from apiserver.auth.kubeclient import KubeAPIError, KubeClient
from apiserver.machinery.request import UserInfo

log = logging.getLogger(__name__)

PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
MAX_CACHED = 4096  # answers kept, least recently used dropped first (client-go's webhook cache size)
CACHE_TTL_SECONDS = 10.0  # kube's --authentication-token-webhook-cache-ttl for delegated servers


def _user(status: Mapping[str, Any]) -> UserInfo:
    user = status.get("user") or {}
    extra = user.get("extra") or {}
    return UserInfo(
        name=str(user.get("username", "")),
        uid=str(user.get("uid", "")),
        groups=tuple(str(g) for g in user.get("groups") or ()),
        extra=MappingProxyType({str(k).lower(): tuple(str(v) for v in vs or ()) for k, vs in extra.items()}),
    )


class TokenReviewAuthenticator:
    def __init__(self, client: KubeClient, ttl: float = CACHE_TTL_SECONDS) -> None:
        self._client = client
        self._ttl = ttl
        # the cached value: the user, or the reason the token was refused
        self._cache: TTLCache[str, UserInfo | str] = TTLCache(MAX_CACHED, ttl)

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        token = credentials.bearer_token
        if token is None:
            return None
        key = hashlib.sha256(token.encode()).hexdigest()
        answer = self._cache.get(key)
        if answer is None:
            answer = await self._review(token)
            if self._ttl > 0:
                self._cache[key] = answer
        if isinstance(answer, str):
            raise AuthenticationFailed(f"bearer token: {answer}")
        return answer

    async def _review(self, token: str) -> UserInfo | str:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            review = await self._client.create(PATH, body)
        except KubeAPIError as e:
            raise AuthenticationFailed(f"bearer token: TokenReview failed: {e}") from None
        status = review.get("status") or {}
        if not status.get("authenticated"):
            return str(status.get("error") or "invalid bearer token")
        user = _user(status)
        if not user.name:
            return "TokenReview authenticated the token but returned no username"
        return user
