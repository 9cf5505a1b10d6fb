"""End to end: an event posted to the collector -> its incident readable over the monitor API.

Starts a whole stack on one machine, each part in its own process: an embedded
Redis, ``watchfloor collector``, ``watchfloor monitor`` (the rule engine, the
playbook runner, the audit log and the monitor API) and a background producer
(this script in ``--load`` mode) sending realistic, healthy queue snapshots, contacts and
heartbeats at ``--rate`` events per second through the collector. The main
process then sends ``--probes`` outages one second apart (``PROBE_FAILURES``
"down" health probes of a new component each, which the default rules turn
into an outage incident) and measures, for each, from just before its POST to:

* ``live``: the incident's change arriving on a ``/v1/live`` WebSocket;
* ``rest``: the incident returned by ``GET /v1/incidents?kind=outage&subject=...``
  (polled every 20 ms, so this figure has a 20 ms granularity).

The engine runs on event time: an event is judged once the watermark passes
it, i.e. after the allowed lateness (``monitor.allowed_lateness_s``, 5 s by
default). That delay is by design and dominates the figures; ``--lateness``
changes it for the run so the pipeline's own cost can be seen.

Run: python bench/e2e.py [--rate 10000] [--probes 30] [--lateness 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from watchfloor.core.redis_client import connect as redis_connect

ROOT = Path(__file__).resolve().parent.parent
PROBE_FAILURES = 3
"""Failed probes in a row a new component needs before the default rules call it down."""
QUEUES = [(f"q{i:03d}", ("chat", "phone", "email", "chat")[i % 4]) for i in range(200)]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- child modes --------------------------------------------------------------------------


async def serve_api() -> None:
    """``--serve-api``: the monitor API alone (for ``--fanout``), until SIGTERM."""

    from watchfloor.api.app import api_task
    from watchfloor.core.config import load_config
    from watchfloor.core.incidents import IncidentStore
    from watchfloor.playbooks.library import Library
    from watchfloor.playbooks.runner import PlaybookRunner
    from watchfloor.security.audit import open_audit

    config = load_config(None, dict(os.environ))
    redis = redis_connect(config.redis.url)
    incidents = IncidentStore(redis)
    audit = open_audit(config, redis)
    runner = PlaybookRunner(redis, incidents, audit, Library.load(), auto_start=False)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await api_task(config, redis, incidents=incidents, runner=runner, audit=audit)(stop)
    await redis.aclose()


def healthy_events(n: int, now: float, counter: int) -> list[dict[str, Any]]:
    """``n`` events of a calm centre: queue snapshots, contacts and heartbeats."""
    events: list[dict[str, Any]] = []
    for i in range(n):
        k = counter + i
        queue, channel = QUEUES[k % len(QUEUES)]
        ts = now + i * 1e-6
        if k % 10 == 0:
            events.append({"type": "heartbeat", "ts": ts, "source": f"acd-{k % 4}"})
        elif k % 2 == 0:
            events.append({"type": "queue.stats", "ts": ts, "source": "acd-1", "queue": queue,
                           "channel": channel, "waiting": 2, "longest_wait_s": 4.0,
                           "agents_available": 6, "agents_busy": 10, "offered": 3,
                           "answered": 3, "abandoned": 0, "answered_in_sla": 3})  # fmt: skip
        else:
            events.append({"type": "contact", "ts": ts, "source": "acd-1",
                           "contact_id": f"c{k}", "queue": queue, "channel": channel,
                           "action": "answered", "wait_s": 3.0})  # fmt: skip
    return events


async def load(collector: str, token: str, rate: float, stats_file: str) -> None:
    """``--load``: send ``rate`` events per second in 20 batches a second until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    per_batch = max(1, int(rate / 20))
    sent = accepted = 0
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/msgpack"}
    import msgpack

    async with aiohttp.ClientSession(headers=headers) as session:
        while not stop.is_set():
            due = started + sent / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            body = msgpack.packb(healthy_events(per_batch, time.time(), sent))
            sent += per_batch
            try:
                async with session.post(collector + "/v1/events", data=body) as response:
                    reply = await response.json()
            except aiohttp.ClientError:
                continue  # counted as sent, not accepted
            accepted += int(reply.get("accepted", 0))
    elapsed = time.monotonic() - started
    Path(stats_file).write_text(json.dumps({"sent": sent, "accepted": accepted,
                                            "elapsed_s": elapsed}))  # fmt: skip


# --- the stack --------------------------------------------------------------------------------


def free_port() -> int:
    from watchfloor.core.redis_server import free_port as pick

    return pick()


async def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


