"""The roster: who is on duty when (pure), and its import, storage and commands."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from watchfloor.core import keys
from watchfloor.playbooks.roster import Override, Person, Roster, Shift, on_duty
from watchfloor.playbooks.roster_file import RosterError, parse_csv, parse_toml
from watchfloor.playbooks.roster_store import load_roster

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


# Import, show and override through the real command against a real Redis ----------------

ROSTER_TOML = """
[[people]]
id = "zhang.wei"
name = "张伟"
dingtalk = "dt-0001"
mobile = "13800000001"

[[people]]
id = "li.na"
name = "李娜"
wecom = "wc-0002"

[[people]]
id = "wang.fang"
name = "王芳"
feishu = "ou_0003"

[[shifts]]
name = "day"
start = "09:00"
end = "21:00"
duty_manager = ["zhang.wei"]
oncall = ["li.na"]

[[shifts]]
name = "night"
start = "21:00"
end = "09:00"
oncall = ["wang.fang"]
backup = ["li.na"]

[[overrides]]
person = "wang.fang"
instead_of = "li.na"
from = "2026-12-07 12:00"
to = "2026-12-07 14:00"
reason = "swap"
"""


async def _cli(redis_url: str, data_dir: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watchfloor", "roster", *args,
        "--redis", redis_url, "--data-dir", str(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


def test_toml_errors_name_index_and_field() -> None:
    bad = ROSTER_TOML.replace('end = "21:00"', 'end = "25:00"').replace(
        '"li.na"]\n\n[[shifts]]', '"nobody"]\n\n[[shifts]]'
    )
    bad += '\n[[people]]\nid = "x"\nnam = "typo"\n'
    with pytest.raises(RosterError) as caught:
        parse_toml(bad, "Asia/Shanghai")
    problems = caught.value.problems
    assert "shifts[0].end: not a time of day (HH:MM): '25:00'" in problems
    assert "people[3].nam: unknown field" in problems
    assert "people[3].name: required" in problems


def test_csv_rows_agree_or_are_named() -> None:
    header = "shift,days,start,end,role,person,name,dingtalk,wecom,feishu,mobile\n"
    good = (
        header
        + "day,mon tue,09:00,18:00,oncall,li.na,李娜,,wc-2,,\n"
        + "day,mon tue,09:00,18:00,backup,li.na,李娜,,,,\n"
    )
    roster = parse_csv(good, "Asia/Shanghai")
    assert roster.shifts[0].staff == {"oncall": ["li.na"], "backup": ["li.na"]}
    assert roster.people[0].wecom == "wc-2"
    bad = good + "day,mon tue,10:00,18:00,oncall,zhao,赵磊,,,,\n"
    with pytest.raises(RosterError) as caught:
        parse_csv(bad, "Asia/Shanghai")
    assert caught.value.problems == [
        "row 4, shift 'day'.start: '10:00' differs from an earlier row ('09:00')"
    ]


async def test_import_show_and_override_through_the_command(
    redis_url: str, redis_client: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    bad = tmp_path / "bad.toml"
    bad.write_text(
        ROSTER_TOML.replace('oncall = ["wang.fang"]', 'oncall = ["ghost"]'), encoding="utf-8"
    )
    code, out = await _cli(redis_url, data_dir, "import", str(bad))
    assert code == 1 and "shift 'night'.oncall: unknown person 'ghost'" in out
    assert await redis_client.get(keys.ROSTER) is None

    good = tmp_path / "roster.toml"
    good.write_text(ROSTER_TOML, encoding="utf-8")
    code, out = await _cli(redis_url, data_dir, "import", str(good))
    assert code == 0, out
    assert "3 people, 2 shifts, 1 overrides (Asia/Shanghai)" in out
    audit = await redis_client.xrange(keys.AUDIT)
    assert any(b"roster.import" in b"".join(fields.values()) for _id, fields in audit)

    code, out = await _cli(redis_url, data_dir, "show", "--at", "2026-12-07 12:30")
    assert code == 0, out
    assert "On duty at 2026-12-07 12:30 (Asia/Shanghai)" in out
    assert "oncall            王芳 (wang.fang, feishu=ou_0003)" in out
    assert "override: wang.fang instead of li.na until 12-07 14:00 (swap)" in out
    assert "UTC" not in out

    code, out = await _cli(
        redis_url, data_dir, "override", "--instead-of", "wang.fang", "--person", "zhang.wei",
        "--from", "2026-12-08 00:00", "--to", "2026-12-08 06:00",
    )  # fmt: skip
    assert code == 0, out
    code, out = await _cli(redis_url, data_dir, "show", "--at", "2026-12-08 01:00")
    assert "oncall            张伟 (zhang.wei, dingtalk=dt-0001, mobile=13800000001)" in out
    assert "backup            李娜" in out
    stored = await load_roster(redis_client)
    assert stored is not None and len(stored.overrides) == 2
    code, out = await _cli(
        redis_url,
        data_dir,
        "override",
        "--instead-of",
        "ghost",
        "--from",
        "2026-12-08 00:00",
        "--to",
        "2026-12-08 01:00",
    )
    assert code == 1 and "--instead-of: unknown person 'ghost'" in out
