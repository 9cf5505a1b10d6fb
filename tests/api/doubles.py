"""Small detectors for the engine's tests: stand-ins for the real ones, same contract."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

from watchfloor.core.events import Contact, Event, Health, Heartbeat, QueueStats
from watchfloor.monitor.detectors.base import Signal

T0 = 1_763_800_000.0


class CountingDetector:
    """Fires when a queue had ``threshold`` or more offered contacts in the last 10 s."""

    name: ClassVar[str] = "counting"
    event_types: ClassVar[frozenset[str]] = frozenset({"contact"})

    def __init__(self, threshold: int = 5, for_s: float = 0.0, keep_s: float = 0.0) -> None:
        self.threshold = threshold
        self.for_s = for_s
        self.keep_s = keep_s
        self.times: dict[str, list[float]] = defaultdict(list)
        self.seen: list[tuple[float, str]] = []
        self.evaluated: list[float] = []

    def observe(self, event: Event) -> None:
        assert isinstance(event, Contact)
        self.seen.append((event.ts, event.contact_id))
        if event.action == "offered":
            self.times[event.queue].append(event.ts)

    def evaluate(self, watermark: float) -> list[Signal]:
        self.evaluated.append(watermark)
        out = []
        for queue, times in sorted(self.times.items()):
            recent = [t for t in times if watermark - 10 <= t < watermark]
            self.times[queue] = [t for t in times if t >= watermark - 10]
            if len(recent) >= self.threshold:
                severity = "critical" if len(recent) >= 3 * self.threshold else "major"
                out.append(
                    Signal(
                        rule="surge.test",
                        kind="surge",
                        subject=queue,
                        severity=severity,
                        title=f"{len(recent)} offered on {queue}",
                        evidence={"offered_10s": len(recent)},
                        for_s=self.for_s,
                        keep_firing_for_s=self.keep_s,
                    )
                )
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"times": dict(self.times)}

    def restore(self, state: dict[str, Any]) -> None:
        self.times = defaultdict(list, {q: list(t) for q, t in state["times"].items()})


class DownTwiceDetector:
    """Order-sensitive: a component down on two consecutive reports is an outage."""

    name: ClassVar[str] = "down_twice"
    event_types: ClassVar[frozenset[str]] = frozenset({"health"})

    def __init__(self) -> None:
        self.streak: dict[str, int] = {}

    def observe(self, event: Event) -> None:
        assert isinstance(event, Health)
        self.streak[event.component] = (
            self.streak.get(event.component, 0) + 1 if event.status == "down" else 0
        )

    def evaluate(self, watermark: float) -> list[Signal]:
        return [
            Signal(
                rule="outage.component",
                kind="outage",
                subject=c,
                severity="critical",
                title=f"{c} down",
            )
            for c, n in sorted(self.streak.items())
            if n >= 2
        ]

    def snapshot(self) -> dict[str, Any]:
        return {"streak": self.streak}

    def restore(self, state: dict[str, Any]) -> None:
        self.streak = dict(state["streak"])


class SilenceDetector:
    """An absence detector: a source with no heartbeat for 30 s is lost."""

    name: ClassVar[str] = "silence"
    event_types: ClassVar[frozenset[str]] = frozenset({"heartbeat"})

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def observe(self, event: Event) -> None:
        assert isinstance(event, Heartbeat)
        self.last[event.source] = max(event.ts, self.last.get(event.source, 0.0))

    def evaluate(self, watermark: float) -> list[Signal]:
        return [
            Signal(
                rule="outage.heartbeat",
                kind="outage",
                subject=s,
                severity="major",
                title=f"{s} lost",
            )
            for s, t in sorted(self.last.items())
            if watermark - t > 30
        ]

    def snapshot(self) -> dict[str, Any]:
        return {"last": self.last}

    def restore(self, state: dict[str, Any]) -> None:
        self.last = dict(state["last"])


class BrokenDetector:
    name: ClassVar[str] = "broken"
    event_types: ClassVar[frozenset[str]] = frozenset({"contact"})

    def observe(self, event: Event) -> None:
        raise RuntimeError("boom")

    def evaluate(self, watermark: float) -> list[Signal]:
        raise RuntimeError("boom")

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass


def offered(ts: float, queue: str = "presale-chat", n: int = 0) -> Contact:
    return Contact(
        ts=ts,
        source="acd",
        contact_id=f"c{ts:.3f}-{n}",
        queue=queue,
        channel="chat",
        action="offered",
    )


def health(ts: float, component: str, status: str) -> Health:
    return Health(ts=ts, source="probe", component=component, status=status)


SPAN_S = 1_200


def day_scenario() -> list[list[Event]]:
    """Twenty minutes of a centre, one batch per second: an outage of ``crm`` (300-420 s),
    a lost ``chat-gw`` heartbeat (600-900 s), an SLA breach on ``presale-chat`` (700-1000 s)."""
    batches = []
    for s in range(SPAN_S):
        ts = T0 + s
        batch: list[Event] = []
        if s % 10 == 0:
            crm = "down" if 300 <= s < 420 else "up"
            batch += [
                Health(ts=ts, source="probe", component="crm", status=crm),
                Health(ts=ts + 0.1, source="probe", component="ivr", status="up"),
            ]
            if not 600 <= s < 900:
                batch.append(Heartbeat(ts=ts + 0.2, source="chat-gw"))
            breach = 700 <= s < 1000
            batch.append(
                QueueStats(
                    ts=ts + 0.3,
                    source="acd",
                    queue="presale-chat",
                    channel="chat",
                    waiting=25 if breach else 2,
                    longest_wait_s=140.0 if breach else 8.0,
                    agents_available=0 if breach else 3,
                    agents_busy=12,
                )
            )
        batch += [
            Contact(
                ts=ts + 0.01 * i,
                source="acd",
                contact_id=f"c{s}-{i}",
                queue="presale-chat",
                channel="chat",
                action="offered",
            )
            for i in range(3)
        ]
        batches.append(batch)
    return batches
