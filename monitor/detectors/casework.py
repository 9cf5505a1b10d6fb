"""Open cases with a deadline, per queue: what the complaint and logistics rules share.

A *case* (a complaint, a delayed delivery brought to the desk) is opened by one
event, may have its deadline moved by later ones (the customer told of a new
time) and is closed by another (resolved, a solution offered). A case whose
deadline has passed at the watermark is *overdue*. Everything is event time.

Per queue the book keeps the open cases and the earliest deadline still ahead,
so an evaluation reads a queue only when an event touched it or a deadline
passed (:meth:`DeadlineBook.due`), and :meth:`DeadlineBook.next_due` tells the
engine when the answer next changes with no new event. Memory is bounded:
at most ``max_open`` cases per queue (the newest beyond it are not tracked,
and counted) and a bounded set of recently closed ids, so a late or repeated
``opened`` of a closed case does not reopen it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from watchfloor.monitor.detectors.base import Signal

MAX_CLOSED = 20_000
"""Recently closed case ids remembered (bounded memory)."""


@dataclass(slots=True)
class Case:
    """One open case: when it opened, when it is due, and why that time."""

    opened: float
    deadline: float
    reason: str
    """What the deadline is: e.g. ``handling`` (48 h), ``promised``, ``update``."""
    updates: int = 0

    def to_list(self) -> list[Any]:
        return [self.opened, self.deadline, self.reason, self.updates]


class _Queue:
    __slots__ = ("cases", "next_due", "overdue", "tenant", "untracked")

    def __init__(self) -> None:
        self.cases: dict[str, Case] = {}
        self.next_due = math.inf
        self.overdue: list[tuple[str, Case]] = []
        self.tenant: str | None = None
        self.untracked = 0


class DeadlineBook:
    """Open cases per queue with their deadlines (bounded, snapshot-able)."""

    def __init__(self, max_open: int) -> None:
        self.max_open = max_open
        self.queues: dict[str, _Queue] = {}
        self.closed: dict[str, float] = {}
        self.dirty: set[str] = set()

    def open(
        self, queue: str, case_id: str, at: float, deadline: float, reason: str, tenant: str | None
    ) -> None:
        """A new case (a repeated or late ``open`` of a known or closed one is ignored)."""
        key = f"{queue}|{case_id}"
        q = self._queue(queue, tenant)
        if case_id in q.cases or key in self.closed:
            return
        if len(q.cases) >= self.max_open:
            q.untracked += 1
            return
        q.cases[case_id] = Case(at, deadline, reason)
        self.dirty.add(queue)

    def move(
        self, queue: str, case_id: str, at: float, deadline: float, reason: str, tenant: str | None
    ) -> None:
        """A new deadline for a case (a case first seen here is opened at ``at``)."""
        q = self._queue(queue, tenant)
        case = q.cases.get(case_id)
        if case is None:
            self.open(queue, case_id, at, deadline, reason, tenant)
            case = q.cases.get(case_id)
            if case is None:
                return
        else:
            case.deadline, case.reason = deadline, reason
        case.updates += 1
        self.dirty.add(queue)

    def close(self, queue: str, case_id: str, at: float) -> None:
        q = self.queues.get(queue)
        if q is not None and q.cases.pop(case_id, None) is not None:
            self.dirty.add(queue)
        if len(self.closed) >= MAX_CLOSED:
            del self.closed[next(iter(self.closed))]  # the oldest closed id
        self.closed[f"{queue}|{case_id}"] = at

    def due(self, watermark: float) -> dict[str, list[tuple[str, Case]]]:
        """Queue -> its overdue cases (oldest deadline first), for queues that have any."""
        for name, q in list(self.queues.items()):
            if name in self.dirty or watermark >= q.next_due:
                self._scan(q, watermark)
            if not q.cases and not q.untracked:
                del self.queues[name]
        self.dirty.clear()
        return {name: q.overdue for name, q in self.queues.items() if q.overdue}

    def _scan(self, q: _Queue, watermark: float) -> None:
        overdue = [(cid, c) for cid, c in q.cases.items() if c.deadline <= watermark]
        overdue.sort(key=lambda item: item[1].deadline)
        q.overdue = overdue
        ahead = [c.deadline for c in q.cases.values() if c.deadline > watermark]
        q.next_due = min(ahead, default=math.inf)

    def next_due(self, at: float) -> float | None:
        """The earliest deadline after ``at`` (None: only a new event changes anything)."""
        if self.dirty:
            return at
        due = min((q.next_due for q in self.queues.values()), default=math.inf)
        return None if due == math.inf else max(due, at)

    def open_count(self, queue: str) -> int:
        q = self.queues.get(queue)
        return len(q.cases) + q.untracked if q is not None else 0

    def tenant(self, queue: str) -> str | None:
        q = self.queues.get(queue)
        return q.tenant if q is not None else None

    def _queue(self, name: str, tenant: str | None) -> _Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = _Queue()
        if tenant is not None:
            q.tenant = tenant
        return q

    def snapshot(self) -> dict[str, Any]:
        return {
            "queues": {
                name: {
                    "cases": {cid: c.to_list() for cid, c in q.cases.items()},
                    "tenant": q.tenant,
                    "untracked": q.untracked,
                }
                for name, q in self.queues.items()
            },
            "closed": [[k, v] for k, v in self.closed.items()],
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.queues.clear()
        self.closed = {str(k): float(v) for k, v in state.get("closed", [])}
        for name, saved in state.get("queues", {}).items():
            q = self._queue(name, saved.get("tenant"))
            q.untracked = int(saved.get("untracked", 0))
            for cid, (opened, deadline, reason, updates) in saved.get("cases", {}).items():
                q.cases[cid] = Case(float(opened), float(deadline), str(reason), int(updates))
            self.dirty.add(name)


def hours(seconds: float) -> str:
    """``52 h``, ``90 min``: a lateness or an age as a person says it."""
    if seconds >= 5400:
        return f"{seconds / 3600:.0f} h"
    return f"{max(0.0, seconds) / 60:.0f} min"


class CaseSettings(Protocol):
    """What the case rules' settings share (severity lines and the lifecycle timers)."""

    major_count: int
    critical_count: int
    major_late_s: float
    for_s: float
    keep_firing_for_s: float


