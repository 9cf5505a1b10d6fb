"""Events/s through 1, 2... monitor workers, on one Redis and on a 3-master Redis Cluster.

One run, one machine: the same preloaded traffic (bench/engine.py's mix: contacts,
queue snapshots, agent messages, mentions, probes, heartbeats, data access, order
changes, complaints; stamped around now, 16 shards) is written to the events
shards, then ``--workers N`` real ``watchfloor monitor --no-api`` processes are
started and timed from their first processed event to the last. Printed per
configuration: events/s, the ratio to one worker, and each worker's CPU seconds
(user + system) over the run, so that what limits the figure shows (on two cores
two workers cannot double).

Run: python bench/workers.py [--events 200000] [--workers 1,2] [--cluster]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.codec import cpu_model  # noqa: E402
from bench.engine import mix  # noqa: E402
from watchfloor.core import engine_status, keys  # noqa: E402
from watchfloor.core.bus import BATCH_FIELD  # noqa: E402
from watchfloor.core.events import encode_batch  # noqa: E402
from watchfloor.core.redis_client import connect_sync  # noqa: E402
from watchfloor.core.redis_server import EmbeddedRedis  # noqa: E402
from watchfloor.core.shards import split  # noqa: E402

SHARDS = 16
BATCH = 200


def preload(url: str, n: int) -> int:
    """Write ``n`` events stamped over the last minutes, split by shard; returns n."""
    events = mix(n, rate=max(1.0, n / 300.0))
    shift = time.time() - 300.0 - events[0].ts
    events = [msgspec.structs.replace(e, ts=e.ts + shift) for e in events]
    client = connect_sync(url)
    try:
        client.set(keys.SHARDS, SHARDS)
        pipe = client.pipeline(transaction=False)
        for start in range(0, n, BATCH):
            chunk = events[start : start + BATCH]
            for shard, indexes in split(chunk, SHARDS).items():
                batch = encode_batch([chunk[i] for i in indexes])
                pipe.xadd(keys.events_shard(shard), {BATCH_FIELD: batch})
            if len(pipe) > 2_000:
                pipe.execute()
        pipe.execute()
    finally:
        client.close()
    return n


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, workers: int, n: int, data_dir: Path) -> dict[str, float | str]:
    preload(url, n)
    env = {
        **os.environ,
        "WATCHFLOOR_REDIS_SHARDS": str(SHARDS),
        "WATCHFLOOR_MONITOR_READ_COUNT": "200",
        "WATCHFLOOR_MONITOR_CHECKPOINT_INTERVAL_S": "0.5",
        "WATCHFLOOR_LOG_LEVEL": "warning",
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "watchfloor",
                "monitor",
                "--no-api",
                "--worker-id",
                f"w{i}",
                "--redis",
                url,
                "--data-dir",
                str(data_dir),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(data_dir / f"w{i}.err").open("wb"),
        )
        for i in range(workers)
    ]
    client = connect_sync(url)
    try:
        first: tuple[float, int] | None = None
        cpu0: list[float] = []
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            done = int(engine_status.read_sync(client).get("events", 0))
            if first is None and done > 0:
                first = (time.monotonic(), done)
                cpu0 = [cpu_seconds(p.pid) for p in procs]
            if done >= n:
                break
            time.sleep(0.1)
        end = time.monotonic()
        cpu = [cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0, strict=True)]
    finally:
        client.close()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    if first is None:
        raise SystemExit("the workers processed nothing: see " + str(data_dir))
    rate = (n - first[1]) / max(end - first[0], 1e-9)
    return {"rate": rate, "seconds": end - first[0], "cpu": " ".join(f"{c:.1f}" for c in cpu)}


@contextlib.contextmanager
def single_redis(base: Path) -> Iterator[str]:
    with EmbeddedRedis(base / "redis", persistent=False) as redis:
        yield redis.url


@contextlib.contextmanager
def cluster_redis() -> Iterator[str]:
    from tests.cluster import LocalCluster

    with LocalCluster(masters=3) as cluster:
        yield cluster.url


def flush(url: str) -> None:
    if url.startswith("redis+cluster"):
        from redis.cluster import RedisCluster

        client = connect_sync(url)
        assert isinstance(client, RedisCluster)
        client.flushall(target_nodes=RedisCluster.PRIMARIES)
        client.close()
        return
    client = connect_sync(url)
    client.flushall()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma separated")
    parser.add_argument("--cluster", action="store_true", help="also on a 3-master cluster")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}; {args.events} events, {SHARDS} shards")
    print(
        f"{'redis':<10} {'workers':>7} {'events/s':>10} {'x one':>6} {'seconds':>8}  cpu s/worker"
    )
    targets = [("single", single_redis)] + ([("cluster", None)] if args.cluster else [])
    with tempfile.TemporaryDirectory() as tmp:
        for name, _ in targets:
            ctx = single_redis(Path(tmp) / name) if name == "single" else cluster_redis()
            with ctx as url:
                one = None
                for workers in counts:
                    flush(url)
                    data_dir = Path(tmp) / f"{name}-{workers}"
                    data_dir.mkdir()
                    got = measure(url, workers, args.events, data_dir)
                    rate = float(got["rate"])
                    one = one or rate
                    print(f"{name:<10} {workers:>7} {rate:>10,.0f} {rate / one:>6.2f} "
                          f"{float(got['seconds']):>8.1f}  {got['cpu']}")  # fmt: skip


if __name__ == "__main__":
    main()
