"""Post-incident review and MTTA / MTTR through the real stores and the `review` command."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from watchfloor.cli import main
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.review import mean_times
from watchfloor.playbooks.runner import PlaybookRunner


async def seed(redis_url: str) -> str:
    """A surge acked after 2 min and resolved after 10 min by named people, with a run."""
    client = aioredis.Redis.from_url(redis_url)
    incidents = IncidentStore(client)
    opened = time.time() - 3600
    surge = (
        await incidents.fire(
            kind="surge", rule="surge.waiting", subject="presales", severity="major",
            title="Presales surge", evidence={"caller": "13812345678", "waiting": 85}, at=opened,
        )
    ).incident  # fmt: skip
    runner = PlaybookRunner(client, incidents, None, Library.load())
    run = await runner.start("contact-surge", surge.id, actor="li.wei", role="duty_manager")
    await incidents.acknowledge(surge.id, actor="zhang.san", note="looking", at=opened + 120)
    await incidents.resolve(surge.id, actor="li.wei", note="agents added", at=opened + 600)
    slow = await incidents.create_manual(
        title="CRM slow", severity="minor", subject="crm", actor="a", at=opened
    )
    await incidents.acknowledge(slow.id, actor="zhang.san", at=opened + 360)
    await client.aclose()
    assert run["incident"] == surge.id
    return surge.id


def test_review_of_an_incident_names_who_did_what_and_when_masked(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    surge_id = asyncio.run(seed(redis_url))
    out = tmp_path / "review.md"
    common = ["--redis", redis_url, "--data-dir", str(tmp_path)]
    assert main(["review", "--incident", surge_id, "--out", str(out), *common]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith(f"# 复盘 Post-incident review — {surge_id}")
    assert "time to acknowledge 2m00s · time to resolve 10m00s" in text
    assert "by zhang.san" in text and "agents added" in text
    assert "13812345678" not in text and "waiting: 85" in text
    assert "| step | owner | state | done by | at | note |" in text
    assert "CST" in text and "UTC" not in text
    assert main(["review", "--incident", "INC-nope", *common]) == 1
    assert "no incident 'INC-nope'" in capsys.readouterr().err


def test_week_mtta_and_mttr_by_kind_and_severity(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(seed(redis_url))
    assert main(["review", "--week", "--redis", redis_url, "--data-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "2 incidents opened · MTTA 4m00s · MTTR 10m00s" in text
    assert "| surge | 1 | 1 | 1 | 2m00s | 10m00s |" in text
    assert "| minor | 1 | 1 | 0 | 6m00s | - |" in text


def test_mean_times_leave_out_incidents_opened_outside_the_period() -> None:
    rows = [
        {"kind": "sla", "severity": "major", "opened_at": 100.0, "acknowledged_at": 160.0},
        {"kind": "sla", "severity": "major", "opened_at": 5000.0, "acknowledged_at": 9000.0},
    ]
    figures = mean_times(rows, 0.0, 1000.0)
    assert figures["count"] == 1 and figures["by_kind"]["sla"]["mtta_s"] == 60.0
    assert figures["by_severity"]["major"]["count"] == 1
