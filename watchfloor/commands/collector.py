"""`watchfloor collector`: run the ingest service (HTTP + WebSocket, probes, spool)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
from typing import Any

from watchfloor.commands.common import add_config_options, config_from_args

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "collector",
        help="run the ingest service",
        description="Accept event batches on POST /v1/events and the /v1/events/stream "
        "WebSocket, run the configured [[probes]], spool to DATA_DIR/spool while Redis is "
        "unreachable. Uses the embedded Redis when no --redis / WATCHFLOOR_REDIS_URL is given.",
    )
    add_config_options(parser)
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8470)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.redis_server import redis_url_for

    config = config_from_args(args)
    changes = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if changes:
        config = dataclasses.replace(
            config, collector=dataclasses.replace(config.collector, **changes)
        )
    with redis_url_for(
        config.redis.url, config.data_dir, binary=config.redis.embedded_binary
    ) as url:
        asyncio.run(_serve(config, url))
    return 0


async def _serve(config: Any, url: str) -> None:
    from collector.service import Collector

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from watchfloor.cli import CommandError

    try:
        await Collector(config, url).run(stop)
    except OSError as exc:  # the port is taken, the address is not ours...
        where = f"{config.collector.host}:{config.collector.port}"
        raise CommandError(f"cannot listen on {where}: {exc.strerror or exc}") from None
