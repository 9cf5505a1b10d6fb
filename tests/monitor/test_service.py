"""The engine worker on a real Redis: stream in, incidents out, checkpoints, dead letters.

The last test kills a real monitor PROCESS (SIGKILL) in the middle of twenty
minutes of a contact centre's stream (an outage, a lost heartbeat, an SLA
breach) and checks that the restarted monitor leaves exactly the incidents an
uninterrupted run leaves (ids aside: a killed process may use up a sequence
number).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
import redis as sync_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.doubles import (
    T0,
    CountingDetector,
    DownTwiceDetector,
    day_scenario,
    health,
    offered,
)
from watchfloor.core import keys
from watchfloor.core.bus import EventProducer
from watchfloor.core.config import load_config
from watchfloor.core.events import Event, Heartbeat, QueueStats, encode_batch
from watchfloor.core.incidents import Incident, IncidentStore
from watchfloor.core.redis_server import free_port
from watchfloor.monitor import checkpoint as ckpt
from watchfloor.monitor.board import Board
from watchfloor.monitor.engine import Engine
from watchfloor.monitor.lifecycle import Lifecycle, LifecycleConfig
from watchfloor.monitor.service import MonitorService

CONFIG = load_config(
    "[redis]\nshards = 1\n[monitor]\nblock_ms = 20\nclaim_idle_ms = 50\nmax_deliveries = 3\n"
)


def engine(inhibit: dict | None = None) -> Engine:
    board = Board()
    eng = Engine(
        [CountingDetector(threshold=5), DownTwiceDetector()],
        lifecycle=Lifecycle(LifecycleConfig(inhibit=inhibit or {})),
        observers=[board],
    )
    eng.on_signals = board.note_signals
    return eng


def service(redis, *, hook=None, inhibit=None, now=T0) -> MonitorService:
    return MonitorService(
        redis,
        CONFIG,
        engine=engine(inhibit),
        on_incident=hook,
        consumer_name="m1",
        clock=lambda: now,
    )


async def drain(svc: MonitorService, rounds: int = 4) -> None:
    for _ in range(rounds):
        await svc.step()
    await svc.commit(force=True)


def surge(start: float = T0, n: int = 12, queue: str = "presale-chat") -> list:
    return [offered(start + i * 0.5, queue, i) for i in range(n)]


async def test_a_surge_on_the_stream_opens_one_incident_and_every_entry_is_acked(
    any_redis,
) -> None:
    producer = EventProducer(any_redis, stream=keys.events_shard(0))
    ids = [await producer.publish_events(surge()[i : i + 4]) for i in range(0, 12, 4)]
    ids.append(await producer.publish_events([offered(T0 + 9)]))
    svc = service(any_redis)
    await svc.start()
    await drain(svc)
    incidents = await IncidentStore(any_redis).list("all")
    assert [(i.rule, i.subject, i.count) for i in incidents] == [("surge.test", "presale-chat", 1)]
    pending = await any_redis.xpending(keys.events_shard(0), keys.EVENTS_GROUP)
    assert pending["pending"] == 0
    state = await ckpt.load(any_redis, 0)
    assert state.last_id == ids[-1]
    status = await any_redis.hgetall(keys.engine_status(0))
    assert int(status[b"events"]) == 13
    assert int(status[b"batches"]) == 4


async def test_a_new_service_resumes_from_the_checkpoint_and_opens_nothing_twice(
    any_redis,
) -> None:
    producer = EventProducer(any_redis, stream=keys.events_shard(0))
    events = surge() + [offered(T0 + 20 + i * 3, n=i) for i in range(30)]
    for i in range(0, 20, 5):
        await producer.publish_events(events[i : i + 5])
    first = service(any_redis)
    await first.start()
    await drain(first)
    for i in range(20, len(events), 5):
        await producer.publish_events(events[i : i + 5])
    second = service(any_redis)
    await second.start()
    assert second.engine.stats.events == 20
    await drain(second)
    incidents = await IncidentStore(any_redis).list("all")
    assert [(i.subject, i.state, i.count) for i in incidents] == [("presale-chat", "resolved", 1)]


async def test_actions_already_applied_before_a_crash_are_not_applied_twice(
    redis_client,
) -> None:
    producer = EventProducer(redis_client, stream=keys.events_shard(0))
    for i in range(0, 12, 4):
        await producer.publish_events(surge()[i : i + 4])
    await producer.publish_events([offered(T0 + 40)])
    crashed = service(redis_client)
    await crashed.start()
    entries = await crashed.consumer.read()
    actions = await crashed._process_entries(entries)
    await crashed.applier.apply(actions)  # ...and dies before its commit
    assert [a.op for a in actions] == ["fire", "clear"]
    again = service(redis_client)
    await again.start()
    await drain(again)
    incidents = await IncidentStore(redis_client).list("all")
    assert [(i.state, i.count) for i in incidents] == [("resolved", 1)]


async def test_an_undecodable_entry_is_dead_lettered_and_raises_an_incident(
    any_redis,
) -> None:
    await any_redis.xadd(keys.events_shard(0), {b"b": b"\xc1not msgpack"})
    svc = service(any_redis)
    await svc.start()
    await drain(svc, rounds=2)
    dead = await any_redis.xrange(keys.dead_letter(0))
    assert len(dead) == 1
    (incident,) = await IncidentStore(any_redis).list("all")
    assert (incident.rule, incident.kind, incident.subject) == (
        "engine.dead_letter",
        "outage",
        keys.events_shard(0),
    )
    assert int((await any_redis.hgetall(keys.engine_status(0)))[b"dead_letters"]) == 1


async def test_an_entry_that_keeps_failing_goes_to_the_dead_letter_stream(redis_client) -> None:
    await EventProducer(redis_client, stream=keys.events_shard(0)).publish_events([offered(T0)])
    svc = service(redis_client)

    def broken(events):
        raise ValueError("cannot decrypt")

    svc._decrypt = broken  # a keyring that cannot open this entry
    await svc.start()
    svc.consumer.claim_every_s = 0.05
    for _ in range(40):
        await svc.step()
        await asyncio.sleep(0.06)  # let the entry go idle so that it is claimed again
        if await redis_client.xlen(keys.dead_letter(0)):
            break
    dead = await redis_client.xrange(keys.dead_letter(0))
    assert len(dead) == 1
    assert b"cannot decrypt" in dead[0][1][b"reason"]
    pending = await redis_client.xpending(keys.events_shard(0), keys.EVENTS_GROUP)
    assert pending["pending"] == 0


async def test_the_hook_hears_of_new_incidents_but_not_of_inhibited_ones(redis_client) -> None:
    heard = []

    async def hook(incident, created, raised):
        heard.append((incident.subject, created, raised))

    producer = EventProducer(redis_client, stream=keys.events_shard(0))
    await producer.publish_events(
        [
            health(T0, "crm", "down"),
            health(T0 + 0.2, "crm", "down"),
            *surge(T0 + 0.5),
            *surge(T0 + 0.5, queue="other"),
            offered(T0 + 9),
        ]
    )
    svc = service(redis_client, hook=hook, inhibit={"presale-chat": ["crm"]})
    await svc.start()
    await drain(svc)
    assert sorted(heard) == [("crm", True, False), ("other", True, False)]
    by_subject = {i.subject: i for i in await IncidentStore(redis_client).list("all")}
    assert by_subject["presale-chat"].evidence["inhibited_by"] == ["crm"]


async def test_board_rows_are_written_with_the_checkpoint(any_redis) -> None:

    stats = QueueStats(
        ts=T0,
        source="acd",
        queue="presale-chat",
        channel="chat",
        waiting=7,
        longest_wait_s=42.0,
        agents_available=1,
        agents_busy=9,
        offered=20,
        answered=16,
        abandoned=2,
        answered_in_sla=12,
    )
    await EventProducer(any_redis, stream=keys.events_shard(0)).publish_events(
        [stats, Heartbeat(ts=T0 + 1, source="chat-gw"), offered(T0 + 8)]
    )
    svc = service(any_redis)
    await svc.start()
    await drain(svc)
    row = msgpack.unpackb(await any_redis.hget(keys.QUEUES, "presale-chat"), raw=False)
    assert (row["waiting"], row["service_level"], row["abandon_rate"]) == (7, 0.75, 0.1)
    beat = msgpack.unpackb(await any_redis.hget(keys.HEALTH, "chat-gw"), raw=False)
    assert beat["status"] == "up"
    changes = await any_redis.xrange(keys.CHANGES)
    kinds = [msgpack.unpackb(f[b"c"], raw=False)["kind"] for _, f in changes]
    assert kinds.count("queue") == 1 and kinds.count("health") == 1


@pytest.mark.parametrize("rounds", [1, 3])
async def test_an_idle_stream_lets_the_wall_clock_advance_the_watermark(
    redis_client, rounds
) -> None:
    svc = service(redis_client, now=T0 + 500)
    await svc.start()
    await EventProducer(redis_client, stream=keys.events_shard(0)).publish_events(
        [Heartbeat(ts=T0, source="chat-gw")]
    )
    await drain(svc, rounds=rounds + 1)
    assert svc.engine.watermark == T0 + 495
    row = msgpack.unpackb(await redis_client.hget(keys.HEALTH, "chat-gw"), raw=False)
    assert row["status"] == "lost"


# --- a real process, killed -----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def publish(client: sync_redis.Redis, batches: list[list[Event]]) -> str:
    pipe = client.pipeline(transaction=False)
    for batch in batches:
        pipe.xadd(keys.events_shard(0), {b"b": encode_batch(batch)})
    return pipe.execute()[-1].decode()


def start_monitor(url: str, data_dir: Path, fault: str | None = None) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if k != "WATCHFLOOR_FAULT_POINT"},
        **({"WATCHFLOOR_FAULT_POINT": fault} if fault else {}),
        "WATCHFLOOR_MONITOR_TICK_S": "0",
        "WATCHFLOOR_REDIS_SHARDS": "1",  # the day's batches are written to shard 0 in order
        "WATCHFLOOR_MONITOR_READ_COUNT": "1",
        "WATCHFLOOR_MONITOR_BLOCK_MS": "50",
        "WATCHFLOOR_MONITOR_CHECKPOINT_INTERVAL_S": "0.05",
        "WATCHFLOOR_API_PORT": str(free_port()),  # the monitor process also serves the API
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watchfloor",
            "monitor",
            "--redis",
            url,
            "--data-dir",
            str(data_dir),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def last_id(client: sync_redis.Redis) -> str:
    raw = client.get(keys.engine_checkpoint(0))
    return ckpt.decode(raw).last_id if raw else "0-0"


def wait_until(predicate, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"monitor exited: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("monitor did not get there in time")
        time.sleep(0.01)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, and a clean exit within 20 s; a slow stop fails with the process's log,
    which names what it was still waiting on (``watchfloor.stop_watch``)."""
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        log = proc.stderr.read().decode()[-6000:]
        raise AssertionError(f"not stopped in 20 s:\n{log}") from None
    assert code == 0, proc.stderr.read().decode()[-2000:]


