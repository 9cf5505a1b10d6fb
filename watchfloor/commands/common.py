"""Helpers shared by the subcommands: common options and not-yet-built commands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.config import Config, load_for_cli


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--config`` and ``--redis``, which most commands take."""
    parser.add_argument("--data-dir", help="data directory (default ./.watchfloor)")
    parser.add_argument("--config", help="config file (default DATA_DIR/watchfloor.toml)")
    parser.add_argument("--redis", help="Redis URL (default: embedded Redis)")


def config_from_args(args: argparse.Namespace) -> Config:
    import dataclasses

    config = load_for_cli(getattr(args, "data_dir", None), getattr(args, "config", None))
    url = getattr(args, "redis", None)
    if url:
        config = dataclasses.replace(config, redis=dataclasses.replace(config.redis, url=url))
    return config


def not_built(name: str, what: str) -> Any:
    """A ``func`` for a subcommand that does not exist yet: say so and fail."""

    def run(args: argparse.Namespace) -> int:
        print(f"watchfloor {name}: not built yet ({what}).", file=sys.stderr)
        return 2

    return run


def register_placeholder(sub: Any, name: str, help_text: str, what: str) -> None:
    parser = sub.add_parser(name, help=f"{help_text} [not built yet]")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    parser.set_defaults(func=not_built(name, what))
