"""`watchfloor handover --since 8h [--out F.md]`: the shift handover report in Markdown.

Reads incidents, runs, the queue changes of the shift and the audit log from
``--redis URL`` or the data directory's embedded Redis, and prints the report
(or writes it to ``--out``) for the next duty manager.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from watchfloor.commands.common import add_config_options
from watchfloor.commands.token import with_redis
from watchfloor.core.config import Config
from watchfloor.core.incidents import IncidentStore
from watchfloor.errors import CommandError
from watchfloor.playbooks.handover import collect, render_markdown
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner
from watchfloor.playbooks.schema import parse_duration
from watchfloor.playbooks.worker import open_audit_or_none
from watchfloor.security.keys import write_private


def register(sub: Any) -> None:
    parser = sub.add_parser("handover", help="write the shift handover report (Markdown)")
    parser.add_argument("--since", default="8h", help="length of the shift (default 8h)")
    parser.add_argument("--out", metavar="FILE", help="write the report here (default stdout)")
    add_config_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    seconds = parse_duration(args.since)
    if not seconds:
        raise CommandError(f"--since {args.since!r} is not a duration (like 8h, 12h, 90m)")

    async def work(config: Config, redis: aioredis.Redis) -> int:
        now = time.time()
        incidents = IncidentStore(redis)
        runner = PlaybookRunner(redis, incidents, None, Library([]))
        report = await collect(
            redis,
            since=now - seconds,
            now=now,
            incidents=incidents,
            runner=runner,
            audit=open_audit_or_none(config, redis),
        )
        text = render_markdown(report)
        if args.out:
            # 0600: the report names agents, actors and incidents of the shift.
            write_private(Path(args.out), text.encode("utf-8"))
            print(f"handover report written to {args.out}")
        else:
            print(text, end="")
        return 0

    return with_redis(args, work)
