"""`watchfloor review`: post-incident review (复盘) and MTTA / MTTR.

``watchfloor review --incident ID [--out F.md]`` writes one incident's review
in Markdown; ``--shift`` (since the last signed handover, or 8 h), ``--week``
(the last 7 days) or ``--since 24h`` print MTTA and MTTR by kind and severity of
the incidents opened in that period. Times in ``site.timezone``.
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
from watchfloor.core.incidents import IncidentNotFound, IncidentStore
from watchfloor.errors import CommandError
from watchfloor.playbooks import duty_log
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.review import incident_review, mean_times, render_mean_times
from watchfloor.playbooks.runner import PlaybookRunner
from watchfloor.playbooks.schema import parse_duration
from watchfloor.security.keys import write_private

WEEK_S = 7 * 86_400.0


def register(sub: Any) -> None:
    parser = sub.add_parser("review", help="post-incident review; MTTA / MTTR per shift or week")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--incident", metavar="ID", help="the review of one incident (Markdown)")
    which.add_argument("--shift", action="store_true", help="MTTA / MTTR of the current shift")
    which.add_argument("--week", action="store_true", help="MTTA / MTTR of the last 7 days")
    which.add_argument("--since", metavar="DURATION", help="MTTA / MTTR of the last DURATION")
    parser.add_argument("--out", metavar="FILE", help="write the Markdown here (default stdout)")
    add_config_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    async def work(config: Config, redis: aioredis.Redis) -> int:
        incidents = IncidentStore(redis)
        zone = config.site.zone
        if args.incident:
            text = await _one(redis, incidents, args.incident, zone)
        else:
            now = time.time()
            since = await _period_start(redis, args, now)
            every = [i.to_dict() for i in await incidents.list("all", limit=100_000)]
            text = render_mean_times(mean_times(every, since, now), zone)
        if args.out:
            write_private(Path(args.out), text.encode("utf-8"))
            print(f"review written to {args.out}")
        else:
            print(text, end="")
        return 0

    return with_redis(args, work)


async def _one(redis: aioredis.Redis, incidents: IncidentStore, incident_id: str, zone: Any) -> str:
    try:
        incident = (await incidents.get(incident_id)).to_dict()
    except IncidentNotFound:
        raise CommandError(f"no incident {incident_id!r}") from None
    run = None
    if incident.get("playbook_run"):
        runner = PlaybookRunner(redis, incidents, None, Library([]))
        run = await runner.get(incident["playbook_run"])
    return incident_review(incident, await incidents.timeline(incident_id), run, zone)


async def _period_start(redis: aioredis.Redis, args: argparse.Namespace, now: float) -> float:
    if args.week:
        return now - WEEK_S
    if args.shift:
        return await duty_log.shift_start(redis, now)
    seconds = parse_duration(args.since)
    if not seconds:
        raise CommandError(f"--since {args.since!r} is not a duration (like 8h, 24h, 7d)")
    return now - seconds