def incident_rows(client: sync_redis.Redis) -> list[tuple]:
    import msgpack

    out = []
    for incident_id in client.zrange(keys.INCIDENTS_ALL, 0, -1):
        inc = Incident.from_dict(
            msgpack.unpackb(client.get(keys.incident(incident_id.decode())), raw=False)
        )
        out.append(
            (
                inc.kind,
                inc.rule,
                inc.subject,
                inc.severity,
                inc.state,
                inc.opened_at,
                inc.updated_at,
                inc.resolved_at,
                inc.count,
            )
        )
    return sorted(out)


def run_once(url: str, data_dir: Path, kill_at: float | None) -> list[tuple]:
    client = sync_redis.Redis.from_url(url)
    client.flushall()
    batches = day_scenario()
    final = publish(client, batches)
    proc = start_monitor(url, data_dir)
    if kill_at is not None:
        first = client.xrange(keys.events_shard(0), count=int(len(batches) * kill_at))[-1][
            0
        ].decode()
        wait_until(lambda: ckpt.compare_ids(last_id(client), first) >= 0, proc)
        proc.kill()  # SIGKILL: no goodbye, no final checkpoint
        proc.wait(10)
        assert ckpt.compare_ids(last_id(client), final) < 0, "killed too late to prove anything"
        proc = start_monitor(url, data_dir)
    wait_until(lambda: last_id(client) == final, proc)
    stop(proc)
    assert client.xpending(keys.events_shard(0), keys.EVENTS_GROUP)["pending"] == 0
    found = incident_rows(client)
    client.close()
    return found


