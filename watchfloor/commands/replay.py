"""`watchfloor replay`: replay a recorded day through the engine and list its incidents."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.errors import CommandError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "replay",
        help="replay a recorded day through the engine",
        description="Feed recorded events (one JSON event a line) through the rule engine in "
        "event time and write every incident opened, one JSON object a line. Without --redis "
        "a temporary embedded Redis is used, so a replay never touches a live stack.",
    )
    parser.add_argument("file", help="recorded events, JSON Lines")
    parser.add_argument("--out", required=True, help="where to write the incidents (JSONL)")
    parser.add_argument("--rules", help="rules file (default: the built-in rules)")
    add_config_options(parser)
    parser.set_defaults(func=run)


@contextlib.contextmanager
def _replay_redis(url: str | None, binary: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from watchfloor.core.redis_server import EmbeddedRedis

    with tempfile.TemporaryDirectory(prefix="wf-replay-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", persistent=False, binary=binary)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def run(args: argparse.Namespace) -> int:
    source = Path(args.file)
    if not source.is_file():
        raise CommandError(f"{source} does not exist")
    config = config_from_args(args)
    rules = _rules(args.rules)
    with _replay_redis(args.redis, config.redis.embedded_binary) as url:
        summary = asyncio.run(_replay(source, Path(args.out), url, config, rules))
    for line in summary.errors:
        print(f"{source}: {line}", file=sys.stderr)
    print(summary.text(), file=sys.stderr)
    return 0


def _rules(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise CommandError(f"rules file {path} does not exist")
    from watchfloor.monitor.service import load_rules

    try:
        return load_rules(path)
    except Exception as exc:  # the rules loader names the bad key
        raise CommandError(f"rules file {path}: {exc}") from None


async def _replay(source: Path, out: Path, url: str, config: Any, rules: Any) -> Any:

    from watchfloor.monitor.replay import replay

    redis = redis_connect(url)
    try:
        return await replay(source, out, redis=redis, config=config, rules=rules)
    finally:
        await redis.aclose()
