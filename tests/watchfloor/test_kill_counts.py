"""Counted: every event the stack acknowledged is stored once and evaluated, through kills.

A real ``watchfloor up --headless --workers 2`` takes 60 agent messages, each from its own
agent and each leaking a customer's resident ID (a one-event rule: every acknowledged
message must open its own leak incident). Mid-stream the first monitor worker (the one
serving the API) is SIGKILLed, later the collector; the supervisor restarts them (the
worker, with its id, takes its own shards back) and the producer resends what was not
answered, as a producer does. The test prints one row, sent / acknowledged / stored /
evaluated, and all four must be equal.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tests.conftest import RunningStack
from watchfloor.collector.simulator.content import resident_id
from watchfloor.core import keys
from watchfloor.core.bus import BATCH_FIELD
from watchfloor.core.redis_client import connect_sync
from watchfloor.core.stack_lock import read_holder

MESSAGES = 60
KILL_MONITOR_AT, KILL_COLLECTOR_AT = 20, 40


def children(pid: int) -> dict[int, str]:
    """Child pid -> command line, for the direct children of ``pid``."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found[int(entry.name)] = argv
    return found


def kill_child(stack: RunningStack, name: str) -> None:
    pid = next(p for p, argv in children(stack.process.pid).items() if f" {name} " in argv)
    os.kill(pid, signal.SIGKILL)


def post(url: str, token: str, event: dict[str, Any], timeout_s: float = 60) -> dict[str, Any]:
    """POST one event until the collector answers 202, as a producer retries."""
    body = json.dumps([event]).encode()
    deadline = time.monotonic() + timeout_s
    while True:
        request = urllib.request.Request(url + "/v1/events", data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 202:
                    return dict(json.loads(response.read()))
        except (urllib.error.URLError, OSError):
            pass  # the collector is restarting: resend
        if time.monotonic() > deadline:
            raise AssertionError(f"event {event['id']} never acknowledged")
        time.sleep(0.2)


def stored_ids(stack: RunningStack) -> list[str]:
    holder = read_holder(stack.data_dir / "redis")
    assert holder is not None
    client = connect_sync(holder.url)
    try:
        ids = []
        for shard in range(int(client.get(keys.SHARDS) or 0)):
            for _, fields in client.xrange(keys.events_shard(shard)):
                for event in msgpack.unpackb(fields[BATCH_FIELD]):
                    if event.get("type") == "agent.message":
                        ids.append(event["id"])
        return ids
    finally:
        client.close()


def leak_subjects(stack: RunningStack) -> set[str]:
    request = urllib.request.Request(stack.api + "/v1/incidents?state=all", headers={
        "Authorization": f"Bearer {stack.admin_token()}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            incidents = json.loads(response.read())["incidents"]
    except (urllib.error.URLError, OSError):
        return set()  # the monitor (which serves the API) is still coming back
    return {i["subject"] for i in incidents if i["kind"] == "leak"}


@pytest.mark.parametrize("up_args", [["--workers", "2"]])
def test_kills_mid_stream_lose_no_acknowledged_event(
    tmp_path: Path, request: pytest.FixtureRequest, up_args: list[str]
) -> None:
    # One incident per leaking agent, not the roll-up a flood of them gets by default.
    (tmp_path / "wf").mkdir(mode=0o700)
    (tmp_path / "rules.toml").write_text("[lifecycle]\ncap_per_minute = 1000\n")
    (tmp_path / "wf" / "watchfloor.toml").write_text(
        f'[monitor]\nrules_file = "{tmp_path / "rules.toml"}"\n'
    )
    stack: RunningStack = request.getfixturevalue("running_stack")
    token = (stack.data_dir / "tokens" / "local-producer.token").read_text().strip()
    rng = random.Random(7)
    acknowledged = 0
    for i in range(MESSAGES):
        if i == KILL_MONITOR_AT:
            kill_child(stack, "monitor-1")
        if i == KILL_COLLECTOR_AT:
            kill_child(stack, "collector")
        event = {"type": "agent.message", "ts": time.time(), "source": "chat-gw", "id": f"m{i}",
                 "agent_id": f"agent-{i:03d}", "conversation_id": f"c{i}", "channel": "chat",
                 "direction": "to_customer",
                 "text": f"您的身份证号是 {resident_id(rng)}，请核对"}  # fmt: skip
        acknowledged += post(stack.collector, token, event)["accepted"]

    deadline = time.monotonic() + 90
    while len(subjects := leak_subjects(stack)) < acknowledged and time.monotonic() < deadline:
        time.sleep(0.5)
    ids = stored_ids(stack)
    print(f"\nsent {MESSAGES} acknowledged {acknowledged} stored {len(ids)} "
          f"(distinct {len(set(ids))}) evaluated {len(subjects)}")  # fmt: skip
    assert acknowledged == MESSAGES
    assert sorted(ids) == sorted(f"m{i}" for i in range(MESSAGES))  # each once
    assert subjects == {f"agent-{i:03d}" for i in range(MESSAGES)}
