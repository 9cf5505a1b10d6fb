"""Early firing: single-event rules open their incident when the event arrives, not after
the watermark; window rules still wait; order, batching and restarts change nothing."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.api.doubles import T0
from watchfloor.core.config import Config
from watchfloor.core.events import AgentMessage, Contact, DataAccess, Event, Health, SocialMention
from watchfloor.core.incidents import IncidentStore
from watchfloor.monitor.checkpoint import ActionApplier
from watchfloor.monitor.engine import Engine
from watchfloor.monitor.lifecycle import Action
from watchfloor.monitor.service import build_engine

ID_TEXT = "您的身份证号是11010519491231002X，已登记"
BOTH_TEXT = "身份证11010519491231002X 卡号6222021234567891233"


def msg(ts: float, text: str = ID_TEXT, agent: str = "a-7", direction: str = "to_customer"):
    return AgentMessage(
        ts=ts,
        source="im",
        agent_id=agent,
        conversation_id=f"c-{ts}",
        channel="chat",
        direction=direction,  # type: ignore[arg-type]
        text=text,
    )


def export(ts: float, records: int, actor: str = "u-1") -> DataAccess:
    return DataAccess(
        ts=ts, source="crm", actor=actor, action="export", resource="customers", records=records
    )


def post(ts: float, followers: int, topic: str = "brand") -> SocialMention:
    return SocialMention(
        ts=ts,
        source="weibo",
        platform="weibo",
        topic=topic,
        text="曝光！这家店卖假货，投诉无门，大家避雷",
        followers=followers,
        sentiment=-0.8,
    )


def probe(ts: float, status: str, component: str = "crm") -> Health:
    return Health(ts=ts, source="probe", component=component, status=status)


def engine() -> Engine:
    return build_engine(Config())


def opened(actions: list[Action]) -> list[tuple[str, str, float, bool]]:
    return [
        (a.signal.fingerprint, a.signal.severity, a.at, a.early)
        for a in actions
        if a.op == "fire" and a.reason == "opened"
    ]


@pytest.mark.parametrize(
    ("case", "events", "fingerprint", "severity"),
    [
        ("an ID number in an agent's message", [msg(T0 + 0.3)], "leak.pii_in_message|a-7", "major"),
        ("a bulk export", [export(T0 + 0.3, 5000)], "leak.bulk_export|u-1", "major"),
        (
            "a high-reach complaint post",
            [post(T0 + 0.3, 2_000_000)],
            "opinion.topic|brand",
            "critical",
        ),
        (
            "the third failed probe of a new component",
            [probe(T0 + 0.1, "down"), probe(T0 + 0.2, "down"), probe(T0 + 0.3, "down")],
            "outage.component|crm",
            "critical",
        ),
    ],
)
def test_a_single_event_rule_fires_on_arrival_as_of_the_next_evaluation(
    case: str, events: list[Event], fingerprint: str, severity: str
) -> None:
    eng = engine()
    actions = eng.process(events)
    assert eng.watermark < T0, "nothing was evaluated yet"
    assert opened(actions) == [(fingerprint, severity, T0 + 1, True)]
    # The evaluation it stood for confirms it: no second incident, nothing to correct.
    later = eng.process([Contact(ts=T0 + 8, source="x", contact_id="k", queue="q", channel="chat",
                                 action="offered")])  # fmt: skip
    assert [a for a in later if a.signal.fingerprint == fingerprint] == []


@pytest.mark.parametrize(
    ("case", "events"),
    [
        ("a customer sending their own ID", [msg(T0 + 0.3, direction="from_customer")]),
        ("a small export", [export(T0 + 0.3, 200)]),
        ("a complaint by a small account", [post(T0 + 0.3, 500)]),
        ("one failed probe", [probe(T0 + 0.3, "down")]),
    ],
)
def test_what_does_not_fire_later_does_not_fire_early(case: str, events: list[Event]) -> None:
    eng = engine()
    assert opened(eng.process(events)) == []
    assert opened(eng.flush()) == []


def test_window_rules_still_wait_for_the_watermark() -> None:
    eng = engine()
    down = [probe(T0 + k, "down", "ivr") for k in range(0, 30, 10)]
    actions = eng.process(down)
    # A fresh probe needs three failures in a row: the third fires on arrival...
    assert opened(actions) == [("outage.component|ivr", "critical", T0 + 21, True)]
    # ... while an absence (a lost heartbeat) is only ever seen by an evaluation.
    assert all(a.early for a in actions)


def test_a_later_evaluation_raises_the_severity_of_an_early_incident() -> None:
    eng = engine()
    first = eng.process([msg(T0 + 0.3)])
    assert opened(first) == [("leak.pii_in_message|a-7", "major", T0 + 1, True)]
    eng.process([msg(T0 + 2.5, BOTH_TEXT)])
    actions = eng.flush()
    raised = [(a.reason, a.signal.severity, a.notify) for a in actions if a.op == "fire"]
    assert raised == [("severity", "critical", True)]


def chatter(start: float, end: float, every_s: float, negative_every: int = 0) -> list[Event]:
    """Small accounts' mentions of ``brand``; every ``negative_every``-th one a complaint."""
    out: list[Event] = []
    for k in range(int((end - start) / every_s)):
        negative = negative_every and k % negative_every != 0
        text = "客服太差了，等了半天没人理" if negative else "请问这款什么时候有货"
        out.append(
            SocialMention(
                ts=start + k * every_s, source="weibo", platform="weibo", topic="brand",
                text=text, followers=300,
            )
        )  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("case", "followers", "reason", "severity", "notify"),
    [
        ("a louder complaint raises the storm's severity", 2_000_000, "severity", "critical", True),
        (
            "a complaint as severe as the storm joins it quietly",
            500_000,
            "conditions",
            "major",
            False,
        ),
    ],
)
def test_a_high_reach_post_during_a_storm_joins_its_one_incident(
    case: str, followers: int, reason: str, severity: str, notify: bool
) -> None:
    storm_at = T0 + 7200
    eng = engine()
    eng.process(chatter(T0, storm_at, 100))  # two quiet hours: the topic has a baseline
    actions = eng.process(chatter(storm_at, storm_at + 360, 10, negative_every=5))
    fires = [(a.signal.fingerprint, a.reason, a.signal.severity) for a in actions if a.op == "fire"]
    # The negative share opens it as it rises (the sequential test), its window raises it,
    # the volume joins it: one incident throughout.
    assert fires == [
        ("opinion.topic|brand", "opened", "minor"),
        ("opinion.topic|brand", "severity", "major"),
        ("opinion.topic|brand", "conditions", "major"),
    ]
    early = eng.process([post(storm_at + 360.3, followers)])
    assert opened(early) == [], "the topic's incident is open: the post is one more condition"
    later = [a for a in eng.flush() if a.op == "fire"]
    assert [(a.signal.fingerprint, a.reason, a.signal.severity, a.notify) for a in later] == [
        ("opinion.topic|brand", reason, severity, notify)
    ]
    conditions = {c["condition"] for c in later[0].signal.evidence["conditions"]}
    assert "high_reach" in conditions and "volume" in conditions


