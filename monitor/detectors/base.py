"""What every detector is: the contract between the detectors and the engine.

A detector folds events into its own bounded windows (:meth:`Detector.observe`)
and, when the engine asks at a watermark, says which conditions hold right now
(:meth:`Detector.evaluate`): one :class:`Signal` per (rule, subject) whose
condition is active. A fingerprint absent from the answer is inactive. The
detector applies its own hysteresis (a clear threshold below the fire
threshold) because it remembers what it answered last time. The engine owns
time (the watermark), the alert lifecycle (pending / firing / resolving /
flapping), inhibition, silences and the incident store.

State must round-trip through :meth:`snapshot` / :meth:`restore` as plain
msgpack-able data, so a restarted monitor resumes without warm-up.

Optionally, a detector whose rules rest on a single event (PII in one message,
one bulk export, one high-reach post, the probe that takes a component down)
names ``instant_types`` and has ``instant(event, buffered) -> Signal | None``:
called when an event of those types is accepted, it says, without changing
any state, which signal the event will cause at the next evaluation, so the
engine can fire it at once (early firing, see :mod:`monitor.engine`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from watchfloor.core.events import Event


@dataclass(frozen=True, slots=True)
class Signal:
    """An active condition of one rule about one subject, at one watermark."""

    rule: str
    """Rule name, e.g. ``surge.offered``, ``sla.queue``, ``outage.heartbeat``."""
    kind: str
    """Incident kind: surge, sla, outage, opinion or leak."""
    subject: str
    """What it is about (DESIGN.md): queue, component / source / channel, topic, agent / actor."""
    severity: str
    """info, minor, major or critical (may rise while the condition goes on)."""
    title: str
    """One line for the console, e.g. ``Contact surge on presale-chat: 3.4x baseline``."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """Figures behind the verdict; any PII already masked (security.pii)."""
    for_s: float = 0.0
    """How long the condition must hold before it fires (pending time)."""
    keep_firing_for_s: float = 0.0
    """How long it keeps firing after it stops holding (resolving time)."""
    tenant: str | None = None
    related: tuple[str, ...] = ()
    """Other subjects this one depends on (a queue's components), for inhibition."""

    @property
    def fingerprint(self) -> str:
        return f"{self.rule}|{self.subject}"


class Detector(Protocol):
    name: ClassVar[str]
    """Detector name, the section of the rules file (``surge``, ``sla``...)."""
    event_types: ClassVar[frozenset[str]]
    """Event types this detector wants; the engine routes only those to it."""

    def observe(self, event: Event) -> bool | None:
        """Fold one accepted event into the windows; ``False`` when it is older than every
        window it belongs to (a late event the windows no longer reach)."""

    def evaluate(self, watermark: float) -> Iterable[Signal]:
        """Every condition that holds at ``watermark`` (event time)."""

    def snapshot(self) -> dict[str, Any]:
        """State for the engine checkpoint (msgpack-able)."""

    def restore(self, state: dict[str, Any]) -> None:
        """Load a state written by :meth:`snapshot`."""
