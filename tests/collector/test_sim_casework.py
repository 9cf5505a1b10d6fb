"""The simulator's casework: valid complaint, delay and order-change events that the new
rules find ordinary (no incident from everyday traffic)."""

from __future__ import annotations

import itertools
import random
from typing import Any

from watchfloor.collector.simulator.casework import Casework
from watchfloor.collector.simulator.world import AGENTS
from watchfloor.core.events import validate_batch
from watchfloor.monitor.detectors.complaints import ComplaintDetector
from watchfloor.monitor.detectors.logistics import LogisticsDetector
from watchfloor.monitor.detectors.orders import OrderDetector
from watchfloor.monitor.drive import drive
from watchfloor.monitor.rules import load_rules

T0 = 1_793_721_600.0
DAYS = 3


def casework_days(seed: int = 1) -> list[dict[str, Any]]:
    work = Casework(random.Random(seed), AGENTS)
    serial = iter(range(10**9))

    def event(etype: str, ts: float, source: str, **fields: Any) -> dict[str, Any]:
        return {"type": etype, "ts": ts, "source": source, "id": f"e{next(serial)}", **fields}

    out: list[dict[str, Any]] = []
    for t in range(DAYS * 86_400):
        out += work.second(T0 + t, 1.0, event)
    return out


def test_casework_is_valid_in_time_order_and_ordinary_for_the_rules():
    raw = casework_days()
    kinds = {e["type"] for e in raw}
    assert kinds == {"complaint", "logistics.delay", "order.change"}
    results = [validate_batch(raw[i : i + 10_000]) for i in range(0, len(raw), 10_000)]
    assert [r.errors for r in results] == [[] for _ in results]
    events = [e for r in results for e in r.events]
    assert all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(raw))
    rules = load_rules()
    detectors = [ComplaintDetector(rules), LogisticsDetector(rules), OrderDetector(rules)]
    trace = drive(detectors, events, step_s=60.0)  # to the last event: all steps sent
    assert trace.fired() == []
    told = [e for e in raw if e["type"] == "complaint" and e["action"] == "customer_told"]
    assert told  # complaints that take longer than 36 h tell the customer
