"""`watchfloor config show`: the effective configuration, secrets redacted."""

from __future__ import annotations

import argparse
import json
from typing import Any

from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.core.config import redacted


def register(sub: Any) -> None:
    parser = sub.add_parser("config", help="show the effective configuration")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print the effective config (secrets redacted)")
    add_config_options(show)
    show.set_defaults(func=show_config)


def show_config(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    print(json.dumps(redacted(config), indent=2, ensure_ascii=False))
    return 0
