"""A short-lived cache of verified producer tokens in front of the token store.

The auth gate checks every request's token in Redis. The collector must keep
accepting (and spooling) batches while Redis is unreachable, so a token that
was valid a moment ago stays valid from this cache: for ``ttl_s`` seconds
normally, and for as long as Redis is away when a check fails (stale on
error). Only positive answers are cached, so unknown tokens cannot fill it; a
revoked token stops working at most ``ttl_s`` seconds later.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from watchfloor.security.tokens import Principal, TokenStore

logger = logging.getLogger(__name__)

MAX_ENTRIES = 10_000


class CachedTokens:
    """Duck-typed :class:`~security.tokens.TokenStore` for ``setup_auth``."""

    def __init__(self, store: TokenStore, ttl_s: float = 10.0) -> None:
        self.store = store
        self.redis = store.redis
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def verify(self, token: str) -> Principal | None:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            principal = await self.store.verify(token)
        except (RedisError, OSError):
            if hit is not None:
                logger.debug("token check served from cache, redis unreachable")
                return hit[1]
            raise
        if principal is None:
            self._cache.pop(token, None)
            return None
        if len(self._cache) >= MAX_ENTRIES:
            self._cache.clear()
        self._cache[token] = (now + self.ttl_s, principal)
        return principal