def leak_day(seed: int) -> list[Event]:
    rnd = random.Random(seed)
    events: list[Event] = []
    for k in range(400):
        ts = T0 + k * 0.5 + rnd.random() * 0.4
        agent = f"a-{rnd.randrange(6)}"
        roll = rnd.random()
        if roll < 0.04:
            events.append(msg(ts, rnd.choice([ID_TEXT, BOTH_TEXT]), agent))
        elif roll < 0.06:
            events.append(export(ts, rnd.choice([50, 2000, 20000]), f"u-{rnd.randrange(3)}"))
        elif roll < 0.08:
            events.append(post(ts, rnd.choice([1000, 200_000, 3_000_000])))
        else:
            events.append(msg(ts, "您好，请问还有什么可以帮您？", agent))
    return events


def incidents(events: list[Event], cut: int, snapshot_every: int = 0) -> dict[str, Any]:
    """Fold the actions into incidents: fingerprint -> opened at, top severity, notified."""
    eng, out = engine(), {}
    for n, i in enumerate(range(0, len(events), cut)):
        if snapshot_every and n % snapshot_every == snapshot_every - 1:
            fresh = engine()
            fresh.restore(eng.snapshot())
            eng = fresh
        for a in eng.process(events[i : i + cut]):
            record(out, a)
    for a in eng.flush():
        record(out, a)
    return out


