"""Paging in a real ``watchfloor up --headless``: a roster imported with ``watchfloor roster
import``, a manual critical incident opened through the API, and the on-call person is paged
(@mentioned) on a DingTalk-shaped receiver with no playbook step involved; the link in the
page acknowledges it through the running API, and the re-page that was due never comes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.playbooks.helpers import DINGTALK_SECRET, Receiver, wait_for
from watchfloor.core.redis_server import free_port

ROSTER = """
[[people]]
id = "zhang"
name = "张伟"
dingtalk = "ding-zhang"
mobile = "13800000001"

[[shifts]]
name = "all-day"
start = "00:00"
end = "00:00"
oncall = ["zhang"]
"""


def _config(receiver: str, api_port: int) -> str:
    return f"""
[[webhooks]]
name = "duty-ding"
kind = "dingtalk"
url = "{receiver}/dingtalk?access_token=abc"
secret = "{DINGTALK_SECRET}"

[paging]
poll_s = 0.1
base_url = "http://127.0.0.1:{api_port}"
[[paging.routes]]
matchers = ["severity = critical"]
channels = ["duty-ding"]
[[paging.escalation]]
after_s = 0
[[paging.escalation]]
after_s = 4
"""


def _watchfloor(*args: str, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "watchfloor", *args, "--data-dir", str(data_dir)]


async def test_running_stack_pages_the_oncall_person_and_the_link_acknowledges(
    serve_app: Any, tmp_path: Path
) -> None:
    receiver = Receiver()
    base = await serve_app(receiver.app)
    data_dir, api_port = tmp_path / "wf", free_port()
    data_dir.mkdir()
    (data_dir / "watchfloor.toml").write_text(_config(base, api_port), encoding="utf-8")
    (tmp_path / "roster.toml").write_text(ROSTER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "WATCHFLOOR_REDIS_URL"}
    up = subprocess.Popen(
        _watchfloor("up", "--headless", "--api-port", str(api_port),
                    "--collector-port", str(free_port()), data_dir=data_dir),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    api = f"http://127.0.0.1:{api_port}"
    try:
        async with aiohttp.ClientSession() as http:
            await wait_for(lambda: _answers(http, f"{api}/healthz"), timeout=60, every=0.3)
            imported = await asyncio.to_thread(
                subprocess.run, _watchfloor("roster", "import", str(tmp_path / "roster.toml"),
                                            data_dir=data_dir),
                capture_output=True, text=True, env=env,
            )  # fmt: skip
            assert imported.returncode == 0, imported.stdout + imported.stderr
            token = (data_dir / "tokens" / "admin.token").read_text().strip()
            body = {"title": "Order API down", "severity": "critical", "subject": "order-api"}
            async with http.post(f"{api}/v1/incidents", json=body,
                                 headers={"Authorization": f"Bearer {token}"}) as resp:  # fmt: skip
                assert resp.status == 201, await resp.text()
            await wait_for(lambda: _some(receiver), timeout=20)
            page = receiver.of("dingtalk")[0]["body"]
            print("\nreceived page:", page)
            assert page["at"]["atUserIds"] == ["ding-zhang"]
            link = re.search(r"Acknowledge as 张伟: (\S+)", page["markdown"]["text"])
            assert link is not None and link.group(1).startswith(api)
            async with http.post(link.group(1)) as resp:
                assert resp.status == 200, await resp.text()
        await asyncio.sleep(5)  # past the re-page that was due at 4 s
        assert len(receiver.of("dingtalk")) == 1
    finally:
        up.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(up.communicate, timeout=60)
    assert up.returncode == 0, out


async def _answers(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as resp:
            return resp.status < 600
    except aiohttp.ClientError:
        return False


async def _some(receiver: Receiver) -> bool:
    return bool(receiver.of("dingtalk"))
