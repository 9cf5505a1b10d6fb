"""Real processes for the reliability suite: monitor workers, a collector, a producer, counts.

Every test of the suite prints one row of :class:`Counts`: events sent /
acknowledged / stored / processed / duplicates, incidents expected / opened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from tests.monitor.processes import ADMIN, CollectorProcess, wait_for
from watchfloor.core import engine_status, keys
from watchfloor.core.bus import BATCH_FIELD
from watchfloor.core.redis_client import connect_sync

LEASE_S = 3.0
OURS = ("leak-", "probe-", "bg-")
"""Id prefixes of the events the suite's producers send."""
ID_TEXT = "客户身份证号 11010519491231002X 请核对"


class WorkerProcess:
    """``watchfloor monitor --worker-id ID --no-api`` on the test's Redis."""

    def __init__(self, redis_url: str, data_dir: Path, worker_id: str, **env: str) -> None:
        self.redis_url = redis_url
        self.data_dir = data_dir
        self.id = worker_id
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "WATCHFLOOR_ADMIN_TOKEN": ADMIN,
            "WATCHFLOOR_MONITOR_LEASE_S": str(LEASE_S),
            "WATCHFLOOR_MONITOR_BLOCK_MS": "50",
            "WATCHFLOOR_MONITOR_CHECKPOINT_INTERVAL_S": "0.2",
            **self.env,
        }
        log = (self.data_dir / f"{self.id}.out").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watchfloor", "monitor", "--worker-id", self.id, "--no-api",
             "--redis", self.redis_url, "--data-dir", str(self.data_dir)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        return (self.data_dir / f"{self.id}.out").read_text(errors="replace")[-3000:]


def held_shards(url: str) -> dict[int, str | None]:
    """Shard -> worker id holding its lease."""
    client = connect_sync(url)
    try:
        n = int(client.get(keys.SHARDS) or 0)
        return {s: _text(client.get(keys.shard_lease(s))) for s in range(n)}
    finally:
        client.close()


@dataclass
class Producer:
    """Posts batches to a collector with event ids, resending what was not answered."""

    collector: str
    token: str = ADMIN
    sent: int = 0
    acknowledged: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)

    def post(self, events: list[dict[str, Any]], deadline_s: float = 60) -> None:
        body = json.dumps(events).encode()
        self.sent += len(events)
        deadline = time.monotonic() + deadline_s
        while True:
            request = urllib.request.Request(
                self.collector + "/v1/events", data=body, method="POST",
                headers={"Authorization": f"Bearer {self.token}",
                         "Content-Type": "application/json"},
            )  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = json.loads(response.read())
                    if response.status == 202:
                        self.acknowledged += answer["accepted"] + answer["duplicates"]
                        self.duplicates += answer["duplicates"]
                        return
            except urllib.error.HTTPError as exc:
                self.errors.append(f"{exc.code} {exc.read()[:300]!r}")
                return
            except (urllib.error.URLError, OSError):
                pass  # the collector is restarting: resend, as a producer does
            if time.monotonic() > deadline:
                raise AssertionError("a batch was never acknowledged")
            time.sleep(0.2)


def leak(agent: str, n: int) -> dict[str, Any]:
    return {"type": "agent.message", "id": f"leak-{agent}-{n}", "ts": time.time(),
            "source": "im", "agent_id": agent, "conversation_id": f"c-{agent}",
            "channel": "chat", "direction": "to_customer", "text": ID_TEXT}  # fmt: skip


def probe(component: str, status: str, n: int) -> dict[str, Any]:
    return {"type": "health", "id": f"probe-{component}-{n}", "ts": time.time(),
            "source": "probes", "component": component, "status": status}  # fmt: skip


def background(n: int, queues: int = 40) -> list[dict[str, Any]]:
    """Quiet contact-centre traffic: queue snapshots nobody should be paged for."""
    now = time.time()
    return [
        {"type": "queue.stats", "id": f"bg-{n}-{q}", "ts": now, "source": "acd",
         "queue": f"q-{q}", "channel": "chat", "waiting": 1, "longest_wait_s": 5.0,
         "agents_available": 4, "agents_busy": 3}
        for q in range(queues)
    ]  # fmt: skip


@dataclass
class Counts:
    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    processed: int = 0
    duplicates: int = 0
    incidents_expected: int = 0
    incidents_opened: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str) -> str:
        more = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (
            f"[reliability] {name}: events sent={self.sent} acknowledged={self.acknowledged} "
            f"stored={self.stored} processed={self.processed} duplicates={self.duplicates} | "
            f"incidents expected={self.incidents_expected} opened={self.incidents_opened} {more}"
        )


def _stored_events(url: str) -> list[dict[str, Any]]:
    """Every event in every shard's stream."""
    client = connect_sync(url)
    try:
        return [
            event
            for shard in range(int(client.get(keys.SHARDS) or 0))
            for _, fields in client.xrange(keys.events_shard(shard))
            for event in msgpack.unpackb(fields[BATCH_FIELD])
        ]
    finally:
        client.close()


def stored(url: str, ours: tuple[str, ...] = OURS) -> tuple[int, int, int]:
    """Over every shard's stream: (distinct ids of the producer's events, copies of them
    beyond the first, events of others: the collector's own heartbeats...)."""
    seen: Counter[str] = Counter()
    others = 0
    for event in _stored_events(url):
        event_id = event.get("id") or ""
        if event_id.startswith(ours):
            seen[event_id] += 1
        else:
            others += 1
    return len(seen), sum(c - 1 for c in seen.values()), others


def stored_ids(url: str, ours: tuple[str, ...] = OURS) -> set[str]:
    """Ids of the producer's events in every shard's stream."""
    return {e["id"] for e in _stored_events(url) if (e.get("id") or "").startswith(ours)}


def processed(url: str) -> int:
    client = connect_sync(url)
    try:
        return int(engine_status.read_sync(client).get("events", 0))
    finally:
        client.close()


def processed_ours(url: str) -> int:
    """Events of the producer's the engines folded in (their total less the others stored,
    read around it so that a heartbeat landing meanwhile cannot skew it)."""
    while True:
        before = stored(url)[2]
        total = processed(url)
        if stored(url)[2] == before:
            return total - before


def incidents(url: str) -> list[tuple[str, str]]:
    """(rule, subject) of every incident, one per incident (duplicates show)."""
    client = connect_sync(url)
    try:
        out = []
        for raw in client.zrange(keys.INCIDENTS_ALL, 0, -1):
            inc = msgpack.unpackb(client.get(keys.incident(raw.decode())), raw=False)
            out.append((inc["rule"], inc["subject"]))
        return sorted(out)
    finally:
        client.close()


def start_collector(redis_url: str, data_dir: Path) -> CollectorProcess:
    collector = CollectorProcess(redis_url, data_dir)
    collector.start()
    return collector


def until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    return wait_for(predicate, timeout, what)


def in_thread(fn: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def _text(raw: Any) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw
