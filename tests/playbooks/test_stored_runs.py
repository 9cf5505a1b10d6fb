"""Runs are typed structs inside, but stored and served in the shape runs always had.

A run written by the dict-based runner (msgpack map) loads, is served unchanged,
and can be worked on; a run missing fields added later loads with their defaults;
a new run's stored map and served JSON have exactly the keys of the old shape; a
side effect stored as a dict before effects were structs is carried out once.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

from tests.playbooks.helpers import wait_for
from watchfloor.core import keys

T0 = 1_790_000_000.0
RUN_KEYS = {
    "id", "playbook", "title", "title_zh", "incident", "state", "drill", "started_at",
    "started_by", "finished_at", "first_ack_at", "standing_down", "fx_seq", "values", "steps",
}  # fmt: skip
STEP_KEYS = {
    "id", "title", "title_zh", "owner", "state", "deadline", "deadline_s", "deadline_from",
    "needs", "action", "approval", "escalation", "done_by", "done_at", "note", "escalations",
    "auto_escalations", "ready_at", "late", "attempt", "action_result", "awaiting_approval",
    "notifications",
}  # fmt: skip


def legacy_run(run_id: str) -> dict[str, Any]:
    """A run exactly as the dict-based runner wrote it (one step, started, not worked)."""
    step = {
        "id": "contain", "title": "Contain", "title_zh": "遏制", "owner": "oncall",
        "state": "ready", "deadline": T0 + 600, "deadline_s": 600.0, "deadline_from": "start",
        "needs": [], "action": None,
        "approval": {"role": "security_officer", "by": None, "at": None},
        "escalation": {"after_s": 60.0, "every_s": 120.0, "repeat": 2, "notify": ["duty-group"],
                       "roles": ["duty_manager"], "message": None},
        "done_by": None, "done_at": None, "note": None, "escalations": 0,
        "auto_escalations": 0, "ready_at": T0, "late": False, "attempt": 0,
        "action_result": None, "awaiting_approval": False, "notifications": [],
    }  # fmt: skip
    return {
        "id": run_id, "playbook": "data-leak", "title": "Data leak", "title_zh": "数据泄露",
        "incident": None, "state": "active", "drill": True, "started_at": T0,
        "started_by": "li.wei", "finished_at": None, "first_ack_at": None,
        "standing_down": None, "fx_seq": 2, "values": {"subject": "crm", "run": run_id},
        "steps": [step],
    }  # fmt: skip


async def store(redis: Any, run: dict[str, Any]) -> None:
    await redis.set(keys.run(run["id"]), msgpack.packb(run, use_bin_type=True))
    await redis.zadd(keys.RUNS_ALL, {run["id"]: run["started_at"]})
    await redis.zadd(keys.RUNS_ACTIVE, {run["id"]: run["started_at"]})


async def test_a_run_stored_as_a_dict_is_served_unchanged_and_can_be_worked(
    wired: Any,
) -> None:
    old = legacy_run("RUN-20260101-00001")
    await store(wired.redis, old)
    assert await wired.runner.get(old["id"]) == old
    assert await wired.runner.list("active") == [old]
    run = await wired.runner.step(
        "done", old["id"], "contain", actor="zhang.san", role="oncall", note="cut off"
    )
    step = run["steps"][0]
    assert step["done_by"] == "zhang.san" and step["awaiting_approval"] is True
    assert set(run) == RUN_KEYS and set(step) == STEP_KEYS
    stored = msgpack.unpackb(await wired.redis.get(keys.run(old["id"])), raw=False)
    assert stored == run


async def test_a_run_missing_later_fields_loads_with_their_defaults(wired: Any) -> None:
    old = legacy_run("RUN-20260101-00002")
    for later in ("standing_down", "fx_seq", "first_ack_at"):
        del old[later]
    await store(wired.redis, old)
    run = await wired.runner.get(old["id"])
    assert (run["standing_down"], run["fx_seq"], run["first_ack_at"]) == (None, 0, None)


async def test_a_new_run_is_stored_and_served_in_the_old_shape(wired: Any) -> None:
    incident = await wired.incidents.create_manual(
        title="Leak", severity="critical", subject="crm", actor="li.wei"
    )
    run = await wired.runner.start("data-leak", incident.id, actor="li.wei", role="duty_manager")
    assert set(run) == RUN_KEYS
    assert all(set(step) == STEP_KEYS for step in run["steps"])
    stored = msgpack.unpackb(await wired.redis.get(keys.run(run["id"])), raw=False)
    assert stored == run == json.loads(json.dumps(run))
    aborted = await wired.runner.abort(run["id"], actor="li.wei", role="duty_manager")
    # fields a run gets only when it ends appear then, as before (a score: drills only)
    assert set(aborted) == RUN_KEYS | {"aborted_by", "note"}
    assert aborted["aborted_by"] == "li.wei" and aborted["note"] is None


async def test_an_effect_stored_as_a_dict_is_carried_out_once(wired: Any) -> None:
    old = legacy_run("RUN-20260101-00003")
    await store(wired.redis, old)
    member = f"{old['id']}|-|fx|2"
    details = {"playbook": "data-leak", "incident": None, "drill": True}
    record = {"actor": "li.wei", "role": "duty_manager", "action": "run.start",
              "target": old["id"], "outcome": "ok", "details": details}  # fmt: skip
    payload = msgpack.packb({"type": "audit", "record": record}, use_bin_type=True)
    await wired.redis.hset(keys.RUN_EFFECTS, member, payload)
    await wired.redis.zadd(keys.RUN_TIMERS, {member: T0})

    async def gone() -> bool:
        return await wired.redis.zscore(keys.RUN_TIMERS, member) is None

    await wait_for(gone)
    written = [r for r in wired.audit.records if r["details"].get("fx") == member]
    assert len(written) == 1
    assert {k: written[0][k] for k in ("actor", "role", "action", "target", "outcome")} == {
        k: record[k] for k in ("actor", "role", "action", "target", "outcome")
    }
    assert written[0]["details"] == {**details, "fx": member}
    assert await wired.redis.hget(keys.RUN_EFFECTS, member) is None
