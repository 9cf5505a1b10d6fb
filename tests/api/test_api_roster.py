"""``GET /v1/roster``: who is on duty, in the site's time zone, for anyone who reads the board."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tests.api.test_api_support import ApiStack, api_fixture
from tests.playbooks.test_roster import ROSTER_TOML
from watchfloor.playbooks.roster_file import parse_toml
from watchfloor.playbooks.roster_store import save_roster

api = api_fixture()
SH = ZoneInfo("Asia/Shanghai")


async def test_roster_before_any_import_says_so(api: ApiStack) -> None:
    status, body = await api.call("GET", "/v1/roster", "viewer")
    assert status == 200
    assert body["imported"] is False and body["timezone"] == "Asia/Shanghai"
    assert body["on_duty"] == {
        "duty_manager": [],
        "oncall": [],
        "security_officer": [],
        "backup": [],
    }


async def test_roster_names_people_on_duty_with_contacts_and_local_times(api: ApiStack) -> None:
    await save_roster(api.redis, parse_toml(ROSTER_TOML, "Asia/Shanghai"))
    status, body = await api.call("GET", "/v1/roster?at=2026-12-07%2012:30", "oncall")
    assert status == 200, body
    assert body["at"] == datetime(2026, 12, 7, 12, 30, tzinfo=SH).timestamp()
    assert body["at_local"] == "2026-12-07 12:30"
    assert [p["id"] for p in body["on_duty"]["oncall"]] == ["wang.fang"]
    assert body["on_duty"]["duty_manager"][0] == {
        "id": "zhang.wei", "name": "张伟", "dingtalk": "dt-0001", "wecom": None, "feishu": None,
        "mobile": "13800000001",
    }  # fmt: skip
    assert body["shifts"] == [
        {"name": "day", "start_local": "2026-12-07 09:00", "end_local": "2026-12-07 21:00"}
    ]
    assert body["overrides"][0]["instead_of"] == "li.na"
    assert body["overrides"][0]["end_local"] == "2026-12-07 14:00"
    # Epoch seconds work too: 13:30 UTC is the night shift in Shanghai.
    epoch = datetime(2026, 12, 7, 13, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    status, body = await api.call("GET", f"/v1/roster?at={epoch}", "security_officer")
    assert body["at_local"] == "2026-12-07 21:30"
    assert [p["id"] for p in body["on_duty"]["backup"]] == ["li.na"]


async def test_bad_at_is_a_400_naming_the_field(api: ApiStack) -> None:
    status, body = await api.call("GET", "/v1/roster?at=tomorrow", "viewer")
    assert status == 400
    assert body["error"].startswith("at: ")


async def test_roster_needs_a_token_that_reads_the_board(api: ApiStack) -> None:
    assert (await api.call("GET", "/v1/roster", None))[0] == 401
    assert (await api.call("GET", "/v1/roster", "producer"))[0] == 403
