"""Soak: a whole stack under steady load for a long time; memory and latency per minute.

Starts ``watchfloor up --headless --workers 2`` (embedded Redis, a collector, two
monitor workers) on a temporary data directory, and producer processes that post
bench/engine.py's traffic mix (stamped now, with ids) at ``--rate`` events/s in
batches. Every ``--probe-every`` seconds one agent message leaking a customer's
ID number is posted from a new agent; the time from its post to its incident is
the event -> incident latency. Each minute it prints the RSS of every process of
the stack (Redis included) and of the producers, the latency p50 / p99 / max of
that minute, and the events the engines have folded in. Memory must stay flat:
detector windows are bounded, streams are trimmed (``redis.events_max_bytes``).

Run: python bench/soak.py [--minutes 30] [--rate 20000] [--producers 2]
Not run in CI (it takes as long as you ask).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.codec import cpu_model  # noqa: E402
from bench.engine import mix  # noqa: E402
from watchfloor.core import engine_status  # noqa: E402
from watchfloor.core.redis_client import connect_sync  # noqa: E402
from watchfloor.core.redis_server import free_port  # noqa: E402
from watchfloor.core.stack_lock import read_holder  # noqa: E402

BATCH = 500
ID_TEXT = "客户身份证号 11010519491231002X 请核对"


def post(url: str, token: str, body: bytes) -> int:
    request = urllib.request.Request(url + "/v1/events", data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def producer(url: str, token: str, rate: float, seed: int, stop_at: float) -> None:
    """Post the mix at ``rate`` events/s until ``stop_at`` (wall clock)."""
    template = mix(20_000, rate=1000.0, seed=seed)
    encoder = msgspec.json.Encoder()
    sent = 0
    start = time.monotonic()
    while time.time() < stop_at:
        now = time.time()
        batch = []
        for k in range(BATCH):
            event = template[(sent + k) % len(template)]
            batch.append(msgspec.structs.replace(event, ts=now, id=f"s{seed}-{sent + k}"))
        post(url, token, encoder.encode(batch))
        sent += BATCH
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def stack_processes(root: int) -> dict[str, int]:
    """name -> pid of ``up``'s children (monitor workers, collector) and its redis-server."""
    found = {"up": root}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        text = [a.decode(errors="replace") for a in argv]
        if ppid == root and "watchfloor" in " ".join(text):
            name = next((a for a in text if a in ("monitor", "collector")), "child")
            worker = text[text.index("--worker-id") + 1] if "--worker-id" in text else ""
            found[worker or name] = int(entry.name)
        elif text and "redis-server" in text[0] and ppid in (root, 1):
            found.setdefault("redis", int(entry.name))
    return found


def incident_subjects(api: str, token: str) -> set[str]:
    request = urllib.request.Request(api + "/v1/incidents?state=all&kind=leak",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return {i["subject"] for i in json.loads(response.read())["incidents"]}
    except (urllib.error.URLError, OSError, ValueError):
        return set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20_000.0, help="events/s in all")
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--probe-every", type=float, default=10.0)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}; {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"soak: {args.minutes:.0f} min at {args.rate:,.0f} events/s, {args.workers} workers")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "wf"
        api_port, collector_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}
        env["WATCHFLOOR_LOG_LEVEL"] = "warning"
        up = subprocess.Popen(
            [sys.executable, "-m", "watchfloor", "up", "--headless", "--data-dir", str(data_dir),
             "--api-port", str(api_port), "--collector-port", str(collector_port),
             "--workers", str(args.workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        api, collector = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{collector_port}"
        try:
            run(args, up, data_dir, api, collector)
        finally:
            up.send_signal(signal.SIGTERM)
            up.wait(120)


def run(args: Any, up: subprocess.Popen[bytes], data_dir: Path, api: str, collector: str) -> None:
    tokens = data_dir / "tokens"
    deadline = time.monotonic() + 90
    while not (tokens / "local-producer.token").exists() or post(collector, "x", b"[]") == 0:
        if time.monotonic() > deadline or up.poll() is not None:
            raise SystemExit("the stack did not start")
        time.sleep(0.5)
    time.sleep(3)
    producer_token = (tokens / "local-producer.token").read_text().strip()
    admin = (tokens / "admin.token").read_text().strip()
    holder = read_holder(data_dir / "redis")
    assert holder is not None
    redis = connect_sync(holder.url)
    stop_at = time.time() + args.minutes * 60
    ctx = mp.get_context("spawn")
    producers = [
        ctx.Process(target=producer, args=(collector, producer_token,
                                           args.rate / args.producers, n, stop_at))
        for n in range(args.producers)
    ]  # fmt: skip
    for p in producers:
        p.start()
    probes: dict[str, float] = {}
    latencies: list[float] = []
    minute_lat: list[float] = []
    minute = 0
    next_probe = time.time()
    start = time.time()
    print(f"{'min':>4} {'events folded':>14} {'ev/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7}  RSS MB per process")  # fmt: skip
    last_events = 0
    while time.time() < stop_at:
        now = time.time()
        if now >= next_probe:
            agent = f"soak-agent-{len(probes)}"
            event = {"type": "agent.message", "id": f"probe-{agent}", "ts": now, "source": "im",
                     "agent_id": agent, "conversation_id": "c", "channel": "chat",
                     "direction": "to_customer", "text": ID_TEXT}  # fmt: skip
            probes[agent] = time.time()
            post(collector, producer_token, json.dumps([event]).encode())
            next_probe += args.probe_every
        found = incident_subjects(api, admin) if probes else set()
        for agent in list(probes):
            if agent in found:
                took = (time.time() - probes.pop(agent)) * 1000
                latencies.append(took)
                minute_lat.append(took)
        if now - start >= (minute + 1) * 60:
            minute += 1
            events = int(engine_status.read_sync(redis).get("events", 0))
            rss = {name: rss_mb(pid) for name, pid in stack_processes(up.pid).items()}
            rss.update({f"producer-{i}": rss_mb(p.pid or 0) for i, p in enumerate(producers)})
            lat = sorted(minute_lat) or [float("nan")]
            print(f"{minute:>4} {events:>14,} {(events - last_events) / 60:>8,.0f} "
                  f"{statistics.median(lat):>7.0f} {lat[int(0.99 * (len(lat) - 1))]:>7.0f} "
                  f"{lat[-1]:>7.0f}  " + " ".join(f"{k}={v:.0f}" for k, v in sorted(rss.items())),
                  flush=True)  # fmt: skip
            last_events, minute_lat = events, []
        time.sleep(0.5)
    for p in producers:
        p.join(60)
    lat = sorted(latencies)
    if lat:
        print(f"event -> incident over the run: n={len(lat)} p50={statistics.median(lat):.0f} ms "
              f"p99={lat[int(0.99 * (len(lat) - 1))]:.0f} ms max={lat[-1]:.0f} ms; "
              f"never opened: {len(probes)}")  # fmt: skip


if __name__ == "__main__":
    main()
