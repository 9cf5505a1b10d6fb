"""`watchfloor monitor`: the monitor process (rule engine, playbook runner, audit, API).

:mod:`watchfloor.monitor_process` composes the engine, the playbook runner, the
audit task and the API in one task group; this module starts it. SIGINT / SIGTERM are
:func:`watchfloor.commands.common.run_service`'s; SIGHUP reloads the live settings
(:mod:`watchfloor.settings_reload`).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import signal
from collections.abc import Callable
from typing import Any

from watchfloor.commands.common import add_config_options, config_from_args, run_service
from watchfloor.core.redis_client import connect as redis_connect

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "monitor",
        help="run the rule engine",
        description="Read the events stream through the 'monitor' consumer group, run the "
        "detectors and the alert lifecycle, open incidents and keep the queue and health "
        "boards. Uses the embedded Redis when no --redis / WATCHFLOOR_REDIS_URL is given.",
    )
    add_config_options(parser)
    parser.add_argument(
        "--worker-id",
        default=None,
        help="this worker's id among the monitor workers on one Redis (default: monitor."
        "worker_id, else host name and pid); each worker processes the events shards it leases",
    )
    parser.add_argument(
        "--no-api",
        action="store_true",
        help="do not serve the API (a further worker beside one that does)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Until the reload handler is installed, a SIGHUP must not end the process: the
    # settings it would reload are read at start anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    config = config_from_args(args)
    serve = functools.partial(
        _serve,
        reload_config=lambda: config_from_args(args),
        worker_id=args.worker_id,
        api=not args.no_api,
    )
    listen = "" if args.no_api else f"{config.api.host}:{config.api.port}"
    return run_service(config, serve, listen=listen)


async def _serve(
    config: Any,
    url: str,
    stop: asyncio.Event,
    *,
    reload_config: Callable[[], Any],
    worker_id: str | None = None,
    api: bool = True,
) -> None:
    # imported here, not at the top: `watchfloor --help` should not load the whole stack
    from watchfloor.monitor_process import MonitorProcess
    from watchfloor.settings_reload import SettingsReloader

    redis = redis_connect(url, cluster=config.redis.cluster)
    try:
        process = MonitorProcess.build(config, redis, worker_id=worker_id, api=api)
        reloader = SettingsReloader(process, reload_config)
        # SIGHUP (from `watchfloor reload`, or `up` passing its own on) applies webhooks,
        # rules and playbooks without a restart; unhandled, it would end the process.
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.request)
        logger.info("monitor started redis=%s worker=%s", url, process.service.id)
        reloading = asyncio.create_task(reloader.run(stop))
        try:
            await process.run(stop)
        finally:
            reloading.cancel()
    finally:
        await redis.aclose()
