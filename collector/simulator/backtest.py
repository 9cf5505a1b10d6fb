"""Score a replay of a recorded day against its labelled emergencies.

``python -m watchfloor.collector.simulator.backtest DAY.expected.json INCIDENTS.jsonl``
matches every incident ``watchfloor replay`` opened with the day's expected
incidents (same kind and subject, and the same rule when the label names one,
opened inside the expected window) and
prints true positives, misses and false positives (rule, subject, China time,
title and evidence) as Markdown, the way docs/backtest.md shows them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

CHINA: Final = timezone(timedelta(hours=8))


@dataclass(slots=True)
class Score:
    hits: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    """(expected, the first incident that matched it)."""
    misses: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    """Incidents of an expected kind+subject inside its window beyond the first (same cause)."""
    false: list[dict[str, Any]] = field(default_factory=list)


def score(expected: list[dict[str, Any]], incidents: list[dict[str, Any]]) -> Score:
    """Match incidents to expected ones by kind, subject and opening time."""
    result = Score()
    matched: set[int] = set()
    for exp in expected:
        found = [i for n, i in enumerate(incidents) if _matches(exp, i)]
        if found:
            result.hits.append((exp, found[0]))
        else:
            result.misses.append(exp)
        matched |= {id(i) for i in found}
    for inc in incidents:
        if id(inc) in matched:
            if not any(inc is hit for _, hit in result.hits):
                result.extra.append(inc)
        else:
            result.false.append(inc)
    return result


def _matches(exp: dict[str, Any], inc: dict[str, Any]) -> bool:
    return (
        inc["kind"] == exp["kind"]
        and inc["subject"] == exp["subject"]
        and exp.get("rule", inc["rule"]) == inc["rule"]  # a queue's SLA is not its casework's
        and exp["from_ts"] - 60 <= inc["opened_at"] <= exp["to_ts"]
    )


def clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, CHINA).strftime("%H:%M:%S")


def report(day: dict[str, Any], incidents: list[dict[str, Any]]) -> str:
    """The Markdown section of one day."""
    s = score(day["expected"], incidents)
    lines = [
        f"### {day['scenario']} (seed {day['seed']}): {day.get('title', '')}",
        "",
        f"{len(incidents)} incidents; expected {len(day['expected'])}: "
        f"**TP {len(s.hits)}, FN {len(s.misses)}, FP {len(s.false)}** "
        f"(+{len(s.extra)} more incidents of a detected emergency)",
        "",
        "| result | kind | subject | rule | opened (CST) | delay | title |",
        "|---|---|---|---|---|---|---|",
    ]
    for exp, inc in s.hits:
        delay = inc["opened_at"] - exp["from_ts"]
        lines.append(_row("TP", inc, f"{delay:+.0f} s", exp.get("label") or exp.get("why", "")))
    for inc in s.extra:
        lines.append(_row("TP+", inc, "", ""))
    for exp in s.misses:
        lines.append(
            f"| **FN** | {exp['kind']} | {exp['subject']} | — | {clock(exp['from_ts'])} | — | "
            f"missed: {exp['label']} ({exp['why']}) |"
        )
    for inc in s.false:
        lines.append(_row("**FP**", inc, "", ""))
    if s.false:
        lines += ["", "False positives, evidence:", ""]
        for inc in s.false:
            evidence = json.dumps(inc.get("evidence", {}), ensure_ascii=False)
            lines.append(f"- `{inc['rule']}` {inc['subject']} at {clock(inc['opened_at'])}: "
                         f"{inc['title']} — `{evidence[:400]}`")  # fmt: skip
    return "\n".join(lines) + "\n"


def _row(result: str, inc: dict[str, Any], delay: str, label: str) -> str:
    title = inc["title"].replace("|", "/") + (f" ({label})" if label else "")
    return (f"| {result} | {inc['kind']} | {inc['subject']} | `{inc['rule']}` | "
            f"{clock(inc['opened_at'])} | {delay} | {title} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    day = json.loads(Path(args[0]).read_text("utf-8"))
    incidents = [json.loads(line) for line in Path(args[1]).read_text("utf-8").splitlines()]
    print(report(day, incidents))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
