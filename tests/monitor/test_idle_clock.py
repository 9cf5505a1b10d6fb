"""The idle stream's wall-clock tick never overtakes what a live collector acknowledged and
has not written yet (``wf:collectors``); a collector silent too long no longer holds it."""

from __future__ import annotations

import msgpack
import pytest

from tests.api.doubles import T0
from watchfloor.core import keys
from watchfloor.core.bus import EventProducer
from watchfloor.core.config import load_config
from watchfloor.core.events import Heartbeat
from watchfloor.monitor.service import MonitorService

CONFIG = load_config("[redis]\nshards = 1\n[monitor]\nblock_ms = 20\n")


def report(written_until: float, at: float) -> bytes:
    return msgpack.packb({"written_until": written_until, "at": at})


@pytest.mark.parametrize(
    ("reports", "expected_watermark"),
    [
        ({}, T0 + 100 - 5),  # no collector reports: the wall clock
        ({"c1": report(T0 + 100, T0 + 100)}, T0 + 100 - 5),  # all written
        ({"c1": report(T0 + 80, T0 + 99)}, T0 + 80 - 5),  # stalled 20 s: held back
        ({"c1": report(T0 + 100, T0 + 100), "c2": report(T0 + 90, T0 + 99.5)}, T0 + 90 - 5),
        ({"c1": report(T0 + 10, T0 + 60)}, T0 + 100 - 5),  # silent 40 s: presumed gone
        ({"c1": b"not msgpack"}, T0 + 100 - 5),
    ],
)
async def test_the_idle_tick_stops_at_what_every_live_collector_has_written(
    redis_client, reports: dict[str, bytes], expected_watermark: float
) -> None:
    await EventProducer(redis_client, stream=keys.events_shard(0)).publish_events(
        [Heartbeat(ts=T0, source="pbx")]
    )
    if reports:
        await redis_client.hset(keys.COLLECTORS, mapping=reports)
    svc = MonitorService(redis_client, CONFIG, consumer_name="m1", clock=lambda: T0 + 100)
    await svc.start()
    for _ in range(3):
        await svc.step()
    assert svc.engine.watermark == pytest.approx(expected_watermark)
