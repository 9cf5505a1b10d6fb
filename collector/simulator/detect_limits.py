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
  contacts waiting, a high-reach complaint): its arrival after the onset;
- a **deadline** (a delivery delay reported after the onset with no solution
  within the 2 h): the deadline itself, the moment the evidence exists;
- a **burst** of order changes: the arrival of the change that makes it
  significant by the rule's own definition, counted from the day's events: for
  an account, its ``ACCOUNT_ORDERS``-th distinct order within a day; for an
  agent, the k-th change within the hour, k the smallest count at or above
  ``max(15, 4 x expected)`` whose Poisson tail at the expected count is below
  1e-4 (expected: the agent's mean per active hour before the onset's hour,
  times the median ratio of the agents active in the hour before the onset when
  there are 5 of them; 40 for an agent with fewer than 4 active hours).

p is one false alarm per subject-week at one look a minute: ``1 / (7·24·60)``,
so ``ln(1/p) ≈ 9.2``.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from watchfloor.security.pii import mask_text

FALSE_ALARM_P: Final = 1 / (7 * 24 * 60)
LOG_BUDGET: Final = math.log(1 / FALSE_ALARM_P)
BASELINE_S: Final = 3600
"""Baseline rates are taken over the hour before the onset."""
LONGEST_WAIT_S: Final = {"phone": 15.0, "chat": 30.0}
"""Answer thresholds of the default rules (monitor/rules/default.toml), per channel."""
MIN_WAITING: Final = 5
HIGH_REACH: Final = 100_000
ID_NUMBER: Final = re.compile(r"\d{17}[\dXx]")
SOLUTION_S: Final = 7200.0
"""The logistics rule's deadline (001 §1.1: a solution within 2 h)."""
WATCHED: Final = frozenset(
    {"refund", "refund_only", "compensation", "address_change", "price_change"}
)
"""The order changes the orders rules count (cancellations are not)."""
AGENT_WINDOW_S: Final = 3600.0
AGENT_RATIO, AGENT_MIN_COUNT, AGENT_P = 4.0, 15, 1e-4
MIN_HISTORY, NEW_AGENT_COUNT, MIN_PEERS = 4, 40, 5
ACCOUNT_WINDOW_S, ACCOUNT_ORDERS = 86_400.0, 5
"""The orders rules' defaults (monitor/rules/default.toml, [orders])."""


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
    need: float | None = None
    """An agent burst: the count in the hour that is significant (set at the onset)."""


