"""Terminal escapes stored in the audit log are shown escaped, never obeyed.

An unauthenticated caller can put anything in the path it asks for, and the
auth gate audits that path as ``auth.failed``'s target. The test sends such a
request to a real API, then runs the real ``watchfloor audit tail`` command in a
subprocess and reads every byte it printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from tests.api.test_api_support import ApiStack, api_fixture
from watchfloor.core.printable import printable

api = api_fixture()

ERASE = "\x1b[2K\x1b[1A"
BIDI = "\u202e"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("/v1/incidents", "/v1/incidents"),
        ("a\x1b[2Kb", "a\\x1b[2Kb"),
        ("line\nbreak\r", "line\\x0abreak\\x0d"),
        ("bell\x07del\x7f c1\x9b", "bell\\x07del\\x7f c1\\x9b"),
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),
        ("zero\u200bwidth\u2028sep", "zero\\u200bwidth\\u2028sep"),
        ("客服 队列 ok", "客服 队列 ok"),
    ],
)
def test_control_and_invisible_characters_are_escaped_and_text_is_kept(raw, shown):
    assert printable(raw) == shown


async def test_audit_tail_prints_an_escape_sent_by_an_unauthenticated_caller_escaped(
    api: ApiStack, redis_url: str, data_dir: Path
):
    hostile = f"/v1/x{ERASE}{BIDI}gotcha"
    encoded = "/v1/x%1b%5b2K%1b%5b1A%e2%80%aegotcha"  # the server decodes it into the path
    async with aiohttp.ClientSession() as session:
        url = URL(api.url + encoded, encoded=True)
        async with session.get(url, headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
    stored = [r["target"] for r in await api.audit.read()]
    assert stored and "gotcha" in stored[0]
    # any other writer may store a raw one (the log keeps what it is given)
    await api.audit.append("remote:127.0.0.1", "", "auth.failed", hostile, "denied", {"m": ERASE})

    env = {**os.environ, "WATCHFLOOR_REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-m", "watchfloor", "audit", "tail", "--data-dir", str(data_dir)],
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    out = done.stdout.decode("utf-8")
    assert "\x1b" not in out and BIDI not in out
    assert out.count("/v1/x\\x1b[2K\\x1b[1A\\u202egotcha") == 2, out
