"""Ingest throughput: producer processes -> one collector process -> Redis.

Measures, in one run, on one private redis-server (and with ``--cluster`` also on
a local 3-master Redis Cluster from tests/cluster.py, same binary):
- raw limit: pipelined XADD of the same batches, already encoded and split by
  events shard as the collector splits them (what the collector cannot beat: it
  does this plus decoding, validation, dedup and encryption);
- HTTP: ``POST /v1/events`` of msgpack batches of 1 000 events, from producer
  processes with a few requests in flight each;
- WebSocket: the same batches over ``/v1/events/stream``, pipelined;
- HTTP without event ids: the same, with duplicate suppression idle (its cost).
For each: events/s (first send to last answer, all producers together), the
ratio to the raw limit, and p50/p99 of the batch latency seen by producers.

Run: python bench/ingest.py [--producers 2] [--batches 100] [--in-flight 4] [--aof] [--cluster]
[--shards 16] (``--shards 1`` writes every batch as one entry, as before the sharding)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.codec import cpu_model, mix
from watchfloor.core import keys, shards
from watchfloor.core.config import RedisConfig
from watchfloor.core.events import encode_batch, validate_body
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.core.redis_server import EmbeddedRedis, free_port

BATCH = 1000
TOKEN = "bench-admin-token-0123456789"


# --- the collector process --------------------------------------------------------------------


def collector_main(data_dir: str, redis_url: str, port: int, shard_count: int) -> None:
    from watchfloor.collector.service import Collector
    from watchfloor.core.config import CollectorConfig, Config, Secret, SecurityConfig

    config = Config(
        data_dir=data_dir,
        collector=CollectorConfig(port=port, heartbeat_interval_s=0),
        redis=RedisConfig(shards=shard_count),
        security=SecurityConfig(admin_token=Secret(TOKEN)),
    )

    async def main() -> None:
        stop = asyncio.Event()
        await Collector(config, redis_url).run(stop)

    asyncio.run(main())


async def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{url}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("collector did not start")


# --- producers --------------------------------------------------------------------------


def bodies(tag: str, batches: int, with_ids: bool) -> list[bytes]:
    out = []
    now = time.time()  # inside the collector's clock window (the codec mix has a fixed date)
    for b in range(batches):
        events = mix(BATCH)
        for i, event in enumerate(events):
            event["ts"] = now + i * 0.001
            if with_ids:
                event["id"] = f"{tag}-{b}-{i}"
            else:
                event.pop("id", None)
        out.append(msgpack.packb(events))
    return out


def producer_main(args: tuple[str, str, str, int, int, bool], queue: Any) -> None:
    url, transport, tag, batches, in_flight, with_ids = args
    payloads = bodies(tag, batches, with_ids)
    send = _send_http if transport == "http" else _send_ws
    queue.put(asyncio.run(send(url, payloads, in_flight)))


async def _send_http(url: str, payloads: list[bytes], in_flight: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/msgpack"}
    latencies: list[float] = []
    accepted = 0
    todo = iter(payloads)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        for body in todo:
            started = time.perf_counter()
            async with session.post(f"{url}/v1/events", data=body, headers=headers) as resp:
                answer = await resp.json()
            latencies.append(time.perf_counter() - started)
            accepted += answer["accepted"]

    async with aiohttp.ClientSession() as session:
        began = time.time()
        await asyncio.gather(*(worker(session) for _ in range(in_flight)))
        ended = time.time()
    return {"began": began, "ended": ended, "accepted": accepted, "latencies": latencies}


async def _send_ws(url: str, payloads: list[bytes], in_flight: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    latencies: list[float] = []
    accepted = 0
    sent_at: dict[int, float] = {}
    window = asyncio.Semaphore(in_flight)
    async with aiohttp.ClientSession(headers=headers) as session:
        ws = await session.ws_connect(f"{url}/v1/events/stream", max_msg_size=0)

        async def reader() -> None:
            nonlocal accepted
            for _ in payloads:
                answer = await ws.receive_json()
                latencies.append(time.perf_counter() - sent_at.pop(answer["seq"]))
                accepted += answer["accepted"]
                window.release()

        began = time.time()
        reading = asyncio.create_task(reader())
        for seq, body in enumerate(payloads, start=1):
            await window.acquire()
            sent_at[seq] = time.perf_counter()
            await ws.send_bytes(body)
        await reading
        ended = time.time()
        await ws.close()
    return {"began": began, "ended": ended, "accepted": accepted, "latencies": latencies}


def run_producers(
    url: str, transport: str, tag: str, producers: int, batches: int, in_flight: int,
    with_ids: bool,
) -> dict[str, Any]:  # fmt: skip
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=producer_main,
                    args=((url, transport, f"{tag}{p}", batches, in_flight, with_ids), queue))
        for p in range(producers)
    ]  # fmt: skip
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    latencies = sorted(x for r in results for x in r["latencies"])
    wall = max(r["ended"] for r in results) - min(r["began"] for r in results)
    accepted = sum(r["accepted"] for r in results)
    return {
        "events_per_s": accepted / wall,
        "accepted": accepted,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
    }


# --- raw limit --------------------------------------------------------------------------


def raw_stream(shard: int) -> str:
    """A bench stream in shard ``shard``'s hash slot (beside ``wf:events:{N}``)."""
    return f"wf:bench:raw:{{{shard}}}"


