"""Paging that reaches a person: a surge pages the on-call person (@mentioned) on a
DingTalk-shaped receiver, re-pages and then pages the backup while nobody acknowledges,
and stops once the backup acknowledges through the link in the page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.playbooks.helpers import DINGTALK_SECRET, Receiver, RecordingAudit, wait_for
from watchfloor.api.app import create_app
from watchfloor.core.config import Config, load_config
from watchfloor.core.incidents import IncidentStore
from watchfloor.monitor.lifecycle import Silence
from watchfloor.playbooks.actions.executor import ActionExecutor
from watchfloor.playbooks.actions.http import RetryPolicy
from watchfloor.playbooks.paging import Pager
from watchfloor.playbooks.paging_setup import build_pager, roster_duty
from watchfloor.playbooks.roster import Person, Roster, Shift

ROSTER = Roster(
    timezone="Asia/Shanghai",
    people=[
        Person("zhang", "张伟", dingtalk="ding-zhang", mobile="13800000001"),
        Person("li", "李娜", dingtalk="ding-li", mobile="13800000002"),
        Person("wang", "王芳", dingtalk="ding-wang", mobile="13800000003"),
    ],
    shifts=[
        Shift("all-day", "00:00", "00:00",
              {"oncall": ["zhang"], "backup": ["li"], "duty_manager": ["wang"]}),
    ],
)  # fmt: skip


def paging_config(base: str, data_dir: Path) -> Config:
    return load_config(f"""
data_dir = "{data_dir}"
[[webhooks]]
name = "duty-ding"
kind = "dingtalk"
url = "{base}/dingtalk?access_token=abc"
secret = "{DINGTALK_SECRET}"

