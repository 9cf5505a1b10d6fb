"""How many events per second the rule engine takes, with the default rules.

Feeds a realistic mix (contacts, queue snapshots, agent messages, mentions,
heartbeats, probes, data access) through the same :class:`monitor.engine.Engine`
the monitor runs: the detectors built from ``monitor/rules/default.toml``,
the queue/health board, the lifecycle. The input is pre-built records (the bus
decoding is measured in bench/codec.py), in batches as the consumer reads
them, with some out-of-order arrival within the lateness. It also reports the
engine alone (routing and reorder buffer, no detectors) and the checkpoint
snapshot cost at the end.

With ``--sparse-days N`` it also replays N days of 30-minute queue snapshots
(one queue, about 110 contacts a snapshot) through the default rules: the
replay's cost should follow the events, not the span of event time.

Run: python bench/engine.py [--events 1000000] [--rate 2000] [--sparse-days 92]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import random
import tempfile
import time

import msgpack
import msgspec

from watchfloor.core.config import Config
from watchfloor.core.events import (
    AgentMessage,
    Complaint,
    Contact,
    DataAccess,
    Event,
    Health,
    Heartbeat,
    OrderChange,
    QueueStats,
    SocialMention,
    encode_batch,
)
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.monitor.engine import Engine, time_slices
from watchfloor.monitor.service import build_engine

T0 = 1_763_800_000.0
QUEUES = [(f"q{i:02d}-{c}", c) for i, c in enumerate(["chat", "phone", "email", "chat"] * 10)]
COMPONENTS = ["crm", "order-api", "ivr", "im-gateway", "payment", "network:hz-idc"]
TEXTS = [
    "您好，您的订单已发货，请耐心等待",
    "Your order 2024111112345678 has shipped, waybill SF1234567890123",
    "亲，退款已经处理，预计1-3个工作日到账",
    "请提供一下订单号，我帮您查询",
    "客户手机 138****5678 已核实",
]
MENTIONS = ["双十一客服排队太久了", "物流好快，好评", "客服态度很好", "退款一直不到账，要投诉"]


def _contact(rnd: random.Random, i: int, ts: float, queue: str, channel: str) -> Event:
    action = rnd.choice(["offered", "offered", "answered", "completed", "abandoned"])
    wait = rnd.random() * 12 if action == "answered" else None
    return Contact(
        ts=ts,
        source="acd",
        contact_id=f"c{i}",
        queue=queue,
        channel=channel,
        action=action,
        wait_s=wait,
        csat=rnd.choice([5, 5, 5, 4, 4, 3, 1]) if action == "completed" else None,
    )


def _stats(rnd: random.Random, i: int, ts: float, queue: str, channel: str) -> Event:
    answered = rnd.randint(5, 15)
    return QueueStats(
        ts=ts,
        source="acd",
        queue=queue,
        channel=channel,
        waiting=rnd.randint(0, 6),
        longest_wait_s=rnd.random() * 10,
        agents_available=rnd.randint(1, 5),
        agents_busy=10,
        offered=answered + rnd.randint(0, 1),
        answered=answered,
        abandoned=0,
        answered_in_sla=answered - rnd.randint(0, 1),
    )


def _message(rnd: random.Random, i: int, ts: float, queue: str, channel: str) -> Event:
    return AgentMessage(
        ts=ts,
        source="im",
        agent_id=f"a{i % 500}",
        conversation_id=f"v{i % 3000}",
        channel="chat",
        direction=rnd.choice(["to_customer", "from_customer"]),
        text=rnd.choice(TEXTS),
    )


def _mention(rnd: random.Random, i: int, ts: float, queue: str, channel: str) -> Event:
    return SocialMention(
        ts=ts,
        source="weibo",
        platform="weibo",
        topic=rnd.choice(["brand", "logistics", "app"]),
        text=rnd.choice(MENTIONS),
        followers=rnd.randint(0, 5000),
    )


def _beat(rnd: random.Random, i: int, ts: float, queue: str, channel: str) -> Event:
    return Heartbeat(ts=ts, source=f"agent-{i % 50}")


def _probe(rnd: random.Random, i: int, ts: float, queue: str, channel: str) -> Event:
    return Health(
        ts=ts,
        source="probe",
        component=COMPONENTS[i % len(COMPONENTS)],
        status="up",
        latency_ms=rnd.random() * 200,
    )


def _access(rnd: random.Random, i: int, ts: float, queue: str, channel: str) -> Event:
    return DataAccess(
        ts=ts,
        source="crm",
        actor=f"u{i % 2000}",
        action="view",
        resource="customer",
        records=rnd.randint(1, 20),
    )


def _order(rnd: random.Random, i: int, ts: float, queue: str, channel: str) -> Event:
    return OrderChange(
        ts=ts,
        source="oms",
        account=f"m{rnd.randint(0, 200_000)}",
        action=rnd.choice(["refund", "refund_only", "address_change", "cancel"]),
        agent_id=f"a{i % 500}",
        order_id=f"o{i}",
        amount=round(rnd.random() * 300, 2),
    )


def _complaint(rnd: random.Random, i: int, ts: float, queue: str, channel: str) -> Event:
    n = i // 3  # each complaint opened, the customer told, resolved
    return Complaint(
        ts=ts,
        source="crm",
        complaint_id=f"k{n}",
        queue="complaints",
        action=("opened", "customer_told", "resolved")[i % 3],
    )


MIX = [  # cumulative share, maker
    (0.50, _contact),
    (0.60, _stats),
    (0.84, _message),
    (0.855, _order),
    (0.86, _complaint),
    (0.88, _mention),
    (0.93, _beat),
    (0.98, _probe),
    (1.00, _access),
]
"""Half contacts (completed ones rated), a tenth queue snapshots, a quarter agent messages,
some order changes, complaint steps, mentions, heartbeats, probes and CRM access records."""


def mix(n: int, rate: float, seed: int = 1) -> list[Event]:
    """``n`` events at ``rate`` events per second of event time."""
    rnd = random.Random(seed)
    out: list[Event] = []
    for i in range(n):
        r = rnd.random()
        make = next(m for share, m in MIX if r < share)
        queue, channel = QUEUES[i % len(QUEUES)]
        out.append(make(rnd, i, T0 + i / rate, queue, channel))
    return out


def shuffle_within(events: list[Event], lateness: float, seed: int = 2) -> list[Event]:
    rnd = random.Random(seed)
    keyed = sorted(events, key=lambda e: e.ts + rnd.random() * lateness * 0.8)
    return keyed


def run(engine: Engine, events: list[Event], batch: int) -> tuple[float, int]:
    start = time.perf_counter()
    actions = 0
    for i in range(0, len(events), batch):
        actions += len(engine.process(events[i : i + batch]))
    actions += len(engine.flush())
    return time.perf_counter() - start, actions


def sparse(days: int, interval_s: float = 1800.0) -> list[Event]:
    """A queue reporting every ``interval_s`` (interval reports), ``days`` long."""
    rnd = random.Random(3)
    return [
        msgspec.structs.replace(
            _stats(rnd, i, T0 + i * interval_s, "presale-chat", "chat"),
            offered=100 + rnd.randint(0, 20), interval_s=interval_s,
        )
        for i in range(int(days * 86_400 / interval_s))
    ]  # fmt: skip


def replay_figure(days: int) -> None:
    events = sparse(days)
    engine = build_engine(Config())
    engine.on_signals = None
    start = time.perf_counter()
    actions = 0
    for chunk in time_slices(events):
        actions += len(engine.process(chunk))
    actions += len(engine.flush())
    took = time.perf_counter() - start
    evaluations = engine.stats.evaluations
    print(
        f"replay of {days} days of 30-min snapshots ({len(events)} events): {took:.1f} s, "
        f"{len(events) / took:,.0f} events/s, {days / took:.1f} simulated days/s, "
        f"{evaluations} evaluations ({took / max(1, evaluations) * 1e6:.0f} µs each), "
        f"{actions} actions"
    )


async def through_service(events: list[Event], batch: int) -> tuple[float, int]:
    """One shard's monitor service on a private Redis (one shard: the whole mix through one
    engine): XREADGROUP, engine, checkpoint + XACK. bench/workers.py measures the sharded
    workers as processes."""
    from watchfloor.core import keys
    from watchfloor.core.bus import EventProducer
    from watchfloor.core.config import MonitorConfig, RedisConfig
    from watchfloor.core.redis_server import EmbeddedRedis
    from watchfloor.monitor.service import MonitorService

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, persistent=False) as server:
        redis = redis_connect(server.url)
        producer = EventProducer(redis, stream=keys.events_shard(0), maxlen=10_000_000)
        blobs = [encode_batch(events[i : i + batch]) for i in range(0, len(events), batch)]
        await producer.publish(blobs)
        config = dataclasses.replace(
            Config(data_dir=tmp),
            redis=RedisConfig(shards=1),
            monitor=MonitorConfig(tick_s=0.0, block_ms=10, read_count=20),
        )
        service = MonitorService(redis, config, consumer_name="bench")
        await service.start()
        start = time.perf_counter()
        while service.engine.stats.events < len(events):
            await service.step()
        await service.commit(force=True)
        took = time.perf_counter() - start
        await redis.aclose()
    return took, service.batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--rate",
        type=float,
        default=2_000.0,
        help="events per second of event time (how busy the centre is)",
    )
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--sparse-days", type=int, default=0, help="also the sparse replay")
    parser.add_argument("--only-sparse", action="store_true", help="only the sparse replay")
    args = parser.parse_args()
    if args.sparse_days:
        replay_figure(args.sparse_days)
    if args.only_sparse:
        return
    events = shuffle_within(mix(args.events, args.rate), 5.0)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}; {args.events} events at {args.rate:.0f}/s "
        f"of event time ({args.events / args.rate:.0f} s), batches of {args.batch}"
    )

    bare = Engine([])
    seconds, _ = run(bare, events, args.batch)
    print(
        f"engine alone (routing, reorder buffer, 1 evaluation/s): "
        f"{args.events / seconds:12,.0f} events/s"
    )

    engine = build_engine(Config())
    seconds, actions = run(engine, events, args.batch)
    stats = engine.stats
    print(
        f"engine + default rules + board + lifecycle:           "
        f"{args.events / seconds:12,.0f} events/s"
    )
    print(
        f"  {stats.evaluations} evaluations ({seconds / max(1, stats.evaluations) * 1e6:.0f} µs "
        f"each with its events), {actions} actions, {stats.late_events} late, "
        f"{stats.detector_errors} detector errors; detectors: "
        f"{', '.join(d.name for d in engine.detectors)}"
    )
    start = time.perf_counter()
    blob = msgpack.packb(engine.snapshot(), use_bin_type=True)
    took = time.perf_counter() - start
    print(f"  checkpoint snapshot: {len(blob) / 1024:,.0f} KiB in {took * 1000:.1f} ms")

    n = min(len(events), 200_000)
    seconds, batches = asyncio.run(through_service(events[:n], args.batch))
    print(
        f"monitor service on Redis (read, decode, engine, checkpoint+ack):"
        f"{n / seconds:10,.0f} events/s ({batches} entries of {args.batch})"
    )


if __name__ == "__main__":
    main()
