"""Pieces of the reliability tests 4-7 that the shared ``stack`` module does not have.

A data directory set up as an operator would (``watchfloor keys init``, a config
file), a collector that comes back on its own port, asynchronous waits (the tests
that serve a webhook receiver run it on their own event loop, which must never be
blocked), the order of the events in each shard's stream, the counts the suite prints, two
monitor workers, and a playbook run as the timer loop left it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack
import redis.asyncio as aioredis

from tests.monitor.processes import publish
from tests.reliability.stack import ID_TEXT, WorkerProcess
from watchfloor.core import engine_status, keys
from watchfloor.core.bus import BATCH_FIELD
from watchfloor.core.events import AgentMessage
from watchfloor.core.incidents import IncidentStore
from watchfloor.core.redis_client import connect_sync
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner


def init_data_dir(data_dir: Path, config: str) -> Path:
    """``data_dir`` with ``watchfloor.toml`` = ``config`` and every key ``keys init`` makes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "watchfloor.toml").write_text(config, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "watchfloor", "keys", "init", "--data-dir", str(data_dir)],
        env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return data_dir


def playbook_data_dir(tmp_path: Path, playbook: str, receiver: str, settings: str = "") -> Path:
    """A data directory whose library holds ``playbook`` and whose webhook ``duty-group``
    posts JSON to ``receiver``; ``settings`` are more lines of ``[playbooks]``."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "playbook.toml").write_text(playbook, encoding="utf-8")
    config = (
        f'[playbooks]\nlibrary = "{library}"\n{settings}'
        f'[[webhooks]]\nname = "duty-group"\nkind = "json"\nurl = "{receiver}/json"\n'
    )
    return init_data_dir(tmp_path / "data", config)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``WATCHFLOOR_*`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}
    return {**env, **extra}


async def until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll ``predicate`` (sync, or returning an awaitable) without blocking the loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f}s")
        await asyncio.sleep(every)


def collector_health(url: str) -> dict[str, Any] | None:
    """The collector's ``/healthz`` answer, ``None`` while it does not answer."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:  # 503 while Redis is down: still an answer
        return dict(json.loads(exc.read()))
    except OSError:
        return None


def spool_drained(url: str) -> bool:
    health = collector_health(url)
    return health is not None and health.get("spool_batches") == 0 and health["redis"] == "up"


def ids_by_shard(url: str) -> dict[int, list[str]]:
    """Shard -> the ids of its events in stream order (shards without events left out)."""
    client = connect_sync(url)
    try:
        out: dict[int, list[str]] = {}
        for shard in range(int(client.get(keys.SHARDS) or 0)):
            for _, fields in client.xrange(keys.events_shard(shard)):
                for event in msgpack.unpackb(fields[BATCH_FIELD]):
                    out.setdefault(shard, []).append(str(event.get("id", "")))
        return out
    finally:
        client.close()


def open_fingerprints(url: str) -> set[str]:
    """``rule|subject`` of every open incident."""
    client = connect_sync(url)
    try:
        return {fp.decode() for fp in client.hkeys(keys.INCIDENT_FINGERPRINTS)}
    finally:
        client.close()


def task_holder(url: str, task: str) -> str | None:
    """Worker id holding the lease of a task that runs once in the cluster (``timers``)."""
    client = connect_sync(url)
    try:
        raw = client.get(keys.task_lease(task))
        return raw.decode() if raw is not None else None
    finally:
        client.close()


def registered(url: str, worker_id: str) -> bool:
    """Whether ``worker_id`` has beaten into the workers hash (it is up and leasing)."""
    client = connect_sync(url)
    try:
        return bool(client.hexists(keys.WORKERS, worker_id))
    finally:
        client.close()


def run_of_incident(url: str) -> str | None:
    """The id of the (only) playbook run started from an incident, once there is one."""
    client = connect_sync(url)
    try:
        runs = client.hvals(keys.RUN_BY_INCIDENT)
        return runs[0].decode() if runs else None
    finally:
        client.close()


def alive(*workers: WorkerProcess) -> bool:
    return all(w.proc is not None and w.proc.poll() is None for w in workers)


def stored_ids(url: str) -> tuple[int, int]:
    """Over every shard's stream: (distinct event ids, copies beyond the first)."""
    counted: dict[str, int] = {}
    for ids in ids_by_shard(url).values():
        for event_id in ids:
            counted[event_id] = counted.get(event_id, 0) + 1
    return len(counted), sum(n - 1 for n in counted.values())


def processed_events(url: str) -> int:
    """Events processed, summed over every shard's engine status."""
    client = connect_sync(url)
    try:
        return int(engine_status.read_sync(client).get("events", 0))
    finally:
        client.close()


def all_incidents(url: str) -> list[tuple[str, str]]:
    """(rule, subject) of every incident ever opened, one per incident (doubles show)."""
    client = connect_sync(url)
    try:
        out = []
        for raw in client.zrange(keys.INCIDENTS_ALL, 0, -1):
            incident = msgpack.unpackb(client.get(keys.incident(raw.decode())), raw=False)
            out.append((str(incident["rule"]), str(incident["subject"])))
        return sorted(out)
    finally:
        client.close()


async def step_of(redis: aioredis.Redis, run_id: str) -> dict[str, Any]:
    """The first step of a run, as the API shows it."""
    runner = PlaybookRunner(redis, IncidentStore(redis), None, Library([]))
    step: dict[str, Any] = (await runner.get(run_id))["steps"][0]
    return step


async def start_workers(redis_url: str, data_dir: Path) -> dict[str, WorkerProcess]:
    """Workers w1 and w2, once both beat and one of them holds the playbook timers."""
    workers = {w: WorkerProcess(redis_url, data_dir, w) for w in ("w1", "w2")}
    for worker in workers.values():
        worker.start()
    await until(lambda: all(registered(redis_url, w) for w in workers), 30, "both registered")
    await until(lambda: task_holder(redis_url, "timers") in workers, 30, "a timers holder")
    return workers


def leak_now(redis_url: str) -> None:
    """Agent a-7 sends a customer's ID number, written to its shard as a collector would."""
    client = connect_sync(redis_url)
    try:
        event = AgentMessage(
            ts=time.time(), source="im", agent_id="a-7", conversation_id="c-7",
            channel="chat", direction="to_customer", text=ID_TEXT,
        )  # fmt: skip
        publish(client, [event])
    finally:
        client.close()
