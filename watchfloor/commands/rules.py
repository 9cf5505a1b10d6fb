"""`watchfloor rules`: check a rules file, show the effective rules.

``check FILE`` merges the file over ``monitor/rules/default.toml`` and prints
every error by key (``sla.channels.chat.longest_wait_s: must be a number``),
exit 1 on any. ``show`` prints the effective parameters of every detector
(defaults, the configured rules file or ``--file``), or of one section resolved
for a queue / channel / topic / component / source / actor, as TOML.
No Redis is needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from watchfloor.commands.common import add_config_options
from watchfloor.errors import CommandError
from watchfloor.monitor.detectors.registry import specs
from watchfloor.monitor.rules import RulesError, check_rules, load_rules, section_names


def register(sub: Any) -> None:
    parser = sub.add_parser("rules", help="check rule files, show the effective rules")
    actions = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    check = actions.add_parser("check", help="check a rules file (merged over the defaults)")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=run_check)

    show = actions.add_parser("show", help="print the effective rules as TOML")
    show.add_argument("--file", metavar="FILE", help="rules file merged over the defaults")
    show.add_argument("--section", choices=section_names(), help="only this detector")
    for scope in _scope_names():
        show.add_argument(f"--{scope}", metavar="NAME", help=f"resolve the section for a {scope}")
    add_config_options(show)
    show.set_defaults(func=run_show)


def run_check(args: argparse.Namespace) -> int:
    errors = check_rules(args.file)
    for error in errors:
        print(f"{args.file}: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"{args.file}: ok")
    return 0


def run_show(args: argparse.Namespace) -> int:
    path = args.file or _configured_rules(args)
    try:
        rules = load_rules(path)
    except RulesError as exc:
        raise CommandError(f"{path}: {exc}") from None
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None
    scope = {k: getattr(args, k) for k in _scope_names() if getattr(args, k)}
    names = [args.section] if args.section else list(section_names())
    for name in names:
        params = getattr(rules, name).get(**scope)
        print(f"[{name}]")
        for field in dataclasses.fields(params):
            print(f"{field.name} = {_toml(getattr(params, field.name))}")
        print()
    return 0


def _scope_names() -> list[str]:
    """``queue``, ``channel``... : the singular of every detector's scope tables, in order."""
    return list(dict.fromkeys(scope.removesuffix("s") for s in specs() for scope in s.scopes))


def _configured_rules(args: argparse.Namespace) -> str | None:
    from watchfloor.commands.common import config_from_args
    from watchfloor.core.config import ConfigError

    try:
        return config_from_args(args).monitor.rules_file
    except ConfigError as exc:
        raise CommandError(f"config: {exc}") from None


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)