@pytest.mark.slow
def test_a_monitor_killed_mid_stream_leaves_the_same_incidents_as_an_uninterrupted_one(
    redis_url, tmp_path
) -> None:
    expected = run_once(redis_url, tmp_path / "a", None)
    rules = {(kind, subject) for kind, _, subject, *_ in expected}
    assert {("outage", "crm"), ("outage", "chat-gw"), ("sla", "presale-chat")} <= rules
    assert run_once(redis_url, tmp_path / "b", kill_at=0.3) == expected
    assert run_once(redis_url, tmp_path / "c", kill_at=0.6) == expected


async def test_encrypted_agent_messages_are_decrypted_and_leaks_found_with_masked_evidence(
    redis_client, data_dir
) -> None:
    import dataclasses

    from watchfloor.core.events import AgentMessage
    from watchfloor.security.crypto import FieldCipher, encrypt_event

    cipher = FieldCipher.load(data_dir, create=True)
    message = AgentMessage(
        ts=T0,
        source="im",
        agent_id="agent-017",
        conversation_id="v1",
        channel="chat",
        direction="to_customer",
        text="您的身份证号 11010519491231002X 已登记",
    )
    sealed = encrypt_event(message, cipher)
    assert sealed.text.startswith("wfenc1:")
    await EventProducer(redis_client, stream=keys.events_shard(0)).publish_events(
        [sealed, offered(T0 + 30)]
    )
    config = dataclasses.replace(CONFIG, data_dir=str(data_dir))
    svc = MonitorService(redis_client, config, consumer_name="m1", clock=lambda: T0)
    await svc.start()
    await drain(svc)
    (incident,) = await IncidentStore(redis_client).list("all")
    assert (incident.kind, incident.subject) == ("leak", "agent-017")
    shown = repr(incident.to_dict())
    assert "11010519491231002X" not in shown and "1101" in shown


