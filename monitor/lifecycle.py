"""The alert lifecycle: what the engine does with the detectors' signals.

Per (rule, subject) fingerprint an alert goes inactive -> pending (``for_s``)
-> firing (the incident is opened or updated) -> resolving
(``keep_firing_for_s``) -> resolved. On top of that, at each evaluation:

- **flapping**: a fingerprint whose condition flipped too often within a
  window is held firing (its incident stays open) and is not re-notified;
- **severity** may rise while firing (a new fire action, notified); a signal
  that lists ``conditions`` in its evidence (``sla.queue``, ``outage.component``)
  and gains one while firing updates the incident's evidence without notifying;
- **cap**: at most ``cap_per_minute`` new incidents per rule per minute; the
  excess is rolled into one "N subjects affected" incident of that rule;
- **inhibition**: a surge/SLA alert of a queue whose component (``[inhibit]``
  map queue -> components, or the signal's ``related``) has a firing outage is
  still fired (visible) but not notified, with ``inhibited_by`` evidence;
- **silences**: a matching active silence keeps the fire visible but quiet;
- **reopen**: an incident a person resolved while its condition still held
  (:meth:`Lifecycle.resolved_by_hand`, kinds the engine resolves itself) is
  reopened at the next evaluation that still sees the condition: a new,
  notified incident linked by ``reopened_from``.

The lifecycle is pure: it turns signals at an event time into
:class:`Action` records that the service (or replay) applies to the incident
store. Its whole state round-trips through :meth:`Lifecycle.snapshot`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any, Final

from watchfloor.core.vocabulary import AUTO_RESOLVE_KINDS, SEVERITY_RANK
from watchfloor.monitor.detectors.base import Signal

logger = logging.getLogger(__name__)

INHIBITABLE_KINDS: Final = frozenset({"surge", "sla"})
ROLLUP_SUBJECT: Final = "(multiple)"

PENDING: Final = "pending"
FIRING: Final = "firing"
RESOLVING: Final = "resolving"
INACTIVE: Final = "inactive"


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    """Lifecycle settings (``[lifecycle]`` and ``[inhibit]`` of the rules file)."""

    flap_window_s: float = 600.0
    """Window in which condition flips are counted."""
    flap_threshold: int = 6
    """Flips within the window that make a fingerprint flapping."""
    cap_per_minute: int = 10
    """New incidents per rule per minute of event time before the excess is rolled up."""
    auto_resolve: frozenset[str] = frozenset(AUTO_RESOLVE_KINDS)
    """Incident kinds the engine resolves itself when the condition clears."""
    inhibit: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Queue (or glob) -> components it depends on."""

    @classmethod
    def from_rules(cls, rules: Mapping[str, Any] | None) -> LifecycleConfig:
        """Read ``[lifecycle]`` and ``[inhibit]`` from a loaded rules document."""
        rules = rules or {}
        section = dict(rules.get("lifecycle") or {})
        inhibit = {
            str(queue): tuple(str(c) for c in (comps if isinstance(comps, list) else [comps]))
            for queue, comps in dict(rules.get("inhibit") or {}).items()
        }
        kwargs: dict[str, Any] = {"inhibit": inhibit}
        for name in ("flap_window_s", "cap_per_minute", "flap_threshold"):
            if name in section:
                kwargs[name] = type(getattr(cls(), name))(section[name])
        if "auto_resolve" in section:
            kwargs["auto_resolve"] = frozenset(section["auto_resolve"])
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Silence:
    """Quiets matching alerts until ``ends_at`` (event time = Unix seconds)."""

    id: str
    matchers: Mapping[str, str]
    """Globs on ``rule``, ``kind`` and/or ``subject``; all given ones must match."""
    starts_at: float
    ends_at: float
    created_by: str = ""
    reason: str = ""

    def matches(self, signal: Signal, at: float) -> bool:
        if not self.starts_at <= at < self.ends_at:
            return False
        for name, pattern in self.matchers.items():
            if not fnmatchcase(str(getattr(signal, name, "")), pattern):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Action:
    """Something the service must do to the incident store."""

    op: str
    """``fire`` (open or update the incident), ``clear`` (the condition resolved) or
    ``note`` (a timeline note: ``flapping`` / ``settled``)."""
    signal: Signal
    """The signal, evidence enriched with lifecycle facts (inhibited_by, silenced_by...)."""
    at: float
    """Event time of the evaluation that produced it."""
    notify: bool = True
    """Whether people should be told (false: flapping, inhibited, silenced, rolled up)."""
    reason: str = ""
    """``opened``, ``severity``, ``conditions`` (a condition joined: evidence updated, not
    notified), ``confirmed`` (an evaluation's evidence for an early fire), ``rollup``,
    ``cleared``, ``flapping``, ``settled``, ``reopened`` (a new incident for a condition that
    still held after a person resolved the last one: ``evidence["reopened_from"]``)."""
    auto_resolve: bool = False
    """For ``clear``: resolve the incident (else only a timeline note)."""
    first_at: float | None = None
    """For an ``opened`` fire: when the condition was first seen (the start of pending),
    the incident's ``opened_at`` (DESIGN.md: event time of the first evidence)."""
    early: bool = False
    """Fired on an event's arrival (:meth:`Lifecycle.early`), ahead of the watermark."""