class _Orders:
    """The day's watched order changes so far: per agent and per account."""

    def __init__(self) -> None:
        self.hours: dict[str, Counter[int]] = {}
        """Agent -> watched changes per clock hour."""
        self.recent: dict[str, deque[float]] = {}
        """Agent -> times of its changes in the last hour."""
        self.accounts: dict[str, deque[tuple[float, str]]] = {}

    def add(self, event: dict[str, Any]) -> None:
        ts, agent = event["ts"], event.get("agent_id")
        if agent:
            self.hours.setdefault(agent, Counter())[int(ts // AGENT_WINDOW_S)] += 1
            self.recent.setdefault(agent, deque()).append(ts)
            self.in_hour(agent, ts)
        kept = self.accounts.setdefault(event["account"], deque())
        kept.append((ts, event.get("order_id") or f"#{len(kept)}"))
        while kept[0][0] <= ts - ACCOUNT_WINDOW_S:
            kept.popleft()

    def in_hour(self, agent: str, ts: float) -> int:
        times = self.recent.get(agent, deque())
        while times and times[0] <= ts - AGENT_WINDOW_S:
            times.popleft()
        return len(times)

    def base(self, agent: str, onset: float) -> tuple[float, int]:
        """Mean changes per active hour before the onset's hour, and how many such hours."""
        hour = int(onset // AGENT_WINDOW_S)
        counts = [n for h, n in self.hours.get(agent, Counter()).items() if h < hour]
        return (sum(counts) / len(counts) if counts else 0.0), len(counts)

    def need(self, agent: str, onset: float) -> float:
        """The count in an hour that the agent rule finds significant at the onset."""
        base, history = self.base(agent, onset)
        if history < MIN_HISTORY:
            return NEW_AGENT_COUNT
        ratios = []
        for peer in self.recent:
            peer_base, _ = self.base(peer, onset)
            if (n := self.in_hour(peer, onset)) and peer_base > 0:
                ratios.append(n / peer_base)
        busy = max(1.0, statistics.median(ratios)) if len(ratios) >= MIN_PEERS else 1.0
        expected = base * busy
        k = math.ceil(max(AGENT_MIN_COUNT, AGENT_RATIO * expected))
        while _poisson_tail(k, expected) >= AGENT_P:
            k += 1
        return k


def _poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean)."""
    if mean <= 0:
        return 0.0
    below = sum(math.exp(i * math.log(mean) - mean - math.lgamma(i + 1)) for i in range(k))
    return max(0.0, 1.0 - below)


def limits(events: Iterable[dict[str, Any]], expected: list[dict[str, Any]]) -> list[float]:
    """The limit (seconds after onset) of each expected incident, in its order."""
    tracked = [_Emergency(e, e["to_ts"] - 600) for e in expected]
    orders = _Orders()
    for event in events:
        change = event["type"] == "order.change" and event.get("action") in WATCHED
        for em in tracked:
            if change and em.need is None and event["ts"] >= em.exp["from_ts"]:
                em.need = _need(em, orders)
        if change:
            orders.add(event)
        for em in tracked:
            _fold(em, event, orders if change else None)
    return [_limit(em) for em in tracked]


def _need(em: _Emergency, orders: _Orders) -> float:
    if em.exp.get("rule") == "orders.agent_burst":
        return orders.need(em.exp["subject"], em.exp["from_ts"])
    return ACCOUNT_ORDERS


def limits_of_file(path: Path, expected: list[dict[str, Any]]) -> list[float]:
    with path.open(encoding="utf-8") as fh:
        return limits((json.loads(line) for line in fh if line.strip()), expected)


def _fold(em: _Emergency, event: dict[str, Any], orders: _Orders | None) -> None:
    start = em.exp["from_ts"]
    ts = event["ts"]
    if ts < start - BASELINE_S or ts >= em.end_ts:
        return
    if em.exp.get("rule") in _CASEWORK:
        if ts >= start and em.first_decisive is None:
            em.first_decisive = _CASEWORK[em.exp["rule"]](em, event, orders)
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


def _overdue(em: _Emergency, event: dict[str, Any], orders: _Orders | None) -> float | None:
    """A delay reported after the onset still without a solution at its deadline."""
    if event["type"] == "logistics.delay" and event.get("queue") == em.exp["subject"]:
        if event["action"] == "reported":
            em.extra[event["case_id"]] = event["ts"]
        else:
            em.extra.pop(event["case_id"], None)
    due = min(em.extra.values(), default=math.inf) + SOLUTION_S
    return due if due <= event["ts"] else None


def _agent_burst(em: _Emergency, event: dict[str, Any], orders: _Orders | None) -> float | None:
    agent = em.exp["subject"]
    if orders is None or event.get("agent_id") != agent or em.need is None:
        return None
    return event["ts"] if orders.in_hour(agent, event["ts"]) >= em.need else None


def _account_burst(em: _Emergency, event: dict[str, Any], orders: _Orders | None) -> float | None:
    if orders is None or mask_text(event["account"]) != em.exp["subject"]:
        return None
    distinct = {order for _, order in orders.accounts[event["account"]]}
    return event["ts"] if len(distinct) >= ACCOUNT_ORDERS else None


_CASEWORK: Final = {
    "logistics.unanswered": _overdue,
    "orders.agent_burst": _agent_burst,
    "orders.account_burst": _account_burst,
}
"""Casework rules' limits: a deadline or the burst's significant change (from the events)."""


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