async def run_through_service(redis_client, events: list, sizes: list[int]) -> list[tuple]:
    await redis_client.flushall()
    producer = EventProducer(redis_client, stream=keys.events_shard(0))
    i = n = 0
    while i < len(events):
        size = sizes[n % len(sizes)]
        await producer.publish_events(events[i : i + size])
        i, n = i + size, n + 1
    # Live, the wall clock is never behind the events: it stands at the end of the day.
    end = max(e.ts for e in events)
    svc = MonitorService(redis_client, CONFIG, consumer_name="m1", clock=lambda: end)
    await svc.start()
    while svc.engine.stats.events < len(events):
        await svc.step()
    await svc.applier.apply(svc.engine.flush())
    incidents = await IncidentStore(redis_client).list("all")
    return sorted(
        (i.kind, i.rule, i.subject, i.severity, i.state, i.opened_at, i.count) for i in incidents
    )


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.integers(1, 300), min_size=1, max_size=8))
async def test_out_of_order_entries_within_the_lateness_open_the_same_incidents_as_sorted(
    redis_client, seed, sizes
) -> None:
    import random

    events = [e for batch in day_scenario() for e in batch]
    rnd = random.Random(seed)
    shuffled = sorted(events, key=lambda e: e.ts + rnd.random() * 4.99)
    expected = await run_through_service(redis_client, events, [1000])
    assert len(expected) >= 3
    assert await run_through_service(redis_client, shuffled, sizes) == expected


