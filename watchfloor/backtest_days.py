"""The back-test of the simulator's labelled days: write, replay, score, one table.

``watchfloor replay --days all --seeds 1,2,3`` writes each day
(collector/simulator/days.py), replays it through the engine on a Redis of
its own (emptied between days), reads each labelled emergency's limit from the
day's events (collector/simulator/detect_limits.py) and prints time to detect
per kind and per emergency next to it, with false alarms per day and the
replay's speed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchfloor.collector.simulator.days import NAMES
from watchfloor.collector.simulator.detect_limits import limits_of_file
from watchfloor.collector.simulator.detect_table import DayResult, table
from watchfloor.collector.simulator.runner import write_day
from watchfloor.core.config import Config
from watchfloor.monitor.replay import replay


@dataclass(slots=True)
class BacktestRun:
    results: list[DayResult]
    events: int = 0
    replay_s: float = 0.0

    def text(self) -> str:
        days_per_s = len(self.results) / self.replay_s if self.replay_s else 0.0
        speed = (
            f"Replay: {self.events} events in {self.replay_s:.1f} s "
            f"({self.events / max(self.replay_s, 1e-9):,.0f} events/s, "
            f"{days_per_s:.2f} simulated days/s)."
        )
        return table(self.results) + "\n" + speed + "\n"


def day_names(spec: str) -> list[str]:
    """``all`` or a comma list of day names."""
    names = list(NAMES) if spec == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown day {unknown[0]!r}: one of {', '.join(NAMES)} or all")
    return names


async def run_days(
    names: list[str], seeds: list[int], workdir: Path, *, redis: Any, config: Config, rules: Any
) -> BacktestRun:
    run = BacktestRun([])
    for name in names:
        for seed in seeds:
            source = workdir / f"{name}-s{seed}.jsonl"
            _, expected_path = write_day(name, source, seed=seed)
            expected = json.loads(expected_path.read_text("utf-8"))["expected"]
            await redis.flushdb()
            began = time.perf_counter()
            summary = await replay(
                source, source.with_suffix(".incidents.jsonl"),
                redis=redis, config=config, rules=rules,
            )  # fmt: skip
            run.replay_s += time.perf_counter() - began
            run.events += summary.events
            limits = limits_of_file(source, expected)
            run.results.append(DayResult(name, seed, expected, summary.incidents, limits))
    return run
