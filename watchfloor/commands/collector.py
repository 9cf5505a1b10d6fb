"""`watchfloor collector`: run the ingest service (HTTP + WebSocket, probes, spool)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
from typing import Any

from watchfloor.commands.common import add_config_options, config_from_args, run_service

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
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload is not for the collector
    config = config_from_args(args)
    changes = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if changes:
        config = dataclasses.replace(
            config, collector=dataclasses.replace(config.collector, **changes)
        )
    where = f"{config.collector.host}:{config.collector.port}"
    return run_service(config, _serve, listen=where)


async def _serve(config: Any, url: str, stop: asyncio.Event) -> None:
    from watchfloor.collector.service import Collector

    # Unhandled, a SIGHUP meant as "reload" would end the collector: its settings
    # (ports, probes, spool) are read at start only, so it says so and keeps running.
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _hangup)
    await Collector(config, url).run(stop)


def _hangup() -> None:
    logger.warning("SIGHUP ignored: collector settings (ports, probes) need a restart")
