"""How fast the event contract validates and encodes, next to raw Redis XADD.

Prints, for a realistic mix of events in batches of 1 000:
- fast path: msgpack body -> validated records (msgspec, one C pass);
- careful path: the per-event path used when a batch holds bad events;
- encode: records -> the msgpack bytes of one stream entry;
- raw Redis: pipelined XADD of those encoded batches to a private redis-server
  started for the run (the limit the collector cannot beat).

Run: python bench/codec.py [--batches 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time

import msgpack

from watchfloor.core.events import decode_batch, encode_batch, validate_batch, validate_body
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.core.redis_server import EmbeddedRedis

TS = 1_763_800_000.0
BATCH = 1000


def mix(n: int) -> list[dict]:
    kinds = [
        {
            "type": "queue.stats",
            "source": "acd-1",
            "queue": "presale-chat",
            "channel": "chat",
            "waiting": 12,
            "longest_wait_s": 31.5,
            "agents_available": 2,
            "agents_busy": 18,
            "offered": 40,
            "answered": 38,
            "abandoned": 2,
            "answered_in_sla": 30,
        },
        {
            "type": "contact",
            "source": "acd-1",
            "contact_id": "c-1",
            "queue": "hotline",
            "channel": "phone",
            "action": "answered",
            "wait_s": 4.0,
        },
        {"type": "heartbeat", "source": "chat-gateway"},
        {
            "type": "health",
            "source": "probe",
            "component": "order-api",
            "status": "up",
            "latency_ms": 42.0,
        },
        {
            "type": "agent.message",
            "source": "im",
            "agent_id": "a7",
            "conversation_id": "v1",
            "channel": "chat",
            "direction": "to_customer",
            "text": "您好，您的订单已发货，运单号SF1234567890123",
        },
        {
            "type": "social.mention",
            "source": "weibo",
            "platform": "weibo",
            "topic": "brand",
            "text": "双十一客服排队太久了",
            "followers": 300,
        },
    ]
    return [{**kinds[i % len(kinds)], "ts": TS + i * 0.01, "id": f"e{i}"} for i in range(n)]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} events/s"


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


async def raw_xadd(url: str, entries: list[bytes]) -> float:
    client = redis_connect(url)
    start = time.perf_counter()
    async with client.pipeline(transaction=False) as pipe:
        for data in entries:
            pipe.xadd("bench:events", {b"b": data}, maxlen=100_000, approximate=True)
        await pipe.execute()
    elapsed = time.perf_counter() - start
    await client.aclose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    events = mix(BATCH)
    body = msgpack.packb(events)
    n = BATCH * args.batches
    records = validate_body(body, "msgpack").events

    fast = timed(lambda: [validate_body(body, "msgpack") for _ in range(args.batches)], 3)
    careful = timed(lambda: [validate_batch(msgpack.unpackb(body)) for _ in range(args.batches)], 3)
    encode = timed(lambda: [encode_batch(records) for _ in range(args.batches)], 3)
    encoded = encode_batch(records)
    decode = timed(lambda: [decode_batch(encoded) for _ in range(args.batches)], 3)

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, persistent=False) as server:
        redis_s = min(asyncio.run(raw_xadd(server.url, [encoded] * args.batches)) for _ in range(3))
        with EmbeddedRedis(f"{tmp}/aof", persistent=True) as durable:
            redis_aof = asyncio.run(raw_xadd(durable.url, [encoded] * args.batches))

    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}; {args.batches} batches of {BATCH} events "
        f"({len(body) / BATCH:.0f} B/event)"
    )
    print(f"validate, fast path (msgpack body):   {rate(n, fast)}")
    print(f"validate, careful path (per event):   {rate(n, careful)}")
    print(f"encode for the bus:                   {rate(n, encode)}")
    print(f"decode from the bus (monitor side):   {rate(n, decode)}")
    print(f"fast validate + encode:               {rate(n, fast + encode)}")
    print(f"raw Redis XADD, pipelined, no AOF:    {rate(n, redis_s)}")
    print(f"raw Redis XADD, AOF fsync always:     {rate(n, redis_aof)}")
    print(
        f"validate+encode takes {(fast + encode) / redis_s:.1f}x the time of the raw XADD "
        "(no AOF) of the same batches"
    )


if __name__ == "__main__":
    main()
