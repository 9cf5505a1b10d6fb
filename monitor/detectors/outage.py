"""Outage detector: components down, flapping or degraded; lost heartbeats; silent intake.

One detector and one ``[outage]`` section over three kinds of evidence, each in
its own module, all writing into this detector's one table of signals:

- probes (:mod:`monitor.detectors.outage_probes`), subject the component: one
  rule ``outage.component`` whose conditions are down, flapping and degraded
  (one problem, one incident; its severity follows the worst condition);
- heartbeats (:mod:`monitor.detectors.outage_heartbeats`), subject the source:
  ``outage.heartbeat``;
- silent intake (:mod:`monitor.detectors.outage_intake`), subject the channel
  or queue: ``outage.silent_channel`` / ``outage.silent_queue``.

The checkpoint keeps the keys it always had, so a monitor restarted on a new
version resumes its outages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from watchfloor.core.events import Contact, Event, Health, Heartbeat, QueueStats
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.due import earliest
from watchfloor.monitor.detectors.outage_heartbeats import Heartbeats
from watchfloor.monitor.detectors.outage_intake import SilentIntake
from watchfloor.monitor.detectors.outage_probes import ComponentProbes
from watchfloor.monitor.detectors.outage_rules import OutageRules
from watchfloor.monitor.detectors.registry import DetectorSpec, register
from watchfloor.monitor.planned import Calendar
from watchfloor.monitor.rule_set import Rules

logger = logging.getLogger(__name__)


class OutageDetector:
    """Probe results, heartbeats and intake volume -> outage signals."""

    name: ClassVar[str] = "outage"
    event_types: ClassVar[frozenset[str]] = frozenset(
        {"health", "heartbeat", "queue.stats", "contact"}
    )
    instant_types: ClassVar[frozenset[str]] = frozenset({"health"})
    """The failed probe that makes a component down is judged on arrival (early firing)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        scoped = rules.section(SPEC)
        self.base: OutageRules = scoped.base
        self.signals: dict[str, Signal] = {}  # fingerprint -> signal, of all three parts
        self.probes = ComponentProbes(scoped, self.signals, self._signal)
        self.heartbeats = Heartbeats(scoped, self.signals, self._signal)
        self.intake = SilentIntake(scoped, self.signals, self._signal, Calendar(rules.document))

    def resume(self, down_from: float, at: float) -> None:
        """The monitor itself saw nothing from ``down_from`` to ``at`` (it was down).

        Its downtime is no evidence of silence: a source alive at ``down_from`` is
        presumed alive at ``at`` (lost only if it stays silent past its limit from
        then), and intake windows overlapping the gap are not judged.
        """
        self.heartbeats.resume(down_from, at)
        self.intake.resume(at)

    def observe(self, event: Event) -> None:
        kind = type(event)
        if kind is Heartbeat:
            self.heartbeats.beat(event)
        elif kind is Health:
            self.probes.probe(event)  # type: ignore[arg-type]
        elif kind is QueueStats or kind is Contact:
            self.intake.add(event)

    def instant(self, event: Event, older: Sequence[Event] = ()) -> Signal | None:
        """A failed probe that takes its component down, judged on arrival.

        Only when the component's probes folded in so far plus this one make it
        down (the usual case: the previous probe is older than the lateness); the
        component's state is not changed. Anything else waits for the watermark.
        """
        if type(event) is not Health or event.status != "down":
            return None
        return self.probes.instant(event, older)

    def evaluate(self, watermark: float) -> list[Signal]:
        self.probes.judge(watermark)
        self.heartbeats.judge(watermark)
        self.intake.judge(watermark)
        return list(self.signals.values())

    def next_due(self, at: float) -> float | None:
        """Replay (:mod:`monitor.engine`): a lost heartbeat or a silence coming due; probes
        change only with a new probe result."""
        return earliest((self.heartbeats.next_due(at), self.intake.next_due(at)))

    def _signal(self, rule: str, subject: str, severity: str, title: str, evidence: dict) -> Signal:
        p = self.base
        return Signal(
            rule=rule,
            kind="outage",
            subject=subject,
            severity=severity,
            title=title,
            evidence=evidence,
            for_s=p.for_s,
            keep_firing_for_s=p.keep_firing_for_s,
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.probes.snapshot(),
            **self.heartbeats.snapshot(),
            **self.intake.snapshot(),
            "active": sorted(self.signals),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.signals.clear()
        self.probes.restore(state)
        self.heartbeats.restore(state)
        self.intake.restore(state)


SPEC = register(
    DetectorSpec(
        section="outage",
        kind="outage",
        params=OutageRules,
        scopes=("components", "sources", "channels", "queues"),
        build=OutageDetector,
        order=30,
        title="probes, heartbeats, silent intake",
        notes=(
            "A component's down / flapping / degraded is one rule (outage.component); lost",
            "heartbeats (outage.heartbeat) and silent intake (outage.silent_channel / _queue)",
            "are their own. 001 §7.1 network interruption, §7.2 / §1.5 system crash.",
        ),
    )
)