async def test_an_unreadable_checkpoint_does_not_keep_the_monitor_down(redis_client) -> None:
    await redis_client.set(
        keys.engine_checkpoint(0),
        ckpt.encode(ckpt.Checkpoint(engine={"watermark": "not a number"}, last_id="0-0")),
    )
    await EventProducer(redis_client, stream=keys.events_shard(0)).publish_events(
        [*surge(), offered(T0 + 9)]
    )
    svc = MonitorService(redis_client, CONFIG, consumer_name="m1", clock=lambda: T0)
    await svc.start()
    await drain(svc)
    assert svc.engine.stats.events == 13
    assert ckpt.decode(await redis_client.get(keys.engine_checkpoint(0))).last_id != "0-0"


async def wait_for(predicate, timeout: float = 15.0) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    deadline = time.monotonic() + timeout
    while True:
        try:
            if await predicate():
                return
        except RedisConnectionError:
            pass  # the test's own client meets the restarted server
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_monitor_rides_out_a_redis_restart_and_resumes_from_its_checkpoint(
    private_redis,
) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(private_redis.url)
    producer = EventProducer(client, stream=keys.events_shard(0))
    await producer.publish_events([*surge(), offered(T0 + 9)])
    now = [T0 + 12]
    svc = MonitorService(client, CONFIG, engine=engine(), consumer_name="m1", clock=lambda: now[0])
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))

    async def opened() -> bool:
        return len(await IncidentStore(client).list("all")) == 1

    await wait_for(opened)
    private_redis.kill()
    now[0] = T0 + 100
    await asyncio.sleep(1.5)
    assert svc.engine.watermark <= T0 + 7, "no wall-clock tick while Redis is away"
    now[0] = T0 + 20
    private_redis.start()
    await producer.publish_events([offered(T0 + 30)])

    async def resolved() -> bool:
        incidents = await IncidentStore(client).list("all")
        return [i.state for i in incidents] == ["resolved"]

    await wait_for(resolved)
    stop.set()
    await asyncio.wait_for(task, 10)
    state = await ckpt.load(client, 0)
    assert state.engine is not None and state.engine["max_ts"] == T0 + 30
    await client.aclose()


async def test_late_entries_are_counted_in_the_status_and_logged(redis_client, caplog) -> None:
    producer = EventProducer(redis_client, stream=keys.events_shard(0))
    await producer.publish_events([offered(T0 + 30)])
    await producer.publish_events([offered(T0), health(T0 + 1, "crm", "down")])
    svc = service(redis_client)
    await svc.start()
    await drain(svc)
    status = await redis_client.hgetall(keys.engine_status(0))
    assert int(status[b"late_events"]) == 2
    assert status[b"late_by_type"] == b'{"contact": 1, "health": 1}'
    assert "late events dropped new=2" in caplog.text


# --- an incident and its follow-up work are one unit ---------------------------------


def audit_opened(client: sync_redis.Redis, incident_id: str) -> int:
    """How many ``incident.opened`` audit records name ``incident_id``."""
    import json

    found = 0
    for _, fields in client.xrange(keys.AUDIT):
        record = json.loads(next(iter(fields.values())))
        found += record["action"] == "incident.opened" and record["target"] == incident_id
    return found


def runs_of(client: sync_redis.Redis, incident_id: str) -> list[str]:
    out = []
    for run_id in client.zrange(keys.RUNS_ALL, 0, -1):
        run = msgpack.unpackb(client.get(keys.run(run_id.decode())), raw=False)
        if run["incident"] == incident_id:
            out.append(run["id"])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["after_incident_write", "after_incident_followup"])
