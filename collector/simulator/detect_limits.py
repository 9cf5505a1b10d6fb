"""The earliest time the evidence of a labelled emergency can reach a rule's false-alarm budget.

The back-test compares each time to detect with this **limit**, read from the
recorded day itself (the events before and after the onset), never from the
detectors:

- a **silence** of a source that sends λ events a second (heartbeats, chats,
  contacts): a quiet stretch of t seconds has chance e^(-λt) under normal
  traffic, so it is significant at budget p after ``ln(1/p) / λ``;
- a **rate change** from λ0 to λ1 = r·λ0 (a surge, an opinion storm): a Poisson
  CUSUM gains ``λ0 (r ln r - r + 1)`` of log-likelihood a second on average and
  fires at ``ln(1/p)``, so its expected delay is ``ln(1/p) / (λ0 (r ln r - r + 1))``;
- a **decisive event** (customer data in a message, the second failed probe in a
  row, the first snapshot whose longest wait is past the threshold with enough
  contacts waiting, a high-reach complaint): its arrival after the onset.

p is one false alarm per subject-week at one look a minute: ``1 / (7·24·60)``,
so ``ln(1/p) ≈ 9.2``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

FALSE_ALARM_P: Final = 1 / (7 * 24 * 60)
LOG_BUDGET: Final = math.log(1 / FALSE_ALARM_P)
BASELINE_S: Final = 3600
"""Baseline rates are taken over the hour before the onset."""
LONGEST_WAIT_S: Final = {"phone": 15.0, "chat": 30.0}
"""Answer thresholds of the default rules (monitor/rules/default.toml), per channel."""
MIN_WAITING: Final = 5
HIGH_REACH: Final = 100_000
ID_NUMBER: Final = re.compile(r"\d{17}[\dXx]")


def silence_limit(rate_per_s: float) -> float:
    """Seconds of silence that are significant at the budget for a source of this rate."""
    return math.inf if rate_per_s <= 0 else LOG_BUDGET / rate_per_s


def rate_change_limit(base_per_s: float, ratio: float) -> float:
    """Expected delay of a Poisson CUSUM at the budget for a jump of ``ratio``."""
    drift = base_per_s * (ratio * math.log(ratio) - ratio + 1) if ratio > 0 else 0.0
    return math.inf if drift <= 0 else LOG_BUDGET / drift


@dataclass(slots=True)
class _Emergency:
    exp: dict[str, Any]
    end_ts: float
    base: float = 0.0
    during: float = 0.0
    first_decisive: float | None = None
    down_run: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def limits(events: Iterable[dict[str, Any]], expected: list[dict[str, Any]]) -> list[float]:
    """The limit (seconds after onset) of each expected incident, in its order."""
    tracked = [_Emergency(e, e["to_ts"] - 600) for e in expected]
    for event in events:
        for em in tracked:
            _fold(em, event)
    return [_limit(em) for em in tracked]


def limits_of_file(path: Path, expected: list[dict[str, Any]]) -> list[float]:
    with path.open(encoding="utf-8") as fh:
        return limits((json.loads(line) for line in fh if line.strip()), expected)


def _fold(em: _Emergency, event: dict[str, Any]) -> None:
    start = em.exp["from_ts"]
    ts = event["ts"]
    if ts < start - BASELINE_S or ts >= em.end_ts:
        return
    amount = _amount(em.exp, event)
    if amount:
        if ts < start:
            em.base += amount
        else:
            em.during += amount
    if ts >= start and em.first_decisive is None and _decisive(em, event):
        em.first_decisive = ts


def _amount(exp: dict[str, Any], event: dict[str, Any]) -> float:
    """What a rate counts: contacts offered, mentions of the topic, events of a source."""
    kind, subject = exp["kind"], exp["subject"]
    if kind in ("surge", "sla") and event["type"] == "queue.stats":
        return float(event.get("offered", 0)) if event.get("queue") == subject else 0.0
    if kind == "opinion" and event["type"] == "social.mention":
        return 1.0 if event.get("topic") == subject else 0.0
    if kind == "outage":
        return 1.0 if event.get("source") == subject else 0.0
    return 0.0


def _decisive(em: _Emergency, event: dict[str, Any]) -> bool:
    kind, subject, etype = em.exp["kind"], em.exp["subject"], event["type"]
    if kind == "leak":
        return (
            etype == "agent.message"
            and event.get("agent_id") == subject
            and bool(ID_NUMBER.search(event.get("text", "")))
        )
    if kind == "sla" and etype == "queue.stats" and event.get("queue") == subject:
        limit = LONGEST_WAIT_S.get(event.get("channel", ""), 30.0)
        return event.get("longest_wait_s", 0) > limit and event.get("waiting", 0) >= MIN_WAITING
    if kind == "opinion" and etype == "social.mention" and event.get("topic") == subject:
        return event.get("followers", 0) >= HIGH_REACH and event.get("sentiment", 0) < 0
    if kind == "outage" and etype == "health" and event.get("component") == subject:
        # One failed probe is noise in these days; the second in a row is decisive.
        em.down_run = em.down_run + 1 if event.get("status") == "down" else 0
        return em.down_run >= 2
    return False


def _limit(em: _Emergency) -> float:
    kind, start = em.exp["kind"], em.exp["from_ts"]
    decisive = math.inf if em.first_decisive is None else em.first_decisive - start
    base = em.base / BASELINE_S
    if kind in ("surge", "opinion") and base > 0:
        ratio = (em.during / (em.end_ts - start)) / base
        rate = rate_change_limit(base, ratio) if ratio > 1 else math.inf
        return min(rate, decisive) if kind == "opinion" else rate
    if kind == "outage" and decisive == math.inf:
        return silence_limit(base)
    return decisive
