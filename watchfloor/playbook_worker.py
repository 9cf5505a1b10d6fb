"""A process that only runs the playbook timers: ``python -m watchfloor.playbook_worker``.

The monitor normally runs the timer loop itself; this process runs the same loop
alone (a second monitor host, or the restart test that kills it between a
deadline and its escalation). The process owns its signals and its logging:
SIGTERM and SIGINT stop it cleanly; SIGKILL leaves claimed timers whose lease
expires, so nothing is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from watchfloor.core.config import load_config
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.logs import log_to_stderr
from watchfloor.playbooks.worker import build_runner, open_audit_or_none


async def serve(args: argparse.Namespace) -> None:
    config = load_config(args.config) if args.config else load_config()
    redis = redis_connect(args.redis, cluster=config.redis.cluster)
    audit = None if args.no_audit else open_audit_or_none(config, redis)
    runner = build_runner(redis, config, audit=audit, library_dir=args.library, poll_s=args.poll)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)  # the restart test waits for this line
    try:
        await runner.run(stop)
    finally:
        await runner.actions.aclose()
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watchfloor.playbook_worker")
    parser.add_argument("--redis", required=True, help="Redis URL")
    parser.add_argument("--config", help="watchfloor.toml (webhooks, drill target)")
    parser.add_argument("--library", help="directory of extra playbooks")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between timer polls")
    parser.add_argument("--no-audit", action="store_true", help="do not write audit records")
    args = parser.parse_args(argv)
    log_to_stderr(logging.INFO)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