def severity(overdue: list[tuple[str, Case]], p: CaseSettings, w: float, worse: bool) -> str:
    """Critical with ``critical_count`` overdue; major with ``major_count``, one case
    ``major_late_s`` late, or ``worse`` (a broken promise); else minor."""
    n = len(overdue)
    latest = max(w - c.deadline for _, c in overdue)
    if n >= p.critical_count:
        return "critical"
    return "major" if n >= p.major_count or worse or latest >= p.major_late_s else "minor"


class CaseDetector:
    """The part of a case rule that is the same for every kind of case: one signal per
    queue with overdue cases, judged from a :class:`DeadlineBook`."""

    rule: str = ""
    book: DeadlineBook

    def evaluate(self, watermark: float) -> list[Signal]:
        return [
            self.verdict(queue, overdue, watermark)
            for queue, overdue in self.book.due(watermark).items()
        ]

    def next_due(self, at: float) -> float | None:
        return self.book.next_due(at)

    def verdict(self, queue: str, overdue: list[tuple[str, Case]], w: float) -> Signal:
        raise NotImplementedError

    def signal(
        self, queue: str, p: CaseSettings, severity: str, title: str, evidence: dict[str, Any]
    ) -> Signal:
        return Signal(
            rule=self.rule,
            kind="sla",
            subject=queue,
            severity=severity,
            title=title,
            evidence={"queue": queue, "open": self.book.open_count(queue), **evidence},
            for_s=p.for_s,
            keep_firing_for_s=p.keep_firing_for_s,
            tenant=self.book.tenant(queue),
        )
