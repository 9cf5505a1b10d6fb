"""The collector as a long-running service: ``Collector(config).run(stop)``.

Opens one Redis client for the process (short timeouts, no client-side retry
loop: a failing write must fail fast so the batch is spooled instead of
waiting), serves :func:`~collector.app.create_app` on ``collector.host:port``
until ``stop`` is set, then stops intake, lets in-flight requests finish
under a timeout and closes Redis. Signal handling belongs to the CLI.

At start it records ``redis.shards`` as the Redis's events shard count, or
refuses to start (:class:`~core.shards.ShardError`, naming both counts) when
the Redis was set up with another one. A Redis unreachable at start does not
keep the collector from accepting (it spools); the count is then checked before
the first write (``Deduplicator``).
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from watchfloor.collector.app import create_app
from watchfloor.collector.writer import REDIS_DOWN
from watchfloor.core.config import Config
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.core.shards import ensure_count
from watchfloor.security.auth import AuditSink

logger = logging.getLogger(__name__)


def connect_redis(url: str, *, cluster: bool = False) -> aioredis.Redis:
    """The collector's Redis client: fail fast, the spool handles outages.

    A ``redis+cluster://`` URL, or ``cluster``, gives a Redis Cluster client.
    """
    return redis_connect(
        url,
        cluster=cluster,
        socket_timeout=5.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


class Collector:
    """Runs the ingest service until told to stop."""

    def __init__(
        self,
        config: Config,
        redis_url: str | None = None,
        *,
        audit: AuditSink | None = None,
        shutdown_timeout_s: float = 5.0,
    ) -> None:
        url = redis_url or config.redis.url
        if not url:
            raise ValueError("the collector needs a Redis URL")
        self.config = config
        self.redis_url = url
        self.audit = audit
        self.shutdown_timeout_s = shutdown_timeout_s
        self.port: int | None = None
        """The port actually bound (useful with port 0)."""
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        redis = connect_redis(self.redis_url, cluster=self.config.redis.cluster)
        runner: web.AppRunner | None = None
        try:
            await self._check_shards(redis)
            audit = self.audit if self.audit is not None else await _open_audit(self.config, redis)
            app = create_app(self.config, redis, audit=audit)
            # auto_decompress=False: gzip bodies are inflated by collector.ingest under
            # a hard size cap (aiohttp would inflate them before any limit applies).
            runner = web.AppRunner(
                app, shutdown_timeout=self.shutdown_timeout_s, access_log=None,
                auto_decompress=False,
            )  # fmt: skip
            await runner.setup()
            site = web.TCPSite(runner, self.config.collector.host, self.config.collector.port)
            await site.start()
            self.port = _bound_port(site)
            logger.warning(
                "collector listening host=%s port=%s", self.config.collector.host, self.port
            )
            self.ready.set()
            await stop.wait()
        finally:
            if runner is not None:
                await runner.cleanup()
            await redis.aclose()

    async def _check_shards(self, redis: aioredis.Redis) -> None:
        """Raises ``ShardError`` when Redis holds another shard count than the config."""
        try:
            await ensure_count(redis, self.config.redis.shards)
        except REDIS_DOWN as exc:
            logger.warning(
                "redis unreachable at start, spooling; the events shard count is checked "
                "before the first write error=%s",
                exc,
            )


async def _open_audit(config: Config, redis: aioredis.Redis) -> AuditSink | None:
    """The audit log for rejected signatures and failed logins, if security provides one."""
    try:
        from watchfloor.security.audit import open_audit
    except ImportError:
        return None
    try:
        return open_audit(config, redis)
    except Exception:  # a missing key must not keep the collector from ingesting
        logger.exception("audit log unavailable; rejected signatures are only logged")
        return None


def _bound_port(site: web.TCPSite) -> int | None:
    server = site._server  # aiohttp exposes no public accessor for the bound socket
    sockets = getattr(server, "sockets", None)
    return sockets[0].getsockname()[1] if sockets else None
