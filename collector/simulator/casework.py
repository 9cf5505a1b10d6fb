"""The simulated centre's casework: complaints, delayed deliveries and order changes.

Ordinary traffic: complaints opened on the complaints desk,
the customer told of progress and the complaint resolved within a day or two;
delivery delays reported to after-sales and answered with a solution within
the 2 hours (001 §1.1); refunds, address changes and cancellations made by the
agents through the day. The steps of a case are scheduled when it opens and
sent when their second comes. It draws from its own random stream, so adding
it changed none of the other simulated traffic.

A recorded day also plans labelled casework emergencies (:class:`CaseEmergency`,
:meth:`Casework.plan`), drawn from a second stream of their own so that the
ordinary casework stays as it was:

- ``unanswered delay``: a delay reported to after-sales whose solution comes
  only ``DELAY_LATE_S`` after the report, 40 minutes past the 2 hours;
- ``agent payout burst``: one agent grants refund-only and compensation on
  ``AGENT_BURST`` orders of as many accounts in ``AGENT_BURST_S`` (payouts to a
  ring of fresh accounts), several times an agent's busiest hour;
- ``account refund burst``: one account claims refund-only on ``ACCOUNT_BURST``
  orders in ``ACCOUNT_BURST_S``, each claim with another agent (the customer
  tries agents until one accepts).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

COMPLAINTS_PER_MIN: Final = 0.08
DELAYS_PER_MIN: Final = 0.12
CHANGES_PER_MIN: Final = 3.0
"""At the full daily rate (the day's curve scales all three)."""
ORDER_ACTIONS: Final = (
    ("refund", 0.45),
    ("refund_only", 0.1),
    ("address_change", 0.2),
    ("cancel", 0.2),
    ("compensation", 0.05),
)


DELAY_QUEUE: Final = "aftersale-chat"
DELAY_LATE_S: Final = 2 * 3600 + 40 * 60
"""An unanswered delay's solution comes this long after the report (the rule's 2 h + 40 min)."""
AGENT_BURST: Final = 48
AGENT_BURST_S: Final = 16 * 60
ACCOUNT_BURST: Final = 7
ACCOUNT_BURST_S: Final = 35 * 60
EMERGENCY_SEQ: Final = 10**12
"""Scheduled steps of an emergency sort after the ordinary ones of the same second."""


@dataclass(frozen=True, slots=True)
class CaseEmergency:
    """A labelled casework emergency of a day: what, from when, on whom."""

    what: str
    """``unanswered delay``, ``agent payout burst`` or ``account refund burst``."""
    start_s: int
    """Seconds after midnight."""
    subject: str
    """The queue, the agent or the account."""

    @property
    def duration_s(self) -> int:
        return {"unanswered delay": DELAY_LATE_S, "agent payout burst": AGENT_BURST_S,
                "account refund burst": ACCOUNT_BURST_S}[self.what]  # fmt: skip


class Casework:
    """Case and order-change events, second by second."""

    def __init__(self, rng: random.Random, agents: tuple[str, ...]) -> None:
        self.rng = rng
        self.agents = agents
        self.pending: list[tuple[float, int, str, dict[str, Any]]] = []
        """(due ts, sequence, source, fields): scheduled steps of open cases."""
        self._n = 0
        self._planned = 0

    def plan(
        self, emergencies: Iterable[CaseEmergency], rng: random.Random, midnight: float,
        begin: float,
    ) -> None:  # fmt: skip
        """Schedule each emergency's steps (those from ``begin`` on), drawn from ``rng``."""
        for em in emergencies:
            at = midnight + em.start_s
            make = {
                "unanswered delay": self._late_delay,
                "agent payout burst": self._payouts,
                "account refund burst": self._claims,
            }[em.what]
            for due, source, fields in make(rng, at, em.subject):
                if due >= begin:
                    self._planned += 1
                    step = (round(due, 3), EMERGENCY_SEQ + self._planned, source, fields)
                    heapq.heappush(self.pending, step)

    def second(
        self, ts: float, load: float, event: Callable[..., dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The events of the second at ``ts``; ``event(type, ts, source, **fields)`` makes one."""
        rng = self.rng
        if rng.random() < COMPLAINTS_PER_MIN * load / 60:
            self._complaint(ts)
        if rng.random() < DELAYS_PER_MIN * load / 60:
            self._delay(ts)
        out = [
            event("order.change", ts, "oms", **self._change())
            for _ in range(_poisson(rng, CHANGES_PER_MIN * load / 60))
        ]
        while self.pending and self.pending[0][0] <= ts:
            _, _, source, fields = heapq.heappop(self.pending)
            out.append(event(fields.pop("type"), ts, source, **fields))  # sent in its second
        return out

    def _schedule(self, at: float, source: str, **fields: Any) -> None:
        self._n += 1
        heapq.heappush(self.pending, (round(at, 3), self._n, source, fields))

    def _complaint(self, ts: float) -> None:
        rng, cid = self.rng, f"CP{self._next()}"
        base = {"type": "complaint", "complaint_id": cid, "queue": "complaints"}
        self._schedule(ts, "case-desk", **base, action="opened", channel="ticket")
        took = rng.uniform(2, 60) * 3600  # most within a day, some take longer
        if took > 36 * 3600:  # the customer is told before the 48 h run out
            told = ts + rng.uniform(20, 40) * 3600
            self._schedule(told, "case-desk", **base, action="customer_told",
                           promised_ts=round(ts + took + 3600))  # fmt: skip
        self._schedule(ts + took, "case-desk", **base, action="resolved")

    def _delay(self, ts: float) -> None:
        rng, case = self.rng, f"LD{self._next()}"
        base = {"type": "logistics.delay", "case_id": case, "queue": "aftersale-chat"}
        order = f"2026{rng.randrange(10**11, 10**12)}"
        self._schedule(ts, "oms", **base, action="reported", order_id=order, carrier="极速达")
        self._schedule(ts + rng.uniform(10, 100) * 60, "oms", **base, action="solution_offered")

    def _change(self) -> dict[str, Any]:
        rng = self.rng
        action = rng.choices([a for a, _ in ORDER_ACTIONS], [w for _, w in ORDER_ACTIONS])[0]
        return {
            "account": f"m{rng.randrange(10**8):08d}",
            "action": action,
            "agent_id": rng.choice(self.agents),
            "order_id": f"2026{rng.randrange(10**11, 10**12)}",
            "amount": round(rng.lognormvariate(4.5, 0.8), 2),
        }

    def _late_delay(
        self, rng: random.Random, at: float, queue: str
    ) -> list[tuple[float, str, dict[str, Any]]]:
        base = {"type": "logistics.delay", "case_id": f"LD{rng.randrange(5 * 10**6, 10**7)}",
                "queue": queue}  # fmt: skip
        order = f"2026{rng.randrange(10**11, 10**12)}"
        return [
            (at, "oms", {**base, "action": "reported", "order_id": order, "carrier": "极速达"}),
            (at + DELAY_LATE_S, "oms", {**base, "action": "solution_offered"}),
        ]

    def _payouts(
        self, rng: random.Random, at: float, agent: str
    ) -> list[tuple[float, str, dict[str, Any]]]:
        times = sorted(rng.uniform(0, AGENT_BURST_S) for _ in range(AGENT_BURST))
        return [(at + t, "oms", {"type": "order.change", **self._order(rng, agent),
                                 "action": rng.choice(("refund_only", "compensation"))})
                for t in times]  # fmt: skip

    def _claims(
        self, rng: random.Random, at: float, account: str
    ) -> list[tuple[float, str, dict[str, Any]]]:
        times = sorted(rng.uniform(0, ACCOUNT_BURST_S) for _ in range(ACCOUNT_BURST))
        agents = rng.sample(self.agents, ACCOUNT_BURST)
        return [(at + t, "oms", {"type": "order.change", **self._order(rng, agent),
                                 "account": account, "action": "refund_only"})
                for t, agent in zip(times, agents, strict=True)]  # fmt: skip

    @staticmethod
    def _order(rng: random.Random, agent: str) -> dict[str, Any]:
        return {
            "account": f"m{rng.randrange(10**8):08d}",
            "agent_id": agent,
            "order_id": f"2026{rng.randrange(10**11, 10**12)}",
            "amount": round(rng.lognormvariate(5.3, 0.4), 2),
        }

    def _next(self) -> int:
        self._n += 1
        return self._n


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
