"""Logistics detector: a delayed delivery answered with a solution within 2 h.

001 §1.1: the duty team works with logistics so that order problems are answered
quickly: "a logistics delay needs a solution within 2 hours". Subject: the queue
that owns the cases, one rule, ``logistics.unanswered`` (kind ``sla``): one
incident per queue lists its delays still without a solution.

From ``logistics.delay`` events: ``reported`` starts the clock (due
``solution_s`` later); ``solution_offered`` (re-ship, refund, compensation, a
new delivery date agreed) or ``resolved`` stops it. A case past its due time
with no solution is overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from watchfloor.core.events import Event, LogisticsDelay
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.casework import (
    Case,
    CaseDetector,
    DeadlineBook,
    hours,
    severity,
)
from watchfloor.monitor.detectors.registry import DetectorSpec, register, setting
from watchfloor.monitor.rule_set import Rules

RULE: Final = "logistics.unanswered"
SHOWN = 10  # overdue cases listed in the evidence


@dataclass(frozen=True, slots=True)
class LogisticsRules:
    """``[logistics]``: the settings of the logistics-delay detector."""

    enabled: bool = setting(True, "run this detector")
    solution_s: float = setting(
        7_200.0, "001 §1.1: a logistics delay answered with a solution within 2 h", above_zero=True
    )
    major_count: int = setting(5, "this many delays without a solution on a queue: major")
    critical_count: int = setting(20, "this many: critical")
    major_late_s: float = setting(7_200.0, "a delay this far past its due time: major")
    max_open: int = setting(50_000, "open cases remembered per queue (bounded memory)")
    for_s: float = setting(0.0, "pending: the due time is exact, nothing to wait for")
    keep_firing_for_s: float = setting(
        0.0, "resolving: keeps firing this long after it stops holding"
    )


class LogisticsDetector(CaseDetector):
    """Delayed deliveries still without a solution, per queue."""

    name: ClassVar[str] = "logistics"
    rule = RULE
    event_types: ClassVar[frozenset[str]] = frozenset({"logistics.delay"})

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.p: LogisticsRules = rules.logistics.base
        self.book = DeadlineBook(self.p.max_open)
        self.orders: dict[str, str] = {}
        """Case -> its order id, for the evidence (dropped with the case)."""

    def observe(self, event: Event) -> None:
        if type(event) is not LogisticsDelay:
            return
        e: LogisticsDelay = event
        key = f"{e.queue}|{e.case_id}"
        if e.action == "reported":
            p = self.rules.logistics.get(queue=e.queue)
            self.book.open(e.queue, e.case_id, e.ts, e.ts + p.solution_s, "solution", e.tenant)
            if e.order_id is not None and self.book.open_count(e.queue) <= p.max_open:
                self.orders[key] = e.order_id
        else:
            self.book.close(e.queue, e.case_id, e.ts)
            self.orders.pop(key, None)

    def verdict(self, queue: str, overdue: list[tuple[str, Case]], w: float) -> Signal:
        p = self.rules.logistics.get(queue=queue)
        n = len(overdue)
        oldest = min(c.opened for _, c in overdue)
        what = "delay" if n == 1 else "delays"
        title = (
            f"{n} logistics {what} on {queue} without a solution after "
            f"{hours(p.solution_s)}: oldest reported {hours(w - oldest)} ago"
        )
        rows = [
            {
                "case_id": cid,
                "order_id": self.orders.get(f"{queue}|{cid}"),
                "reported_at": c.opened,
                "due_at": c.deadline,
                "late_s": round(w - c.deadline, 1),
            }
            for cid, c in overdue[:SHOWN]
        ]
        evidence = {"overdue": n, "solution_s": p.solution_s, "cases": rows}
        return self.signal(queue, p, severity(overdue, p, w, False), title, evidence)

    def snapshot(self) -> dict[str, Any]:
        return {"book": self.book.snapshot(), "orders": dict(self.orders)}

    def restore(self, state: dict[str, Any]) -> None:
        self.book.restore(state.get("book", {}))
        self.orders = dict(state.get("orders", {}))


SPEC = register(
    DetectorSpec(
        section="logistics",
        kind="sla",
        params=LogisticsRules,
        scopes=("queues",),
        build=LogisticsDetector,
        order=26,
        title="a logistics delay answered with a solution within 2 h",
        notes=("001 §1.1: a logistics delay needs a solution within 2 hours.",),
    )
)
