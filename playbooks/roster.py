"""The roster (值班表): who holds which duty role when, and :func:`on_duty`.

A :class:`Roster` names people (with their contact ids per chat channel), shifts
that recur on weekdays or fall on one date (local wall-clock times in the roster's
time zone; a shift whose end is not after its start crosses midnight), and
overrides for swaps and leave. :func:`on_duty` is pure: paging and the console ask
it who is on duty at an instant. Every comparison is made on absolute instants
(UTC), never on wall times, so a zone with DST is handled as zoneinfo says.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

ROLES: Final = ("duty_manager", "oncall", "security_officer", "backup")
"""Duty roles a shift staffs, in the order they are shown."""
CHANNELS: Final = ("dingtalk", "wecom", "feishu")
"""Chat channels a person can have a user id on (besides a mobile number)."""
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TIMEZONE: Final = "Asia/Shanghai"


class Person(msgspec.Struct, frozen=True):
    """Someone on the roster and how to reach them."""

    id: str
    name: str
    dingtalk: str | None = None
    wecom: str | None = None
    feishu: str | None = None
    mobile: str | None = None
    """Mobile number, used for @mentions in chat robots."""

    def contact(self, channel: str) -> str | None:
        """User id on ``channel`` (``dingtalk``/``wecom``/``feishu``/``mobile``)."""
        value = getattr(self, channel, None) if channel in (*CHANNELS, "mobile") else None
        return value if isinstance(value, str) else None


class Shift(msgspec.Struct, frozen=True):
    """A shift: local ``start``-``end`` (``HH:MM``) on ``days`` or on one ``date``."""

    name: str
    start: str
    end: str
    staff: dict[str, list[str]]
    """Role -> person ids."""
    days: list[str] = msgspec.field(default_factory=lambda: list(WEEKDAYS))
    date: str | None = None
    """ISO date of a one-off shift (then ``days`` is ignored)."""


class Override(msgspec.Struct, frozen=True):
    """``person`` stands in for ``instead_of`` from ``start`` to ``end`` (epoch seconds).

    Without ``person`` it is leave: ``instead_of`` is off duty and nobody replaces them.
    """

    instead_of: str
    start: float
    end: float
    person: str | None = None
    reason: str | None = None


class Roster(msgspec.Struct, frozen=True):
    timezone: str
    people: list[Person]
    shifts: list[Shift]
    overrides: list[Override] = []

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def shift_window(shift: Shift, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Absolute start and end of ``shift`` begun on local ``day`` (ends next day past midnight)."""
    start_t, end_t = time.fromisoformat(shift.start), time.fromisoformat(shift.end)
    end_day = day + timedelta(days=1) if end_t <= start_t else day
    return datetime.combine(day, start_t, zone), datetime.combine(end_day, end_t, zone)


def _runs_on(shift: Shift, day: date) -> bool:
    if shift.date is not None:
        return date.fromisoformat(shift.date) == day
    return WEEKDAYS[day.weekday()] in shift.days


def active_shifts(roster: Roster, at: datetime) -> list[tuple[Shift, datetime, datetime]]:
    """Shifts in force at ``at`` with their absolute windows (yesterday's may cross midnight)."""
    zone = roster.zone
    local_day = at.astimezone(zone).date()
    found = []
    for shift in roster.shifts:
        for day in (local_day - timedelta(days=1), local_day):
            if not _runs_on(shift, day):
                continue
            start, end = shift_window(shift, day, zone)
            # Timestamps, not aware datetimes: same-tzinfo comparisons ignore the UTC offset.
            if start.timestamp() <= at.timestamp() < end.timestamp():
                found.append((shift, start, end))
    return found


def on_duty(roster: Roster, at: datetime) -> dict[str, list[Person]]:
    """Who holds each role at ``at`` (an aware datetime): ``{role: [Person]}`` for every role.

    Overrides in force at ``at`` replace (or, for leave, remove) the person they name;
    a person is listed once per role. Unknown person ids are skipped (the import rejects them).
    """
    if at.tzinfo is None:
        raise ValueError("on_duty needs an aware datetime (with a time zone)")
    now = at.timestamp()
    swaps = [o for o in roster.overrides if o.start <= now < o.end]
    result: dict[str, list[Person]] = {role: [] for role in ROLES}
    for shift, _start, _end in active_shifts(roster, at):
        for role, ids in shift.staff.items():
            for person_id in ids:
                for chosen in _apply_overrides(person_id, swaps):
                    person = roster.person(chosen)
                    if person is not None and person not in result.setdefault(role, []):
                        result[role].append(person)
    return result


def _apply_overrides(person_id: str, swaps: list[Override]) -> list[str]:
    for swap in swaps:
        if swap.instead_of == person_id:
            return [swap.person] if swap.person else []
    return [person_id]
