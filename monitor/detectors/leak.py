"""Leak detector: customer data in agents' messages, and risky access to customer records.

Subjects: the agent for messages, the actor for data access.

- ``leak.pii_in_message``: a resident ID, bank card, mobile number or e-mail
  (:mod:`security.pii`, at least ``min_confidence``) in an agent-side message
  (``to_customer`` or ``internal``). Customers sending their own data
  (``from_customer``) are never looked at. Evidence holds masked values only.
- ``leak.bulk_export``: an export, download or print of ``bulk_records`` or more.
- ``leak.unusual_access``: records viewed or searched by one actor in a short
  window far above that actor's own baseline (or, without a baseline yet,
  above an absolute figure).
- ``leak.off_hours``: records touched outside the configured working hours
  (a bulk export at night is one ``leak.bulk_export`` incident that says so,
  not two incidents).

Each stays active for ``hold_s`` after its last evidence, so one episode is
one incident, updated while it goes on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from watchfloor.core.events import AgentMessage, DataAccess, Event
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.due import STRICT, earliest, filled, grid_after, window_changes
from watchfloor.monitor.detectors.registry import DetectorSpec, register, setting
from watchfloor.monitor.rule_set import Rules, check_hours, parse_hours
from watchfloor.monitor.windows import Ring, Trend
from watchfloor.security.pii import CONFIDENCE_RANK, find_pii, mask_text

logger = logging.getLogger(__name__)

MAX_KEPT = 20  # findings / accesses remembered per subject (bounded memory)
MAX_SCANS = 10_000  # messages scanned on arrival and not folded in yet (bounded memory)
AGENT_SIDE = frozenset({"to_customer", "internal"})
VIEW_ACTIONS = frozenset({"view", "search"})


CONFIDENCES: Final = tuple(CONFIDENCE_RANK)


@dataclass(frozen=True, slots=True)
class LeakRules:
    """``[leak]``: the settings of the leak detector."""

    enabled: bool = setting(True, "run this detector")
    min_confidence: str = setting(
        "medium", "PII findings of at least this confidence", choices=CONFIDENCES
    )
    hold_s: float = setting(600.0, "a leak stays active 10 min after the last finding")
    critical_findings: int = setting(
        3, "3+ findings (or ID and card together) within hold_s: critical"
    )
    bulk_records: int = setting(1000, "export / download / print of >= 1000 records")
    bulk_critical_records: int = setting(10_000, "a bulk action of this many records is critical")
    bulk_actions: tuple[str, ...] = setting(("export", "download", "print"), "the bulk actions")
    view_bucket_s: float = setting(60.0, "sub-bucket of the view windows", above_zero=True)
    view_window_s: float = setting(
        600.0, "records viewed by an actor over 10 min ...", above_zero=True
    )
    view_tau_s: float = setting(86_400.0, "... vs their own baseline (a day)", above_zero=True)
    view_ratio: float = setting(5.0, "... at 5x that baseline ...")
    view_min_records: float = setting(300.0, "... and at least 300 records")
    view_new_actor_records: float = setting(
        1000.0, "an actor without an hour of history: 1000 records"
    )
    working_hours: str = setting(
        "08:00-24:00", "local working hours; access outside is reported", check=check_hours
    )
    utc_offset_h: float = setting(
        8.0, "the working hours' time zone (China Standard Time)", low=-14.0, high=14.0
    )
    off_hours_min_records: int = setting(20, "records touched outside working hours to report")
    exempt_actors: tuple[str, ...] = setting((), "service accounts the off-hours rule skips")
    for_s: float = setting(0.0, "pending: the condition holds this long before it fires")
    keep_firing_for_s: float = setting(
        0.0, "resolving: keeps firing this long after it stops holding"
    )


class LeakDetector:
    """PII in agent-side messages; bulk, unusual and off-hours data access."""

    name: ClassVar[str] = "leak"
    event_types: ClassVar[frozenset[str]] = frozenset({"agent.message", "data.access"})
    instant_types: ClassVar[frozenset[str]] = frozenset({"agent.message", "data.access"})
    """PII in one message and one bulk export are judged on arrival (engine: early firing)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.p: LeakRules = rules.leak.base
        self.min_rank = CONFIDENCE_RANK[self.p.min_confidence]
        self.hours = parse_hours(self.p.working_hours) or (0, 24 * 60)
        self.exempt = frozenset(self.p.exempt_actors)
        self.findings: dict[str, deque[dict[str, Any]]] = {}
        self.exports: dict[str, deque[dict[str, Any]]] = {}
        self.off_hours: dict[str, deque[dict[str, Any]]] = {}
        self.views: dict[str, Ring] = {}
        self.tenants: dict[str, str | None] = {}
        self.signals: dict[str, Signal] = {}
        self.dirty: set[str] = set()
        self._scanned = -1
        self._scans: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        """Findings of messages judged on arrival, until they are folded in (one scan each)."""

    # --- observe -------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        kind = type(event)
        if kind is AgentMessage:
            self._message(event)  # type: ignore[arg-type]
        elif kind is DataAccess:
            self._access(event)  # type: ignore[arg-type]

    def _findings(self, e: AgentMessage) -> list[dict[str, Any]]:
        """The masked findings of an agent-side message (empty for customers' own)."""
        if e.direction not in AGENT_SIDE or not e.text:
            return []
        # The engine judges a message on arrival and folds it in later: one scan.
        key = (e.id, e.ts, e.agent_id, e.conversation_id)
        cached = self._scans.get(key)
        if cached is not None:
            return cached
        found = [
            {
                "at": e.ts,
                "kind": f.kind,
                "masked": f.masked,
                "confidence": f.confidence,
                "conversation_id": e.conversation_id,
                "channel": e.channel,
                "direction": e.direction,
            }
            for f in find_pii(e.text)
            if CONFIDENCE_RANK[f.confidence] >= self.min_rank
        ]
        if len(self._scans) >= MAX_SCANS:
            self._scans.clear()
        self._scans[key] = found
        return found

    def _message(self, e: AgentMessage) -> None:
        found = self._findings(e)
        self._scans.pop((e.id, e.ts, e.agent_id, e.conversation_id), None)
        if not found:
            return
        kept = self.findings.setdefault(e.agent_id, deque(maxlen=MAX_KEPT))
        kept.extend(found)
        self.tenants[e.agent_id] = e.tenant
        self.dirty.add(f"agent:{e.agent_id}")

    def instant(self, event: Event, older: Sequence[Event] = ()) -> Signal | None:
        """The signal one message or one export causes, judged on arrival; no state changes.

        The same figures the evaluation after it will find (the subject's
        recent findings or exports, the buffered ``older`` events of the
        subject, this event), so the early incident normally needs no correction.
        """
        if type(event) is AgentMessage:
            found = self._findings(event)
            if not found:
                return None
            agent = event.agent_id
            recent = self._held(self.findings, agent, event.ts)
            messages = [
                e
                for e in older
                if type(e) is AgentMessage and e.agent_id == agent and e.ts < event.ts
            ]
            for message in sorted(messages, key=lambda m: m.ts):
                recent += self._findings(message)
            recent += found
            return self._pii_signal(agent, recent[-MAX_KEPT:], event.tenant)
        if type(event) is DataAccess:
            record = self._bulk_record(event)
            if record is None:
                return None
            actor = event.actor
            exports = self._held(self.exports, actor, event.ts)
            accesses = [
                e for e in older if type(e) is DataAccess and e.actor == actor and e.ts < event.ts
            ]
            for access in sorted(accesses, key=lambda a: a.ts):
                earlier = self._bulk_record(access)
                if earlier is not None:
                    exports.append(earlier)
            exports.append(record)
            return self._export_signal(actor, exports[-MAX_KEPT:], event.tenant)
        return None

    def _held(self, table: dict[str, deque[dict[str, Any]]], name: str, ts: float) -> list:
        """What the evaluation after ``ts`` will still hold of ``table[name]`` (read only)."""
        return [r for r in table.get(name, ()) if ts - r["at"] <= self.p.hold_s]

    def _bulk_record(self, e: DataAccess) -> dict[str, Any] | None:
        if e.actor in self.exempt:
            return None
        if e.action not in self.p.bulk_actions or e.records < self.p.bulk_records:
            return None
        return _access_record(e)

    def _access(self, e: DataAccess) -> None:
        if e.actor in self.exempt:
            return
        record = _access_record(e)
        self.tenants[e.actor] = e.tenant
        if e.action in self.p.bulk_actions and e.records >= self.p.bulk_records:
            self.exports.setdefault(e.actor, deque(maxlen=MAX_KEPT)).append(record)
        if not self._working(e.ts):
            self.off_hours.setdefault(e.actor, deque(maxlen=MAX_KEPT)).append(record)
        if e.action in VIEW_ACTIONS:
            ring = self.views.get(e.actor)
            if ring is None:
                ring = self.views[e.actor] = self._view_ring()
            ring.add(e.ts, e.records)
        self.dirty.add(f"actor:{e.actor}")

    def _view_ring(self) -> Ring:
        p = self.p
        n = max(1, round(p.view_window_s / p.view_bucket_s)) + 3
        return Ring(p.view_bucket_s, n, baselines={0: Trend(p.view_tau_s / p.view_bucket_s)})

    def _working(self, ts: float) -> bool:
        minute = int(((ts + self.p.utc_offset_h * 3600) % 86400) // 60)
        start, end = self.hours
        if start <= end:
            return start <= minute < end
        return minute >= start or minute < end  # a shift across midnight

    # --- evaluate ------------------------------------------------------------------------

    def evaluate(self, watermark: float) -> list[Signal]:
        bucket = int(watermark // self.p.view_bucket_s)
        if bucket != self._scanned:
            self._scanned = bucket
            subjects = {f"agent:{a}" for a in self.findings}
            subjects |= {f"actor:{a}" for a in (*self.exports, *self.off_hours, *self.views)}
        else:
            subjects = self.dirty
        for key in list(subjects):
            kind, _, name = key.partition(":")
            if kind == "agent":
                self._judge_agent(name, watermark)
            else:
                self._judge_actor(name, watermark)
        self.dirty.clear()
        return list(self.signals.values())

    def next_due(self, at: float) -> float | None:
        """Replay (:mod:`monitor.engine`): the next scan at which a held finding, export or
        off-hours access expires, or a view window gains or loses records."""
        p = self.p
        due: list[float | None] = [
            kept[0]["at"] + p.hold_s + STRICT
            for table in (self.findings, self.exports, self.off_hours)
            for kept in table.values()
            if kept
        ]
        spans = (round(p.view_window_s / p.view_bucket_s),)
        due += [window_changes(filled(r), p.view_bucket_s, spans, at) for r in self.views.values()]
        found = earliest(t for t in due if t is not None and t > at)
        return None if found is None else grid_after(found, at, p.view_bucket_s)

    def _set(self, rule: str, subject: str, signal: Signal | None) -> None:
        if signal is None:
            self.signals.pop(f"{rule}|{subject}", None)
        else:
            self.signals[signal.fingerprint] = signal

    def _recent(self, table: dict[str, deque[dict[str, Any]]], name: str, w: float) -> list:
        kept = table.get(name)
        if not kept:
            return []
        while kept and w - kept[0]["at"] > self.p.hold_s:
            kept.popleft()
        if not kept:
            del table[name]
            return []
        return list(kept)

    def _judge_agent(self, agent: str, w: float) -> None:
        recent = self._recent(self.findings, agent, w)
        self._set("leak.pii_in_message", agent, self._pii_signal(agent, recent) if recent else None)
        self._forget_if_idle(agent)

    def _pii_signal(
        self, agent: str, recent: list[dict[str, Any]], tenant: str | None = None
    ) -> Signal:
        kinds: dict[str, int] = {}
        for f in recent:
            kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
        serious = {"id_card", "bank_card"} & kinds.keys()
        if len(recent) >= self.p.critical_findings or len(serious) == 2:
            severity = "critical"
        else:
            severity = "major" if serious else "minor"
        listed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        evidence = {
            "agent_id": agent,
            "findings": recent[-10:],
            "count": len(recent),
            "kinds": kinds,
            "conversations": sorted({f["conversation_id"] for f in recent})[:10],
        }
        title = f"Customer data sent by agent {agent}: {listed}"
        return self._signal("leak.pii_in_message", agent, severity, title, evidence, tenant)

    def _judge_actor(self, actor: str, w: float) -> None:
        exports = self._recent(self.exports, actor, w)
        self._set(
            "leak.bulk_export", actor, self._export_signal(actor, exports) if exports else None
        )
        # A bulk export at night is one problem: the bulk_export incident says it
        # was outside working hours; off_hours covers the rest of the actor's access.
        off = [r for r in self._recent(self.off_hours, actor, w) if not self._is_bulk(r)]
        total = sum(r["records"] for r in off)
        bulk_off = any(r["action"] in self.p.bulk_actions for r in off)
        hit = off and (total >= self.p.off_hours_min_records or bulk_off)
        self._set(
            "leak.off_hours", actor, self._off_signal(actor, off, total, bulk_off) if hit else None
        )
        ring = self.views.get(actor)
        signal = self._view_signal(actor, ring, w) if ring is not None else None
        self._set("leak.unusual_access", actor, signal)
        if ring is not None and signal is None and ring.empty():
            del self.views[actor]  # idle for days: nothing left to remember
        self._forget_if_idle(actor)

    def _is_bulk(self, record: dict[str, Any]) -> bool:
        return record["action"] in self.p.bulk_actions and record["records"] >= self.p.bulk_records

    def _forget_if_idle(self, subject: str) -> None:
        tables = (self.findings, self.exports, self.off_hours, self.views)
        if not any(subject in table for table in tables):
            self.tenants.pop(subject, None)

    def _export_signal(
        self, actor: str, exports: list[dict[str, Any]], tenant: str | None = None
    ) -> Signal:
        biggest = max(exports, key=lambda r: r["records"])
        if biggest["records"] >= self.p.bulk_critical_records:
            severity = "critical"
        else:
            severity = "major" if any(r["ok"] is not False for r in exports) else "minor"
        title = (
            f"{actor} did a bulk {biggest['action']} of {biggest['records']:,} records "
            f"from {biggest['resource']}"
        )
        evidence = {"actor": actor, "accesses": exports[-10:], "largest": biggest["records"]}
        if any(not self._working(r["at"]) for r in exports):
            title += f", outside working hours ({self.p.working_hours})"
            evidence["off_hours"] = True
            evidence["working_hours"] = self.p.working_hours
        return self._signal("leak.bulk_export", actor, severity, title, evidence, tenant)

    def _off_signal(self, actor: str, off: list, total: int, bulk: bool) -> Signal:
        title = f"{actor} touched {total:,} records outside working hours ({self.p.working_hours})"
        evidence = {"actor": actor, "accesses": off[-10:], "records": total}
        evidence["working_hours"] = self.p.working_hours
        return self._signal("leak.off_hours", actor, "major" if bulk else "minor", title, evidence)

    def _view_signal(self, actor: str, ring: Ring, w: float) -> Signal | None:
        p = self.p
        ring.advance(w)
        observed = ring.complete_sum(p.view_window_s, w)
        if observed <= 0:
            return None
        warm = ring.warm() >= 3600.0
        expected = ring.smooth(p.view_window_s) if warm else 0.0
        active = f"leak.unusual_access|{actor}" in self.signals
        if warm:
            bar = max(p.view_min_records, p.view_ratio * expected) * (0.7 if active else 1.0)
        else:
            bar = p.view_new_actor_records * (0.7 if active else 1.0)
        if observed < bar:
            return None
        severity = "critical" if observed >= 10 * max(p.view_min_records, expected) else "major"
        minutes = p.view_window_s / 60
        title = f"{actor} viewed {observed:,.0f} records in {minutes:g} min"
        title += f" (usually {expected:.0f})" if warm else " (no baseline yet)"
        evidence = {"actor": actor, "records": int(observed), "expected": round(expected, 1)}
        evidence["window_s"] = p.view_window_s
        return self._signal("leak.unusual_access", actor, severity, title, evidence)

    def _signal(
        self,
        rule: str,
        subject: str,
        severity: str,
        title: str,
        evidence: dict,
        tenant: str | None = None,
    ) -> Signal:
        return Signal(
            rule=rule,
            kind="leak",
            subject=subject,
            severity=severity,
            title=title,
            evidence=evidence,
            for_s=self.p.for_s,
            keep_firing_for_s=self.p.keep_firing_for_s,
            tenant=tenant if tenant is not None else self.tenants.get(subject),
        )

    # --- state ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "findings": {k: list(v) for k, v in self.findings.items()},
            "exports": {k: list(v) for k, v in self.exports.items()},
            "off_hours": {k: list(v) for k, v in self.off_hours.items()},
            "views": {k: r.snapshot() for k, r in self.views.items()},
            "tenants": {k: v for k, v in self.tenants.items() if v is not None},
            "active": sorted(self.signals),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.signals.clear()
        self._scanned = -1
        for name in ("findings", "exports", "off_hours"):
            table: dict[str, deque[dict[str, Any]]] = getattr(self, name)
            table.clear()
            for key, items in state.get(name, {}).items():
                table[key] = deque(items, maxlen=MAX_KEPT)
        self.views.clear()
        for actor, saved in state.get("views", {}).items():
            ring = self.views[actor] = self._view_ring()
            ring.restore(saved)
        self.tenants = dict(state.get("tenants", {}))
        for fingerprint in state.get("active", ()):
            rule, _, subject = fingerprint.partition("|")
            if rule == "leak.unusual_access":
                self.signals[fingerprint] = self._signal(rule, subject, "major", "", {})


def _access_record(e: DataAccess) -> dict[str, Any]:
    return {
        "at": e.ts,
        "action": e.action,
        # Masked: a resource can name the customer record it opened (an ID, a mobile),
        # and it ends up in the incident's title and evidence.
        "resource": mask_text(e.resource),
        "records": e.records,
        "ok": e.ok,
        "ip": e.ip,
    }


SPEC = register(
    DetectorSpec(
        section="leak",
        kind="leak",
        params=LeakRules,
        scopes=("actors",),
        build=LeakDetector,
        order=50,
        title="customer data in agents' messages; data access",
        notes=(
            "001 §1.3, §8.1, 004 §3.1.3: never disclose customer data; 001 §8.2: account security.",
        ),
    )
)
