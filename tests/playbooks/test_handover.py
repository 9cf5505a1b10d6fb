"""The shift handover report: incidents, runs with open steps, queue figures from the
changes stream, notable audit events; and the `handover` and `playbook` commands."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import pytest
import redis.asyncio as aioredis

from tests.playbooks.helpers import RecordingAudit
from watchfloor.cli import main
from watchfloor.core import keys
from watchfloor.core.changes import add_change
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks import duty_log
from watchfloor.playbooks.handover import collect
from watchfloor.playbooks.handover_markdown import render_markdown
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner


def queue_row(queue: str, waiting: int, sl: float | None, abandon: float | None) -> dict:
    return {
        "queue": queue,
        "channel": "chat",
        "waiting": waiting,
        "longest_wait_s": waiting * 2.0,
        "service_level": sl,
        "abandon_rate": abandon,
        "updated_at": time.time(),
    }


async def seed_shift(redis: aioredis.Redis) -> tuple[str, str]:
    incidents = IncidentStore(redis)
    now = time.time()
    old = await incidents.create_manual(
        title="Old one", severity="minor", subject="x", actor="a", at=now - 20 * 3600
    )
    await incidents.resolve(old.id, actor="a", at=now - 19 * 3600)
    fixed = await incidents.create_manual(
        title="CRM slow", severity="major", subject="crm", actor="a", at=now - 3600
    )
    await incidents.resolve(fixed.id, actor="li.wei", at=now - 1800)
    surge = await incidents.fire(
        kind="surge",
        rule="surge.waiting",
        subject="presales",
        severity="major",
        title="Presales surge",
        evidence={},
        at=now - 600,
    )
    runner = PlaybookRunner(redis, incidents, None, Library.load())
    run = await runner.start(
        "contact-surge", surge.incident.id, actor="li.wei", role="duty_manager"
    )
    async with redis.pipeline(transaction=True) as pipe:
        for waiting, sl, ab in ((10, 0.9, 0.02), (85, 0.41, 0.12), (30, 0.7, 0.05)):
            add_change(pipe, "queue", "updated", queue_row("presales", waiting, sl, ab))
        await pipe.execute()
    await redis.hset(
        keys.QUEUES, "aftersales", msgpack.packb(queue_row("aftersales", 4, 0.95, None))
    )
    return surge.incident.id, run["id"]


async def test_report_lists_incidents_runs_queue_figures_and_audit(redis_client: Any) -> None:
    surge_id, run_id = await seed_shift(redis_client)
    audit = RecordingAudit()
    await audit.append("unknown", "-", "auth.failed", "/v1/incidents", outcome="denied")
    await audit.append("li.wei", "duty_manager", "incident.ack", surge_id)
    for record in audit.records:
        record["at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    now = time.time()
    incidents = IncidentStore(redis_client)
    runner = PlaybookRunner(redis_client, incidents, None, Library([]))
    report = await collect(
        redis_client, since=now - 8 * 3600, now=now, incidents=incidents, runner=runner, audit=audit
    )
    assert [i["id"] for i in report["still_open"]] == [surge_id]
    assert len(report["opened"]) == 2 and len(report["resolved"]) == 1
    presales = report["queues"]["queues"]["presales"]
    assert presales["peak_waiting"] == 85 and presales["worst_service_level"] == 0.41
    assert presales["worst_abandon_rate"] == 0.12 and presales["last_abandon_rate"] == 0.05
    assert report["queues"]["queues"]["aftersales"]["peak_waiting"] == 4
    assert [r["action"] for r in report["audit"]] == ["auth.failed"]

    text = render_markdown(report, ZoneInfo("Asia/Shanghai"))
    assert text.startswith("# 值班交接 Shift handover")
    assert f"**{run_id}** contact-surge" in text
    assert "agents-online" not in text  # step titles, never ids
    assert "| presales | chat | 85 | 170 s |" in text
    assert "`auth.failed`" in text and "**denied**" in text
    assert "Old one" not in text


def test_handover_command_writes_the_report(redis_url: str, tmp_path: Path) -> None:
    async def seed() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await seed_shift(client)
        await client.aclose()

    asyncio.run(seed())
    out = tmp_path / "handover.md"
    code = main(
        [
            "handover",
            "--since",
            "8h",
            "--out",
            str(out),
            "--redis",
            redis_url,
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "Presales surge" in out.read_text(encoding="utf-8")
    assert main(["handover", "--since", "soon", "--redis", redis_url]) == 1


def test_playbook_commands_start_drill_and_list(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def seed() -> str:
        client = aioredis.Redis.from_url(redis_url)
        incident = await IncidentStore(client).create_manual(
            title="Earthquake drill", severity="critical", subject="hz-site", actor="a"
        )
        await client.aclose()
        return incident.id

    incident_id = asyncio.run(seed())
    common = ["--redis", redis_url, "--data-dir", str(tmp_path)]
    assert (
        main(["playbook", "start", "disaster", "--incident", incident_id, "--json", *common]) == 0
    )
    run = json.loads(capsys.readouterr().out)
    assert run["playbook"] == "disaster" and run["incident"] == incident_id
    assert main(["playbook", "start", "nope", "--incident", incident_id, *common]) == 1
    assert "no playbook 'nope'" in capsys.readouterr().err
    assert main(["playbook", "drill", "sla-breach", *common]) == 0
    assert "drill RUN-" in capsys.readouterr().out
    assert main(["playbook", "drills", *common]) == 0  # none finished yet
    assert main(["playbook", "list"]) == 0
    assert "data-leak" in capsys.readouterr().out


def test_playbook_check_exits_1_naming_file_step_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'id = "bad"\ntitle = "Bad"\n[start]\nmanual_only = true\n'
        '[[steps]]\nid = "a"\ntitle = "A"\nowner = "oncall"\nneeds = ["ghost"]\n',
        encoding="utf-8",
    )
    assert main(["playbook", "check", str(bad), "--data-dir", str(tmp_path)]) == 1
    assert f"{bad}: step a: needs: unknown step 'ghost'" in capsys.readouterr().out
    assert main(["playbook", "check", "--data-dir", str(tmp_path)]) == 0
    assert "ok: 8 playbook(s) checked" in capsys.readouterr().err


def test_handover_log_command_searches_the_signed_shifts(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def sign_two() -> list[str]:
        client = aioredis.Redis.from_url(redis_url)
        ids = []
        for at, words in ((time.time() - 3600, "CRM 慢"), (time.time(), "大促前加排坐席")):
            await duty_log.write_draft(client, notes=words, suggestions=None, author="li.wei")
            report = {"since": at - 60, "now": at, "author": "li.wei", "still_open": [],
                      "opened": []}  # fmt: skip
            entry = await duty_log.sign(
                client, report=report, markdown=f"# shift\n{words}\n", signed_by="wang.fang",
                signed_at=at, data_dir=tmp_path,
            )  # fmt: skip
            ids.append(entry["id"])
        await client.aclose()
        return ids

    older, newer = asyncio.run(sign_two())
    common = ["--redis", redis_url, "--data-dir", str(tmp_path)]
    assert main(["handover", "log", "--search", "大促", *common]) == 0
    out = capsys.readouterr().out
    assert newer in out and older not in out and "li.wei → wang.fang" in out
    assert "CST" in out and "UTC" not in out
    assert main(["handover", "log", "--show", older, *common]) == 0
    assert "CRM 慢" in capsys.readouterr().out
    assert main(["handover", "log", "--show", "SHIFT-nope", *common]) == 1
    assert (tmp_path / "duty-log" / f"{older}.md").exists()
