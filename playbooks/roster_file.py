"""Reading a roster from TOML or CSV, with every problem named by row / index and field.

TOML holds ``[[people]]``, ``[[shifts]]`` (roles as keys: ``oncall = ["li.na"]``) and
``[[overrides]]``. CSV holds one row per person in a role of a shift (columns
:data:`CSV_COLUMNS`); a person's contact ids may repeat on their rows but must agree.
Local times (``2026-12-07 12:00``) are read in the roster's time zone.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watchfloor.playbooks.roster import CHANNELS, ROLES, WEEKDAYS, Override, Person, Roster, Shift

CSV_COLUMNS: Final = (
    "shift", "days", "date", "start", "end", "role", "person", "name", *CHANNELS, "mobile",
)  # fmt: skip
PERSON_FIELDS: Final = ("id", "name", *CHANNELS, "mobile")
SHIFT_FIELDS: Final = ("name", "start", "end", "days", "date", *ROLES)
OVERRIDE_FIELDS: Final = ("person", "instead_of", "from", "to", "reason")


class RosterError(Exception):
    """A roster file that cannot be used; ``problems`` names each (``where: what``)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_roster_file(path: Path, default_timezone: str) -> Roster:
    """Parse ``path`` (``.toml`` or ``.csv``) into a checked :class:`Roster`."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError([f"{path}: cannot read ({exc})"]) from None
    if path.suffix.lower() == ".csv":
        return parse_csv(text, default_timezone)
    return parse_toml(text, default_timezone)


def parse_toml(text: str, default_timezone: str) -> Roster:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RosterError([f"not valid TOML: {exc}"]) from None
    problems: list[str] = []
    _unknown(data, ("timezone", "people", "shifts", "overrides"), "", problems)
    zone_name = _zone(data.get("timezone", default_timezone), "timezone", problems)
    people = [
        _person(p, f"people[{i}]", problems)
        for i, p in enumerate(_tables(data, "people", problems))
    ]
    shifts = [
        _shift(s, f"shifts[{i}]", problems) for i, s in enumerate(_tables(data, "shifts", problems))
    ]
    zone = ZoneInfo(zone_name)
    overrides = [
        _override(o, f"overrides[{i}]", zone, problems)
        for i, o in enumerate(_tables(data, "overrides", problems))
    ]
    return _checked(zone_name, people, shifts, overrides, problems)


def parse_csv(text: str, default_timezone: str) -> Roster:
    reader = csv.DictReader(io.StringIO(text))
    problems: list[str] = []
    missing = [
        c for c in ("shift", "start", "end", "role", "person") if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise RosterError([f"header: missing column(s) {', '.join(missing)}"])
    _unknown(dict.fromkeys(reader.fieldnames or []), CSV_COLUMNS, "header", problems)
    people: dict[str, dict[str, str]] = {}
    shifts: dict[str, dict[str, Any]] = {}
    for line, row in enumerate(reader, start=2):
        where = f"row {line}"
        cells = {k: (v or "").strip() for k, v in row.items() if k in CSV_COLUMNS}
        _merge(people, cells["person"], _csv_person(cells), where, problems)
        shift = {k: cells.get(k, "") for k in ("start", "end", "date")}
        shift["days"] = cells.get("days", "")
        role = shifts.setdefault(cells["shift"], {**shift, "staff": {}})
        _agree(role, shift, f"{where}, shift {cells['shift']!r}", problems)
        role["staff"].setdefault(cells["role"], []).append(cells["person"])
    zone_name = _zone(default_timezone, "timezone", problems)
    parsed_people = [_person(p, f"person {pid!r}", problems) for pid, p in people.items()]
    parsed_shifts = [
        _shift(_csv_shift(name, s), f"shift {name!r}", problems) for name, s in shifts.items()
    ]
    return _checked(zone_name, parsed_people, parsed_shifts, [], problems)


def parse_local_time(value: str, zone: ZoneInfo) -> datetime:
    """``2026-12-07 12:00`` (local to ``zone``) or ISO with an offset, as an aware datetime."""
    at = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    return at.replace(tzinfo=zone) if at.tzinfo is None else at


def _checked(
    zone: str, people: list[Person | None], shifts: list[Shift | None],
    overrides: list[Override | None], problems: list[str],
) -> Roster:  # fmt: skip
    known = [p for p in people if p is not None]
    ids = [p.id for p in known]
    for pid in {i for i in ids if ids.count(i) > 1}:
        problems.append(f"people: person id {pid!r} appears more than once")
    for shift in (s for s in shifts if s is not None):
        for role, names in shift.staff.items():
            for name in names:
                if name not in ids:
                    problems.append(f"shift {shift.name!r}.{role}: unknown person {name!r}")
    for i, swap in enumerate(o for o in overrides if o is not None):
        for fld, who in (("instead_of", swap.instead_of), ("person", swap.person)):
            if who is not None and who not in ids:
                problems.append(f"overrides[{i}].{fld}: unknown person {who!r}")
    if problems:
        raise RosterError(problems)
    return Roster(
        timezone=zone,
        people=known,
        shifts=[s for s in shifts if s is not None],
        overrides=[o for o in overrides if o is not None],
    )


def _tables(data: Mapping[str, Any], key: str, problems: list[str]) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append(f"{key}: must be a list of tables ([[{key}]])")
        return []
    return value


def _unknown(
    data: Mapping[str, Any], allowed: Iterable[str], where: str, problems: list[str]
) -> None:
    for key in data:
        if key not in allowed:
            problems.append(f"{where + '.' if where else ''}{key}: unknown field")


def _zone(name: Any, where: str, problems: list[str]) -> str:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}: unknown time zone {name!r}")
        return "UTC"
    return str(name)


def _text(
    data: Mapping[str, Any], key: str, where: str, problems: list[str], required: bool
) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            problems.append(f"{where}.{key}: required")
        return None
    if not isinstance(value, str):
        problems.append(f"{where}.{key}: must be text, got {value!r}")
        return None
    return value


def _person(data: Mapping[str, Any], where: str, problems: list[str]) -> Person | None:
    before = len(problems)
    _unknown(data, PERSON_FIELDS, where, problems)
    values = {k: _text(data, k, where, problems, k in ("id", "name")) for k in PERSON_FIELDS}
    if len(problems) > before or values["id"] is None or values["name"] is None:
        return None
    return Person(**values)  # type: ignore[arg-type]


def _shift(data: Mapping[str, Any], where: str, problems: list[str]) -> Shift | None:
    before = len(problems)
    _unknown(data, SHIFT_FIELDS, where, problems)
    name = _text(data, "name", where, problems, True)
    start = _clock(data, "start", where, problems)
    end = _clock(data, "end", where, problems)
    days = data.get("days", list(WEEKDAYS))
    if not isinstance(days, list) or any(d not in WEEKDAYS for d in days) or not days:
        problems.append(f"{where}.days: must be a list of {', '.join(WEEKDAYS)}; got {days!r}")
    on = _text(data, "date", where, problems, False)
    if on is not None:
        try:
            date.fromisoformat(on)
        except ValueError:
            problems.append(f"{where}.date: not a date (YYYY-MM-DD): {on!r}")
    staff = {role: data[role] for role in ROLES if role in data}
    for role, ids in staff.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            problems.append(f"{where}.{role}: must be a list of person ids")
    if not staff:
        problems.append(f"{where}: names nobody (give one of {', '.join(ROLES)})")
    if len(problems) > before or name is None or start is None or end is None:
        return None
    return Shift(name=name, start=start, end=end, staff=staff, days=list(days), date=on)


def _clock(data: Mapping[str, Any], key: str, where: str, problems: list[str]) -> str | None:
    value = _text(data, key, where, problems, True)
    if value is None:
        return None
    try:
        return time.fromisoformat(value).strftime("%H:%M")
    except ValueError:
        problems.append(f"{where}.{key}: not a time of day (HH:MM): {value!r}")
        return None


def _override(
    data: Mapping[str, Any], where: str, zone: ZoneInfo, problems: list[str]
) -> Override | None:
    before = len(problems)
    _unknown(data, OVERRIDE_FIELDS, where, problems)
    instead_of = _text(data, "instead_of", where, problems, True)
    person = _text(data, "person", where, problems, False)
    reason = _text(data, "reason", where, problems, False)
    span = [_instant(data, k, where, zone, problems) for k in ("from", "to")]
    if span[0] is not None and span[1] is not None and span[1] <= span[0]:
        problems.append(f"{where}.to: must be after from")
    if len(problems) > before or instead_of is None or span[0] is None or span[1] is None:
        return None
    return Override(instead_of=instead_of, person=person, start=span[0], end=span[1], reason=reason)


def _instant(
    data: Mapping[str, Any], key: str, where: str, zone: ZoneInfo, problems: list[str]
) -> float | None:
    value = data.get(key)
    if isinstance(value, datetime):  # TOML local / offset date-times arrive parsed
        return (value.replace(tzinfo=zone) if value.tzinfo is None else value).timestamp()
    text = _text(data, key, where, problems, True)
    if text is None:
        return None
    try:
        return parse_local_time(text, zone).timestamp()
    except ValueError:
        problems.append(f"{where}.{key}: not a date and time (YYYY-MM-DD HH:MM): {text!r}")
        return None


def _csv_person(cells: Mapping[str, str]) -> dict[str, str]:
    fields = {k: cells.get(k, "") for k in ("name", *CHANNELS, "mobile")}
    return {"id": cells["person"], **{k: v for k, v in fields.items() if v}}


def _merge(
    people: dict[str, dict[str, str]],
    pid: str,
    person: dict[str, str],
    where: str,
    problems: list[str],
) -> None:
    if not pid:
        problems.append(f"{where}.person: required")
        return
    known = people.setdefault(pid, {})
    _agree(known, person, f"{where}, person {pid!r}", problems)


def _agree(known: dict[str, Any], new: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """Fill ``known`` from ``new``; a value differing from an earlier row is a problem."""
    for key, value in new.items():
        if key in known and value and known[key] and known[key] != value:
            problems.append(
                f"{where}.{key}: {value!r} differs from an earlier row ({known[key]!r})"
            )
        elif value:
            known[key] = value


def _csv_shift(name: str, cells: Mapping[str, Any]) -> dict[str, Any]:
    shift: dict[str, Any] = {
        "name": name,
        "start": cells["start"],
        "end": cells["end"],
        **cells["staff"],
    }
    if cells.get("days"):
        shift["days"] = [d.strip().lower() for d in cells["days"].replace(";", " ").split()]
    if cells.get("date"):
        shift["date"] = cells["date"]
    return shift