[paging]
poll_s = 0.05
[[paging.routes]]
matchers = ["kind = surge", "severity =~ major|critical"]
roles = ["oncall"]
channels = ["duty-ding"]
[[paging.escalation]]
after_s = 0
[[paging.escalation]]
after_s = 0.6
[[paging.escalation]]
after_s = 1.2
role = "backup"
[[paging.escalation]]
after_s = 3.0
role = "duty_manager"
""")


async def _roster() -> Roster:
    return ROSTER


class Paging:
    """A pager on the test roster sending to a DingTalk-shaped receiver."""

    def __init__(self, redis: Any, base: str, data_dir: Path, receiver: Receiver) -> None:
        self.config = paging_config(base, data_dir)
        self.receiver = receiver
        self.incidents = IncidentStore(redis)
        self.actions = ActionExecutor.from_config(redis, self.config, RetryPolicy(2, 0.05, 2.0))
        self.redis = redis

    def pager(self) -> Pager:
        pager = build_pager(
            self.redis, self.config, self.incidents, self.actions, roster_duty(_roster)
        )
        assert pager is not None
        return pager

    async def surge(self, subject: str, severity: str) -> Any:
        return await self.incidents.fire(
            kind="surge", rule="surge.queue", subject=subject, severity=severity,
            title=f"Contact surge on {subject}", evidence={"waiting": 412}, at=time.time(),
        )  # fmt: skip


@pytest.fixture
async def paging(redis_client: Any, serve_app: Any, data_dir: Path) -> Any:
    receiver = Receiver()
    base = await serve_app(receiver.app)
    setup = Paging(redis_client, base, data_dir, receiver)
    yield setup
    await setup.actions.aclose()


async def test_surge_pages_oncall_then_backup_until_acknowledged_by_link(
    paging: Paging, serve_app: Any
) -> None:
    receiver, incidents, pager = paging.receiver, paging.incidents, paging.pager()
    audit = RecordingAudit()
    app = create_app(paging.config, paging.redis, incidents=incidents, audit=audit)  # type: ignore[arg-type]
    api = await serve_app(app)
    pager.base_url = api  # the link points at the API this test serves
    stop = asyncio.Event()
    task = asyncio.create_task(pager.run(stop))
    try:
        await pager.follow_changes()  # cursor set before the incident opens
        fired = await paging.surge("presale", "major")
        pages = lambda: receiver.of("dingtalk")  # noqa: E731
        await wait_for(_count(pages, 3), timeout=10)
        first, again, backup = (p["body"] for p in pages()[:3])
        for page in pages():
            print("\nreceived page:", json.dumps(page["body"], ensure_ascii=False, indent=1))
        assert first["at"] == {"atMobiles": ["13800000001"], "atUserIds": ["ding-zhang"],
                               "isAtAll": False}  # fmt: skip
        assert "@13800000001" in first["markdown"]["text"]
        assert "张伟 (oncall)" in first["markdown"]["text"]
        assert again["at"]["atUserIds"] == ["ding-zhang"]
        assert "escalated" in again["markdown"]["title"]
        assert backup["at"]["atUserIds"] == ["ding-li"]
        assert receiver.rejected == []  # every page was signed as DingTalk wants

        link = re.search(r"Acknowledge as 李娜: (\S+)", backup["markdown"]["text"])
        assert link is not None
        async with aiohttp.ClientSession() as http:
            async with http.get(link.group(1)) as resp:
                assert resp.status == 200
                assert "Acknowledge as 李娜" in await resp.text()
            assert (await incidents.get(fired.incident.id)).state == "open"  # GET changes nothing
            async with http.post(link.group(1)) as resp:
                assert resp.status == 200, await resp.text()
            async with http.post(link.group(1)) as resp:
                assert resp.status == 410  # single use
        acked = await incidents.get(fired.incident.id)
        assert (acked.state, acked.acknowledged_by) == ("acknowledged", "李娜")
        assert [(r["actor"], r["action"], r["target"]) for r in audit.records] == [
            ("李娜", "incident.ack", fired.incident.id)
        ]
        paged = len(pages())
        await asyncio.sleep(3.5)  # past the duty manager's level: nobody is paged any more
        assert len(pages()) == paged
        assert all("ding-wang" not in p["body"]["at"]["atUserIds"] for p in pages())
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, 2)


def _count(pages: Any, n: int) -> Any:
    async def enough() -> bool:
        return len(pages()) >= n

    return enough


async def test_paging_state_survives_a_pager_restart(paging: Paging) -> None:
    """A new pager (a monitor restart) fires the level the old one had scheduled."""
    first = paging.pager()
    await first.follow_changes()
    await paging.surge("aftersale", "critical")
    await first.step()
    assert len(paging.receiver.of("dingtalk")) == 1
    second = paging.pager()
    await asyncio.sleep(0.7)
    await second.step()
    assert [p["body"]["at"]["atUserIds"] for p in paging.receiver.of("dingtalk")] == [
        ["ding-zhang"],
        ["ding-zhang"],
    ]


async def test_minor_surge_matches_no_route_and_pages_nobody(paging: Paging) -> None:
    pager = paging.pager()
    await pager.follow_changes()
    await paging.surge("presale", "minor")
    await pager.step()
    assert paging.receiver.received == []


async def test_silenced_incident_pages_nobody(paging: Paging) -> None:
    pager = paging.pager()
    await pager.follow_changes()
    silence = Silence("sil-1", {"subject": "presale"}, time.time() - 1, time.time() + 60)
    await paging.incidents.fire(
        kind="surge", rule="surge.queue", subject="presale", severity="critical",
        title="Surge in a window", evidence={"silenced_by": silence.id}, at=time.time(),
    )  # fmt: skip
    await pager.step()
    assert paging.receiver.received == []


async def test_severity_raised_pages_again_and_resolve_tells_the_channel(paging: Paging) -> None:
    pager = paging.pager()
    await pager.follow_changes()
    opened = await paging.surge("presale", "major")
    await pager.step()
    await paging.surge("presale", "critical")  # the same (rule, subject): severity rises
    await pager.step()
    await paging.incidents.resolve(opened.incident.id, actor="张伟")
    await pager.step()
    bodies = [p["body"] for p in paging.receiver.of("dingtalk")]
    assert [b["markdown"]["title"] for b in bodies] == [
        "[major] Contact surge on presale",
        "[critical] Severity raised: Contact surge on presale",
        "[resolved] Contact surge on presale",
    ]
    assert bodies[1]["at"]["atUserIds"] == ["ding-zhang"]
    assert "at" not in bodies[2] and "/v1/ack/" not in bodies[2]["markdown"]["text"]
    timeline = await paging.incidents.timeline(opened.incident.id)
    assert [e["page"] for e in timeline if e["event"] == "paged"] == [
        "opened",
        "raised",
        "resolved",
    ]


async def test_a_chinese_site_pages_in_chinese_with_the_same_mentions_and_link(
    paging: Paging,
) -> None:
    receiver, pager = paging.receiver, paging.pager()
    pager.lang = "zh"  # [console] lang = "zh": the site's language
    await pager.follow_changes()
    await paging.surge("presale", "major")
    await pager.step()
    await wait_for(_count(lambda: receiver.of("dingtalk"), 1), timeout=10)
    page = receiver.of("dingtalk")[0]["body"]
    text = page["markdown"]["text"]
    assert page["markdown"]["title"].startswith("【重要】"), page
    assert "进线激增" in page["markdown"]["title"], page
    assert "张伟（值班工程师）" in text and "张伟 确认接手：http" in text, text
    assert page["at"]["atUserIds"] == ["ding-zhang"]
    assert not re.search(r"\b(Incident|Paged|Acknowledge|state)\b", text), text