async def raw_xadd(redis_url: str, batches: int, shard_count: int) -> float:
    """Events/s of pipelined XADDs of the batches' shard parts, 8 batches a round."""
    parts = []
    for body in bodies("raw", batches, True):
        events = validate_body(body, "msgpack").events
        split = shards.split(events, shard_count)
        parts.append([(n, encode_batch([events[i] for i in at])) for n, at in split.items()])
    client = redis_connect(redis_url)
    try:
        started = time.perf_counter()
        for i in range(0, len(parts), 8):
            async with client.pipeline(transaction=False) as pipe:
                for batch in parts[i : i + 8]:
                    for n, data in batch:
                        pipe.xadd(raw_stream(n), {b"b": data}, maxlen=200_000, approximate=True)
                await pipe.execute()
        elapsed = time.perf_counter() - started
        for n in range(shard_count):
            await client.delete(raw_stream(n))
    finally:
        await client.aclose()
    return len(parts) * BATCH / elapsed


async def write_cost(redis_url: str, batches: int, shard_count: int) -> float:
    """Milliseconds per 1 000-event batch of ``Deduplicator.write`` alone (no HTTP)."""
    from watchfloor.collector.dedup import Deduplicator

    events = [validate_body(b, "msgpack").events for b in bodies(f"w{shard_count}-", batches, True)]
    client = redis_connect(redis_url)
    try:
        await client.delete(keys.SHARDS)  # each run records its own count
        dedup = Deduplicator(client, shards=shard_count)
        started = time.perf_counter()
        for batch in events:
            await dedup.write(batch)
        elapsed = time.perf_counter() - started
        await client.flushdb()
    finally:
        await client.aclose()
    return elapsed / len(events) * 1000


# --- main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=100, help="batches per producer and run")
    parser.add_argument("--in-flight", type=int, default=4, help="requests in flight per producer")
    parser.add_argument("--aof", action="store_true", help="Redis with AOF (fsync always)")
    parser.add_argument(
        "--cluster", action="store_true", help="also on a local 3-master Redis Cluster"
    )
    parser.add_argument(
        "--shards", type=int, default=RedisConfig().shards, help="events shards (redis.shards)"
    )
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, python {platform.python_version()}; "
          f"{args.producers} producer processes x {args.batches} batches of {BATCH} events, "
          f"{args.in_flight} in flight each; {args.shards} events shards; "
          f"Redis AOF {'on' if args.aof else 'off'}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="wf-bench-ingest-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", persistent=args.aof)
        redis_url = server.start()
        try:
            print("-- single Redis")
            alone = {n: asyncio.run(write_cost(redis_url, 100, n)) for n in (1, args.shards)}
            print(f"{'dedup+XADD write alone, ms per batch':44s} "
                  f"{alone[1]:.2f} ms with 1 shard, {alone[args.shards]:.2f} ms with "
                  f"{args.shards} (one pipelined round)")  # fmt: skip
            through_collector(args, redis_url, Path(tmp) / "data-single")
        finally:
            server.stop()
        if args.cluster:
            with local_cluster() as cluster_url:
                if cluster_url is not None:
                    print("-- Redis Cluster, 3 masters on this machine (AOF off)")
                    through_collector(args, cluster_url, Path(tmp) / "data-cluster")


@contextlib.contextmanager
def local_cluster() -> Iterator[str | None]:
    """The URL of a started local cluster, or ``None`` (with a message) without one."""
    try:
        from tests.cluster import LocalCluster
    except ImportError as exc:
        print(f"-- Redis Cluster: skipped, tests/cluster.py not available ({exc})")
        yield None
        return
    with LocalCluster(masters=3) as cluster:
        yield cluster.url


def through_collector(args: argparse.Namespace, redis_url: str, data_dir: Path) -> None:
    port = free_port()
    collector = mp.get_context("spawn").Process(
        target=collector_main, args=(str(data_dir), redis_url, port, args.shards), daemon=True
    )
    collector.start()
    try:
        report(args, redis_url, f"http://127.0.0.1:{port}")
    finally:
        collector.terminate()
        collector.join(10)


def report(args: argparse.Namespace, redis_url: str, url: str) -> None:
    asyncio.run(wait_ready(url))
    total = args.producers * args.batches
    raw = asyncio.run(raw_xadd(redis_url, total, args.shards))
    runs = {
        "HTTP msgpack, batches of 1000": ("http", True),
        "WebSocket msgpack, batches of 1000": ("ws", True),
        "HTTP msgpack, no event ids (dedup idle)": ("http", False),
    }
    print(f"{'raw Redis XADD by shard, pipelined (limit)':44s} {raw:>11,.0f} events/s")
    for i, (name, (transport, with_ids)) in enumerate(runs.items()):
        r = run_producers(url, transport, f"r{i}-", args.producers, args.batches, args.in_flight,
                          with_ids)  # fmt: skip
        print(f"{name:44s} {r['events_per_s']:>11,.0f} events/s  {r['events_per_s'] / raw:5.1%} "
              f"of raw  batch p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
