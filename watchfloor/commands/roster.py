"""`watchfloor roster import|show|override`: the roster (值班表) of named people on duty.

``import FILE`` (TOML or CSV) checks the whole file, names every problem by row or
index and field, stores the roster in Redis and audits ``roster.import``. ``show``
prints who is on duty now or ``--at`` a local time, in the site's time zone.
``override`` records a swap (``--person`` instead of ``--instead-of``) or leave
(no ``--person``) for a span of local time, audited ``roster.override``.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from watchfloor.commands.common import add_config_options
from watchfloor.commands.token import cli_actor, with_redis
from watchfloor.core.config import Config
from watchfloor.errors import CommandError
from watchfloor.playbooks.roster import ROLES, Override, Person, Roster, active_shifts, on_duty
from watchfloor.playbooks.roster_file import RosterError, load_roster_file, parse_local_time
from watchfloor.playbooks.roster_store import add_override, load_roster, save_roster
from watchfloor.playbooks.worker import open_audit_or_none

OPERATOR_ROLE = "duty_manager"


def register(sub: Any) -> None:
    parser = sub.add_parser("roster", help="import, show and override the duty roster")
    actions = parser.add_subparsers(dest="roster_command", metavar="ACTION", required=True)

    imp = actions.add_parser("import", help="check and store a roster file (TOML or CSV)")
    imp.add_argument("file", type=Path)
    add_config_options(imp)
    imp.set_defaults(func=run_import)

    show = actions.add_parser("show", help="who is on duty now (or --at a local time)")
    show.add_argument("--at", help="local time in the site's zone, e.g. '2026-12-07 21:30'")
    add_config_options(show)
    show.set_defaults(func=run_show)

    over = actions.add_parser("override", help="a swap or leave for a span of time")
    over.add_argument("--instead-of", required=True, help="person id taken off duty")
    over.add_argument("--person", help="person id standing in (none: leave)")
    over.add_argument("--from", dest="start", required=True, help="local start time")
    over.add_argument("--to", dest="end", required=True, help="local end time")
    over.add_argument("--reason", help="why (shown and audited)")
    add_config_options(over)
    over.set_defaults(func=run_override)


def run_import(args: argparse.Namespace) -> int:
    async def work(config: Config, redis: aioredis.Redis) -> int:
        try:
            roster = load_roster_file(args.file, config.site.timezone)
        except RosterError as exc:
            lines = "\n".join(f"  {p}" for p in exc.problems)
            raise CommandError(f"{args.file}: {len(exc.problems)} problem(s)\n{lines}") from None
        await save_roster(redis, roster)
        details = {
            "file": str(args.file),
            "people": len(roster.people),
            "shifts": len(roster.shifts),
        }
        await _audit(config, redis, "roster.import", str(args.file), details)
        print(f"roster imported: {len(roster.people)} people, {len(roster.shifts)} shifts, "
              f"{len(roster.overrides)} overrides ({roster.timezone})")  # fmt: skip
        return 0

    return with_redis(args, work)


def run_show(args: argparse.Namespace) -> int:
    async def work(config: Config, redis: aioredis.Redis) -> int:
        roster = await _stored(redis)
        zone = config.site.zone
        at = _local(args.at, zone, "--at") if args.at else datetime.now(zone)
        print(render_duty(roster, at, zone), end="")
        return 0

    return with_redis(args, work)


def run_override(args: argparse.Namespace) -> int:
    async def work(config: Config, redis: aioredis.Redis) -> int:
        roster = await _stored(redis)
        for flag, pid in (("--instead-of", args.instead_of), ("--person", args.person)):
            if pid is not None and roster.person(pid) is None:
                raise CommandError(f"{flag}: unknown person {pid!r} (not on the roster)")
        zone = config.site.zone
        start, end = _local(args.start, zone, "--from"), _local(args.end, zone, "--to")
        if end <= start:
            raise CommandError("--to: must be after --from")
        swap = Override(
            args.instead_of, start.timestamp(), end.timestamp(), args.person, args.reason
        )
        await add_override(redis, swap)
        details = {"person": args.person, "from": start.isoformat(), "to": end.isoformat()}
        await _audit(config, redis, "roster.override", args.instead_of, details)
        who = args.person or "nobody (leave)"
        print(f"override: {who} instead of {args.instead_of} "
              f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} ({zone.key})")  # fmt: skip
        return 0

    return with_redis(args, work)


def render_duty(roster: Roster, at: datetime, zone: ZoneInfo) -> str:
    """Who is on duty at ``at``, every time in ``zone`` (the site's), one role a line."""
    local = at.astimezone(zone)
    lines = [f"On duty at {local:%Y-%m-%d %H:%M} ({zone.key})"]
    duty = on_duty(roster, at)
    for role in ROLES:
        people = duty.get(role, [])
        lines.append(f"  {role:<17} {'; '.join(_person_line(p) for p in people) or '-'}")
    for shift, start, end in active_shifts(roster, at):
        lines.append(f"  shift {shift.name}: {start.astimezone(zone):%m-%d %H:%M} - "
                     f"{end.astimezone(zone):%m-%d %H:%M}")  # fmt: skip
    now = at.timestamp()
    for swap in (o for o in roster.overrides if o.start <= now < o.end):
        until = datetime.fromtimestamp(swap.end, zone)
        why = f" ({swap.reason})" if swap.reason else ""
        lines.append(f"  override: {swap.person or 'leave'} instead of {swap.instead_of} "
                     f"until {until:%m-%d %H:%M}{why}")  # fmt: skip
    return "\n".join(lines) + "\n"


def _person_line(person: Person) -> str:
    ids = [
        f"{ch}={person.contact(ch)}"
        for ch in ("dingtalk", "wecom", "feishu", "mobile")
        if person.contact(ch)
    ]
    return f"{person.name} ({person.id}{', ' + ', '.join(ids) if ids else ''})"


def _local(value: str, zone: ZoneInfo, flag: str) -> datetime:
    try:
        return parse_local_time(value, zone)
    except ValueError:
        raise CommandError(
            f"{flag} {value!r}: not a date and time (like '2026-12-07 21:30')"
        ) from None


async def _stored(redis: aioredis.Redis) -> Roster:
    roster = await load_roster(redis)
    if roster is None:
        raise CommandError("no roster imported yet: run `watchfloor roster import FILE` first")
    return roster


async def _audit(
    config: Config, redis: aioredis.Redis, action: str, target: str, details: dict[str, Any]
) -> None:
    audit = open_audit_or_none(config, redis)
    if audit is not None:
        await audit.append(cli_actor(), OPERATOR_ROLE, action, target, details=details)
