"""`watchfloor handover`: the shift handover report, and the duty log (值班记录).

``watchfloor handover [--since 8h] [--out F.md]`` prints (or writes) the report
of the shift running now, with the draft's notes, times in ``site.timezone``;
``watchfloor handover log [--search TEXT] [--show ID]`` lists the signed shifts
(newest first) or prints one. Reads ``--redis URL`` or the data directory's
embedded Redis.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from watchfloor.commands.common import add_config_options
from watchfloor.commands.token import with_redis
from watchfloor.core.config import Config
from watchfloor.core.incidents import IncidentStore
from watchfloor.errors import CommandError
from watchfloor.monitor.silences import active_silences, silence_to_dict
from watchfloor.playbooks import duty_log
from watchfloor.playbooks.handover import collect
from watchfloor.playbooks.handover_markdown import render_markdown
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner
from watchfloor.playbooks.schema import parse_duration
from watchfloor.playbooks.worker import open_audit_or_none
from watchfloor.security.keys import write_private


def register(sub: Any) -> None:
    parser = sub.add_parser("handover", help="the shift handover report (Markdown), the duty log")
    parser.add_argument(
        "--since", help="length of the shift (default: since the last signed handover, or 8h)"
    )
    parser.add_argument("--out", metavar="FILE", help="write the report here (default stdout)")
    add_config_options(parser)
    parser.set_defaults(func=run)
    nested = parser.add_subparsers(dest="handover_command")
    log = nested.add_parser("log", help="the signed shifts (值班记录), newest first")
    log.add_argument("--search", default="", help="only shifts whose report holds TEXT")
    log.add_argument("--show", metavar="ID", help="print the report of one shift")
    add_config_options(log)
    log.set_defaults(func=run_log)


def run(args: argparse.Namespace) -> int:
    seconds = parse_duration(args.since) if args.since else None
    if args.since and not seconds:
        raise CommandError(f"--since {args.since!r} is not a duration (like 8h, 12h, 90m)")

    async def work(config: Config, redis: aioredis.Redis) -> int:
        now = time.time()
        incidents = IncidentStore(redis)
        report = await collect(
            redis,
            since=now - seconds if seconds else await duty_log.shift_start(redis, now),
            now=now,
            incidents=incidents,
            runner=PlaybookRunner(redis, incidents, None, Library([])),
            audit=open_audit_or_none(config, redis),
            silences=[silence_to_dict(s) for s in await active_silences(redis, now)],
            draft=await duty_log.read_draft(redis),
        )
        text = render_markdown(report, config.site.zone)
        if args.out:
            # 0600: the report names agents, actors and incidents of the shift.
            write_private(Path(args.out), text.encode("utf-8"))
            print(f"handover report written to {args.out}")
        else:
            print(text, end="")
        return 0

    return with_redis(args, work)


def run_log(args: argparse.Namespace) -> int:
    async def work(config: Config, redis: aioredis.Redis) -> int:
        found = await duty_log.search(redis, args.search, limit=1000)
        if args.show:
            entry = next((e for e in found if e["id"] == args.show), None)
            if entry is None:
                raise CommandError(f"no shift {args.show!r} in the duty log")
            print(entry["markdown"], end="")
            return 0
        zone = config.site.zone
        for e in found:
            start = datetime.fromtimestamp(e["since"], zone).strftime("%Y-%m-%d %H:%M")
            end = datetime.fromtimestamp(e["until"], zone).strftime("%H:%M %Z")
            print(
                f"{e['id']}  {start} → {end}  {e['outgoing'] or '-'} → {e['signed_by']}  "
                f"opened {e['opened']}, still open {e['still_open']}"
            )
        if not found:
            print("no signed shift" + (f" holds {args.search!r}" if args.search else ""))
        return 0

    return with_redis(args, work)
