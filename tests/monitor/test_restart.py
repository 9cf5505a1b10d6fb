"""A monitor PROCESS killed with SIGKILL mid-stream resumes exactly: same incidents.

The stream holds twenty minutes of a contact centre (probes, heartbeats, queue
snapshots, contacts) with an outage, a lost heartbeat and an SLA breach in it.
One run processes it without interruption; the other is killed while working
and started again. Both must leave the same incidents behind (ids aside: a
sequence number may be used up by the killed process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as sync_redis

from core import keys
from core.events import Contact, Event, Health, Heartbeat, QueueStats, encode_batch
from monitor import checkpoint as ckpt
from monitor.incidents import Incident

T0 = 1_763_800_000.0
SPAN_S = 1_200
ROOT = Path(__file__).resolve().parents[2]


def scenario() -> list[list[Event]]:
    """One batch per second of event time."""
    batches = []
    for s in range(SPAN_S):
        ts = T0 + s
        batch: list[Event] = []
        if s % 10 == 0:
            crm = "down" if 300 <= s < 420 else "up"
            batch += [
                Health(ts=ts, source="probe", component="crm", status=crm),
                Health(ts=ts + 0.1, source="probe", component="ivr", status="up"),
            ]
            if not 600 <= s < 900:
                batch.append(Heartbeat(ts=ts + 0.2, source="chat-gw"))
            breach = 700 <= s < 1000
            batch.append(
                QueueStats(
                    ts=ts + 0.3,
                    source="acd",
                    queue="presale-chat",
                    channel="chat",
                    waiting=25 if breach else 2,
                    longest_wait_s=140.0 if breach else 8.0,
                    agents_available=0 if breach else 3,
                    agents_busy=12,
                )
            )
        batch += [
            Contact(
                ts=ts + 0.01 * i,
                source="acd",
                contact_id=f"c{s}-{i}",
                queue="presale-chat",
                channel="chat",
                action="offered",
            )
            for i in range(3)
        ]
        batches.append(batch)
    return batches


def publish(client: sync_redis.Redis, batches: list[list[Event]]) -> str:
    pipe = client.pipeline(transaction=False)
    for batch in batches:
        pipe.xadd(keys.EVENTS, {b"b": encode_batch(batch)})
    return pipe.execute()[-1].decode()


def start_monitor(url: str, data_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "WATCHFLOOR_MONITOR_TICK_S": "0",
        "WATCHFLOOR_MONITOR_READ_COUNT": "5",
        "WATCHFLOOR_MONITOR_BLOCK_MS": "50",
        "PYTHONPATH": str(ROOT),
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
    raw = client.get(keys.ENGINE_CHECKPOINT)
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
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, proc.stderr.read().decode()[-2000:]


def incidents(client: sync_redis.Redis) -> list[tuple]:
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
    batches = scenario()
    final = publish(client, batches)
    proc = start_monitor(url, data_dir)
    if kill_at is not None:
        first = client.xrange(keys.EVENTS, count=int(len(batches) * kill_at))[-1][0].decode()
        wait_until(lambda: ckpt.compare_ids(last_id(client), first) >= 0, proc)
        proc.kill()  # SIGKILL: no goodbye, no final checkpoint
        proc.wait(10)
        assert ckpt.compare_ids(last_id(client), final) < 0, "killed too late to prove anything"
        proc = start_monitor(url, data_dir)
    wait_until(lambda: last_id(client) == final, proc)
    stop(proc)
    assert client.xpending(keys.EVENTS, keys.EVENTS_GROUP)["pending"] == 0
    found = incidents(client)
    client.close()
    return found


@pytest.mark.slow
def test_a_monitor_killed_mid_stream_leaves_the_same_incidents_as_an_uninterrupted_one(
    redis_url, tmp_path
) -> None:
    expected = run_once(redis_url, tmp_path / "a", None)
    rules = {(kind, subject) for kind, _, subject, *_ in expected}
    assert {("outage", "crm"), ("outage", "chat-gw"), ("sla", "presale-chat")} <= rules
    assert run_once(redis_url, tmp_path / "b", kill_at=0.35) == expected
    assert run_once(redis_url, tmp_path / "c", kill_at=0.8) == expected
