"""The roster: who is on duty when (pure), and its import, storage and commands."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from watchfloor.playbooks.roster import Override, Person, Roster, Shift, on_duty

SH = ZoneInfo("Asia/Shanghai")
PEOPLE = [
    Person(id="zhang", name="张伟", dingtalk="dt-zhang", mobile="13800000001"),
    Person(id="li", name="李娜", wecom="wc-li"),
    Person(id="wang", name="王芳", feishu="fs-wang"),
    Person(id="zhao", name="赵磊"),
]
DAY = Shift(
    name="day", start="09:00", end="21:00", staff={"duty_manager": ["zhang"], "oncall": ["li"]}
)
NIGHT = Shift(
    name="night", start="21:00", end="09:00", staff={"oncall": ["wang"], "backup": ["zhao"]}
)


def _roster(
    *overrides: Override, tz: str = "Asia/Shanghai", shifts: list[Shift] | None = None
) -> Roster:
    return Roster(
        timezone=tz, people=PEOPLE, shifts=shifts or [DAY, NIGHT], overrides=list(overrides)
    )


def _ids(duty: dict[str, list[Person]]) -> dict[str, list[str]]:
    return {role: [p.id for p in people] for role, people in duty.items() if people}


def test_day_shift_staffs_its_roles_at_local_noon() -> None:
    assert _ids(on_duty(_roster(), datetime(2026, 12, 7, 12, 0, tzinfo=SH))) == {
        "duty_manager": ["zhang"],
        "oncall": ["li"],
    }


def test_night_shift_crossing_midnight_holds_after_midnight_and_ends_at_nine() -> None:
    assert _ids(on_duty(_roster(), datetime(2026, 12, 8, 3, 0, tzinfo=SH))) == {
        "oncall": ["wang"],
        "backup": ["zhao"],
    }
    assert _ids(on_duty(_roster(), datetime(2026, 12, 8, 9, 0, tzinfo=SH)))["oncall"] == ["li"]


def test_an_instant_in_utc_is_read_in_the_roster_zone() -> None:
    # 13:30 UTC is 21:30 in Shanghai: the night shift.
    at = datetime(2026, 12, 7, 13, 30, tzinfo=ZoneInfo("UTC"))
    assert _ids(on_duty(_roster(), at))["oncall"] == ["wang"]


def test_swap_override_replaces_the_person_only_while_in_force() -> None:
    start = datetime(2026, 12, 7, 12, 0, tzinfo=SH).timestamp()
    swap = Override(instead_of="li", person="zhao", start=start, end=start + 3600)
    assert _ids(on_duty(_roster(swap), datetime(2026, 12, 7, 12, 30, tzinfo=SH)))["oncall"] == [
        "zhao"
    ]
    assert _ids(on_duty(_roster(swap), datetime(2026, 12, 7, 13, 0, tzinfo=SH)))["oncall"] == ["li"]


def test_leave_override_takes_the_person_off_duty() -> None:
    start = datetime(2026, 12, 7, 0, 0, tzinfo=SH).timestamp()
    leave = Override(instead_of="zhang", start=start, end=start + 86400)
    assert "duty_manager" not in _ids(
        on_duty(_roster(leave), datetime(2026, 12, 7, 12, 0, tzinfo=SH))
    )


def test_weekday_shift_is_off_at_the_weekend() -> None:
    weekdays = Shift(
        name="office",
        start="09:00",
        end="18:00",
        staff={"security_officer": ["wang"]},
        days=["mon", "tue", "wed", "thu", "fri"],
    )
    roster = _roster(shifts=[weekdays])
    assert _ids(on_duty(roster, datetime(2026, 12, 7, 10, 0, tzinfo=SH))) == {
        "security_officer": ["wang"]
    }  # a Monday
    assert _ids(on_duty(roster, datetime(2026, 12, 6, 10, 0, tzinfo=SH))) == {}  # a Sunday


def test_night_shift_over_a_dst_change_lasts_its_true_length() -> None:
    # Berlin leaves DST on 2026-10-25 at 03:00 local: the 21:00-09:00 night is 13 hours long.
    berlin = ZoneInfo("Europe/Berlin")
    roster = _roster(tz="Europe/Berlin", shifts=[NIGHT])
    assert _ids(on_duty(roster, datetime(2026, 10, 25, 8, 30, tzinfo=berlin)))["oncall"] == ["wang"]
    # 08:30 UTC is 09:30 in Berlin (CET): the shift is over.
    assert _ids(on_duty(roster, datetime(2026, 10, 25, 8, 30, tzinfo=ZoneInfo("UTC")))) == {}
    # 07:30 UTC is 08:30 CET: still on.
    assert _ids(on_duty(roster, datetime(2026, 10, 25, 7, 30, tzinfo=ZoneInfo("UTC"))))[
        "oncall"
    ] == ["wang"]


def test_one_off_dated_shift_only_on_its_date() -> None:
    double11 = Shift(
        name="double-11", start="00:00", end="00:00", staff={"backup": ["zhang"]}, date="2026-11-11"
    )
    roster = _roster(shifts=[double11])
    assert _ids(on_duty(roster, datetime(2026, 11, 11, 23, 59, tzinfo=SH))) == {"backup": ["zhang"]}
    assert _ids(on_duty(roster, datetime(2026, 11, 12, 0, 0, tzinfo=SH))) == {}


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        on_duty(_roster(), datetime(2026, 12, 7, 12, 0))