class Stack:
    """Redis, collector, monitor, API and the load generator, as child processes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="wf-e2e-"))
        self.token = "wf_bench_" + secrets.token_urlsafe(24)
        self.children: list[subprocess.Popen[bytes]] = []
        self.collector = f"http://127.0.0.1:{free_port()}"
        self.api = f"http://127.0.0.1:{free_port()}"

    def env(self, redis_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "WATCHFLOOR_REDIS_URL": redis_url,
            "WATCHFLOOR_DATA_DIR": str(self.dir),
            "WATCHFLOOR_ADMIN_TOKEN": self.token,
            "WATCHFLOOR_COLLECTOR_PORT": self.collector.rsplit(":", 1)[1],
            "WATCHFLOOR_API_PORT": self.api.rsplit(":", 1)[1],
            "WATCHFLOOR_MONITOR_ALLOWED_LATENESS_S": str(self.args.lateness),
            "WATCHFLOOR_MONITOR_EVAL_INTERVAL_S": str(self.args.eval_interval),
        }

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child
        self.children.append(subprocess.Popen(argv, env=env, stdout=log, stderr=log))

    async def start(self) -> None:
        from watchfloor.core.redis_server import EmbeddedRedis

        self.redis = EmbeddedRedis(self.dir / "redis", persistent=False)
        env = self.env(self.redis.start())
        cli = [sys.executable, "-m", "watchfloor"]
        subprocess.run([*cli, "keys", "init", "--data-dir", str(self.dir)], env=env,
                       check=True, capture_output=True)  # fmt: skip
        self.spawn("collector", [*cli, "collector"], env)
        self.spawn("monitor", [*cli, "monitor"], env)  # engine, runner, audit and the API
        await wait_http(self.collector + "/healthz")
        await wait_http(self.api + "/healthz")
        self.stats_file = self.dir / "load.json"
        if self.args.rate > 0:
            self.spawn("load", [sys.executable, __file__, "--load", self.collector, self.token,
                                str(self.args.rate), str(self.stats_file)], env)  # fmt: skip

    def stop(self) -> None:
        """Stop the children one by one, the producer first, while the rest still runs."""
        for child in reversed(self.children):
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        self.redis.stop()


# --- the measurement -------------------------------------------------------------------------


async def probe(session: aiohttp.ClientSession, stack: Stack, n: int, seen: dict[str, float],
                headers: dict[str, str]) -> tuple[float, float]:  # fmt: skip
    component = f"bench-probe-{n}-{secrets.token_hex(3)}"
    t0 = time.monotonic()
    now = time.time()
    batch = [{"type": "health", "ts": now + k * 0.01, "source": "bench-probes",
              "component": component, "status": "down", "message": "bench"}
             for k in range(PROBE_FAILURES)]  # fmt: skip
    async with session.post(stack.collector + "/v1/events", json=batch,
                            headers=headers) as response:  # fmt: skip
        assert response.status in (200, 202), await response.text()
    url = f"{stack.api}/v1/incidents?kind=outage&subject={component}"
    rest = None
    while rest is None and time.monotonic() - t0 < 60:
        async with session.get(url, headers=headers) as response:
            if (await response.json())["incidents"]:
                rest = time.monotonic() - t0
                break
        await asyncio.sleep(0.02)
    for _ in range(100):
        if component in seen:
            break
        await asyncio.sleep(0.01)
    live = seen.get(component, float("nan")) - t0
    return live, rest if rest is not None else float("nan")


async def listen(stack: Stack, headers: dict[str, str], seen: dict[str, float]) -> None:
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(stack.api + "/v1/live", headers=headers) as ws:  # fmt: skip
        async for msg in ws:
            data = json.loads(msg.data)
            if data.get("type") == "change" and data.get("kind") == "incident":
                subject = data["data"].get("subject", "")
                seen.setdefault(subject, time.monotonic())


async def measure(stack: Stack) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {stack.token}"}
    seen: dict[str, float] = {}
    listener = asyncio.create_task(listen(stack, headers, seen))
    await asyncio.sleep(stack.args.warmup)
    lives, rests = [], []
    async with aiohttp.ClientSession() as session:
        for n in range(stack.args.probes):
            live, rest = await probe(session, stack, n, seen, headers)
            lives.append(live)
            rests.append(rest)
            print(f"  probe {n + 1:3d}: live {live:6.3f} s  rest {rest:6.3f} s", flush=True)
            await asyncio.sleep(max(0.0, 1.0 - min(live, rest)))
        async with session.get(stack.api + "/healthz") as response:
            health = await response.json()
    listener.cancel()
    return {"live": lives, "rest": rests, "health": health}


def report(stack: Stack, result: dict[str, Any]) -> None:
    load_stats = {}
    if stack.stats_file.exists():
        load_stats = json.loads(stack.stats_file.read_text())
    machine = platform.processor() or platform.machine()
    print(f"\nmachine: {machine}, {os.cpu_count()} cores, python {platform.python_version()}; "
          f"allowed lateness {stack.args.lateness} s, "
          f"evaluation every {stack.args.eval_interval} s")  # fmt: skip
    if load_stats:
        rate = load_stats["accepted"] / load_stats["elapsed_s"]
        print(f"background load: asked {stack.args.rate:.0f} ev/s, collector accepted "
              f"{rate:.0f} ev/s over {load_stats['elapsed_s']:.0f} s")  # fmt: skip
    engine = result["health"].get("engine", {})
    print(f"engine at the end: lag {engine.get('lag_s')} s, events {engine.get('events')}, "
          f"dead letters {engine.get('dead_letters')}")  # fmt: skip
    for name in ("live", "rest"):
        values = [v for v in result[name] if v == v]
        missing = len(result[name]) - len(values)
        if values:
            p50, p99 = quantile(values, 0.5), quantile(values, 0.99)
            print(f"{name:5s}: p50 {p50:.3f} s  p99 {p99:.3f} s"
                  f"  max {max(values):.3f} s  mean {statistics.mean(values):.3f} s"
                  f"  (n={len(values)}, missing {missing})")  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    stack = Stack(args)
    try:
        await stack.start()
        print(f"stack up in {stack.dir}; warming up {args.warmup:.0f} s", flush=True)
        result = await measure(stack)
    finally:
        stack.stop()
    report(stack, result)


# --- live fan-out ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def fanout_writer(redis: Any, rate: float, duration: float) -> int:
    from watchfloor.core.changes import add_change

    sent, started = 0, time.monotonic()
    while time.monotonic() - started < duration:
        due = int((time.monotonic() - started) * rate)
        async with redis.pipeline(transaction=False) as pipe:
            for k in range(sent, due):
                row = {
                    "queue": f"q{k % 500:03d}",
                    "channel": "chat",
                    "waiting": k % 40,
                    "longest_wait_s": 12.5,
                    "agents_available": 3,
                    "agents_busy": 11,
                    "service_level": 0.83,
                    "abandon_rate": 0.04,
                    "asa_s": 9.1,
                    "offered_5m": 120,
                    "trend": list(range(30)),
                    "sla_threshold_s": 30,
                    "updated_at": time.time(),
                    "source": "acd-1",
                    "sent": time.time(),
                }
                add_change(pipe, "queue", "updated", row)
            await pipe.execute()
        sent = due
        await asyncio.sleep(0.01)
    return sent


async def fanout_client(url: str, headers: dict[str, str], lat: list[float],
                        resyncs: list[int]) -> None:  # fmt: skip
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(url + "/v1/live", headers=headers) as ws:  # fmt: skip
        async for msg in ws:
            data = json.loads(msg.data)
            if data["type"] == "change":
                lat.append(time.time() - data["data"]["sent"])
            elif data["type"] == "snapshot" and data["reason"] == "resync":
                resyncs.append(1)


async def fanout(args: argparse.Namespace) -> None:
    """``--fanout N``: N live clients, ``--changes`` board changes/s written to Redis."""

    stack = Stack(args)
    from watchfloor.core.redis_server import EmbeddedRedis

    stack.redis = EmbeddedRedis(stack.dir / "redis", persistent=False)
    env = stack.env(stack.redis.start())
    stack.spawn("api", [sys.executable, __file__, "--serve-api"], env)
    await wait_http(stack.api + "/healthz")
    redis = redis_connect(env["WATCHFLOOR_REDIS_URL"])
    headers = {"Authorization": f"Bearer {stack.token}"}
    lat: list[list[float]] = [[] for _ in range(args.fanout)]
    resyncs: list[int] = []
    clients = [asyncio.create_task(fanout_client(stack.api, headers, lat[i], resyncs))
               for i in range(args.fanout)]  # fmt: skip
    await asyncio.sleep(1.0)
    cpu0, t0 = cpu_seconds(stack.children[0].pid), time.monotonic()
    written = await fanout_writer(redis, args.changes, args.duration)
    await asyncio.sleep(1.0)
    cpu = (cpu_seconds(stack.children[0].pid) - cpu0) / (time.monotonic() - t0)
    for task in clients:
        task.cancel()
    await redis.aclose()
    stack.stop()
    every = [v for values in lat for v in values]
    print(f"{args.fanout} live clients, {args.changes:.0f} changes/s for {args.duration:.0f} s: "
          f"{written} written, {len(every)} delivered (expected {written * args.fanout}), "
          f"{len(resyncs)} resyncs; API process CPU {cpu * 100:.0f} % of one core")  # fmt: skip
    if every:
        print(
            f"change in Redis -> on the client: p50 {quantile(every, 0.5) * 1000:.1f} ms, "
            f"p99 {quantile(every, 0.99) * 1000:.1f} ms, max {max(every) * 1000:.1f} ms"
        )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=10_000, help="background events/s")
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--lateness", type=float, default=5.0, help="allowed lateness, s")
    parser.add_argument(
        "--eval-interval",
        type=float,
        default=1.0,
        help="engine evaluation interval, s (monitor.eval_interval_s)",
    )
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--fanout",
        type=int,
        default=0,
        help="instead: N live clients, measure the /v1/live fan-out",
    )
    parser.add_argument("--changes", type=float, default=2500, help="--fanout changes/s")
    parser.add_argument("--duration", type=float, default=20.0, help="--fanout seconds")
    parser.add_argument("--serve-api", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    options = parse()
    if options.serve_api:
        asyncio.run(serve_api())
    elif options.load:
        url, token, rate, stats = options.load
        asyncio.run(load(url, token, float(rate), stats))
    elif options.fanout:
        asyncio.run(fanout(options))
    else:
        asyncio.run(main(options))
