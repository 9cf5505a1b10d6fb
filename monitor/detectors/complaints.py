"""Complaints detector: complaints handled within 48 h, the customer told when it takes longer.

003 ch.5 §4: a complaint is handled within 48 hours; in special cases the customer
is told in time. Subject: the queue that owns the complaints, one rule,
``complaint.overdue`` (kind ``sla``): one incident per queue lists its overdue
complaints, not one incident per complaint.

From ``complaint`` events: ``opened`` starts the clock: due ``handle_s`` (48 h)
later, or at the ``promised_ts`` given to the customer if that is sooner. A
``customer_told`` update moves the due time to the new ``promised_ts`` it carries,
or, without one, ``update_every_s`` after the update (the customer hears again
at least every 48 h). ``resolved`` closes it. A complaint is overdue when its due
time passes: open past 48 h with nobody telling the customer, or past the time
the customer was promised. The 24 h first response stays the SLA detector's
(``[sla.channels.ticket]``); this rule is about the handling's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from watchfloor.core.events import Complaint, Event
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

RULE: Final = "complaint.overdue"
SHOWN = 10  # overdue complaints listed in the evidence


@dataclass(frozen=True, slots=True)
class ComplaintRules:
    """``[complaints]``: the settings of the complaints detector."""

    enabled: bool = setting(True, "run this detector")
    handle_s: float = setting(
        172_800.0, "003 ch.5 §4: a complaint handled within 48 h", above_zero=True
    )
    update_every_s: float = setting(
        172_800.0,
        "told without a new promised time: the customer hears again within 48 h",
        above_zero=True,
    )
    major_count: int = setting(5, "this many overdue complaints on a queue: major")
    critical_count: int = setting(20, "this many: critical")
    major_late_s: float = setting(
        86_400.0, "a complaint this far past its due time (or a broken promise): major"
    )
    max_open: int = setting(50_000, "open complaints remembered per queue (bounded memory)")
    for_s: float = setting(0.0, "pending: the due time is exact, nothing to wait for")
    keep_firing_for_s: float = setting(
        0.0, "resolving: keeps firing this long after it stops holding"
    )


class ComplaintDetector(CaseDetector):
    """Overdue complaints per queue."""

    name: ClassVar[str] = "complaints"
    rule = RULE
    event_types: ClassVar[frozenset[str]] = frozenset({"complaint"})

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.p: ComplaintRules = rules.complaints.base
        self.book = DeadlineBook(self.p.max_open)

    def observe(self, event: Event) -> None:
        if type(event) is not Complaint:
            return
        e: Complaint = event
        p = self.rules.complaints.get(queue=e.queue)
        if e.action == "opened":
            deadline, reason = e.ts + p.handle_s, "handling"
            if e.promised_ts is not None and e.promised_ts < deadline:
                deadline, reason = e.promised_ts, "promised"
            self.book.open(e.queue, e.complaint_id, e.ts, deadline, reason, e.tenant)
        elif e.action == "customer_told":
            if e.promised_ts is not None:
                deadline, reason = e.promised_ts, "promised"
            else:
                deadline, reason = e.ts + p.update_every_s, "update"
            self.book.move(e.queue, e.complaint_id, e.ts, deadline, reason, e.tenant)
        else:
            self.book.close(e.queue, e.complaint_id, e.ts)

    def verdict(self, queue: str, overdue: list[tuple[str, Case]], w: float) -> Signal:
        p = self.rules.complaints.get(queue=queue)
        broken = sum(1 for _, c in overdue if c.reason == "promised")
        n = len(overdue)
        oldest = min(c.opened for _, c in overdue)
        what = "complaint" if n == 1 else "complaints"
        title = f"{n} {what} on {queue} overdue: oldest opened {hours(w - oldest)} ago"
        if broken:
            title += f", {broken} past the time promised to the customer"
        untold = sum(1 for _, c in overdue if c.updates == 0)
        if untold:
            title += f", {untold} with the customer never told"
        evidence: dict[str, Any] = {
            "overdue": n,
            "promises_broken": broken,
            "never_told": untold,
            "handle_s": p.handle_s,
            "complaints": [_row(cid, c, w) for cid, c in overdue[:SHOWN]],
        }
        return self.signal(queue, p, severity(overdue, p, w, broken > 0), title, evidence)

    def snapshot(self) -> dict[str, Any]:
        return {"book": self.book.snapshot()}

    def restore(self, state: dict[str, Any]) -> None:
        self.book.restore(state.get("book", {}))


def _row(case_id: str, case: Case, w: float) -> dict[str, Any]:
    return {
        "complaint_id": case_id,
        "opened_at": case.opened,
        "due_at": case.deadline,
        "late_s": round(w - case.deadline, 1),
        "due": case.reason,
        "updates": case.updates,
    }


SPEC = register(
    DetectorSpec(
        section="complaints",
        kind="sla",
        params=ComplaintRules,
        scopes=("queues",),
        build=ComplaintDetector,
        order=25,
        title="complaints handled within 48 h, the customer told",
        notes=(
            "003 ch.5 §4: complaints handled within 48 h; when it takes longer the customer",
            "is told (a customer_told update sets the next due time). One rule per queue.",
        ),
    )
)
