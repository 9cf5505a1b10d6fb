"""`watchfloor simulate`: realistic contact-centre traffic, live or into a JSONL file."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.errors import CommandError


def register(sub: Any) -> None:
    from watchfloor.collector.simulator.days import NAMES as DAYS
    from watchfloor.collector.simulator.scenarios import NAMES

    parser = sub.add_parser(
        "simulate",
        help="produce realistic traffic",
        description="Simulate a Chinese e-commerce customer-service centre (presale and "
        "after-sale chat, hotline, email, complaints, social media) and play a scenario: send "
        "it to a running collector, paced at --speed, or write it to a JSONL file for "
        "'watchfloor replay' (with --out; the expected incidents go next to it).",
    )
    parser.add_argument(
        "--scenario",
        default="normal",
        choices=(*NAMES, *DAYS),
        help="what happens (day-*: a whole recorded day with labelled emergencies, --out only)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="event time runs this many times faster than the wall clock (live, event time "
        "starts in the past and catches up with the wall clock at the end, never ahead of it; "
        "compressed traffic makes real-time producers' events look late: above 1, use a stack "
        "of its own)",
    )
    parser.add_argument("--url", help="collector URL (default http://127.0.0.1:COLLECTOR_PORT)")
    parser.add_argument(
        "--token",
        help="producer token (default $WATCHFLOOR_TOKEN, then the admin token of the config)",
    )
    parser.add_argument("--out", help="write the events to this JSONL file instead of sending")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same day)")
    parser.add_argument(
        "--window",
        metavar="HH:MM-HH:MM",
        help="day-* only: write this part of the day (China time), e.g. 10:00-11:00",
    )
    parser.add_argument("--transport", choices=("http", "ws"), default="http")
    parser.add_argument(
        "--history-only",
        action="store_true",
        help="send only the pre-rolled history (ending now) through a collector of its own on "
        "--redis, before the monitor starts, and print the moment it ends (for --after-history)",
    )
    parser.add_argument(
        "--after-history",
        type=float,
        metavar="ANCHOR",
        help="play what follows a history sent with --history-only (the moment it printed)",
    )
    add_config_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise CommandError("--speed must be above 0")
    if args.out:
        from watchfloor.collector.simulator.runner import write_file

        window = _window(args.window) if args.window else None
        count, expected = write_file(args.scenario, Path(args.out), seed=args.seed, window=window)
        print(
            f"simulate: wrote {count} events to {args.out}; expected incidents in {expected}",
            file=sys.stderr,
        )
        return 0
    if args.scenario.startswith("day-"):
        raise CommandError(f"{args.scenario} is a whole day: write it with --out FILE")
    config = config_from_args(args)
    if args.history_only:
        return _history_only(args, config)
    url = args.url or f"http://127.0.0.1:{config.collector.port}"
    return asyncio.run(_live(args, url, _token(args, config)))


def _token(args: argparse.Namespace, config: Any) -> str:
    token = (
        args.token
        or os.environ.get("WATCHFLOOR_TOKEN")
        or (config.security.admin_token.value if config.security.admin_token else None)
    )
    if not token:
        raise CommandError("no token: pass --token or set WATCHFLOOR_TOKEN")
    return token


def _history_only(args: argparse.Namespace, config: Any) -> int:
    from watchfloor.collector.simulator.runner import send_history

    if not config.redis.url:
        raise CommandError("--history-only writes through a collector of its own: pass --redis")
    anchor = round(time.time(), 3)  # printed in ms: both parts use the same anchor
    summary = asyncio.run(
        send_history(
            args.scenario,
            config,
            config.redis.url,
            _token(args, config),
            seed=args.seed,
            speed=args.speed,
            anchor=anchor,
        )
    )
    print(summary.text(), file=sys.stderr)
    print(f"{anchor:.3f}")
    return 0


def _window(text: str) -> dict[str, int]:
    """``"10:00-11:30"`` -> start_s and seconds after midnight."""
    try:
        begin, end = (int(h) * 3600 + int(m) * 60
                      for h, m in (part.split(":") for part in text.split("-")))  # fmt: skip
    except ValueError:
        raise CommandError(f"--window {text!r}: expected HH:MM-HH:MM") from None
    if not 0 <= begin < end <= 86_400:
        raise CommandError(f"--window {text!r}: the end must come after the start, within a day")
    return {"start_s": begin, "seconds": end - begin}


async def _live(args: argparse.Namespace, url: str, token: str) -> int:
    from watchfloor.collector.errors import ProducerError
    from watchfloor.collector.simulator.runner import run_live

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        summary = await run_live(
            args.scenario,
            url,
            token,
            speed=args.speed,
            seed=args.seed,
            transport=args.transport,
            stop=stop,
            progress=sys.stderr,
            anchor=args.after_history,
            part="after-history" if args.after_history is not None else "all",
        )
    except ProducerError as exc:
        raise CommandError(str(exc)) from None
    print(summary.text(), file=sys.stderr)
    return 0
