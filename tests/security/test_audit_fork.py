"""A forked or rewritten audit chain is an incident, a /healthz problem and a failed verify,
and ``watchfloor audit repair`` makes the signed files win while keeping Redis's side.

The stack is real: a Redis server, the API served over HTTP on 127.0.0.1, the
audit task (``AuditLog.run``) mirroring to files and signing as the monitor
runs it, the incident store, and the ``watchfloor`` CLI. "Redis came back from
an older snapshot" is played with DUMP/RESTORE of the audit keys taken earlier.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_api_support import ApiStack, api_fixture
from watchfloor.cli import main
from watchfloor.core import keys
from watchfloor.monitor_process import integrity_incident
from watchfloor.security.audit_chain import canonical, record_hash
from watchfloor.security.audit_files import last_record, read_records

api = api_fixture()
AUDIT_KEYS = (keys.AUDIT, keys.AUDIT_HEAD, keys.AUDIT_CHECKPOINTS)


class AuditTask:
    """The audit task as the monitor runs it (with its incident hook), stopped and started
    as a monitor restart would."""

    def __init__(self, api: ApiStack) -> None:
        api.audit.tick_s = 0.05
        api.audit.checkpoint_every = 5
        api.audit.on_problem = integrity_incident(api.incidents, api.runner.on_incident)
        self.api, self.stop_event, self.task = api, asyncio.Event(), None

    def start(self) -> None:
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(self.api.audit.run(self.stop_event))

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
        self.task = None


@pytest.fixture
async def audit_task(api: ApiStack) -> AsyncIterator[AuditTask]:
    task = AuditTask(api)
    task.start()
    yield task
    await task.stop()


@pytest.fixture
async def running(api: ApiStack, audit_task: AuditTask) -> ApiStack:
    """The API with the audit task running as in the monitor."""
    return api


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 15) -> Any:
    for _ in range(int(timeout / 0.05)):
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def append(api: ApiStack, count: int) -> None:
    for i in range(count):
        await api.audit.append("alice", "duty_manager", "incident.ack", f"inc-{i}")


def files_last(data_dir: Path) -> int:
    last = last_record(data_dir / "audit")
    return int(last["seq"]) if last else 0


async def halted(api: ApiStack) -> None:
    """What a security officer must see: /healthz, the API's verify, an incident."""
    status, health = await api.call("GET", "/healthz", None)
    assert status == 200 and health["status"] == "degraded", health
    assert any(p.startswith("audit integrity:") for p in health["problems"]), health
    status, verify = await api.call("GET", "/v1/audit/verify", "security_officer")
    assert (status, verify["ok"]) == (200, False), verify
    assert "integrity" in verify["problems"]
    incidents = [i for i in await api.incidents.list("open") if i.kind == "integrity"]
    assert len(incidents) == 1 and incidents[0].severity == "critical"

    async def run_of_incident() -> str | None:
        # the run is started by the incident's hook, just after the problem is recorded
        [incident] = [i for i in await api.incidents.list("open") if i.kind == "integrity"]
        return incident.playbook_run

    # the security officer is paged through its playbook
    run_id = await until(run_of_incident, "the integrity incident's playbook run", timeout=5)
    status, run = await api.call("GET", f"/v1/runs/{run_id}", "security_officer")
    assert (status, run["playbook"]) == (200, "audit-integrity"), run


async def test_a_redis_snapshot_fork_halts_loudly_and_repair_lets_the_files_win(
    running: ApiStack, audit_task: AuditTask, data_dir: Path, redis_url: str
):
    api = running
    await append(api, 12)
    await until(lambda: asyncio.sleep(0, files_last(data_dir) == 12), "12 records mirrored")
    snapshot = {k: await api.redis.dump(k) for k in AUDIT_KEYS}
    await append(api, 8)
    await until(lambda: asyncio.sleep(0, files_last(data_dir) == 20), "20 records mirrored")

    # The monitor is down (restarting) while Redis comes back from the older snapshot: had
    # its audit task seen Redis behind the files before the API write below, it would have
    # restored the missing records from the files (Redis lost them, nothing forked).
    await audit_task.stop()
    # Redis comes back from the older snapshot (at once, as a restarted Redis would)...
    async with api.redis.pipeline(transaction=True) as pipe:
        for key, value in snapshot.items():
            if value is None:
                pipe.delete(key)
            else:
                pipe.restore(key, 0, value, replace=True)
        await pipe.execute()
    status, _ = await api.call(  # ...and one API write lands before the monitor restores
        "POST", "/v1/incidents", "duty_manager",
        body={"title": "VIP line down", "severity": "major", "subject": "vip"},
    )  # fmt: skip
    assert status == 201
    audit_task.start()  # the monitor is back
    await until(lambda: api.audit.problems(), "the integrity problem")
    await halted(api)
    signed = len(await api.audit.checkpoints())

    code = await asyncio.to_thread(
        main, ["audit", "repair", "--data-dir", str(data_dir), "--redis", redis_url]
    )
    assert code == 0
    forked = list((data_dir / "audit").glob("forked-*.jsonl"))
    assert len(forked) == 1
    kept = [json.loads(line) for line in forked[0].read_text().splitlines()]
    # The fork is the API write, then the integrity playbook's start (Redis only).
    assert [(r["seq"], r["action"]) for r in kept][:2] == [(13, "incident.create"),
                                                          (14, "run.start")]  # fmt: skip

    await until(lambda: asyncio.sleep(0, files_last(data_dir) == 21), "mirroring resumed")
    assert not await api.audit.problems()
    repair = list(read_records(data_dir / "audit"))[-1]
    assert (repair["action"], repair["details"]["fork_at"], repair["details"]["kept"]) == (
        "audit.repair", 13, "files")  # fmt: skip
    await until(lambda: _more(api, signed), "signing resumed")
    status, verify = await api.call("GET", "/v1/audit/verify", "security_officer")
    assert (verify["ok"], verify["problems"]) == (True, {}), verify


async def _more(api: ApiStack, signed: int) -> bool:
    return len(await api.audit.checkpoints()) > signed


async def test_a_redis_only_rewrite_of_the_unsigned_tail_is_never_signed(
    running: ApiStack, data_dir: Path
):
    api = running
    api.audit.checkpoint_every = 10
    await append(api, 3)  # the first pass signs these at once
    await until(lambda: _more(api, 0), "the first checkpoint")
    await append(api, 2)  # records 4..5: mirrored, not yet signed
    await until(lambda: asyncio.sleep(0, files_last(data_dir) == 5), "5 records mirrored")
    records = await api.audit.read()
    records[3]["actor"] = "mallory"  # rewrite records 4..5 in Redis, hashes recomputed
    prev = records[2]["hash"]
    for record in records[3:]:
        record["prev"] = prev
        record["hash"] = prev = record_hash(record)
    async with api.redis.pipeline(transaction=True) as pipe:  # one rewrite, seen whole
        pipe.delete(keys.AUDIT)
        for record in records:
            pipe.xadd(keys.AUDIT, {"r": canonical(record)}, id=f"{record['seq']}-0")
        pipe.hset(keys.AUDIT_HEAD, mapping={"seq": 5, "hash": prev})
        await pipe.execute()

    await until(lambda: api.audit.problems(), "the integrity problem")
    await halted(api)
    problem = (await api.audit.problems())["integrity"]["reason"]
    assert "record 5 in Redis differs from the mirrored files" in problem
    await append(api, 6)  # past checkpoint_every: still nothing signed over the rewrite
    await asyncio.sleep(0.3)
    assert [c["size"] for c in await api.audit.checkpoints()] == [3]
    assert "integrity" in await api.audit.problems()