@dataclass(slots=True)
class _Alert:
    state: str
    since: float
    severity: str = "info"
    fired_severity: str = "info"
    flips: list[float] = field(default_factory=list)
    active: bool = True
    flapping: bool = False
    rolled_up: bool = False
    signal: Signal | None = None
    early: bool = False
    """Fired early for the evaluation at ``since``, not yet confirmed by it."""
    reopen_from: str | None = None
    """Its incident was resolved by a person while firing: reopen it if the condition holds."""
    reopen_after: float = 0.0
    """When that person resolved it: evaluations before were known to them."""


class Lifecycle:
    """Alert state per fingerprint; :meth:`update` turns signals into actions."""

    def __init__(self, config: LifecycleConfig | None = None) -> None:
        self.config = config or LifecycleConfig()
        self._alerts: dict[str, _Alert] = {}
        self._new_per_minute: dict[str, tuple[int, int]] = {}  # rule -> (minute, count)
        self._rollups: dict[str, dict[str, Any]] = {}  # rule -> {"subjects": [...], ...}
        self.silences: Sequence[Silence] = ()

    # --- evaluation ------------------------------------------------------------------

    def update(self, signals: Iterable[Signal], at: float) -> list[Action]:
        """Apply one evaluation's signals (every active condition) at event time ``at``."""
        current: dict[str, Signal] = {}
        for sig in signals:
            current[sig.fingerprint] = sig
        actions: list[Action] = []
        # Outages first, so that a queue's alert in the same second sees them.
        ordered = sorted(current.values(), key=lambda s: s.kind != "outage")
        for sig in ordered:
            self._active(sig, at, actions)
        for fp in [fp for fp in self._alerts if fp not in current]:
            if self._alerts[fp].early and self._alerts[fp].since > at:
                continue  # fired early for a later evaluation: not judged before it
            self._inactive(fp, at, actions)
        self._rollup_clear(at, actions)
        return actions

    def early(self, sig: Signal, at: float) -> list[Action]:
        """Fire ``sig`` now, as the evaluation at ``at`` (the next one after its event) will.

        For single-event rules (``for_s`` 0): the alert starts firing for the
        evaluation ``at`` as if that evaluation had already happened; when it
        does, it confirms the alert (a quiet fire with its own evidence when that
        differs, notified if more severe). An alert already firing is left to the
        evaluations, so early firing only ever opens incidents sooner.
        """
        alert = self._alerts.get(sig.fingerprint)
        if sig.for_s > 0 or (alert is not None and alert.state in (FIRING, RESOLVING)):
            return []
        actions: list[Action] = []
        self._active(sig, at, actions)
        alert = self._alerts[sig.fingerprint]
        if alert.state == FIRING:
            alert.early = True
        return [replace(a, early=True) for a in actions]

    def resolved_by_hand(self, fingerprint: str, incident_id: str, at: float) -> bool:
        """A person resolved ``incident_id`` of ``fingerprint`` at ``at``; True if it may reopen.

        It reopens at the first evaluation at or after ``at`` that still sees the
        condition (earlier ones, still to come in event time, were known). Only
        alerts still firing (or within their keep-firing time) of kinds the engine
        resolves itself are watched: for the others (a leak, an opinion storm) a
        person's resolve is the end of it.
        """
        alert = self._alerts.get(fingerprint)
        if (
            alert is None
            or alert.state not in (FIRING, RESOLVING)
            or alert.rolled_up
            or alert.signal is None
            or alert.signal.kind not in self.config.auto_resolve
        ):
            return False
        alert.reopen_from, alert.reopen_after = incident_id, at
        return True

    def _active(self, sig: Signal, at: float, actions: list[Action]) -> None:
        alert = self._alerts.get(sig.fingerprint)
        if alert is None:
            alert = self._alerts[sig.fingerprint] = _Alert(PENDING, at, sig.severity)
            alert.flips.append(at)
        elif not alert.active:
            alert.active = True
            self._flip(alert, at, actions)
            if alert.state == INACTIVE:
                alert.state, alert.since, alert.rolled_up = PENDING, at, False
        before = alert.signal
        alert.signal = sig
        if alert.state == PENDING:
            alert.severity = sig.severity
            if at - alert.since >= sig.for_s:
                self._start_firing(alert, sig, at, actions)
        else:
            if alert.state == RESOLVING:
                alert.state = FIRING
            if alert.reopen_from is not None and at >= alert.reopen_after:
                self._reopen(alert, sig, at, actions)
                return
            if not self._maybe_raise(alert, sig, at, actions):
                self._maybe_widen(alert, before, sig, at, actions)
            if alert.early:
                self._confirm(alert, before, sig, at, actions)

    def _reopen(self, alert: _Alert, sig: Signal, at: float, actions: list[Action]) -> None:
        """The condition still holds after a person resolved its incident: open it again."""
        sig = replace(sig, evidence={**sig.evidence, "reopened_from": alert.reopen_from})
        alert.reopen_from, alert.early = None, False
        alert.severity = alert.fired_severity = sig.severity
        actions.append(self._fire(sig, at, alert, "reopened"))

    def _confirm(
        self, alert: _Alert, before: Signal | None, sig: Signal, at: float, actions: list[Action]
    ) -> None:
        """The first evaluation of an early-fired alert: its evidence replaces the early one."""
        alert.early = False
        if (
            before == sig
            or alert.rolled_up
            or any(a.signal.fingerprint == sig.fingerprint for a in actions)
        ):
            return
        actions.append(replace(self._fire(sig, at, alert, "confirmed"), notify=False))

    def _inactive(self, fp: str, at: float, actions: list[Action]) -> None:
        alert = self._alerts[fp]
        if alert.active:
            alert.active = False
            self._flip(alert, at, actions)
        else:
            self._prune(alert, at, actions)
        if alert.state in (PENDING, INACTIVE):
            self._forget_or_keep(fp, alert)
            return
        if alert.flapping:
            return  # held open while flapping: no resolve, no new incident
        if alert.state == FIRING:
            alert.state, alert.since = RESOLVING, at
        keep = alert.signal.keep_firing_for_s if alert.signal else 0.0
        if at - alert.since >= keep:
            self._resolved(fp, alert, at, actions)

    def _flip(self, alert: _Alert, at: float, actions: list[Action]) -> None:
        alert.flips.append(at)
        self._prune(alert, at, actions)

    def _prune(self, alert: _Alert, at: float, actions: list[Action]) -> None:
        flips = alert.flips
        horizon = at - self.config.flap_window_s
        while flips and flips[0] < horizon:
            flips.pop(0)
        was = alert.flapping
        if not was and len(flips) >= self.config.flap_threshold:
            alert.flapping = True
        elif was and len(flips) <= self.config.flap_threshold // 2:
            alert.flapping = False
        if was != alert.flapping and alert.signal and alert.state in (FIRING, RESOLVING):
            # A timeline note on the open incident: why it stays open and quiet.
            reason = "flapping" if alert.flapping else "settled"
            actions.append(Action("note", alert.signal, at, notify=False, reason=reason))

    def _forget_or_keep(self, fp: str, alert: _Alert) -> None:
        # An alert that is not firing is forgotten unless its recent flips are
        # needed to tell that it flaps.
        alert.state = INACTIVE
        if len(alert.flips) <= 1 and not alert.flapping:
            del self._alerts[fp]

    def _start_firing(self, alert: _Alert, sig: Signal, at: float, actions: list[Action]) -> None:
        alert.state = FIRING
        alert.severity = alert.fired_severity = sig.severity
        if self._over_cap(sig.rule, at):
            alert.rolled_up = True
            actions.append(self._rollup_fire(sig, at))
            return
        actions.append(self._fire(sig, at, alert, "opened"))

    def _maybe_raise(self, alert: _Alert, sig: Signal, at: float, actions: list[Action]) -> bool:
        if SEVERITY_RANK.get(sig.severity, 0) <= SEVERITY_RANK.get(alert.fired_severity, 0):
            return False
        alert.severity = alert.fired_severity = sig.severity
        if alert.rolled_up:
            actions.append(self._rollup_fire(sig, at))
        else:
            actions.append(self._fire(sig, at, alert, "severity"))
        return True

    def _maybe_widen(
        self, alert: _Alert, before: Signal | None, sig: Signal, at: float, actions: list[Action]
    ) -> None:
        """A condition joined a firing problem (a queue that also starts abandoning):
        the incident's evidence is updated to list it, quietly (its severity did not rise)."""
        if alert.rolled_up or before is None:
            return
        if _conditions(sig) - _conditions(before):
            action = self._fire(sig, at, alert, "conditions")
            actions.append(replace(action, notify=False))

    def _clear(self, sig: Signal, at: float) -> Action:
        auto = sig.kind in self.config.auto_resolve
        return Action("clear", sig, at, notify=False, reason="cleared", auto_resolve=auto)

    def _resolved(self, fp: str, alert: _Alert, at: float, actions: list[Action]) -> None:
        alert.reopen_from = None  # cleared after all: nothing to reopen
        sig = alert.signal
        if sig is not None and not alert.rolled_up:
            actions.append(self._clear(sig, at))
        elif sig is not None:
            roll = self._rollups.get(sig.rule)
            if roll is not None and sig.subject in roll["subjects"]:
                roll["active"] = [s for s in roll["active"] if s != sig.subject]
        self._forget_or_keep(fp, alert)

    # --- notifications: flapping, inhibition, silences ----------------------------------

    def _fire(self, sig: Signal, at: float, alert: _Alert, reason: str) -> Action:
        evidence = dict(sig.evidence)
        notify = True
        if alert.flapping:
            evidence["flapping"] = True
            # Held open and quiet: not re-notified. But people hear once that it opened
            # (even if it flapped while pending) and again if it gets worse.
            notify = reason in ("opened", "severity", "reopened")
        inhibited = self._inhibitors(sig)
        if inhibited:
            evidence["inhibited_by"] = inhibited
            notify = False
        silence = self._silence_for(sig, at)
        if silence is not None:
            evidence["silenced_by"] = silence.id
            notify = False
        first = alert.since if reason == "opened" else None
        return Action(
            "fire",
            replace(sig, evidence=evidence),
            at,
            notify=notify,
            reason=reason,
            first_at=first,
        )

    def _inhibitors(self, sig: Signal) -> list[str]:
        if sig.kind not in INHIBITABLE_KINDS:
            return []
        deps = set(sig.related)
        for pattern, comps in self.config.inhibit.items():
            if pattern == sig.subject or fnmatchcase(sig.subject, pattern):
                deps.update(comps)
        if not deps:
            return []
        return sorted(d for d in deps if self._outage_firing(d))

    def _outage_firing(self, subject: str) -> bool:
        for alert in self._alerts.values():
            sig = alert.signal
            if (
                sig is not None
                and sig.kind == "outage"
                and sig.subject == subject
                and alert.state in (FIRING, RESOLVING)
            ):
                return True
        return False

    def _silence_for(self, sig: Signal, at: float) -> Silence | None:
        for silence in self.silences:
            if silence.matches(sig, at):
                return silence
        return None

    # --- cap and roll-up --------------------------------------------------------------------

    def _over_cap(self, rule: str, at: float) -> bool:
        minute = int(at // 60)
        seen_minute, count = self._new_per_minute.get(rule, (minute, 0))
        if seen_minute != minute:
            count = 0
        count += 1
        self._new_per_minute[rule] = (minute, count)
        return count > self.config.cap_per_minute

    def _rollup_fire(self, sig: Signal, at: float) -> Action:
        roll = self._rollups.setdefault(
            sig.rule, {"subjects": [], "active": [], "severity": sig.severity}
        )
        if sig.subject not in roll["subjects"]:
            roll["subjects"].append(sig.subject)
        if sig.subject not in roll["active"]:
            roll["active"].append(sig.subject)
        if SEVERITY_RANK.get(sig.severity, 0) > SEVERITY_RANK.get(roll["severity"], 0):
            roll["severity"] = sig.severity
        n = len(roll["subjects"])
        first = len(roll["subjects"]) == 1
        rolled = Signal(
            rule=sig.rule,
            kind=sig.kind,
            subject=ROLLUP_SUBJECT,
            severity=roll["severity"],
            title=f"{n} subjects affected by {sig.rule} (over the incident cap)",
            evidence={
                "subjects": roll["subjects"][:100],
                "subjects_affected": n,
                "cap_per_minute": self.config.cap_per_minute,
                "last": sig.evidence,
            },
            tenant=sig.tenant,
        )
        return Action("fire", rolled, at, notify=first, reason="rollup")

    def _rollup_clear(self, at: float, actions: list[Action]) -> None:
        for rule, roll in list(self._rollups.items()):
            if roll["active"]:
                continue
            del self._rollups[rule]
            sig = Signal(
                rule=rule,
                kind=_kind_of(rule),
                subject=ROLLUP_SUBJECT,
                severity=roll["severity"],
                title="",
            )
            actions.append(self._clear(sig, at))

    # --- state ----------------------------------------------------------------------------------

    def states(self) -> dict[str, str]:
        """Fingerprint -> lifecycle state (``flapping`` shown as such), for status and tests."""
        return {fp: ("flapping" if a.flapping else a.state) for fp, a in self._alerts.items()}

    def snapshot(self) -> dict[str, Any]:
        return {
            "alerts": {fp: _alert_to_map(a) for fp, a in self._alerts.items()},
            "per_minute": {r: list(v) for r, v in self._new_per_minute.items()},
            "rollups": self._rollups,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._alerts = {fp: _alert_from_map(m) for fp, m in state.get("alerts", {}).items()}
        self._new_per_minute = {
            r: (int(v[0]), int(v[1])) for r, v in state.get("per_minute", {}).items()
        }
        self._rollups = {r: dict(v) for r, v in state.get("rollups", {}).items()}


def _conditions(sig: Signal) -> set[str]:
    """The conditions a signal's evidence lists (``sla.queue``, ``outage.component``)."""
    listed = sig.evidence.get("conditions") or ()
    return {str(c.get("condition")) for c in listed if isinstance(c, Mapping)}


def _kind_of(rule: str) -> str:
    return rule.split(".", 1)[0]


def signal_to_map(sig: Signal) -> dict[str, Any]:
    return {
        "rule": sig.rule,
        "kind": sig.kind,
        "subject": sig.subject,
        "severity": sig.severity,
        "title": sig.title,
        "evidence": sig.evidence,
        "for_s": sig.for_s,
        "keep_firing_for_s": sig.keep_firing_for_s,
        "tenant": sig.tenant,
        "related": list(sig.related),
    }


def signal_from_map(data: Mapping[str, Any]) -> Signal:
    return Signal(**{**data, "related": tuple(data.get("related", ()))})


def _alert_to_map(alert: _Alert) -> dict[str, Any]:
    return {
        "state": alert.state,
        "since": alert.since,
        "severity": alert.severity,
        "fired": alert.fired_severity,
        "flips": alert.flips,
        "active": alert.active,
        "flapping": alert.flapping,
        "rolled_up": alert.rolled_up,
        "signal": signal_to_map(alert.signal) if alert.signal else None,
        "early": alert.early,
        "reopen_from": alert.reopen_from,
        "reopen_after": alert.reopen_after,
    }


def _alert_from_map(data: Mapping[str, Any]) -> _Alert:
    sig = data.get("signal")
    return _Alert(
        state=data["state"],
        since=float(data["since"]),
        severity=data["severity"],
        fired_severity=data["fired"],
        flips=list(data["flips"]),
        active=data["active"],
        flapping=data["flapping"],
        rolled_up=data["rolled_up"],
        signal=signal_from_map(sig) if sig else None,
        early=bool(data.get("early", False)),
        reopen_from=data.get("reopen_from"),
        reopen_after=float(data.get("reopen_after", 0.0)),
    )
