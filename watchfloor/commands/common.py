"""Helpers shared by the subcommands: common options and running a service until a signal."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable

from watchfloor.core.config import Config, load_for_cli
from watchfloor.errors import CommandError


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--config`` and ``--redis``, which most commands take."""
    parser.add_argument("--data-dir", help="data directory (default ./.watchfloor)")
    parser.add_argument("--config", help="config file (default DATA_DIR/watchfloor.toml)")
    parser.add_argument("--redis", help="Redis URL (default: embedded Redis)")


def config_from_args(args: argparse.Namespace) -> Config:
    import dataclasses

    config = load_for_cli(getattr(args, "data_dir", None), getattr(args, "config", None))
    url = getattr(args, "redis", None)
    if url:
        config = dataclasses.replace(config, redis=dataclasses.replace(config.redis, url=url))
    if config.redis.cluster and config.redis.url:
        # `[redis] cluster = true` with a plain URL: every client of every command and child
        # process gets the cluster URL, so none can forget the flag.
        cluster_url = as_cluster_url(config.redis.url)
        config = dataclasses.replace(
            config, redis=dataclasses.replace(config.redis, url=cluster_url)
        )
    return config


def as_cluster_url(url: str) -> str:
    """``redis://h:p`` -> ``redis+cluster://h:p`` (``rediss`` likewise); others unchanged."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("redis", "rediss"):
        return f"{scheme}+cluster://{rest}"
    return url


def run_service(
    config: Config,
    main: Callable[[Config, str, asyncio.Event], Awaitable[None]],
    *,
    listen: str,
) -> int:
    """Run a long-lived service until SIGINT / SIGTERM, on the configured or embedded Redis.

    ``main(config, redis_url, stop)`` runs the service; ``listen`` (``host:port``)
    names the address in the one-line error when it cannot be bound.
    """
    from watchfloor.core.redis_server import redis_url_for
    from watchfloor.core.shards import ShardError
    from watchfloor.monitor.worker import WorkerIdInUse

    async def until_signal(url: str) -> None:
        from watchfloor.stop_watch import report_slow_stop

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watch = asyncio.create_task(report_slow_stop(stop), name="stop-watch")
        try:
            await main(config, url, stop)
        finally:
            watch.cancel()

    with redis_url_for(
        config.redis.url,
        config.data_dir,
        binary=config.redis.embedded_binary,
        long_lived=True,
        fsync=config.redis.appendfsync,
    ) as url:
        try:
            asyncio.run(until_signal(url))
        except* (ShardError, WorkerIdInUse) as group:  # refused at start: say why, once
            raise CommandError(str(group.exceptions[0])) from None
        except* OSError as group:  # the port is taken, the address is not ours...
            exc = group.exceptions[0]
            reason = getattr(exc, "strerror", None) or exc
            raise CommandError(f"cannot listen on {listen}: {reason}") from None
    return 0
