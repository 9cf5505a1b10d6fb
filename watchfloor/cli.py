"""Entry point of the ``watchfloor`` command.

Each subcommand lives in its own module under ``watchfloor/commands/`` and
exposes ``register(subparsers)``; that module sets ``func`` on its parser. This
file only assembles them, parses, sets up logging and turns known errors into
a one-line message and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from watchfloor import __version__
from watchfloor.errors import user_message
from watchfloor.logs import log_to_stderr

COMMANDS = (
    "up",
    "collector",
    "monitor",
    "console",
    "replay",
    "simulate",
    "token",
    "keys",
    "audit",
    "playbook",
    "handover",
    "review",
    "roster",
    "rules",
    "config",
    "doctor",
    "reload",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watchfloor",
        description="Real-time monitoring and incident console for customer-service "
        "contact centres.",
    )
    parser.add_argument("--version", action="version", version=f"watchfloor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("WATCHFLOOR_LOG_LEVEL", "warning"),
        choices=("debug", "info", "warning", "error"),
        help="log level (default: WATCHFLOOR_LOG_LEVEL or warning)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"watchfloor.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    log_to_stderr(logging.DEBUG if args.verbose else getattr(logging, args.log_level.upper()))
    # Everything a command writes (logs, spool, audit segments, exports, the config) and
    # every process it starts is private to this user: incidents and logs name people.
    os.umask(0o077)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the one error funnel of the CLI
        message = user_message(exc)
        if message is None:
            raise
        print(f"watchfloor {args.command}: {message}", file=sys.stderr)
        return 1
