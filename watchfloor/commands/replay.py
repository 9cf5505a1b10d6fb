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
        "a temporary embedded Redis is used, so a replay never touches a live stack. "
        "With --days instead of a file: the back-test of the simulator's labelled days, "
        "time to detect per kind next to its limit and false alarms per day, one table.",
    )
    parser.add_argument("file", nargs="?", help="recorded events, JSON Lines")
    parser.add_argument("--out", help="where to write the incidents (JSONL)")
    parser.add_argument(
        "--days", help="back-test the simulator's labelled days: all, or day names (comma list)"
    )
    parser.add_argument("--seeds", default="1,2,3", help="--days: seeds (comma list)")
    parser.add_argument(
        "--keep", help="--days: write the days and incidents here (else a temp dir)"
    )
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
    if args.days:
        return _backtest(args)
    if not args.file or not args.out:
        raise CommandError("replay needs a FILE and --out (or --days for the back-test)")
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


def _backtest(args: argparse.Namespace) -> int:
    from watchfloor.backtest_days import day_names

    try:
        names = day_names(args.days)
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as exc:
        raise CommandError(f"--days/--seeds: {exc}") from None
    config = config_from_args(args)
    rules = _rules(args.rules)
    with contextlib.ExitStack() as stack:
        workdir = (
            Path(args.keep)
            if args.keep
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wf-backtest-")))
        )
        workdir.mkdir(parents=True, exist_ok=True)
        url = stack.enter_context(_replay_redis(args.redis, config.redis.embedded_binary))
        run = asyncio.run(_days(names, seeds, workdir, url, config, rules))
    print(run.text())
    return 0


async def _days(
    names: list[str], seeds: list[int], workdir: Path, url: str, config: Any, rules: Any
) -> Any:
    from watchfloor.backtest_days import run_days

    redis = redis_connect(url, cluster=config.redis.cluster)
    try:
        return await run_days(names, seeds, workdir, redis=redis, config=config, rules=rules)
    finally:
        await redis.aclose()


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

    redis = redis_connect(url, cluster=config.redis.cluster)
    try:
        return await replay(source, out, redis=redis, config=config, rules=rules)
    finally:
        await redis.aclose()