def record(out: dict[str, Any], a: Action) -> None:
    fp = a.signal.fingerprint
    if a.op == "fire" and a.reason == "opened":
        assert fp not in out or out[fp]["closed"], f"{fp} opened twice"
        out[fp] = {"opened": a.first_at, "severity": a.signal.severity, "closed": False}
    elif a.op == "fire":
        ranks = ("info", "minor", "major", "critical")
        if ranks.index(a.signal.severity) > ranks.index(out[fp]["severity"]):
            out[fp]["severity"] = a.signal.severity
    elif a.op == "clear":
        out[fp]["closed"] = True


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_out_of_order_and_batched_input_opens_the_same_incidents(seed: int) -> None:
    events = leak_day(seed)
    rnd = random.Random(seed)
    # Arrival shuffled within 0.9 s (under the spacing of one subject's events)...
    arrival = sorted(events, key=lambda e: e.ts + rnd.random() * 0.9)
    expected = incidents(events, len(events))
    assert len(expected) >= 3
    assert incidents(arrival, 7) == expected
    assert incidents(arrival, 1) == expected


@pytest.mark.parametrize("seed", [4, 5])
def test_a_restored_engine_fires_early_exactly_like_an_uninterrupted_one(seed: int) -> None:
    events = leak_day(seed)
    assert incidents(events, 9, snapshot_every=3) == incidents(events, 9)


async def test_an_early_fire_and_its_evaluation_in_separate_batches_are_both_applied(
    redis_client: Any,
) -> None:
    eng = engine()
    applier = ActionApplier(IncidentStore(redis_client))
    await applier.apply(eng.process([msg(T0 + 0.3)]))
    await applier.apply(eng.process([msg(T0 + 0.6, BOTH_TEXT)]))  # same second, later batch
    await applier.apply(eng.flush())
    store = IncidentStore(redis_client)
    incident = await store.open_for("leak.pii_in_message", "a-7")
    assert incident is not None and incident.severity == "critical"
    assert incident.opened_at == T0 + 1
    assert len(applier.created) == 1
    # Re-reading the same entries after a crash applies nothing twice.
    again = engine()
    replayed = again.process([msg(T0 + 0.3)]) + again.process([msg(T0 + 0.6, BOTH_TEXT)])
    await applier.apply(replayed + again.flush())
    assert (await store.get(incident.id)).count == incident.count


async def test_the_monitor_opens_a_leak_incident_in_the_step_that_reads_the_message(
    redis_client: Any,
) -> None:
    from watchfloor.core import keys
    from watchfloor.core.bus import EventProducer
    from watchfloor.core.config import load_config
    from watchfloor.monitor.service import MonitorService

    config = load_config("[redis]\nshards = 1\n[monitor]\nblock_ms = 20\n")
    svc = MonitorService(redis_client, config, consumer_name="m1", clock=lambda: T0 + 1)
    await svc.start()
    told = []

    async def hook(incident: Any, created: bool, raised: bool) -> None:
        told.append((incident.rule, incident.subject, created))

    svc.applier.on_incident = hook
    await EventProducer(redis_client, stream=keys.events_shard(0)).publish_events([msg(T0 + 0.5)])
    await svc.step()
    assert svc.engine.watermark < T0, "the watermark is still 5 s behind the message"
    incident = await IncidentStore(redis_client).open_for("leak.pii_in_message", "a-7")
    assert incident is not None and incident.opened_at == T0 + 1
    assert told == [("leak.pii_in_message", "a-7", True)]
