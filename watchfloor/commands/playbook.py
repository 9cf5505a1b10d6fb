"""`watchfloor playbook`: check, list, start and drill playbooks; list drill scores.

``check`` needs no Redis: it checks the given files, or the whole library (the
built-in playbooks plus ``playbooks.library``) when none is given, printing
every error with its file, step and field, and exits 1 on any error. ``start``,
``drill`` and ``drills`` work against ``--redis URL`` or the data directory's
embedded Redis; the running monitor's timer loop carries the run on
(notifications, deadlines, escalations).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import redis.asyncio as aioredis

from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.commands.token import cli_actor, with_redis
from watchfloor.core.config import Config
from watchfloor.errors import CommandError
from watchfloor.playbooks.drill import format_drills, list_drills
from watchfloor.playbooks.errors import PlaybookError
from watchfloor.playbooks.library import Library, check_library, library_files
from watchfloor.playbooks.schema import check_file
from watchfloor.playbooks.worker import build_runner, open_audit_or_none

OPERATOR_ROLE = "duty_manager"
"""Role of a person working from the command line on the stack's own host."""


def register(sub: Any) -> None:
    parser = sub.add_parser("playbook", help="check, list, start and drill playbooks")
    actions = parser.add_subparsers(dest="playbook_command", metavar="ACTION", required=True)

    check = actions.add_parser("check", help="check playbook files (default: the library)")
    check.add_argument("files", nargs="*", metavar="FILE")
    check.add_argument("--json", action="store_true", help="errors as JSON lines")
    add_config_options(check)
    check.set_defaults(func=run_check)

    listing = actions.add_parser("list", help="list the playbooks of the library")
    add_config_options(listing)
    listing.set_defaults(func=run_list)

    start = actions.add_parser("start", help="start a playbook for an incident")
    start.add_argument("name", metavar="NAME")
    start.add_argument("--incident", required=True, metavar="ID")
    start.add_argument("--json", action="store_true", help="print the run as JSON")
    add_config_options(start)
    start.set_defaults(func=run_start)

    drill = actions.add_parser("drill", help="start a drill (演练): timed, scored, no real alerts")
    drill.add_argument("name", metavar="NAME")
    drill.add_argument("--incident", metavar="ID", help="rehearse on an existing incident")
    drill.add_argument("--json", action="store_true", help="print the run as JSON")
    add_config_options(drill)
    drill.set_defaults(func=run_drill)

    drills = actions.add_parser("drills", help="list finished drills and their scores")
    drills.add_argument("--limit", type=int, default=50)
    drills.add_argument("--json", action="store_true")
    add_config_options(drills)
    drills.set_defaults(func=run_drills)


def _targets(config: Config) -> list[str] | None:
    """Webhook names to check targets against (None when none are configured)."""
    return [hook.name for hook in config.webhooks] or None


def run_check(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    targets = _targets(config)
    if args.files:
        errors = [e for path in args.files for e in check_file(path, targets)]
        count = len(args.files)
    else:
        errors = check_library(config.playbooks.library, targets)
        count = len(library_files(config.playbooks.library))
    for error in errors:
        print(json.dumps(error.to_dict(), ensure_ascii=False) if args.json else str(error))
    if errors:
        print(f"{len(errors)} error(s) in {len({e.file for e in errors})} file(s)", file=sys.stderr)
        return 1
    print(f"ok: {count} playbook(s) checked", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    for playbook in Library.load(config.playbooks.library):
        trigger = playbook.trigger
        if trigger.manual_only:
            when = "by hand only"
        else:
            when = ", ".join(trigger.kinds or trigger.rules) + f" >= {trigger.min_severity}"
            if trigger.subjects:
                when += f" on {trigger.subjects[0]}…"
        print(
            f"{playbook.id:<16} {len(playbook.steps):>2} steps  {when:<28} "
            f"{playbook.title_zh} / {playbook.title_en}"
        )
    return 0


def _print_run(run: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(run, ensure_ascii=False, indent=2))
        return
    kind = "drill" if run["drill"] else "run"
    print(f"{kind} {run['id']} of {run['playbook']} ({run['title_zh']}) is {run['state']}")
    for step in run["steps"]:
        print(f"  {step['id']:<22} {step['state']:<9} {step['owner']:<17} {step['title_zh']}")


def _start(args: argparse.Namespace, drill: bool) -> int:
    async def work(config: Config, redis: aioredis.Redis) -> int:
        runner = build_runner(redis, config, audit=open_audit_or_none(config, redis))
        try:
            run = await runner.start(
                args.name, args.incident, actor=cli_actor(), role=OPERATOR_ROLE, drill=drill
            )
        except PlaybookError as exc:
            raise CommandError(str(exc)) from None
        finally:
            await runner.actions.aclose()
        _print_run(run, args.json)
        return 0

    return with_redis(args, work)


def run_start(args: argparse.Namespace) -> int:
    return _start(args, drill=False)


def run_drill(args: argparse.Namespace) -> int:
    return _start(args, drill=True)


def run_drills(args: argparse.Namespace) -> int:
    async def work(config: Config, redis: aioredis.Redis) -> int:
        drills = await list_drills(redis, args.limit)
        if args.json:
            print(json.dumps(drills, ensure_ascii=False, indent=2))
        elif not drills:
            print("no finished drills yet", file=sys.stderr)
        else:
            print(format_drills(drills))
        return 0

    return with_redis(args, work)
