"""The header says who is on duty now, from ``GET /v1/roster`` of the real API."""

from __future__ import annotations

from tests.console.conftest import ConsoleApi, console_for, wait_until
from tests.console.screen_text import screen_text
from watchfloor.playbooks.roster_file import parse_toml
from watchfloor.playbooks.roster_store import save_roster

ALL_DAY = """
[[people]]
id = "zhang.wei"
name = "张伟"
dingtalk = "dt-0001"

[[people]]
id = "li.na"
name = "李娜"

[[shifts]]
name = "all-day"
start = "00:00"
end = "00:00"
duty_manager = ["zhang.wei"]
oncall = ["li.na"]
"""


async def test_header_names_the_people_on_duty_now(console_api: ConsoleApi) -> None:
    await save_roster(console_api.redis, parse_toml(ALL_DAY, "Asia/Shanghai"))
    app = console_for(console_api, "oncall")
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.duty), "the roster")
        await pilot.pause(0.1)
        header = screen_text(app).splitlines()[0]
        assert "On duty: 张伟 (duty manager) · 李娜 (on-call)" in header, header


async def test_header_in_chinese_uses_the_seed_terms(console_api: ConsoleApi) -> None:
    await save_roster(console_api.redis, parse_toml(ALL_DAY, "Asia/Shanghai"))
    app = console_for(console_api, "duty_manager", lang="zh")
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.duty), "the roster")
        await pilot.pause(0.1)
        assert "当前值班: 张伟 (值班主管) · 李娜 (值班员)" in screen_text(app).splitlines()[0]


async def test_header_without_a_roster_shows_no_duty_line(console_api: ConsoleApi) -> None:
    app = console_for(console_api, "viewer")
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.me), "whoami")
        await pilot.pause(0.3)
        assert app.duty == ""
        assert "On duty" not in screen_text(app)