def test_a_monitor_killed_around_an_incident_write_leaves_it_its_run_and_audit_once(
    redis_url, tmp_path, fault
) -> None:
    from watchfloor.core.events import DataAccess
    from watchfloor.security.key_setup import init_keys

    data_dir = tmp_path / "data"
    init_keys(data_dir)
    client = sync_redis.Redis.from_url(redis_url)
    now = time.time()
    export = DataAccess(
        ts=now, source="crm", actor="agent-7", action="export", resource="/customers", records=5000
    )
    publish(client, [[export], [Heartbeat(ts=now + 20, source="crm")]])
    proc = start_monitor(redis_url, data_dir, fault=fault)
    assert proc.wait(60) == 137, proc.stderr.read().decode()[-2000:]
    [incident_id] = [i.decode() for i in client.zrange(keys.INCIDENTS_ALL, 0, -1)]
    proc = start_monitor(redis_url, data_dir)
    assert client.hlen(keys.INCIDENT_OUTBOX) == 1  # the follow-up work that was cut short
    wait_until(lambda: client.hlen(keys.INCIDENT_OUTBOX) == 0, proc)
    stop(proc)
    assert len(runs_of(client, incident_id)) == 1
    assert audit_opened(client, incident_id) == 1
    assert client.hlen(keys.INCIDENT_OUTBOX) == 0
    client.close()


# --- a condition that still holds after a person resolved its incident ---------------


@pytest.mark.parametrize(
    ("after_resolve", "reopens"),
    [
        ("down", True),  # still down at the next evaluation: reopened, linked, notified
        ("up", False),  # recovered meanwhile: the person's resolve stands
    ],
)
async def test_a_condition_that_still_holds_after_a_manual_resolve_reopens_as_a_linked_incident(
    any_redis, after_resolve, reopens
) -> None:
    heard = []

    async def hook(incident, created, raised):
        heard.append((incident.id, created))

    producer = EventProducer(any_redis, stream=keys.events_shard(0))
    store = IncidentStore(any_redis)
    svc = service(any_redis, hook=hook)
    await svc.start()
    await producer.publish_events(
        [health(T0, "crm", "down"), health(T0 + 0.2, "crm", "down"), offered(T0 + 9)]
    )
    await drain(svc)
    [first] = await store.list("all")
    await store.resolve(first.id, actor="li.wei", note="looks fine to me", at=T0 + 9.5)
    await producer.publish_events([health(T0 + 9.6, "crm", after_resolve), offered(T0 + 20)])
    await drain(svc)
    incidents = await store.list("all")
    if not reopens:
        assert [i.id for i in incidents] == [first.id]
        assert await any_redis.hlen(keys.INCIDENT_REOPEN) == 0
        return
    second = next(i for i in incidents if i.id != first.id)
    assert (second.rule, second.subject, second.state) == (first.rule, "crm", "open")
    assert second.reopened_from == first.id
    assert heard == [(first.id, True), (second.id, True)]
    assert {"event": "reopened", "incident": second.id}.items() <= (
        (await store.timeline(first.id))[-1].items()
    )
    assert (await store.timeline(second.id))[0]["reopened_from"] == first.id
    assert await any_redis.hlen(keys.INCIDENT_REOPEN) == 0
    # When the condition really clears, the engine resolves the reopened incident.
    await producer.publish_events([health(T0 + 21, "crm", "up"), offered(T0 + 30)])
    await drain(svc)
    assert [(i.id, i.state) for i in await store.list("all")] == [
        (second.id, "resolved"),
        (first.id, "resolved"),
    ]


async def test_follow_up_work_whose_hook_failed_is_kept_and_done_later(redis_client) -> None:
    heard = []

    async def failing(incident, created, raised):
        raise ConnectionError("runner unreachable")

    async def hook(incident, created, raised):
        heard.append((incident.subject, created))

    await EventProducer(redis_client, stream=keys.events_shard(0)).publish_events(
        [*surge(), offered(T0 + 9)]
    )
    first = service(redis_client, hook=failing)
    await first.start()
    await drain(first)
    assert await redis_client.hlen(keys.INCIDENT_OUTBOX) == 1
    first.applier.on_incident = hook
    first._next_outbox = 0.0  # the retry is due
    await first.step()
    assert heard == [("presale-chat", True)]
    assert await redis_client.hlen(keys.INCIDENT_OUTBOX) == 0
