"""Playing a scenario: live into a collector (paced at ``speed``) or into a JSONL file.

Live, event time is never ahead of the wall clock and never behind it by more
than a second (:mod:`collector.simulator.live_time`): the pre-rolled history
(warm-up and the first scenario's onset, sent at once) ends at the anchor
("now"), and each paced second is stamped with the moment it is due and sent
then. ``--speed X`` compresses the whole scenario's event time (history too) by
X, so any speed plays against a live monitor. A paced part that starts late
shifts forward instead of sending stale events. The history must reach a
monitor before its clock passes it: :func:`send_history` sends it through a
quiet collector of its own before the monitor starts, and
``run_live(part="after-history")`` plays the rest. Batches go through the
producer client, so a collector that is briefly away only delays them. To a
file, event time starts at a fixed moment (default 2026-11-11 09:00 China time)
and nothing is paced, so the same seed always writes the same file; next to it
goes ``<name>.expected.json``, the incidents the scenario must open, for
``watchfloor replay`` checks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Final, Literal

from watchfloor.collector.client import ProducerClient
from watchfloor.collector.service import Collector
from watchfloor.collector.simulator.days import (
    DAY_S,
    DAYS,
    NIGHTLY_EXPORT_RECORDS,
    SERVICE_ACCOUNT,
    day_world,
    expected_day,
    noise_of,
    run_day,
)
from watchfloor.collector.simulator.live_time import LiveTime
from watchfloor.collector.simulator.scenarios import expected_incidents, generate, pre_rolled_s
from watchfloor.core.config import Config

logger = logging.getLogger(__name__)

CHINA: Final = timezone(timedelta(hours=8))
Part = Literal["all", "history", "after-history"]
FILE_START: Final = datetime(2026, 11, 11, 9, 0, tzinfo=CHINA).timestamp()


@dataclass(slots=True)
class RunSummary:
    events: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    wall_s: float = 0.0

    def text(self) -> str:
        return (
            f"simulate: {self.events} events in {self.wall_s:.1f} s "
            f"(accepted {self.accepted}, rejected {self.rejected}, duplicates {self.duplicates})"
        )


async def run_live(
    name: str,
    url: str,
    token: str | None,
    *,
    speed: float = 1.0,
    seed: int = 0,
    transport: str = "http",
    stop: asyncio.Event | None = None,
    progress: IO[str] | None = None,
    anchor: float | None = None,
    part: Part = "all",
) -> RunSummary:
    """Send scenario ``name`` to the collector at ``url``, paced at ``speed``.

    ``anchor`` is the wall-clock moment the pre-rolled history ends (default:
    now). ``part`` sends only the ``"history"`` (then returns) or everything
    ``"after-history"`` (the history of the same ``anchor`` and seed was sent
    before, see :func:`send_history`); the world replays the history either way.
    """
    summary = RunSummary()
    started = time.time()
    anchor = started if anchor is None else anchor
    clock = LiveTime(anchor, speed)
    start_ts = live_start_ts(name, anchor)
    client = ProducerClient(url, token, transport=transport, batch_size=1000, linger_s=0.1)
    current = ""
    async with client:
        for second in generate(name, seed=seed, start_ts=start_ts, run_tag=f"{int(anchor)}"):
            if stop is not None and stop.is_set():
                break
            if second.phase.paced and part == "history":
                break
            label = f"{second.scenario}/{second.phase.name}"
            if label != current:
                current = label
                _say(progress, f"[{time.time() - started:6.1f}s] {label}")
            if second.phase.paced:
                # never before the wall clock reaches the second (ts is rounded to ms)
                await _pace(client, clock.catch_up(second.paced_s, time.time()) + 1e-3, stop)
                if stop is not None and stop.is_set():
                    break
            elif part == "after-history":
                continue
            await client.send_many(clock.restamp(second.events))
            summary.events += len(second.events)
    summary.accepted = client.stats.accepted
    summary.rejected = len(client.stats.rejected)
    summary.duplicates = client.stats.duplicates
    summary.wall_s = time.time() - started
    return summary


async def send_history(
    name: str, config: Config, redis_url: str, token: str | None, *, seed: int = 0,
    speed: float = 1.0, anchor: float | None = None,
) -> RunSummary:  # fmt: skip
    """Send the pre-rolled history of ``name`` through a collector of its own, then stop it.

    For a demo whose monitor has not started yet: the engine drops events older
    than its watermark, and a running monitor's watermark is the wall clock, so
    history must be in the stream before the monitor (and anything stamped with
    the wall clock: this collector runs no heartbeat and no probes). Follow with
    :func:`run_live` with the same ``anchor``, seed and ``part="after-history"``.
    """
    quiet = replace(config.collector, port=0, heartbeat_interval_s=0.0)
    collector = Collector(replace(config, collector=quiet, probes=()), redis_url)
    stop = asyncio.Event()
    serving = asyncio.create_task(collector.run(stop))
    try:
        await asyncio.wait_for(collector.ready.wait(), 30)
        url = f"http://{quiet.host}:{collector.port}"
        return await run_live(name, url, token, speed=speed, seed=seed, anchor=anchor,
                              part="history")  # fmt: skip
    finally:
        stop.set()
        await serving


def live_start_ts(name: str, anchor: float) -> float:
    """Scenario time of the first second of a live run anchored at ``anchor``: the
    pre-rolled seconds end there (:class:`LiveTime` then compresses by speed)."""
    unpaced, _ = pre_rolled_s(name)
    return anchor - unpaced


async def _pace(client: ProducerClient, due: float, stop: asyncio.Event | None) -> None:
    """Wait until the wall clock reaches ``due`` (what is due now goes out first)."""
    if due <= time.time():
        return
    await client.flush()
    while (delay := due - time.time()) > 0:
        if stop is not None and stop.is_set():
            return
        await asyncio.sleep(min(delay, 0.5))


def _say(progress: IO[str] | None, line: str) -> None:
    if progress is not None:
        print(line, file=progress, flush=True)
    logger.info("simulate %s", line)


def write_file(
    name: str,
    out: Path,
    *,
    seed: int = 0,
    start_ts: float = FILE_START,
    window: dict[str, int] | None = None,
) -> tuple[int, Path]:
    """Write scenario ``name`` as JSON Lines to ``out`` (and its expected incidents)."""
    if name in DAYS:
        return write_day(name, out, seed=seed, **(window or {}))
    count = 0
    with out.open("w", encoding="utf-8") as fh:
        for second in generate(name, seed=seed, start_ts=start_ts):
            for event in second.events:
                fh.write(json.dumps(event, ensure_ascii=False) + "\n")
            count += len(second.events)
    expected_path = expected_path_for(out)
    payload: dict[str, Any] = {
        "scenario": name,
        "seed": seed,
        "start_ts": start_ts,
        "expected": expected_incidents(name, start_ts),
    }
    expected_path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return count, expected_path


def write_day(
    name: str, out: Path, *, seed: int = 0, start_s: int = 0, seconds: int = DAY_S
) -> tuple[int, Path]:
    """Write recorded day ``name`` (``seconds`` of it from ``start_s`` after midnight) and
    its labelled emergencies next to it."""
    world = day_world(name, seed=seed, start_s=start_s)
    begin = world.start_ts + start_s
    count = 0
    with out.open("w", encoding="utf-8") as fh:
        for events in run_day(world, seconds):
            fh.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in events)
            count += len(events)
    end = world.start_ts + world.t
    expected = expected_day(name, world.start_ts)
    payload = {
        "scenario": name,
        "title": world.day.title,
        "seed": seed,
        "start_ts": begin,
        "end_ts": end,
        "expected": [e for e in expected if begin <= e["from_ts"] < end],
        "noise": [
            n for n in noise_of(world.noise, world.day, world.start_ts) if begin <= n["ts"] < end
        ],
        "planned": {
            "staffing": "seats per half hour follow the forecast (square-root staffing)",
            "nightly_export": f"{SERVICE_ACCOUNT} exports {NIGHTLY_EXPORT_RECORDS} records "
            "at 02:30 (the BI warehouse): allow-list it",
        },
    }
    expected_path = expected_path_for(out)
    expected_path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return count, expected_path


def expected_path_for(out: Path) -> Path:
    """``day.jsonl`` -> ``day.expected.json``."""
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.expected.json")
