"""Time to detect over labelled days: one table, per emergency and per kind, next to its limit,
then false alarms per day, in all and by rule."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from watchfloor.collector.simulator.backtest import score


@dataclass(frozen=True, slots=True)
class DayResult:
    name: str
    seed: int
    expected: list[dict[str, Any]]
    incidents: list[dict[str, Any]]
    limits: list[float]
    """Per expected incident, in its order (collector.simulator.detect_limits)."""


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _fmt(seconds: float) -> str:
    return "—" if not math.isfinite(seconds) else f"{seconds:.0f} s"


def table(days: list[DayResult]) -> str:
    """Markdown: time from onset to incident (mean / p90 / max) and limit, false alarms a day."""
    delays: dict[tuple[str, str], list[float]] = defaultdict(list)
    bounds: dict[tuple[str, str], list[float]] = defaultdict(list)
    missed: dict[tuple[str, str], int] = defaultdict(int)
    false: Counter[str] = Counter()
    for day in days:
        result = score(day.expected, day.incidents)
        found = {id(exp): inc for exp, inc in result.hits}
        for exp, limit in zip(day.expected, day.limits, strict=True):
            label = exp.get("label") or exp.get("why", "")
            for key in ((exp["kind"], label), (exp["kind"], "all")):
                bounds[key].append(limit)
                inc = found.get(id(exp))
                if inc is None:
                    missed[key] += 1
                else:
                    delays[key].append(inc["opened_at"] - exp["from_ts"])
        false.update(inc["rule"] for inc in result.false)
    lines = [
        "| kind | emergency | found | mean | p90 | max | limit (mean) | mean / limit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(bounds, key=lambda k: (k[0], k[1] == "all", k[1])):
        got = delays[key]
        limit = sum(bounds[key]) / len(bounds[key])
        total = len(got) + missed[key]
        if got:
            mean = sum(got) / len(got)
            figures = f"{_fmt(mean)} | {_fmt(_p90(got))} | {_fmt(max(got))}"
            ratio = f"{mean / limit:.1f}x" if math.isfinite(limit) and limit >= 1 else "—"
        else:
            figures, ratio = "— | — | —", "—"
        label = "**all**" if key[1] == "all" else key[1]
        lines.append(f"| {key[0]} | {label} | {len(got)}/{total} | {figures} | "
                     f"{_fmt(limit)} | {ratio} |")  # fmt: skip
    n, alarms = max(1, len(days)), false.total()
    lines += ["", f"False alarms: {alarms} in {len(days)} days, **{alarms / n:.1f} a day**."]
    if alarms:
        by_rule = ", ".join(f"`{rule}` {count / n:.1f}" for rule, count in sorted(false.items()))
        lines.append(f"By rule, a day: {by_rule}.")
    return "\n".join(lines) + "\n"
